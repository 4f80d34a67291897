"""The program's books: totals from account balances after earning, approving, clawing
back, redeeming, expiring and correcting, their value, the breakage rate, and the months."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from circolo.commerce.schema import CustomerIn, LineIn, OrderIn, RefundIn, RefundLineIn
from circolo.commerce.selectors import orders_for_points
from circolo.commerce.services import order_upsert
from circolo.loyalty import ledger
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.disputes import dispute_open, dispute_resolve
from circolo.loyalty.expiry import points_expire
from circolo.loyalty.finance import finance_months, finance_summary
from circolo.loyalty.models import Movement, Reason
from circolo.loyalty.orders import earnings_approve_due, orders_sync
from circolo.loyalty.rewards import RewardIn, pool_codes_add, redemption_request, reward_save
from circolo.loyalty.rules import program_get
from circolo.people.models import Identity, Member
from circolo.testing.commerce import make_store
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def order(store: Any, member: Member, ext: str, amount: int, paid_at: dt.datetime,
          refunded: dt.datetime | None = None) -> None:  # fmt: skip
    """A paid order of one line (shipping 5.00 on top, never earning), optionally refunded
    in full, synced with the ledger."""
    Identity.objects.get_or_create(
        workspace=member.workspace, member=member, channel=store.channel, kind="customer_id",
        value=f"c{member.pk}",
    )  # fmt: skip
    refunds = ()
    if refunded is not None:
        refunds = (RefundIn(external_id=f"r-{ext}", order_external_id=ext, refunded_at=refunded,
                            amount_minor=amount, currency="EUR",
                            lines=(RefundLineIn(line_external_id=f"{ext}-1", quantity=1,
                                                amount_minor=amount),)),)  # fmt: skip
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=ext, currency="EUR", placed_at=paid_at, paid_at=paid_at,
            updated_at=refunded or paid_at, status="paid", total_minor=amount + 500,
            shipping_minor=500, customer=CustomerIn(external_id=f"c{member.pk}"),
            lines=(LineIn(external_id=f"{ext}-1", quantity=1, unit_price_minor=amount),),
            refunds=refunds,
        ),
    )  # fmt: skip
    orders_sync(
        workspace_id=store.workspace_id,
        orders=orders_for_points(workspace_id=store.workspace_id, refs=[(store.pk, ext)]),
    )


@pytest.fixture
def books(workspace: Any) -> dict[str, Member]:
    """ana: a 1,000 bonus, +50 after a dispute; bea: an approved order (60 + 200 first
    purchase) and a pending one (20), -20 after a dispute; carl: an approved order (30 +
    200), a 200-point reward, then the order refunded (-200); dan: 500 points from 14 months
    ago that expire."""
    now = timezone.now()
    store = make_store(workspace, external_id="bottega.myshopify.com")
    ana, bea, carl, dan = (MemberFactory(workspace=workspace) for _ in range(4))
    bonus_award(workspace_id=workspace.pk, member_id=ana.pk, rule="bonus", key="a", points=1000)
    bonus_award(workspace_id=workspace.pk, member_id=dan.pk, rule="bonus", key="d", points=500,
                occurred_at=now - 430 * DAY)  # fmt: skip
    order(store, bea, "A", 6000, now - 40 * DAY)
    order(store, bea, "B", 2000, now - 5 * DAY)
    order(store, carl, "C", 3000, now - 40 * DAY)
    earnings_approve_due(now=now)
    reward = reward_save(
        workspace=workspace,
        data=RewardIn(name="Mug", kind="amount_off", cost_points=200, amount_minor=500,
                      code_source="pool"),
        actor=None,
    )  # fmt: skip
    pool_codes_add(reward=reward, codes=["MUG-001"], actor=None)
    redemption_request(member=carl, reward=reward, request_key="r1")
    order(store, carl, "C", 3000, now - 40 * DAY, refunded=now - DAY)
    assert points_expire(now=now, workspace_id=workspace.pk) == 1
    for member, points in ((ana, 50), (bea, -20)):
        movement = Movement.objects.filter(member=member).order_by("pk").first()
        dispute = dispute_open(member=member, movement=movement, message="?")
        dispute_resolve(dispute=dispute, actor=None, accept=True, resolution="ok", points=points)
    return {"ana": ana, "bea": bea, "carl": carl, "dan": dan}


def test_totals_from_balances(workspace, books) -> None:
    balances = {name: ledger.member_balance(member_id=m.pk) for name, m in books.items()}
    assert {name: (b.points, b.pending) for name, b in balances.items()} == {
        "ana": (1050, 0), "bea": (240, 20), "carl": (-200, 0), "dan": (0, 0),
    }  # fmt: skip
    summary = finance_summary(workspace_id=workspace.pk)
    assert (summary.outstanding.points, summary.negative.points, summary.holders) == (1290, -200, 2)
    assert summary.pending.points == 20
    # 1,000 + 50 + 260 + 20 - 20 + 230 - 230 + 500
    assert summary.issued.points == 1810
    assert (summary.redeemed.points, summary.expired.points) == (200, 500)
    assert summary.issued.points == (
        summary.outstanding.points + summary.negative.points + summary.pending.points
        + summary.redeemed.points + summary.expired.points
    )  # fmt: skip
    assert summary.breakage_rate == Decimal("27.6")
    assert summary.outstanding.value_text == "EUR 12.90"
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok


def test_value_of_points_and_an_empty_program(workspace, other_workspace, books) -> None:
    program = program_get(workspace_id=workspace.pk)
    program.value_per_100_minor = 250
    program.save()
    summary = finance_summary(workspace_id=workspace.pk)
    assert (summary.outstanding.value_minor, summary.expired.value_text) == (3225, "EUR 12.50")
    empty = finance_summary(workspace_id=other_workspace.pk)
    assert (empty.issued.points, empty.holders, empty.breakage_rate) == (0, 0, None)


def test_months(workspace, books) -> None:
    now = timezone.now()
    member = books["ana"]
    for back, key in ((2, "two"), (13, "thirteen")):
        when = now - dt.timedelta(days=31 * back)
        ledger.movements_post(
            workspace_id=workspace.pk,
            items=[ledger.transfer(key=key, reason=Reason.BONUS, member_id=member.pk,
                                   source=ledger.ISSUANCE, target=ledger.member_account(member.pk),
                                   points=7)],
            now=when,
        )  # fmt: skip
    months = finance_months(workspace_id=workspace.pk, now=now)
    assert len(months) == 12 and months[0].month == now.date().replace(day=1)
    this = months[0]
    # Issued: orders 260 + 20 + 230, bonuses 1,000 + 500; approved 260 + 230; carl's refund
    # took back 230; one reward; dan's expiry; disputes +50 - 20.
    assert (this.issued, this.approved, this.clawed_back) == (2010, 490, 230)
    assert (this.redeemed, this.expired, this.corrections) == (200, 500, 30)
    earlier = {row.month: row.issued for row in months[1:]}
    assert sum(earlier.values()) == 7  # the one from 13 months ago is not in the table
    two_back = (now - dt.timedelta(days=62)).date().replace(day=1)
    assert next(row for row in months if row.month == two_back).issued == 7
