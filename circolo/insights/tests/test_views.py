"""The workspace home: permissions, empty state, figures from rollups, chart, query count."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.testing.factories import MemberFactory
from circolo.testing.people_factories import MergeSuggestionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def handlers_in_process(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True


def home_url(workspace: Any) -> str:
    return reverse("insights:home", kwargs={"slug": workspace.slug})


def record(workspace: Any, member: Any, *, kinds: dict[str, int], days_ago: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    when = now - dt.timedelta(days=days_ago)
    items = [
        ActivityIn(
            member_id=member.pk,
            kind=kind,
            channel="community",
            occurred_at=when - dt.timedelta(minutes=i),
            source="test",
            source_id=f"{member.pk}-{kind}-{days_ago}-{i}",
        )
        for kind, n in kinds.items()
        for i in range(n)
    ]
    with TestCase.captureOnCommitCallbacks(execute=True):
        activity_record_bulk(workspace=workspace, items=items)


@pytest.fixture
def busy(workspace: Any) -> dict[str, Any]:
    """Three members: one active today, one a few days ago, one two months ago."""
    today = MemberFactory(workspace=workspace, display_name="Oggi Attiva")
    week = MemberFactory(workspace=workspace, display_name="Settimana")
    old = MemberFactory(workspace=workspace, display_name="Vecchio")
    record(workspace, today, kinds={"post": 2, "reply": 3}, days_ago=0)
    record(workspace, week, kinds={"order": 1}, days_ago=4)
    record(workspace, old, kinds={"review": 1}, days_ago=60)
    MergeSuggestionFactory(member_a=today, member_b=week)
    return {"today": today, "week": week, "old": old}


def svg_of(response: Any) -> str:
    uri = response.context["chart"].data_uri
    assert uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")


class TestAccess:
    @pytest.mark.parametrize("persona", ["moderator", "analyst", "manager", "owner"])
    def test_team_roles_see_home(self, request, persona, busy, settings):
        settings.CIRCOLO_MFA_ENFORCE = False
        user = request.getfixturevalue(persona)
        response = user.client.get(home_url(user.workspace))
        assert response.status_code == 200
        assert "Oggi Attiva" in response.content.decode()

    def test_owner_without_totp_is_sent_to_set_it_up(self, owner, busy):
        response = owner.client.get(home_url(owner.workspace))
        assert response.status_code == 302
        assert "/2fa/" in response["Location"]

    def test_member_role_forbidden(self, member_user, busy):
        assert member_user.client.get(home_url(member_user.workspace)).status_code == 403

    def test_outsider_404_and_sees_nothing(self, outsider, workspace, busy, settings):
        settings.CIRCOLO_MFA_ENFORCE = False
        response = outsider.client.get(home_url(workspace))
        assert response.status_code == 404
        assert "Oggi" not in response.content.decode()

    def test_unknown_workspace_404_and_anonymous_redirect(self, moderator, workspace):
        assert moderator.client.get("/w/no-such-place/").status_code == 404
        response = Client().get(home_url(workspace))
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


class TestHome:
    def test_empty_workspace_explains_how_to_add_data(self, moderator):
        response = moderator.client.get(home_url(moderator.workspace))
        body = response.content.decode()
        assert response.status_code == 200
        assert response.context["chart"] is None
        assert "No members yet" in body
        assert 'href="/api/v1/docs"' in body
        assert "circolo demo" in body

    def test_active_members_today_week_month(self, analyst, busy):
        response = analyst.client.get(home_url(analyst.workspace))
        active = response.context["overview"].active
        assert (active.day, active.week, active.month) == (1, 2, 2)
        body = response.content.decode()
        assert re.search(r'data-stat="day">\s*1<', body)
        assert re.search(r'data-stat="week">\s*2<', body)

    def test_totals_by_kind_for_30_days(self, analyst, busy):
        overview = analyst.client.get(home_url(analyst.workspace)).context["overview"]
        totals = {total.kind: total.count for total in overview.totals}
        assert totals == {"post": 2, "reply": 3, "order": 1}
        assert overview.total_activities == 6
        labels = {total.label for total in overview.totals}
        assert "Reply" in labels

    def test_newest_activity_links_to_members(self, analyst, busy):
        response = analyst.client.get(home_url(analyst.workspace))
        recent = response.context["overview"].recent
        assert recent[0].activity.member == busy["today"]
        assert recent[0].kind_label in {"Post", "Reply"}
        member_url = reverse(
            "people:member_detail",
            kwargs={"slug": analyst.workspace.slug, "member_id": busy["old"].pk},
        )
        assert member_url in response.content.decode()

    def test_pending_merge_count_links_to_the_filtered_list(self, analyst, busy):
        response = analyst.client.get(home_url(analyst.workspace))
        assert response.context["overview"].pending_merges == 1
        list_url = reverse("people:member_list", kwargs={"slug": analyst.workspace.slug})
        assert f'href="{list_url}?pending=1"' in response.content.decode()

    def test_chart_is_an_offline_svg_with_a_table_fallback(self, analyst, busy):
        response = analyst.client.get(home_url(analyst.workspace))
        chart = response.context["chart"]
        assert len(chart.rows) == 90
        assert chart.rows[-1][1] == 1  # one member active today
        svg = svg_of(response)
        assert "<title>Active members per day</title>" in svg
        # No script or stylesheet is fetched from anywhere.
        assert not re.search(r"<script[^>]+(href|src)=", svg)
        assert "xml-stylesheet" not in svg
        assert "googleapis" not in svg
        body = response.content.decode()
        assert f'alt="{chart.description}"' in body
        assert "<details>" in body and body.count("<tr><td>") >= 90

    def test_query_count_is_bounded_and_flat(
        self, analyst, workspace, busy, django_assert_max_num_queries
    ):
        def count() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert analyst.client.get(home_url(workspace)).status_code == 200
            return len(queries)

        before = count()
        for n in range(20):
            member = MemberFactory(workspace=workspace)
            record(workspace, member, kinds={"vote": 2, "idea": 1}, days_ago=n)
        assert count() == before
        with django_assert_max_num_queries(12):
            analyst.client.get(home_url(workspace))

    def test_page_does_not_scan_the_activity_table(self, analyst, workspace, busy):
        with CaptureQueriesContext(connection) as queries:
            analyst.client.get(home_url(workspace))
        on_activities = [
            q["sql"] for q in queries.captured_queries if 'FROM "activity_activity"' in q["sql"]
        ]
        # Only the newest-N read, ordered by the (workspace, occurred_at) index and limited.
        assert len(on_activities) == 1
        assert "LIMIT" in on_activities[0] and "ORDER BY" in on_activities[0]
