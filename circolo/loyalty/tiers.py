"""Tiers: levels members reach by their rolling 12-month spend or points, and keep a while.

`tiers_recalculate` measures every member of a workspace (or some of them) at once: net
spend on orders paid in the last 365 days (Program.tier_basis "spend") or points earned in
that time ("points"). The new tier is the highest whose threshold the measure reaches. A
member moves up at once and keeps the tier for Program.tier_keep_months from the last time
they qualified for it (renewed weekly while they do); a lower measure moves them down only
when that keep period is over. Everything is set-based: a handful of queries and one
statement per batch of rows whatever the members, and only changed rows are written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.commerce.selectors import members_net_spend
from circolo.community.notifications import notify_members
from circolo.core.audit import audit_record
from circolo.core.background import enqueue_on_commit
from circolo.core.models import Workspace
from circolo.loyalty.expiry import add_months
from circolo.loyalty.models import MemberTier, Movement, Program, Reason, Tier
from circolo.loyalty.rules import program_get
from circolo.people.models import Member

MEASURE_DAYS = 365
NAME_MAX = 60
PERKS_MAX = 1000
MULTIPLIER_MIN = 100
MULTIPLIER_MAX = 500
THRESHOLD_MAX = 10**15
# Languages a tier or badge name can be given in besides the main (English) name.
NAME_LANGUAGES = ("it", "es", "zh-hans")
# Members per round of recalculation when ids are given (bounded IN lists).
CHUNK = 5000
WRITE_BATCH = 2000
UPDATE_BATCH = 20_000
# A member who still qualifies has their keep period renewed at most this often.
KEEP_RENEW_EVERY = dt.timedelta(days=7)

# Points that count as earned, and the reasons that take earned points back.
EARNED = (Reason.ORDER, Reason.ACTION, Reason.BONUS, Reason.REFERRAL, Reason.ACTION_RESTORED)
TAKEN_BACK = (Reason.REFUND, Reason.ORDER_VOIDED, Reason.ACTION_REMOVED)


class TierError(ValueError):
    """A tier that cannot be saved: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class TierIn:
    name: str
    threshold: int
    multiplier_percent: int = 100
    # Names in other languages: {"it": "...", "es": "...", "zh-hans": "..."}.
    names: dict[str, str] = field(default_factory=dict)
    early_access: bool = False
    free_shipping: bool = False
    perks: str = ""


# --------------------------------------------------------------------------- notifications


def rewards_notify(
    *, workspace_id: int, items: Sequence[tuple[int, str, dict[str, Any]]], now: dt.datetime
) -> int:
    """Tell members about their rewards (kind "rewards"): (member id, key, data) items, in
    bulk, through community.notifications (once per member and key)."""
    return notify_members(workspace_id=workspace_id, kind="rewards", items=items, now=now)


# --------------------------------------------------------------------------- measuring


def members_points_earned(
    *, workspace_id: int, since: dt.datetime, member_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """Points each member earned since `since` (orders, community, bonuses, referrals) less
    what refunds, cancellations and removed posts took back. One GROUP BY query."""
    signed = Case(
        When(reason__in=EARNED, then=F("points")),
        When(reason__in=TAKEN_BACK, then=-F("points")),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    movements = Movement.objects.filter(
        workspace_id=workspace_id,
        member__isnull=False,
        occurred_at__gte=since,
        reason__in=EARNED + TAKEN_BACK,
    )
    if member_ids is not None:
        movements = movements.filter(member_id__in=sorted(set(member_ids)))
    rows = (
        movements.values("member_id")
        .annotate(total=Sum(signed))
        .order_by()
        .values_list("member_id", "total")
    )
    return {member_id: int(total or 0) for member_id, total in rows}


def members_measure(
    *,
    workspace_id: int,
    basis: str,
    now: dt.datetime,
    member_ids: Iterable[int] | None = None,
) -> dict[int, int]:
    """What tiers are measured on for these members (all with any, if None): rolling
    12-month net spend in the workspace currency, or points earned; never below zero."""
    since = now - dt.timedelta(days=MEASURE_DAYS)
    if basis == Program.TierBasis.POINTS:
        found = members_points_earned(workspace_id=workspace_id, since=since, member_ids=member_ids)
    else:
        currency = (
            Workspace.objects.filter(pk=workspace_id).values_list("currency", flat=True).first()
        )
        found = members_net_spend(
            workspace_id=workspace_id,
            since=since,
            currency=currency or "EUR",
            member_ids=member_ids,
        )
    return {member_id: max(value, 0) for member_id, value in found.items()}


def _reached(tiers: Sequence[Tier], measured: int) -> Tier | None:
    """The highest tier whose threshold `measured` reaches (tiers sorted by threshold)."""
    found = None
    for tier in tiers:
        if measured >= tier.threshold:
            found = tier
    return found


# --------------------------------------------------------------------------- recalculating


def tiers_recalculate(
    *,
    workspace_id: int,
    now: dt.datetime | None = None,
    member_ids: Iterable[int] | None = None,
) -> int:
    """Measure the workspace's members (all with a tier row or any spend/points, or only
    `member_ids`) and move them between tiers: up at once, down only after their keep
    period. Upgraded members are told. Safe to run twice. Returns how many changed tier."""
    now = now or timezone.now()
    tiers = list(Tier.objects.filter(workspace_id=workspace_id).order_by("threshold", "pk"))
    if not tiers:
        # Nothing to reach (deleting a tier already emptied its members' rows).
        return 0
    program = program_get(workspace_id=workspace_id)
    if member_ids is None:
        return _recalculate(workspace_id, program, tiers, now, None)
    ids = sorted(set(member_ids))
    return sum(
        _recalculate(workspace_id, program, tiers, now, ids[start : start + CHUNK])
        for start in range(0, len(ids), CHUNK)
    )


def _recalculate(
    workspace_id: int,
    program: Program,
    tiers: Sequence[Tier],
    now: dt.datetime,
    ids: Sequence[int] | None,
) -> int:
    measures = members_measure(
        workspace_id=workspace_id, basis=program.tier_basis, now=now, member_ids=ids
    )
    keep_until = add_months(now, program.tier_keep_months)
    thresholds = {tier.pk: tier.threshold for tier in tiers}
    with transaction.atomic():
        rows = MemberTier.objects.filter(workspace_id=workspace_id)
        if ids is not None:
            rows = rows.filter(member_id__in=ids)
        existing = {
            member_id: (tier_id, since, kept, measured)
            for member_id, tier_id, since, kept, measured in rows.values_list(
                "member_id", "tier_id", "since", "keep_until", "measured"
            )
        }
        gone: set[int] = set()
        if set(measures) - set(existing):
            # New rows are never made for merged or erased members (their points stay).
            gone = set(
                Member.objects.filter(workspace_id=workspace_id)
                .filter(Q(merged_into__isnull=False) | Q(erased_at__isnull=False))
                .values_list("pk", flat=True)
            )
        new: list[MemberTier] = []
        changed: list[MemberTier] = []
        told: list[tuple[int, str, dict[str, Any]]] = []
        moved = 0
        for member_id in set(existing) | (set(measures) - gone):
            measured = measures.get(member_id, 0)
            reached = _reached(tiers, measured)
            before = existing.get(member_id)
            tier_id, since, kept, _measured = before or (None, None, None, None)
            if tier_id not in thresholds:
                tier_id = None
            current = thresholds[tier_id] if tier_id is not None else -1
            target = reached.threshold if reached is not None else -1
            if reached is not None and target > current:
                # Up at once, kept for the keep period from now.
                tier_id, since, kept = reached.pk, now, keep_until
                told.append(
                    (
                        member_id,
                        f"tier:{reached.pk}:{now.date().isoformat()}",
                        {"what": "tier", "tier": reached.name},
                    )
                )
            elif target == current and reached is not None:
                # Qualified again: kept a full period from now, renewed at most weekly so
                # that the daily run does not rewrite every member's row.
                if kept is None or kept < keep_until - KEEP_RENEW_EVERY:
                    kept = keep_until
            elif target < current and (kept is None or kept <= now):
                tier_id = reached.pk if reached is not None else None
                since = now if reached is not None else None
                kept = keep_until if reached is not None else None
            if before is None:
                new.append(
                    MemberTier(
                        member_id=member_id,
                        workspace_id=workspace_id,
                        tier_id=tier_id,
                        since=since,
                        keep_until=kept,
                        measured=measured,
                        measured_at=now,
                    )
                )
                moved += tier_id is not None
                continue
            if tier_id != before[0]:
                moved += 1
            if (tier_id, since, kept, measured) != before:
                changed.append(
                    MemberTier(
                        member_id=member_id,
                        workspace_id=workspace_id,
                        tier_id=tier_id,
                        since=since,
                        keep_until=kept,
                        measured=measured,
                        measured_at=now,
                    )
                )
        _rows_insert(workspace_id, new, now)
        _rows_update(changed, now)
        rewards_notify(workspace_id=workspace_id, items=told, now=now)
    return moved


def _rows_insert(workspace_id: int, rows: Sequence[MemberTier], now: dt.datetime) -> None:
    """Insert new rows in one statement per batch (see _rows_update); a row a concurrent run
    inserted first is left alone (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for start in range(0, len(rows), UPDATE_BATCH):
                batch = rows[start : start + UPDATE_BATCH]
                cursor.execute(
                    "INSERT INTO loyalty_membertier (member_id, workspace_id, tier_id, since,"
                    " keep_until, measured, measured_at)"
                    " SELECT v.member_id, %s, v.tier_id, v.since, v.keep_until, v.measured, %s"
                    " FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[],"
                    " %s::timestamptz[], %s::bigint[])"
                    " AS v(member_id, tier_id, since, keep_until, measured)"
                    " ON CONFLICT (member_id) DO NOTHING",
                    [
                        workspace_id,
                        now,
                        [row.member_id for row in batch],
                        [row.tier_id for row in batch],
                        [row.since for row in batch],
                        [row.keep_until for row in batch],
                        [row.measured for row in batch],
                    ],
                )
        else:
            cursor.executemany(
                "INSERT INTO loyalty_membertier (member_id, workspace_id, tier_id, since,"
                " keep_until, measured, measured_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (member_id) DO NOTHING",
                [
                    (
                        row.member_id,
                        workspace_id,
                        row.tier_id,
                        adapt(row.since),
                        adapt(row.keep_until),
                        row.measured,
                        adapt(now),
                    )
                    for row in rows
                ],
            )


def _rows_update(rows: Sequence[MemberTier], now: dt.datetime) -> None:
    """Write changed rows in one statement per batch (PostgreSQL: UPDATE ... FROM unnest;
    SQLite: one prepared UPDATE run over every row). Django's bulk_update builds a CASE per
    row and column, far too slow for a workspace's 100,000 members."""
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for start in range(0, len(rows), UPDATE_BATCH):
                batch = rows[start : start + UPDATE_BATCH]
                cursor.execute(
                    "UPDATE loyalty_membertier AS t SET tier_id = v.tier_id, since = v.since,"
                    " keep_until = v.keep_until, measured = v.measured, measured_at = %s"
                    " FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[],"
                    " %s::timestamptz[], %s::bigint[])"
                    " AS v(member_id, tier_id, since, keep_until, measured)"
                    " WHERE t.member_id = v.member_id",
                    [
                        now,
                        [row.member_id for row in batch],
                        [row.tier_id for row in batch],
                        [row.since for row in batch],
                        [row.keep_until for row in batch],
                        [row.measured for row in batch],
                    ],
                )
        else:
            cursor.executemany(
                "UPDATE loyalty_membertier SET tier_id = %s, since = %s, keep_until = %s,"
                " measured = %s, measured_at = %s WHERE member_id = %s",
                [
                    (
                        row.tier_id,
                        adapt(row.since),
                        adapt(row.keep_until),
                        row.measured,
                        adapt(now),
                        row.member_id,
                    )
                    for row in rows
                ],
            )


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class TierProgress:
    """Where a member stands: their tier, the next one and how far they are from it."""

    basis: str
    currency: str
    measured: int
    tier: Tier | None
    next_tier: Tier | None
    # What is still needed to reach the next tier (0: reached, moves up at the next check).
    needed: int
    percent: int
    keep_until: dt.datetime | None
    tiers: list[Tier] = field(default_factory=list)


def tier_progress(*, member: Member, now: dt.datetime | None = None) -> TierProgress:
    """The member's tier and their progress to the next one, measured now (a few queries)."""
    now = now or timezone.now()
    workspace_id = member.workspace_id
    program = program_get(workspace_id=workspace_id)
    tiers = list(Tier.objects.filter(workspace_id=workspace_id).order_by("threshold", "pk"))
    row = MemberTier.objects.filter(workspace_id=workspace_id, member_id=member.pk).first()
    measured = (
        members_measure(
            workspace_id=workspace_id, basis=program.tier_basis, now=now, member_ids=[member.pk]
        ).get(member.pk, 0)
        if tiers
        else 0
    )
    tier = next((t for t in tiers if row is not None and t.pk == row.tier_id), None)
    floor = tier.threshold if tier is not None else -1
    next_tier = next((t for t in tiers if t.threshold > floor), None)
    needed = max(next_tier.threshold - measured, 0) if next_tier is not None else 0
    if next_tier is None or next_tier.threshold <= 0:
        percent = 100
    else:
        percent = min(100, measured * 100 // next_tier.threshold)
    return TierProgress(
        basis=program.tier_basis,
        currency=member.workspace.currency,
        measured=measured,
        tier=tier,
        next_tier=next_tier,
        needed=needed,
        percent=percent,
        keep_until=row.keep_until if row is not None and tier is not None else None,
        tiers=tiers,
    )


@dataclass(frozen=True)
class TierRow:
    tier: Tier
    members: int


def tiers_overview(*, workspace: Workspace) -> list[TierRow]:
    """The workspace's tiers, lowest first, with how many members hold each (two queries)."""
    tiers = list(Tier.objects.filter(workspace=workspace).order_by("threshold", "pk"))
    counts = dict(
        MemberTier.objects.filter(workspace=workspace, tier__isnull=False)
        .values_list("tier_id")
        .annotate(n=Count("member_id"))
        .order_by()
    )
    return [TierRow(tier=tier, members=int(counts.get(tier.pk, 0))) for tier in tiers]


# --------------------------------------------------------------------------- editing


def _tier_errors(workspace: Workspace, data: TierIn, tier: Tier | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    name = data.name.strip()
    others = Tier.objects.filter(workspace=workspace)
    if tier is not None:
        others = others.exclude(pk=tier.pk)
    if not name:
        errors["name"] = _("Give the tier a name.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("Keep the name to %(n)s characters.") % {"n": NAME_MAX}
    elif others.annotate(low=Lower("name")).filter(low=name.lower()).exists():
        errors["name"] = _("Another tier already has this name.")
    if not 0 <= data.threshold <= THRESHOLD_MAX:
        errors["threshold"] = _("The threshold must be 0 or more.")
    elif others.filter(threshold=data.threshold).exists():
        errors["threshold"] = _("Another tier already starts at this threshold.")
    if not MULTIPLIER_MIN <= data.multiplier_percent <= MULTIPLIER_MAX:
        errors["multiplier_percent"] = _(
            "The multiplier goes from %(low)s%% (points as earned) to %(high)s%%."
        ) % {"low": MULTIPLIER_MIN, "high": MULTIPLIER_MAX}
    for language, value in data.names.items():
        key = f"name_{language.replace('-', '_')}"
        if language not in NAME_LANGUAGES:
            errors[key] = _("Names can be given in Italian, Spanish and Chinese.")
        elif len(value.strip()) > NAME_MAX:
            errors[key] = _("Keep the name to %(n)s characters.") % {"n": NAME_MAX}
    if len(data.perks) > PERKS_MAX:
        errors["perks"] = _("Keep the perks to %(n)s characters.") % {"n": PERKS_MAX}
    return errors


def _clean_names(names: dict[str, str]) -> dict[str, str]:
    return {language: value.strip() for language, value in names.items() if value.strip()}


def _tier_values(data: TierIn) -> dict[str, Any]:
    return {
        "name": data.name.strip(),
        "names": _clean_names(data.names),
        "threshold": data.threshold,
        "multiplier_percent": data.multiplier_percent,
        "early_access": data.early_access,
        "free_shipping": data.free_shipping,
        "perks": data.perks.strip(),
    }


def _recalculate_later(workspace_id: int) -> None:
    from circolo.loyalty.tasks import tiers_recalculate_task

    # Members move to the new tiers after commit, off the request (every member is measured).
    enqueue_on_commit(tiers_recalculate_task, workspace_id, detach=True)


def tier_create(*, workspace: Workspace, actor: Any, data: TierIn) -> Tier:
    """Add a tier (name and threshold unique in the workspace, multiplier 100-500%); raises
    TierError. Members are measured against it after commit."""
    with transaction.atomic():
        errors = _tier_errors(workspace, data, None)
        if errors:
            raise TierError(errors)
        tier = Tier.objects.create(workspace=workspace, **_tier_values(data))
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.tier_created",
            target=tier,
            data={"name": tier.name, "threshold": tier.threshold},
        )
        _recalculate_later(workspace.pk)
    return tier


def tier_update(*, workspace: Workspace, actor: Any, tier: Tier, data: TierIn) -> Tier:
    """Change a tier of the workspace (same rules as tier_create); raises TierError.
    Members are measured again after commit."""
    if tier.workspace_id != workspace.pk:
        raise TierError({"tier": _("No such tier.")})
    with transaction.atomic():
        errors = _tier_errors(workspace, data, tier)
        if errors:
            raise TierError(errors)
        before = {"name": tier.name, "threshold": tier.threshold}
        for name, value in _tier_values(data).items():
            setattr(tier, name, value)
        tier.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.tier_updated",
            target=tier,
            data={"before": before, "name": tier.name, "threshold": tier.threshold},
        )
        _recalculate_later(workspace.pk)
    return tier


def tier_delete(*, workspace: Workspace, actor: Any, tier: Tier) -> None:
    """Remove a tier: its members move to the tier below it, keeping their keep period (and
    are measured again after commit). Raises TierError for a tier of another workspace."""
    if tier.workspace_id != workspace.pk:
        raise TierError({"tier": _("No such tier.")})
    with transaction.atomic():
        below = (
            Tier.objects.filter(workspace=workspace, threshold__lt=tier.threshold)
            .order_by("-threshold")
            .first()
        )
        # Not a move up: nobody is told they "reached" the tier below.
        MemberTier.objects.filter(workspace=workspace, tier=tier).update(tier=below)
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.tier_deleted",
            target=tier,
            data={"name": tier.name, "threshold": tier.threshold},
        )
        tier.delete()
        _recalculate_later(workspace.pk)
