"""Tiers: members move up as soon as their rolling 12-month spend (or points) reaches a
threshold, keep a tier for the keep period, move down only after it, are told when they move
up, and earn their tier's multiplier on orders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.commerce.schema import CustomerIn, LineIn, OrderIn, RefundIn
from circolo.commerce.selectors import members_net_spend
from circolo.commerce.services import order_upsert
from circolo.community.models import Notification
from circolo.core.models import AuditLog
from circolo.loyalty import ledger
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.expiry import add_months
from circolo.loyalty.models import MemberTier, OrderEarning, Program, Reason, Tier
from circolo.loyalty.tasks import tiers_recalculate_task
from circolo.loyalty.tiers import (
    TierError,
    TierIn,
    members_points_earned,
    tier_create,
    tier_delete,
    tier_progress,
    tier_update,
    tiers_recalculate,
)
from circolo.people.models import Identity, Member
from circolo.testing.commerce import make_store
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = dt.timedelta(days=1)


@pytest.fixture
def store(workspace: Any) -> Any:
    return make_store(workspace, external_id="bottega.myshopify.com")


def tier(workspace: Any, name: str, threshold: int, multiplier: int = 100) -> Tier:
    return Tier.objects.create(
        workspace=workspace, name=name, threshold=threshold, multiplier_percent=multiplier
    )


def pay(
    store: Any,
    member: Member,
    ext: str,
    total: int,
    paid_at: dt.datetime,
    *,
    currency: str = "EUR",
    refunds: tuple[RefundIn, ...] = (),
    cancelled_at: dt.datetime | None = None,
    updated_at: dt.datetime | None = None,
) -> None:
    Identity.objects.get_or_create(
        workspace=member.workspace, member=member, channel=store.channel, kind="customer_id",
        value=f"c{member.pk}",
    )  # fmt: skip
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=ext, currency=currency, placed_at=paid_at, paid_at=paid_at,
            updated_at=updated_at or paid_at, status="paid", total_minor=total,
            customer=CustomerIn(external_id=f"c{member.pk}"),
            lines=(LineIn(external_id=f"{ext}-1", quantity=1, unit_price_minor=total),),
            refunds=refunds, cancelled_at=cancelled_at,
        ),
    )  # fmt: skip


def tier_of(member: Member) -> str | None:
    row = MemberTier.objects.filter(member=member).select_related("tier").first()
    return row.tier.name if row is not None and row.tier is not None else None


def told(member: Member) -> list[dict[str, Any]]:
    return list(
        Notification.objects.filter(recipient=member, kind="rewards")
        .order_by("pk")
        .values_list("data", flat=True)
    )


# --------------------------------------------------------------------------- spend


def test_threshold_just_below_stays_at_reaches(workspace, store) -> None:
    silver, gold = tier(workspace, "Silver", 10_000), tier(workspace, "Gold", 50_000)
    below, at, high = (MemberFactory(workspace=workspace) for _ in range(3))
    pay(store, below, "1", 9_999, NOW - DAY)
    pay(store, at, "2", 10_000, NOW - DAY)
    pay(store, high, "3", 30_000, NOW - 10 * DAY)
    pay(store, high, "4", 20_000, NOW - DAY)

    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 2
    assert (tier_of(below), tier_of(at), tier_of(high)) == (None, "Silver", "Gold")
    assert MemberTier.objects.get(member=below).measured == 9_999
    assert told(below) == []
    assert told(at) == [{"what": "tier", "tier": "Silver"}]
    assert told(high) == [{"what": "tier", "tier": "Gold"}]
    assert Notification.objects.get(recipient=high).key == f"tier:{gold.pk}:{NOW.date()}"
    row = MemberTier.objects.get(member=at)
    assert row.tier == silver and row.since == NOW and row.measured_at == NOW
    assert row.keep_until == add_months(NOW, 12)

    # A second run changes nothing and tells nobody again.
    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 0
    assert Notification.objects.filter(kind="rewards").count() == 2


def test_net_spend_leaves_out_refunds_cancellations_old_orders_and_other_currencies(
    workspace, store
) -> None:
    tier(workspace, "Silver", 10_000)
    refunded, cancelled, old, dollars = (MemberFactory(workspace=workspace) for _ in range(4))
    refund = RefundIn(
        external_id="r1", order_external_id="1", refunded_at=NOW - DAY, amount_minor=3_000,
        currency="EUR",
    )  # fmt: skip
    pay(store, refunded, "1", 12_000, NOW - 2 * DAY, refunds=(refund,), updated_at=NOW - DAY)
    pay(store, cancelled, "2", 20_000, NOW - 2 * DAY, cancelled_at=NOW - DAY)
    pay(store, old, "3", 20_000, NOW - 366 * DAY)
    pay(store, dollars, "4", 20_000, NOW - DAY, currency="USD")

    spend = members_net_spend(workspace_id=workspace.pk, since=NOW - 365 * DAY, currency="EUR")
    assert spend == {refunded.pk: 9_000}
    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 0
    assert [tier_of(m) for m in (refunded, cancelled, old, dollars)] == [None] * 4


def test_tier_is_kept_until_keep_until_then_downgraded(workspace, store) -> None:
    Program.objects.create(workspace=workspace, tier_keep_months=3)
    tier(workspace, "Silver", 10_000)
    member = MemberFactory(workspace=workspace)
    t0 = NOW - 10 * DAY
    pay(store, member, "1", 10_000, t0)
    tiers_recalculate(workspace_id=workspace.pk, now=t0 + dt.timedelta(hours=1))
    assert tier_of(member) == "Silver"
    keep_until = MemberTier.objects.get(member=member).keep_until
    assert keep_until is not None and t0 + 88 * DAY < keep_until < t0 + 93 * DAY

    # Half refunded: below the threshold, but the tier is kept until keep_until.
    refund = RefundIn(
        external_id="r1", order_external_id="1", refunded_at=NOW - DAY, amount_minor=5_000,
        currency="EUR",
    )  # fmt: skip
    pay(store, member, "1", 10_000, t0, refunds=(refund,), updated_at=NOW - DAY)
    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 0
    row = MemberTier.objects.get(member=member)
    assert tier_of(member) == "Silver" and row.measured == 5_000 and row.keep_until == keep_until
    assert tiers_recalculate(workspace_id=workspace.pk, now=keep_until - DAY) == 0
    assert tier_of(member) == "Silver"

    # After keep_until: down (and nobody is told about a move down).
    assert tiers_recalculate(workspace_id=workspace.pk, now=keep_until + DAY) == 1
    row = MemberTier.objects.get(member=member)
    assert row.tier is None and row.keep_until is None and row.since is None
    assert told(member) == [{"what": "tier", "tier": "Silver"}]


def test_qualifying_again_renews_the_keep_period_and_downgrade_lands_on_reached_tier(
    workspace, store
) -> None:
    Program.objects.create(workspace=workspace, tier_keep_months=1)
    tier(workspace, "Silver", 10_000)
    tier(workspace, "Gold", 50_000)
    member = MemberFactory(workspace=workspace)
    t0 = NOW - 100 * DAY
    pay(store, member, "1", 40_000, t0)
    pay(store, member, "2", 15_000, NOW - 50 * DAY)
    tiers_recalculate(workspace_id=workspace.pk, now=NOW - 50 * DAY + DAY)
    assert tier_of(member) == "Gold"
    first_keep = MemberTier.objects.get(member=member).keep_until
    tiers_recalculate(workspace_id=workspace.pk, now=NOW)
    renewed = MemberTier.objects.get(member=member).keep_until
    assert first_keep is not None and renewed is not None and renewed > first_keep
    # Renewed at most weekly: a run the next day writes nothing.
    tiers_recalculate(workspace_id=workspace.pk, now=NOW + DAY)
    row = MemberTier.objects.get(member=member)
    assert (row.keep_until, row.measured_at) == (renewed, NOW)
    # A year on, only the second order is in the window... and none after that.
    later = t0 + 366 * DAY
    assert renewed < later
    tiers_recalculate(workspace_id=workspace.pk, now=later)
    assert tier_of(member) == "Silver"
    assert MemberTier.objects.get(member=member).measured == 15_000


def test_only_some_members_and_the_daily_task(workspace, other_workspace, store) -> None:
    tier(workspace, "Silver", 10_000)
    tier(other_workspace, "Elsewhere", 1)
    first, second = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    pay(store, first, "1", 10_000, NOW - DAY)
    pay(store, second, "2", 10_000, NOW - DAY)
    assert tiers_recalculate(workspace_id=workspace.pk, member_ids=[first.pk], now=NOW) == 1
    assert (tier_of(first), tier_of(second)) == ("Silver", None)
    assert tiers_recalculate_task.apply().get() == 1
    assert tier_of(second) == "Silver"
    assert tiers_recalculate_task.apply().get() == 0


def test_merged_members_get_no_tier_and_no_tiers_means_nothing_to_do(workspace, store) -> None:
    member = MemberFactory(workspace=workspace)
    pay(store, member, "1", 10_000, NOW - DAY)
    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 0
    assert not MemberTier.objects.exists()
    tier(workspace, "Silver", 10_000)
    survivor = MemberFactory(workspace=workspace)
    Member.objects.filter(pk=member.pk).update(merged_into=survivor)
    assert tiers_recalculate(workspace_id=workspace.pk, now=NOW) == 0
    assert not MemberTier.objects.filter(member=member).exists()


# --------------------------------------------------------------------------- points


def test_points_basis_counts_earned_less_taken_back(workspace) -> None:
    Program.objects.create(workspace=workspace, tier_basis=Program.TierBasis.POINTS)
    tier(workspace, "Bronze", 100)
    tier(workspace, "Silver", 500)
    at, refunded, old, spender = (MemberFactory(workspace=workspace) for _ in range(4))
    bonus_award(workspace_id=workspace.pk, member_id=at.pk, rule="x", key="a", points=100)
    bonus_award(workspace_id=workspace.pk, member_id=refunded.pk, rule="x", key="b", points=150)
    ledger.movements_post(
        workspace_id=workspace.pk,
        items=[
            ledger.transfer(
                key="back", reason=Reason.REFUND, member_id=refunded.pk,
                source=ledger.member_account(refunded.pk), target=ledger.ISSUANCE, points=60,
            )
        ],
    )  # fmt: skip
    bonus_award(
        workspace_id=workspace.pk, member_id=old.pk, rule="x", key="c", points=900,
        occurred_at=NOW - 400 * DAY,
    )  # fmt: skip
    bonus_award(workspace_id=workspace.pk, member_id=spender.pk, rule="x", key="d", points=500)
    # Spending points is not taking earned points back.
    ledger.movements_post(
        workspace_id=workspace.pk,
        items=[
            ledger.transfer(
                key="spend", reason=Reason.REDEMPTION, member_id=spender.pk,
                source=ledger.member_account(spender.pk), target=ledger.REDEMPTION, points=400,
            )
        ],
    )  # fmt: skip
    earned = members_points_earned(workspace_id=workspace.pk, since=NOW - 365 * DAY)
    assert earned == {at.pk: 100, refunded.pk: 90, spender.pk: 500}
    tiers_recalculate(workspace_id=workspace.pk, now=NOW)
    assert [tier_of(m) for m in (at, refunded, old, spender)] == ["Bronze", None, None, "Silver"]


# --------------------------------------------------------------------------- perks


def test_tier_multiplier_applies_to_order_points(
    workspace, store, django_capture_on_commit_callbacks
) -> None:
    tier(workspace, "Gold", 10_000, multiplier=200)
    gold, plain = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True):
        pay(store, gold, "1", 10_000, NOW - 2 * DAY)
        pay(store, plain, "2", 10_000, NOW - 2 * DAY)
    tiers_recalculate(workspace_id=workspace.pk, now=NOW)
    assert (tier_of(gold), tier_of(plain)) == ("Gold", "Gold")
    MemberTier.objects.filter(member=plain).update(tier=None)
    with django_capture_on_commit_callbacks(execute=True):
        pay(store, gold, "3", 5_000, NOW - DAY)
        pay(store, plain, "4", 5_000, NOW - DAY)
    earned = dict(
        OrderEarning.objects.filter(order_id__in=_order_ids(store, "3", "4")).values_list(
            "member_id", "points"
        )
    )
    # 1 point per euro: 50 points, twice as many in the Gold tier.
    assert earned == {gold.pk: 100, plain.pk: 50}


def _order_ids(store: Any, *externals: str) -> list[int]:
    return list(store.orders.filter(external_id__in=externals).values_list("pk", flat=True))


# --------------------------------------------------------------------------- progress


def test_tier_progress(workspace, store) -> None:
    tier(workspace, "Silver", 10_000)
    tier(workspace, "Gold", 50_000)
    member = MemberFactory(workspace=workspace)
    progress = tier_progress(member=member, now=NOW)
    assert progress.tier is None and progress.next_tier is not None
    assert (progress.measured, progress.needed, progress.percent) == (0, 10_000, 0)
    pay(store, member, "1", 20_000, NOW - DAY)
    tiers_recalculate(workspace_id=workspace.pk, now=NOW)
    progress = tier_progress(member=member, now=NOW)
    assert progress.tier is not None and progress.tier.name == "Silver"
    assert progress.next_tier is not None and progress.next_tier.name == "Gold"
    assert (progress.measured, progress.needed, progress.percent) == (20_000, 30_000, 40)
    assert progress.keep_until is not None and progress.basis == "spend"
    pay(store, member, "2", 40_000, NOW - DAY)
    tiers_recalculate(workspace_id=workspace.pk, now=NOW)
    progress = tier_progress(member=member, now=NOW)
    assert progress.next_tier is None and progress.percent == 100 and progress.needed == 0


# --------------------------------------------------------------------------- editing


def test_tier_services_validate_and_audit(workspace, other_workspace, owner) -> None:
    silver = tier_create(
        workspace=workspace, actor=owner.user,
        data=TierIn(name=" Silver ", threshold=10_000, names={"it": "Argento", "es": ""}),
    )  # fmt: skip
    assert silver.name == "Silver" and silver.names == {"it": "Argento"}
    assert silver.name_in("it") == "Argento" and silver.name_in("es") == "Silver"
    bad = [
        (TierIn(name="", threshold=1), "name"),
        (TierIn(name="silver", threshold=1), "name"),
        (TierIn(name="Gold", threshold=-1), "threshold"),
        (TierIn(name="Gold", threshold=10_000), "threshold"),
        (TierIn(name="Gold", threshold=1, multiplier_percent=99), "multiplier_percent"),
        (TierIn(name="Gold", threshold=1, multiplier_percent=501), "multiplier_percent"),
        (TierIn(name="Gold", threshold=1, names={"fr": "Or"}), "name_fr"),
        (TierIn(name="Gold", threshold=1, names={"zh-hans": "金" * 61}), "name_zh_hans"),
        (TierIn(name="G" * 61, threshold=1), "name"),
    ]
    for data, field in bad:
        with pytest.raises(TierError) as error:
            tier_create(workspace=workspace, actor=owner.user, data=data)
        assert field in error.value.errors, data
    gold = tier_create(
        workspace=workspace, actor=owner.user,
        data=TierIn(name="Gold", threshold=50_000, multiplier_percent=150),
    )  # fmt: skip
    tier_update(
        workspace=workspace, actor=owner.user, tier=gold,
        data=TierIn(name="Oro", threshold=60_000, multiplier_percent=500),
    )  # fmt: skip
    gold.refresh_from_db()
    assert (gold.name, gold.threshold, gold.multiplier_percent) == ("Oro", 60_000, 500)
    with pytest.raises(TierError):
        tier_update(
            workspace=other_workspace, actor=owner.user, tier=gold,
            data=TierIn(name="X", threshold=1),
        )  # fmt: skip
    member = MemberFactory(workspace=workspace)
    MemberTier.objects.create(member=member, workspace=workspace, tier=gold, measured=60_000)
    tier_delete(workspace=workspace, actor=owner.user, tier=gold)
    assert tier_of(member) == "Silver"  # the tier below, without a "you reached" message
    assert told(member) == []
    assert list(
        AuditLog.objects.filter(workspace=workspace).order_by("pk").values_list("action", flat=True)
    ) == [
        "loyalty.tier_created",
        "loyalty.tier_created",
        "loyalty.tier_updated",
        "loyalty.tier_deleted",
    ]
