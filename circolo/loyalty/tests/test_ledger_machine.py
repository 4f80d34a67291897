"""Acceptance 1: random sequences of orders, refunds (full and partial), cancellations,
replays, early arrivals, approvals, community actions, redemptions and expiry keep the
ledger exact.

After every step: every movement's entries sum to zero, every account's balance equals the
sum of its entries, all balances together are zero, no order or activity paid twice, and
each member's spendable and pending points equal what an independent model of the rules
says (1 point per euro of net merchandise, 200 for a first purchase, refunds taking back
their lines' share rounded down, 50 per review and 50 more with a photo, at most 3 a day).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from circolo.activity.handlers import HandledActivity
from circolo.activity.services import activity_record
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn, RefundIn, RefundLineIn
from circolo.commerce.selectors import orders_for_points
from circolo.commerce.services import order_upsert, refund_upsert
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.actions import actions_earn
from circolo.loyalty.expiry import points_expire
from circolo.loyalty.models import LineEarning, Movement, OrderEarning, PoolCode, Reward
from circolo.loyalty.orders import earnings_approve_due, orders_sync
from circolo.loyalty.rewards import RedeemError, redemption_request
from circolo.people.models import Member
from circolo.testing.commerce import make_store

CUSTOMERS = ("ada@example.com", "bruno@example.com", "chen@example.com")
REWARD_COST = 50
_counter = itertools.count()


@dataclass
class PlannedOrder:
    external_id: str
    customer: str
    lines: dict[str, int]  # line id -> net merchandise (minor units)
    shipping: int
    placed: bool = False
    paid_at: dt.datetime | None = None
    cancelled: bool = False
    refunds: list[RefundIn] = field(default_factory=list)
    payload: OrderIn | None = None

    @property
    def refunded(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for refund in self.refunds:
            for line in refund.lines:
                total[line.line_external_id] += line.amount_minor
        return dict(total)

    def remaining(self, line: str) -> int:
        return self.lines[line] - self.refunded.get(line, 0)


class LedgerMachine(RuleBasedStateMachine):
    capture: Callable[..., Any]

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        n = next(_counter)
        self.workspace = Workspace.objects.create(name=f"Ledger {n}", slug=f"ledger-{n}")
        self.store = make_store(self.workspace)
        self.reward = Reward.objects.create(
            workspace=self.workspace,
            name="Five off",
            kind=Reward.Kind.AMOUNT_OFF,
            cost_points=REWARD_COST,
            amount_minor=500,
            currency="EUR",
            code_source=Reward.CodeSource.POOL,
        )
        PoolCode.objects.bulk_create(
            PoolCode(
                workspace=self.workspace,
                reward=self.reward,
                code=f"POOL-{n}-{i}",
                uploaded_at=timezone.now(),
            )
            for i in range(60)
        )
        # The model's clock: starts long ago so that approvals and expiry can move it on.
        self.clock = timezone.now() - dt.timedelta(days=365 * 30)
        self.planned: list[PlannedOrder] = []
        self.members: dict[str, int] = {}
        # The model: per member, spendable points outside orders; per order, approved or not.
        self.extra: Counter[int] = Counter()
        self.approved: set[str] = set()
        self.reviews: Counter[tuple[int, dt.date]] = Counter()
        self.photo_reviews: Counter[tuple[int, dt.date]] = Counter()
        self.review_activities: list[HandledActivity] = []
        self.redeemed = 0

    def teardown(self) -> None:
        self.workspace.delete()

    def tick(self, hours: int = 1) -> dt.datetime:
        self.clock += dt.timedelta(hours=hours)
        return self.clock

    # ------------------------------------------------------------------ commerce

    def _order_in(self, planned: PlannedOrder, *, version: int) -> OrderIn:
        lines = tuple(
            LineIn(external_id=line, quantity=1, unit_price_minor=amount)
            for line, amount in planned.lines.items()
        )
        merchandise = sum(planned.lines.values())
        assert planned.paid_at is not None
        return OrderIn(
            external_id=planned.external_id,
            currency="EUR",
            placed_at=planned.paid_at,
            updated_at=planned.paid_at + dt.timedelta(seconds=version),
            status="paid",
            paid_at=planned.paid_at,
            cancelled_at=planned.paid_at + dt.timedelta(seconds=version)
            if planned.cancelled
            else None,
            subtotal_minor=merchandise,
            shipping_minor=planned.shipping,
            tax_minor=merchandise // 5,
            total_minor=merchandise + planned.shipping + merchandise // 5,
            customer=CustomerIn(external_id=planned.customer, email=planned.customer),
            lines=lines,
        )

    def _upsert(self, planned: PlannedOrder, version: int) -> None:
        planned.payload = self._order_in(planned, version=version)
        with self.capture(execute=True):
            order_upsert(store=self.store, order=planned.payload)
        if planned.customer not in self.members:
            member_id = self.store.orders.get(external_id=planned.external_id).member_id
            assert member_id is not None
            self.members[planned.customer] = member_id

    @rule(
        target=orders,
        customer=st.sampled_from(CUSTOMERS),
        amounts=st.lists(st.integers(1, 40_000), min_size=1, max_size=3),
        shipping=st.integers(0, 1500),
    )
    def place_order(self, customer: str, amounts: list[int], shipping: int) -> PlannedOrder:
        planned = PlannedOrder(
            external_id=f"o{len(self.planned)}",
            customer=customer,
            lines={f"l{i}": amount for i, amount in enumerate(amounts)},
            shipping=shipping,
            paid_at=self.tick(),
        )
        self.planned.append(planned)
        self._upsert(planned, version=1)
        planned.placed = True
        return planned

    @rule(planned=orders)
    def replay_order(self, planned: PlannedOrder) -> None:
        assert planned.payload is not None
        with self.capture(execute=True):
            order_upsert(store=self.store, order=planned.payload)

    @rule(planned=orders, data=st.data())
    def refund_part(self, planned: PlannedOrder, data: st.DataObject) -> None:
        open_lines = [line for line in planned.lines if planned.remaining(line) > 0]
        if planned.cancelled or not open_lines:
            return
        line = data.draw(st.sampled_from(open_lines))
        amount = data.draw(st.integers(1, planned.remaining(line)))
        self._refund(planned, {line: amount})

    @rule(planned=orders)
    def refund_all(self, planned: PlannedOrder) -> None:
        rest = {line: planned.remaining(line) for line in planned.lines}
        if planned.cancelled or not any(rest.values()):
            return
        self._refund(planned, {line: a for line, a in rest.items() if a > 0})

    def _refund(self, planned: PlannedOrder, amounts: dict[str, int]) -> None:
        refund = RefundIn(
            external_id=f"{planned.external_id}-r{len(planned.refunds)}",
            order_external_id=planned.external_id,
            refunded_at=self.tick(),
            amount_minor=sum(amounts.values()),
            currency="EUR",
            lines=tuple(
                RefundLineIn(line_external_id=line, quantity=1, amount_minor=amount)
                for line, amount in amounts.items()
            ),
        )
        planned.refunds.append(refund)
        with self.capture(execute=True):
            refund_upsert(store=self.store, refund=refund)
            # A replay of the same refund changes nothing.
            refund_upsert(store=self.store, refund=refund)

    @rule(planned=consumes(orders))
    def cancel(self, planned: PlannedOrder) -> None:
        if planned.cancelled or planned.refunds:
            return
        planned.cancelled = True
        self._upsert(planned, version=2)

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        amount=st.integers(100, 20_000),
    )
    def refund_arrives_before_its_order(self, customer: str, amount: int) -> None:
        """The store sends the refund first; the order (paid, then refunded) follows."""
        planned = PlannedOrder(
            external_id=f"o{len(self.planned)}",
            customer=customer,
            lines={"l0": amount},
            shipping=0,
            paid_at=self.tick(),
        )
        self.planned.append(planned)
        refund = RefundIn(
            external_id=f"{planned.external_id}-r0",
            order_external_id=planned.external_id,
            refunded_at=self.tick(),
            amount_minor=amount // 2,
            currency="EUR",
            lines=(RefundLineIn(line_external_id="l0", quantity=1, amount_minor=amount // 2),),
        )
        planned.refunds.append(refund)
        with self.capture(execute=True):
            refund_upsert(store=self.store, refund=refund)
        self._upsert(planned, version=1)
        planned.placed = True

    @rule()
    def replay_handlers(self) -> None:
        """Handlers see the same events again (a redelivered task): nothing pays twice."""
        orders = orders_for_points(
            workspace_id=self.workspace.pk,
            refs=[(self.store.pk, p.external_id) for p in self.planned if p.placed],
        )
        orders_sync(workspace_id=self.workspace.pk, orders=orders, now=self.clock)
        actions_earn(workspace_id=self.workspace.pk, activities=self.review_activities)

    @rule()
    def approve(self) -> None:
        self.tick(24 * 31)
        while earnings_approve_due(now=self.clock):
            pass
        for planned in self.planned:
            if planned.placed and not planned.cancelled:
                self.approved.add(planned.external_id)

    # ------------------------------------------------------------------ community

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data(), photo=st.booleans())
    def review(self, data: st.DataObject, photo: bool) -> None:
        customer = data.draw(st.sampled_from(sorted(self.members)))
        member_id = self.members[customer]
        moment = self.tick()
        member = Member.objects.get(pk=member_id)
        with self.capture(execute=True):
            activity, _created = activity_record(
                workspace=self.workspace,
                member=member,
                kind="review",
                channel="reviews",
                occurred_at=moment,
                source="reviews",
                source_id=f"review:{next(_counter)}",
                properties={"photos": 1 if photo else 0},
            )
        self.review_activities.append(
            HandledActivity(
                id=activity.pk,
                workspace_id=self.workspace.pk,
                member_id=member_id,
                kind="review",
                channel="reviews",
                occurred_at=moment,
                weight=activity.weight,
                source=activity.source,
                source_id=activity.source_id,
                properties_json=f'{{"photos": {1 if photo else 0}}}',
            )
        )
        day = (member_id, moment.date())
        if self.reviews[day] < 3:
            self.extra[member_id] += 50
        self.reviews[day] += 1
        if photo:
            if self.photo_reviews[day] < 3:
                self.extra[member_id] += 50
            self.photo_reviews[day] += 1

    # ------------------------------------------------------------------ spending

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        customer = data.draw(st.sampled_from(sorted(self.members)))
        member = Member.objects.get(pk=self.members[customer])
        before = ledger.member_balance(member_id=member.pk)
        key = f"req-{next(_counter)}"
        if before.points < REWARD_COST or self.redeemed >= 60:
            movements = Movement.objects.filter(workspace=self.workspace).count()
            with pytest.raises(RedeemError):
                redemption_request(member=member, reward=self.reward, request_key=key)
            assert Movement.objects.filter(workspace=self.workspace).count() == movements
            return
        moment = self.tick()
        first = redemption_request(member=member, reward=self.reward, request_key=key, now=moment)
        again = redemption_request(member=member, reward=self.reward, request_key=key, now=moment)
        assert first.pk == again.pk and first.code
        self.redeemed += 1
        self.extra[member.pk] -= REWARD_COST

    @rule()
    def expire(self) -> None:
        self.tick(24 * 400)
        balances = ledger.members_balances(
            workspace_id=self.workspace.pk, member_ids=list(self.members.values())
        )
        points_expire(now=self.clock, workspace_id=self.workspace.pk)
        for member_id, balance in balances.items():
            if balance.points > 0:
                self.extra[member_id] -= balance.points

    # ------------------------------------------------------------------ invariants

    @invariant()
    def ledger_balances(self) -> None:
        check = ledger.ledger_verify(workspace_id=self.workspace.pk)
        assert check.ok, check

    @invariant()
    def nothing_paid_twice(self) -> None:
        movements = Movement.objects.filter(workspace=self.workspace)
        earned_twice = (
            movements.filter(reason="order")
            .values("order_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not earned_twice.exists()
        activity_twice = (
            movements.filter(activity_id__isnull=False)
            .values("activity_id", "rule")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not activity_twice.exists()

    @invariant()
    def balances_match_the_model(self) -> None:
        if not self.planned:
            return
        by_order = {
            row.order_id: row for row in OrderEarning.objects.filter(workspace=self.workspace)
        }
        lines = Counter[int]()
        line_points: dict[tuple[int, int], LineEarning] = {}
        for line in LineEarning.objects.filter(earning__workspace=self.workspace):
            lines[line.earning_id] += line.points
            line_points[(line.earning_id, line.line_id)] = line
        order_rows = {o.external_id: o for o in self.store.orders.prefetch_related("lines")}
        expected_points: Counter[int] = Counter(self.extra)
        expected_pending: Counter[int] = Counter()
        first_seen: set[int] = set()
        for planned in sorted(
            (p for p in self.planned if p.placed), key=lambda p: (p.paid_at, p.external_id)
        ):
            row = order_rows[planned.external_id]
            member_id = self.members[planned.customer]
            earning = by_order.get(row.pk)
            base = sum(planned.lines.values())
            bonus = 0 if member_id in first_seen else 200
            first_seen.add(member_id)
            if earning is None:
                # Only an order cancelled before it was ever seen paid earns nothing.
                assert planned.cancelled
                continue
            assert earning.points == base // 100 + bonus, (planned, earning.points)
            assert lines[earning.pk] == earning.points
            if planned.cancelled:
                clawed = earning.points
            else:
                clawed = 0
                refunded = planned.refunded
                for line in row.lines.all():
                    share = line_points[(earning.pk, line.pk)]
                    got = min(refunded.get(line.external_id, 0), share.base_minor)
                    clawed += share.points * got // share.base_minor
            assert earning.clawed == clawed
            left = earning.points - clawed
            if planned.external_id in self.approved:
                expected_points[member_id] += left
            else:
                expected_pending[member_id] += left
        balances = ledger.members_balances(
            workspace_id=self.workspace.pk, member_ids=list(self.members.values())
        )
        for member_id, balance in balances.items():
            assert balance.points == expected_points[member_id], (member_id, balance)
            assert balance.pending == expected_pending[member_id], (member_id, balance)


@pytest.mark.django_db
def test_ledger_stays_exact_under_random_histories(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    LedgerMachine.capture = staticmethod(django_capture_on_commit_callbacks)  # type: ignore[assignment]
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
