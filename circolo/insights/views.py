"""The workspace home: active members, their trend, activity by kind and the newest activity."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from circolo.core.permissions import ROLE_PERMISSIONS, Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.insights.charts import daily_series_chart
from circolo.insights.selectors import SERIES_DAYS, TOTALS_DAYS, home_overview


@workspace_view(Perm.VIEW_DASHBOARD)
def home(request: WorkspaceRequest) -> HttpResponse:
    overview = home_overview(workspace=request.workspace)
    chart = None
    if overview.has_members:
        peak = max((value for _day, value in overview.series), default=0)
        chart = daily_series_chart(
            series=overview.series,
            title=_("Active members per day"),
            description=ngettext(
                "Members active on each of the last %(days)d day; the busiest day had %(peak)d.",
                "Members active on each of the last %(days)d days; the busiest day had %(peak)d.",
                SERIES_DAYS,
            )
            % {"days": SERIES_DAYS, "peak": peak},
            value_label=_("Active members"),
        )
    permissions = ROLE_PERMISSIONS[request.workspace_role]
    return render(
        request,
        "insights/home.html",
        {
            "overview": overview,
            "chart": chart,
            "series_days": SERIES_DAYS,
            "totals_days": TOTALS_DAYS,
            "can_merge": Perm.MERGE_MEMBERS in permissions,
            "can_configure": Perm.MANAGE_SETTINGS in permissions,
        },
    )
