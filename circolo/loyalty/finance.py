"""The program's books: points outstanding, pending, issued, redeemed and expired, what they
are worth, and month by month.

The totals come from account balances, which the ledger keeps as running totals (the
program's accounts hold the other side of every movement: issuance goes negative by what
was issued net of clawbacks, redemption and expiry grow with what was spent and lost), so
they never read the entries. The months read the movements of the last year, grouped by
month and reason in the database.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from circolo.commerce.money import format_money
from circolo.core.models import Workspace
from circolo.loyalty.models import Account, Entry, Movement, Reason
from circolo.loyalty.rules import program_get
from circolo.loyalty.simulation import cost_minor

Kind = Account.Kind
# Movements that give members points, and those that take back what was given.
ISSUED_REASONS = (
    Reason.ORDER,
    Reason.ACTION,
    Reason.ACTION_RESTORED,
    Reason.BONUS,
    Reason.REFERRAL,
)
CLAWBACK_REASONS = (Reason.REFUND, Reason.ORDER_VOIDED, Reason.ACTION_REMOVED)
# Corrections go either way: their sign is read from the issuance side of their entries.
CORRECTION_REASONS = (Reason.DISPUTE, Reason.ADJUSTMENT)
MONTHS = 12


@dataclass(frozen=True)
class Figure:
    """A number of points and what they are worth in the workspace currency."""

    points: int
    value_minor: int
    currency: str

    @property
    def value_text(self) -> str:
        return format_money(self.value_minor, self.currency)


@dataclass(frozen=True)
class FinanceSummary:
    currency: str
    value_per_100_minor: int
    # Members' spendable points above zero, and below zero (after clawbacks), apart.
    outstanding: Figure
    negative: Figure
    holders: int
    pending: Figure
    # Issued net of what clawbacks and corrections took back.
    issued: Figure
    redeemed: Figure
    expired: Figure

    @property
    def value_per_100_text(self) -> str:
        return format_money(self.value_per_100_minor, self.currency)

    @property
    def breakage_rate(self) -> Decimal | None:
        """Expired points as a percentage of those issued (one decimal); None before any."""
        if self.issued.points <= 0:
            return None
        return (Decimal(self.expired.points) * 100 / Decimal(self.issued.points)).quantize(
            Decimal("0.1")
        )


def finance_summary(*, workspace_id: int) -> FinanceSummary:
    """The program's totals from account balances, in one query over the accounts (an index
    covers it), and what they are worth."""
    workspace = Workspace.objects.only("currency").get(pk=workspace_id)
    program = program_get(workspace_id=workspace_id)
    member_kind = Q(kind=Kind.MEMBER, member__isnull=False)
    totals = Account.objects.filter(workspace_id=workspace_id).aggregate(
        positive=Sum("balance", filter=member_kind & Q(balance__gt=0)),
        negative=Sum("balance", filter=member_kind & Q(balance__lt=0)),
        holders=Count("pk", filter=member_kind & Q(balance__gt=0)),
        pending=Sum("balance", filter=Q(kind=Kind.PENDING)),
        issuance=Sum("balance", filter=Q(kind=Kind.ISSUANCE, member__isnull=True)),
        redemption=Sum("balance", filter=Q(kind=Kind.REDEMPTION, member__isnull=True)),
        expiry=Sum("balance", filter=Q(kind=Kind.EXPIRY, member__isnull=True)),
    )
    value = program.value_per_100_minor
    currency = workspace.currency

    def figure(points: int | None) -> Figure:
        points = points or 0
        return Figure(points=points, value_minor=cost_minor(points, value), currency=currency)

    return FinanceSummary(
        currency=currency,
        value_per_100_minor=value,
        outstanding=figure(totals["positive"]),
        negative=figure(totals["negative"]),
        holders=totals["holders"] or 0,
        pending=figure(totals["pending"]),
        issued=figure(-(totals["issuance"] or 0)),
        redeemed=figure(totals["redemption"]),
        expired=figure(totals["expiry"]),
    )


@dataclass
class MonthRow:
    """One month of the books (points; clawed back and expired as positive numbers)."""

    month: dt.date
    issued: int = 0
    approved: int = 0
    clawed_back: int = 0
    redeemed: int = 0
    expired: int = 0
    # Net points given (+) or taken (-) by dispute answers and the team's adjustments.
    corrections: int = 0


def _month_start(day: dt.date, back: int) -> dt.date:
    month0 = day.year * 12 + day.month - 1 - back
    return dt.date(month0 // 12, month0 % 12 + 1, 1)


def finance_months(
    *, workspace_id: int, months: int = MONTHS, now: dt.datetime | None = None
) -> list[MonthRow]:
    """The last `months` calendar months (the workspace's time zone), newest first: points
    issued, approved after the return window, clawed back, redeemed (less rewards that
    could not be issued), expired and corrected, by when they were booked. Two GROUP BY
    queries over the movements of the period (and the entries of its corrections)."""
    workspace = Workspace.objects.only("time_zone").get(pk=workspace_id)
    try:
        zone = zoneinfo.ZoneInfo(workspace.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    today = (now or timezone.now()).astimezone(zone).date()
    first = _month_start(today, months - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    rows = {_month_start(today, back): MonthRow(month=_month_start(today, back))
            for back in range(months)}  # fmt: skip
    sums: dict[tuple[dt.date, str], int] = defaultdict(int)
    for month, reason, points in (
        Movement.objects.filter(
            workspace_id=workspace_id,
            reason__in=[*ISSUED_REASONS, *CLAWBACK_REASONS, Reason.ORDER_APPROVED,
                        Reason.REDEMPTION, Reason.REDEMPTION_REFUNDED, Reason.EXPIRY],
            created_at__gte=since,
        )
        .annotate(month=TruncMonth("created_at", tzinfo=zone))
        .values("month", "reason")
        .annotate(points=Sum("points"))
        .order_by()
        .values_list("month", "reason", "points")
    ):  # fmt: skip
        sums[(_as_date(month, zone), reason)] += points or 0
    for (month, reason), points in sums.items():
        row = rows.get(month)
        if row is None:
            continue
        if reason in ISSUED_REASONS:
            row.issued += points
        elif reason in CLAWBACK_REASONS:
            row.clawed_back += points
        elif reason == Reason.ORDER_APPROVED:
            row.approved += points
        elif reason == Reason.REDEMPTION:
            row.redeemed += points
        elif reason == Reason.REDEMPTION_REFUNDED:
            row.redeemed -= points
        elif reason == Reason.EXPIRY:
            row.expired += points
    for month, total in (
        Entry.objects.filter(
            workspace_id=workspace_id,
            account__kind=Kind.ISSUANCE,
            movement__reason__in=CORRECTION_REASONS,
            movement__created_at__gte=since,
        )
        .annotate(month=TruncMonth("movement__created_at", tzinfo=zone))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("month", "total")
    ):
        row = rows.get(_as_date(month, zone))
        if row is not None:
            # The issuance account gives (negative) what the member gets.
            row.corrections -= total or 0
    return sorted(rows.values(), key=lambda r: r.month, reverse=True)


def _as_date(value: dt.date | dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    return value
