"""Reads of the activity stream. Dashboards read the rollups, never scan the activity table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from circolo.activity.kinds import KINDS, kind_label, weights_for
from circolo.activity.models import Activity, DailyRollup, MemberDailyRollup, MemberScore
from circolo.activity.scores import level_of, love_now
from circolo.core.models import Workspace
from circolo.people.models import Member


@dataclass(frozen=True)
class ScoreView:
    love: float
    level: str
    last_active: dt.datetime | None
    activity_count: int


@dataclass(frozen=True)
class ActiveCounts:
    day: int
    week: int
    month: int


@dataclass(frozen=True)
class KindTotal:
    kind: str
    label: str
    count: int
    weight_sum: int


@dataclass(frozen=True)
class KindWeightView:
    kind: str
    label: str
    default_weight: int
    weight: int


def _today() -> dt.date:
    # Rollup days are UTC dates.
    return timezone.now().astimezone(dt.UTC).date()


def member_score(*, member: Member) -> ScoreView:
    """The member's love now, level, last activity time and number of activities."""
    score = MemberScore.objects.filter(workspace_id=member.workspace_id, member=member).first()
    if score is None:
        return ScoreView(love=0.0, level=level_of(0.0), last_active=None, activity_count=0)
    love = love_now(score.growth)
    return ScoreView(
        love=love,
        level=level_of(love),
        last_active=score.last_active,
        activity_count=score.activity_count,
    )


def member_timeline(
    *, workspace: Workspace, member: Member, before_id: int | None = None, limit: int = 50
) -> list[Activity]:
    """The member's activities, newest first; `before_id` continues after that activity."""
    rows = Activity.objects.filter(workspace=workspace, member=member)
    if before_id is not None:
        cursor = rows.filter(pk=before_id).values_list("occurred_at", flat=True).first()
        if cursor is None:
            return []
        rows = rows.filter(Q(occurred_at__lt=cursor) | Q(occurred_at=cursor, pk__lt=before_id))
    return list(rows.order_by("-occurred_at", "-id")[:limit])


def activity_list(
    *,
    workspace: Workspace,
    member_id: int | None = None,
    kind: str | None = None,
    channel: str | None = None,
    source: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Activity]:
    """The workspace's activities matching every given filter (`until` exclusive), unordered."""
    activities = Activity.objects.filter(workspace=workspace)
    if member_id is not None:
        activities = activities.filter(member_id=member_id)
    if kind is not None:
        activities = activities.filter(kind=kind)
    if channel is not None:
        activities = activities.filter(channel=channel)
    if source is not None:
        activities = activities.filter(source=source)
    if since is not None:
        activities = activities.filter(occurred_at__gte=since)
    if until is not None:
        activities = activities.filter(occurred_at__lt=until)
    return activities


def recent_activities(*, workspace: Workspace, limit: int = 20) -> list[Activity]:
    """The workspace's newest activities with their members loaded."""
    return list(
        Activity.objects.filter(workspace=workspace)
        .select_related("member")
        .order_by("-occurred_at", "-id")[:limit]
    )


def active_members(*, workspace: Workspace, today: dt.date | None = None) -> ActiveCounts:
    """Members active today, in the last 7 days and in the last 30 days (UTC days)."""
    end = today or _today()
    week_start = end - dt.timedelta(days=6)
    month_start = end - dt.timedelta(days=29)
    counts = MemberDailyRollup.objects.filter(
        workspace=workspace, day__gte=month_start, day__lte=end
    ).aggregate(
        on_day=Count("member_id", distinct=True, filter=Q(day=end)),
        in_week=Count("member_id", distinct=True, filter=Q(day__gte=week_start)),
        in_month=Count("member_id", distinct=True),
    )
    return ActiveCounts(day=counts["on_day"], week=counts["in_week"], month=counts["in_month"])


def active_members_series(
    *, workspace: Workspace, days: int = 90, today: dt.date | None = None
) -> list[tuple[dt.date, int]]:
    """Active members per day for the last `days` days, oldest first, every day present."""
    end = today or _today()
    start = end - dt.timedelta(days=days - 1)
    per_day = dict(
        MemberDailyRollup.objects.filter(workspace=workspace, day__gte=start, day__lte=end)
        .values("day")
        .annotate(members=Count("id"))
        .values_list("day", "members")
    )
    return [
        (day, per_day.get(day, 0)) for day in (start + dt.timedelta(days=n) for n in range(days))
    ]


def activity_totals(
    *, workspace: Workspace, days: int = 30, today: dt.date | None = None
) -> list[KindTotal]:
    """Activities and weight per kind over the last `days` days, most frequent first."""
    end = today or _today()
    start = end - dt.timedelta(days=days - 1)
    rows = (
        DailyRollup.objects.filter(workspace=workspace, day__gte=start, day__lte=end)
        .values("kind")
        .annotate(total=Sum("count"), weight=Sum("weight_sum"))
        .order_by("-total", "kind")
    )
    return [
        KindTotal(
            kind=row["kind"],
            label=kind_label(row["kind"]),
            count=row["total"],
            weight_sum=row["weight"],
        )
        for row in rows
    ]


def kind_weights(*, workspace: Workspace) -> list[KindWeightView]:
    """Every kind with its label, default weight and the workspace's weight (settings page)."""
    weights = weights_for(workspace=workspace)
    return [
        KindWeightView(
            kind=key,
            label=str(kind.label),
            default_weight=kind.default_weight,
            weight=weights[key],
        )
        for key, kind in KINDS.items()
    ]


def members_last_active(
    *, workspace_id: int, member_ids: Sequence[int]
) -> dict[int, dt.datetime | None]:
    """When each member last did anything recorded (None: never), in one query."""
    found: dict[int, dt.datetime | None] = dict.fromkeys(member_ids)
    for member_id, last in MemberScore.objects.filter(
        workspace_id=workspace_id, member_id__in=member_ids
    ).values_list("member_id", "last_active"):
        found[member_id] = last
    return found
