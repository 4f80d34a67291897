"""Points from orders: earned when paid, pending for the return window, then approved.

`orders_sync` brings the ledger in line with what commerce knows about some orders, whatever
order the events came in and however often: a paid order earns once (key "order:<id>"), its
points are split over its lines, a refund takes back what its lines earned (proportionally
for partial refunds, keyed by the running total taken back), a cancellation voids what is
still pending. `earnings_approve_due` moves what is left after the window to the member.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from circolo.commerce.selectors import OrderForPoints, orders_for_points
from circolo.core.currencies import exponent
from circolo.loyalty import ledger
from circolo.loyalty.inserts import rows_insert, rows_update
from circolo.loyalty.models import (
    Ambassador,
    LineEarning,
    MemberTier,
    Movement,
    OrderEarning,
    Reason,
)
from circolo.loyalty.referrals import referrals_orders_seen
from circolo.loyalty.rewards import redemptions_mark_used
from circolo.loyalty.rules import ORDER, program_get, rules_in_force

APPROVE_BATCH = 5000


def order_points(*, base_minor: int, currency: str, rule: dict[str, Any], multiplier: int) -> int:
    """Points for `base_minor` of net merchandise: `points` per `per` currency units, times
    the member's multiplier (percent), rounded down."""
    unit = 10 ** exponent(currency)
    return (base_minor * int(rule["points"]) * multiplier) // (int(rule["per"]) * unit * 100)


def split_points(points: int, bases: dict[int, int]) -> dict[int, int]:
    """Share `points` over lines in proportion to their bases (largest remainders), so the
    shares add up to `points` exactly."""
    total = sum(bases.values())
    if total <= 0 or points <= 0:
        return dict.fromkeys(bases, 0)
    shares = {line: points * base // total for line, base in bases.items()}
    left = points - sum(shares.values())
    by_remainder = sorted(bases, key=lambda line: (-(points * bases[line] % total), line))
    for line in by_remainder[:left]:
        shares[line] += 1
    return shares


def members_multipliers(*, workspace_id: int, member_ids: Iterable[int]) -> dict[int, int]:
    """Each member's earn multiplier on orders (percent): their tier's, times an approved
    ambassador's."""
    ids = set(member_ids)
    found = dict.fromkeys(ids, 100)
    for member_id, percent in MemberTier.objects.filter(
        workspace_id=workspace_id, member_id__in=ids, tier__isnull=False
    ).values_list("member_id", "tier__multiplier_percent"):
        found[member_id] = percent
    for member_id, percent in Ambassador.objects.filter(
        workspace_id=workspace_id, member_id__in=ids, status=Ambassador.Status.APPROVED
    ).values_list("member_id", "multiplier_percent"):
        found[member_id] = found[member_id] * percent // 100
    return found


def orders_react(*, workspace_id: int, refs: Iterable[tuple[int, str]]) -> None:
    """Sync the orders named by (store id, platform order id), e.g. from activities."""
    orders = orders_for_points(workspace_id=workspace_id, refs=refs)
    orders_sync(workspace_id=workspace_id, orders=orders)


def orders_sync(
    *, workspace_id: int, orders: Sequence[OrderForPoints], now: dt.datetime | None = None
) -> None:
    """Bring the earnings of these orders in line with their state (see the module doc)."""
    now = now or timezone.now()
    if not orders:
        return
    with transaction.atomic():
        by_id = {order.order_id: order for order in orders}
        earnings = _earnings_locked(
            workspace_id, list(by_id), with_lines={o.order_id for o in orders if _taken_back(o)}
        )
        new = [
            order
            for order in orders
            if order.order_id not in earnings
            and order.member_id is not None
            and order.paid
            and not order.cancelled
            and order.lines
        ]
        if new:
            earnings.update(_earn(workspace_id, new, now))
        _settle(workspace_id, [(earnings[pk], by_id[pk]) for pk in earnings], now)
        redemptions_mark_used(
            workspace_id=workspace_id,
            uses=[
                (code, order.order_id)
                for order in orders
                if not order.cancelled
                for code in order.discount_codes
            ],
        )
        referrals_orders_seen(workspace_id=workspace_id, orders=orders, now=now)


def _taken_back(order: OrderForPoints) -> bool:
    """Whether anything of the order's points may have to go back."""
    return order.cancelled or bool(order.refunded_lines) or order.refunded_unlined > 0


def _earnings_locked(
    workspace_id: int, order_ids: Sequence[int], *, with_lines: set[int]
) -> dict[int, OrderEarning]:
    """The orders' earnings, locked; their lines only for `with_lines` orders (refunded or
    cancelled: the rest need no split)."""
    rows = OrderEarning.objects.filter(workspace_id=workspace_id, order_id__in=order_ids)
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True).order_by("pk")
    found = {row.order_id: row for row in rows}
    lines: dict[int, list[LineEarning]] = {
        row.pk: [] for row in found.values() if row.order_id in with_lines
    }
    for line in LineEarning.objects.filter(earning_id__in=list(lines)):
        lines[line.earning_id].append(line)
    for row in found.values():
        row._lines = lines.get(row.pk, [])  # type: ignore[attr-defined]
    return found


def _earn(
    workspace_id: int, orders: Sequence[OrderForPoints], now: dt.datetime
) -> dict[int, OrderEarning]:
    rules = rules_in_force(workspace_id=workspace_id)
    rule = rules[ORDER]
    first = rules["first_purchase"]
    program = program_get(workspace_id=workspace_id)
    window = dt.timedelta(days=program.return_window_days)
    members = {order.member_id for order in orders if order.member_id is not None}
    multipliers = members_multipliers(workspace_id=workspace_id, member_ids=members)
    # A member's first purchase: no earlier order of theirs ever earned.
    bought_before = set(
        OrderEarning.objects.filter(workspace_id=workspace_id, member_id__in=members).values_list(
            "member_id", flat=True
        )
    )
    earnings: dict[int, OrderEarning] = {}
    movements: list[ledger.MovementIn] = []
    line_rows: list[tuple[int, dict[int, int], dict[int, int]]] = []
    for order in sorted(orders, key=lambda o: (o.paid_at, o.order_id)):
        member_id = order.member_id
        assert member_id is not None
        base = sum(order.lines.values())
        points = 0
        if rule["enabled"]:
            points = order_points(
                base_minor=base,
                currency=order.currency,
                rule=rule,
                multiplier=multipliers[member_id],
            )
        bonus = 0
        if member_id not in bought_before and first["enabled"] and base > 0:
            bonus = int(first["points"])
        bought_before.add(member_id)
        total = points + bonus
        earnings[order.order_id] = OrderEarning(
            workspace_id=workspace_id,
            member_id=member_id,
            order_id=order.order_id,
            currency=order.currency,
            base_minor=base,
            points=total,
            status=OrderEarning.Status.PENDING if total else OrderEarning.Status.APPROVED,
            approve_after=order.paid_at + window,
            created_at=now,
            decided_at=None if total else now,
        )
        line_rows.append((order.order_id, order.lines, split_points(total, order.lines)))
        if total:
            movements.append(
                ledger.transfer(
                    key=f"order:{order.order_id}",
                    reason=Reason.ORDER,
                    member_id=member_id,
                    source=ledger.ISSUANCE,
                    target=ledger.pending_account(member_id),
                    points=total,
                    rule=ORDER,
                    order_id=order.order_id,
                    occurred_at=order.paid_at,
                    details={
                        "number": order.number,
                        "currency": order.currency,
                        "base_minor": base,
                        "bonus": bonus,
                        "multiplier": multipliers[member_id],
                        "until": (order.paid_at + window).date().isoformat(),
                    },
                )
            )
    rows = list(earnings.values())
    ids = rows_insert(
        OrderEarning,
        (
            "workspace_id", "member_id", "order_id", "currency", "base_minor", "points",
            "clawed", "status", "approve_after", "created_at", "decided_at",
        ),
        [
            (
                r.workspace_id, r.member_id, r.order_id, r.currency, r.base_minor, r.points,
                0, r.status, r.approve_after, r.created_at, r.decided_at,
            )
            for r in rows
        ],
    )  # fmt: skip
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
    new_lines = [
        LineEarning(
            earning_id=earnings[order_id].pk,
            line_id=line_id,
            base_minor=bases[line_id],
            points=shares[line_id],
        )
        for order_id, bases, shares in line_rows
        for line_id in bases
    ]
    line_ids = rows_insert(
        LineEarning,
        ("earning_id", "line_id", "base_minor", "points", "clawed"),
        [(ln.earning_id, ln.line_id, ln.base_minor, ln.points, 0) for ln in new_lines],
    )
    for line, pk in zip(new_lines, line_ids, strict=True):
        line.pk = pk
        line._state.adding = False
    per_earning: dict[int, list[LineEarning]] = {row.pk: [] for row in earnings.values()}
    for line in new_lines:
        per_earning[line.earning_id].append(line)
    for row in earnings.values():
        row._lines = per_earning[row.pk]  # type: ignore[attr-defined]
    ledger.movements_post(workspace_id=workspace_id, items=movements, now=now)
    return earnings


def _clawed_target(earning: OrderEarning, order: OrderForPoints) -> tuple[int, dict[int, int]]:
    """Points the order's refunds and cancellation take back in all, and per line."""
    lines: list[LineEarning] = earning._lines  # type: ignore[attr-defined]
    if order.cancelled:
        return earning.points, {line.pk: line.points for line in lines}
    per_line: dict[int, int] = {}
    for line in lines:
        refunded = min(order.refunded_lines.get(line.line_id, 0), line.base_minor)
        if line.base_minor > 0:
            per_line[line.pk] = line.points * refunded // line.base_minor
        else:
            per_line[line.pk] = line.points if refunded > 0 else 0
    target = sum(per_line.values())
    if order.refunded_unlined > 0 and order.total_minor > 0:
        rest = earning.points - target
        share = min(order.refunded_unlined, order.total_minor)
        target += rest * share // order.total_minor
    return min(target, earning.points), per_line


def _settle(
    workspace_id: int,
    pairs: Sequence[tuple[OrderEarning, OrderForPoints]],
    now: dt.datetime,
) -> None:
    movements: list[ledger.MovementIn] = []
    changed: list[OrderEarning] = []
    changed_lines: list[LineEarning] = []
    for earning, order in pairs:
        if earning.status == OrderEarning.Status.VOID or earning.points == 0:
            continue
        if not _taken_back(order):
            continue
        target, per_line = _clawed_target(earning, order)
        if target <= earning.clawed:
            continue
        pending = earning.status == OrderEarning.Status.PENDING
        source = (
            ledger.pending_account(earning.member_id)
            if pending
            else ledger.member_account(earning.member_id)
        )
        movements.append(
            ledger.transfer(
                key=f"order:{order.order_id}:back:{target}",
                reason=Reason.ORDER_VOIDED if order.cancelled else Reason.REFUND,
                member_id=earning.member_id,
                source=source,
                target=ledger.ISSUANCE,
                points=target - earning.clawed,
                rule=ORDER,
                order_id=order.order_id,
                occurred_at=(order.cancelled_at if order.cancelled else order.refunded_at) or now,
                details={"number": order.number, "pending": pending},
            )
        )
        earning.clawed = target
        if pending and target >= earning.points:
            earning.status = OrderEarning.Status.VOID
            earning.decided_at = now
        changed.append(earning)
        for line in earning._lines:  # type: ignore[attr-defined]
            claw = per_line.get(line.pk, line.clawed)
            if claw != line.clawed:
                line.clawed = claw
                changed_lines.append(line)
    if not movements:
        return
    ledger.movements_post(workspace_id=workspace_id, items=movements, now=now)
    rows_update(
        OrderEarning,
        ("clawed", "status", "decided_at"),
        [(row.pk, row.clawed, row.status, row.decided_at) for row in changed],
    )
    rows_update(LineEarning, ("clawed",), [(line.pk, line.clawed) for line in changed_lines])


def earnings_approve_due(*, now: dt.datetime | None = None, limit: int = APPROVE_BATCH) -> int:
    """Approve pending order points whose return window has passed (after syncing those
    orders, so a cancellation or refund not yet handled still counts). Returns how many
    earnings were decided; run it until it returns 0."""
    now = now or timezone.now()
    decided = 0
    with transaction.atomic():
        rows = OrderEarning.objects.filter(
            status=OrderEarning.Status.PENDING, approve_after__lte=now
        ).order_by("pk")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True)
        due = list(rows.values_list("workspace_id", "order_id")[:limit])
        by_workspace: dict[int, list[int]] = {}
        for workspace_id, order_id in due:
            by_workspace.setdefault(workspace_id, []).append(order_id)
        for workspace_id, order_ids in by_workspace.items():
            orders = orders_for_points(workspace_id=workspace_id, order_ids=order_ids)
            orders_sync(workspace_id=workspace_id, orders=orders, now=now)
            decided += _approve(workspace_id, order_ids, now)
    return decided


def _approve(workspace_id: int, order_ids: Sequence[int], now: dt.datetime) -> int:
    earnings = list(
        OrderEarning.objects.filter(
            workspace_id=workspace_id, order_id__in=order_ids, status=OrderEarning.Status.PENDING
        ).values_list("pk", "order_id", "member_id", "points", "clawed", "approve_after")
    )
    movements = [
        ledger.transfer(
            key=f"order:{order_id}:approve",
            reason=Reason.ORDER_APPROVED,
            member_id=member_id,
            source=ledger.pending_account(member_id),
            target=ledger.member_account(member_id),
            points=points - clawed,
            rule=ORDER,
            order_id=order_id,
            occurred_at=min(approve_after, now),
            details={"clawed": clawed},
        )
        for _pk, order_id, member_id, points, clawed, approve_after in earnings
        if points > clawed
    ]
    ledger.movements_post(workspace_id=workspace_id, items=movements, now=now)
    OrderEarning.objects.filter(pk__in=[row[0] for row in earnings]).update(
        status=OrderEarning.Status.APPROVED, decided_at=now
    )
    return len(earnings)


def order_movements(*, workspace_id: int, order_id: int) -> list[Movement]:
    """Every movement an order caused, oldest first (for the member's explanation)."""
    return list(
        Movement.objects.filter(workspace_id=workspace_id, order_id=order_id).order_by("pk")
    )
