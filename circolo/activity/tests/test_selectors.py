from __future__ import annotations

import datetime as dt

import pytest

from circolo.activity.selectors import (
    ActiveCounts,
    active_members,
    active_members_series,
    activity_totals,
    kind_weights,
    member_score,
    member_timeline,
    recent_activities,
)
from circolo.activity.services import ActivityIn, activity_record_bulk, kind_weight_set
from circolo.activity.tests.conftest import on_commit_run
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 6, 30)


def on(day_offset, hour=10):
    day = TODAY - dt.timedelta(days=day_offset)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def record(workspace, rows):
    """rows: (member, source_id, kind, days ago)."""
    with on_commit_run():
        return activity_record_bulk(
            workspace=workspace,
            items=[
                ActivityIn(
                    member_id=member.pk,
                    kind=kind,
                    channel="community",
                    occurred_at=on(days_ago),
                    source="t",
                    source_id=source_id,
                )
                for member, source_id, kind, days_ago in rows
            ],
        )


@pytest.fixture
def people(workspace):
    return [MemberFactory(workspace=workspace) for _ in range(4)]


@pytest.fixture
def stranger(other_workspace):
    return MemberFactory(workspace=other_workspace)


@pytest.fixture
def history(workspace, other_workspace, people, stranger):
    a, b, c, d = people
    record(
        workspace,
        [
            (a, "1", "post", 0), (a, "2", "reply", 0), (b, "3", "post", 0),
            (c, "4", "order", 3), (a, "5", "post", 6),
            (d, "6", "review", 7),  # outside the week, inside the month
            (d, "7", "post", 29), (c, "8", "vote", 30),  # 30 days ago: outside the month
        ],
    )  # fmt: skip
    # another workspace, same days: must never show up
    record(other_workspace, [(stranger, f"s{n}", "post", n) for n in range(0, 40, 2)])


def test_active_members_day_week_month(workspace, history):
    assert active_members(workspace=workspace, today=TODAY) == ActiveCounts(day=2, week=3, month=4)
    assert active_members(workspace=workspace, today=TODAY + dt.timedelta(days=365)) == (
        ActiveCounts(0, 0, 0)
    )


def test_active_members_series_is_zero_filled(workspace, history):
    series = active_members_series(workspace=workspace, days=10, today=TODAY)
    assert [day for day, _ in series] == [TODAY - dt.timedelta(days=n) for n in range(9, -1, -1)]
    counts = dict(series)
    assert counts[TODAY] == 2
    assert counts[TODAY - dt.timedelta(days=3)] == 1
    assert counts[TODAY - dt.timedelta(days=6)] == 1
    assert counts[TODAY - dt.timedelta(days=7)] == 1
    assert counts[TODAY - dt.timedelta(days=1)] == 0
    assert sum(counts.values()) == 5
    assert len(active_members_series(workspace=workspace, today=TODAY)) == 90


def test_activity_totals(workspace, history):
    totals = activity_totals(workspace=workspace, days=30, today=TODAY)
    assert [(t.kind, t.count, t.weight_sum) for t in totals] == [
        ("post", 4, 20), ("order", 1, 10), ("reply", 1, 3), ("review", 1, 8),
    ]  # fmt: skip
    assert totals[0].label == "Post"
    week = activity_totals(workspace=workspace, days=1, today=TODAY)
    assert {(t.kind, t.count) for t in week} == {("post", 2), ("reply", 1)}


def test_member_timeline_pages_newest_first(workspace, history, people, stranger):
    a = people[0]
    first_page = member_timeline(workspace=workspace, member=a, limit=2)
    assert [row.source_id for row in first_page] == ["2", "1"] or [
        row.source_id for row in first_page
    ] == ["1", "2"]
    assert first_page[0].occurred_at >= first_page[1].occurred_at
    rest = member_timeline(workspace=workspace, member=a, before_id=first_page[-1].pk, limit=2)
    assert [row.source_id for row in rest] == ["5"]
    assert member_timeline(workspace=workspace, member=a, before_id=rest[-1].pk) == []
    # another workspace's member or cursor gives nothing
    assert member_timeline(workspace=workspace, member=stranger) == []
    theirs = member_timeline(workspace=stranger.workspace, member=stranger, limit=1)[0]
    assert member_timeline(workspace=workspace, member=a, before_id=theirs.pk) == []


def test_recent_activities_preload_members(workspace, history, people, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = recent_activities(workspace=workspace, limit=5)
        names = [row.member.display_name for row in rows]
    assert len(rows) == len(names) == 5
    assert {row.workspace_id for row in rows} == {workspace.pk}
    assert [row.occurred_at for row in rows] == sorted(
        (row.occurred_at for row in rows), reverse=True
    )


def test_member_score(workspace, history, people):
    a = people[0]
    score = member_score(member=a)
    assert score.activity_count == 3
    assert score.last_active == on(0)
    assert score.love > 0
    assert score.level in ("casual", "regular")
    nobody = MemberFactory(workspace=workspace)
    assert member_score(member=nobody) == member_score(member=nobody).__class__(
        love=0.0, level="inactive", last_active=None, activity_count=0
    )


def test_tenant_isolation(workspace, other_workspace, history, stranger):
    theirs_today = active_members(workspace=other_workspace, today=TODAY)
    assert theirs_today == ActiveCounts(day=1, week=1, month=1)
    assert sum(n for _, n in active_members_series(workspace=other_workspace, today=TODAY)) == 20
    assert [(t.kind, t.count) for t in activity_totals(workspace=other_workspace, today=TODAY)] == [
        ("post", 15)
    ]
    assert {row.member_id for row in recent_activities(workspace=other_workspace)} == {stranger.pk}
    assert stranger.pk not in {row.member_id for row in recent_activities(workspace=workspace)}


def test_kind_weights(workspace, owner):
    kind_weight_set(workspace=workspace, kind="vote", weight=4, actor=owner.user)
    rows = {row.kind: row for row in kind_weights(workspace=workspace)}
    assert (rows["vote"].default_weight, rows["vote"].weight, rows["vote"].label) == (1, 4, "Vote")
    assert rows["post"].weight == 5


@pytest.mark.django_db
def test_activity_list_filters_and_never_crosses_workspaces(workspace, other_workspace) -> None:
    import datetime as dt

    from django.utils import timezone

    from circolo.activity.selectors import activity_list
    from circolo.testing.factories import ActivityFactory, MemberFactory

    now = timezone.now()
    ours = MemberFactory(workspace=workspace)
    post = ActivityFactory(member=ours, kind="post", occurred_at=now - dt.timedelta(days=2))
    order = ActivityFactory(member=ours, kind="order", channel="store", source="shop")
    theirs = ActivityFactory(member=MemberFactory(workspace=other_workspace), kind="post")
    assert set(activity_list(workspace=workspace)) == {post, order}
    assert list(activity_list(workspace=workspace, kind="post")) == [post]
    assert list(activity_list(workspace=workspace, channel="store", source="shop")) == [order]
    assert list(activity_list(workspace=workspace, until=now - dt.timedelta(days=1))) == [post]
    assert list(activity_list(workspace=workspace, since=now - dt.timedelta(days=1))) == [order]
    assert list(activity_list(workspace=workspace, member_id=theirs.member_id)) == []
