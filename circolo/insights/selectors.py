"""What the workspace home shows, composed from the activity rollups and the people selectors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from circolo.activity.kinds import kind_label
from circolo.activity.models import Activity
from circolo.activity.selectors import (
    ActiveCounts,
    KindTotal,
    active_members,
    active_members_series,
    activity_totals,
    recent_activities,
)
from circolo.core.models import Workspace
from circolo.people.selectors import member_list, pending_suggestions

SERIES_DAYS = 90
TOTALS_DAYS = 30
RECENT_LIMIT = 15


@dataclass(frozen=True)
class RecentItem:
    activity: Activity
    kind_label: str


@dataclass(frozen=True)
class HomeOverview:
    has_members: bool
    active: ActiveCounts
    series: list[tuple[dt.date, int]]
    totals: list[KindTotal]
    recent: list[RecentItem]
    pending_merges: int

    @property
    def total_activities(self) -> int:
        return sum(total.count for total in self.totals)


def home_overview(*, workspace: Workspace, today: dt.date | None = None) -> HomeOverview:
    """Everything on the workspace home: rollup reads plus the newest activities by index."""
    has_members = member_list(workspace=workspace).exists()
    if not has_members:
        return HomeOverview(
            has_members=False,
            active=ActiveCounts(day=0, week=0, month=0),
            series=[],
            totals=[],
            recent=[],
            pending_merges=0,
        )
    return HomeOverview(
        has_members=True,
        active=active_members(workspace=workspace, today=today),
        series=active_members_series(workspace=workspace, days=SERIES_DAYS, today=today),
        totals=activity_totals(workspace=workspace, days=TOTALS_DAYS, today=today),
        recent=[
            RecentItem(activity=activity, kind_label=kind_label(activity.kind))
            for activity in recent_activities(workspace=workspace, limit=RECENT_LIMIT)
        ],
        pending_merges=pending_suggestions(workspace=workspace).count(),
    )
