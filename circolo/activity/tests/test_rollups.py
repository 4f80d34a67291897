from __future__ import annotations

import datetime as dt
import io
import math

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.test import TestCase

from circolo.activity.handlers import activity_handler, activity_handler_remove
from circolo.activity.models import (
    ActivityChunk,
    DailyRollup,
    MemberDailyRollup,
    MemberScore,
)
from circolo.activity.rollups import rollups_rebuild
from circolo.activity.services import ActivityIn, activity_record_bulk
from circolo.activity.tasks import process_activities, process_pending
from circolo.activity.tests.conftest import on_commit_run, unhandled_chunk
from circolo.testing.factories import ActivityFactory, MemberFactory

pytestmark = pytest.mark.django_db

EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def growth_of(weight, when):
    months = (when - EPOCH).total_seconds() / (30.436875 * 86400)
    return weight * (1 / 0.9) ** months


def snapshot(workspace):
    daily = {
        (r.day, r.kind, r.channel): (r.count, r.weight_sum)
        for r in DailyRollup.objects.filter(workspace=workspace)
    }
    member_daily = {
        (r.member_id, r.day): (r.count, r.weight_sum)
        for r in MemberDailyRollup.objects.filter(workspace=workspace)
    }
    scores = {
        r.member_id: (r.growth, r.activity_count, r.last_active)
        for r in MemberScore.objects.filter(workspace=workspace)
    }
    return daily, member_daily, scores


def assert_same_rollups(left, right):
    daily, member_daily, scores = left
    daily2, member_daily2, scores2 = right
    assert daily == daily2
    assert member_daily == member_daily2
    assert scores.keys() == scores2.keys()
    for member_id, (growth, count, last_active) in scores.items():
        growth2, count2, last_active2 = scores2[member_id]
        assert math.isclose(growth, growth2, rel_tol=1e-9)
        assert (count, last_active) == (count2, last_active2)


def make(member, source_id, kind, when, channel="community"):
    return ActivityIn(
        member_id=member.pk,
        kind=kind,
        channel=channel,
        occurred_at=when,
        source="test",
        source_id=source_id,
    )


def test_rollups_count_days_in_utc_and_score_growth(workspace):
    ann, bob = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    rome = dt.timezone(dt.timedelta(hours=2))
    late_night = dt.datetime(2025, 5, 2, 1, 30, tzinfo=rome)  # 1 May 23:30 UTC
    may1 = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)
    may3 = dt.datetime(2025, 5, 3, 18, 0, 0, 250000, tzinfo=dt.UTC)
    items = [
        make(ann, "1", "post", may1),
        make(ann, "2", "post", late_night),
        make(ann, "3", "order", may3, channel="shop"),
        make(bob, "4", "post", may1),
        make(bob, "5", "reply", may3),
    ]
    with on_commit_run():
        activity_record_bulk(workspace=workspace, items=items)

    daily, member_daily, scores = snapshot(workspace)
    assert daily == {
        (dt.date(2025, 5, 1), "post", "community"): (3, 15),
        (dt.date(2025, 5, 3), "order", "shop"): (1, 10),
        (dt.date(2025, 5, 3), "reply", "community"): (1, 3),
    }
    assert member_daily == {
        (ann.pk, dt.date(2025, 5, 1)): (2, 10),
        (ann.pk, dt.date(2025, 5, 3)): (1, 10),
        (bob.pk, dt.date(2025, 5, 1)): (1, 5),
        (bob.pk, dt.date(2025, 5, 3)): (1, 3),
    }
    ann_growth = growth_of(5, may1) + growth_of(5, late_night) + growth_of(10, may3)
    assert scores[ann.pk][0] == pytest.approx(ann_growth, rel=1e-12)
    assert scores[ann.pk][1:] == (3, may3)
    assert scores[bob.pk][1:] == (2, may3)


def test_increments_add_to_existing_rows(workspace):
    ann = MemberFactory(workspace=workspace)
    when = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)
    with on_commit_run():
        activity_record_bulk(workspace=workspace, items=[make(ann, "1", "post", when)])
    with on_commit_run():
        activity_record_bulk(
            workspace=workspace,
            items=[
                make(ann, "2", "post", when + dt.timedelta(hours=3)),
                make(ann, "1", "post", when),  # duplicate: adds nothing
            ],
        )
    row = DailyRollup.objects.get(workspace=workspace)
    assert (row.count, row.weight_sum) == (2, 10)
    assert MemberScore.objects.get(member=ann).activity_count == 2
    assert MemberScore.objects.get(member=ann).last_active == when + dt.timedelta(hours=3)


def test_rebuild_equals_incremental_and_repairs(workspace, other_workspace):
    members = [MemberFactory(workspace=workspace) for _ in range(3)]
    outsider = MemberFactory(workspace=other_workspace)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    items = [
        make(
            members[n % 3],
            f"k{n}",
            ("post", "reply", "order", "vote")[n % 4],
            start + dt.timedelta(hours=n * 7, microseconds=n),
        )
        for n in range(200)
    ]
    with on_commit_run():
        activity_record_bulk(workspace=workspace, items=items)
        activity_record_bulk(workspace=other_workspace, items=[make(outsider, "x", "post", start)])
    incremental = snapshot(workspace)
    theirs = snapshot(other_workspace)

    DailyRollup.objects.filter(workspace=workspace).update(count=0)
    MemberScore.objects.filter(workspace=workspace).delete()
    steps = []
    rollups_rebuild(workspace=workspace, progress=steps.append)
    assert steps == ["daily", "member_daily", "scores"]
    assert_same_rollups(incremental, snapshot(workspace))
    assert_same_rollups(theirs, snapshot(other_workspace))


def test_rebuild_counts_only_handled_activities(workspace):
    ann = MemberFactory(workspace=workspace)
    with TestCase.captureOnCommitCallbacks(execute=False) as pending:
        activity_record_bulk(
            workspace=workspace, items=[make(ann, "1", "post", dt.datetime.now(dt.UTC))]
        )
    rollups_rebuild(workspace=workspace)
    assert not DailyRollup.objects.filter(workspace=workspace).exists()
    for callback in pending:
        callback()
    assert DailyRollup.objects.get(workspace=workspace).count == 1
    before = snapshot(workspace)
    rollups_rebuild(workspace=workspace)
    assert_same_rollups(before, snapshot(workspace))


def test_rebuild_command(workspace, other_workspace):
    ann = MemberFactory(workspace=workspace)
    with on_commit_run():
        activity_record_bulk(
            workspace=workspace, items=[make(ann, "1", "post", dt.datetime.now(dt.UTC))]
        )
    before = snapshot(workspace)
    DailyRollup.objects.all().delete()
    out, err = io.StringIO(), io.StringIO()
    call_command("rebuild_rollups", "--workspace", workspace.slug, stdout=out, stderr=err)
    assert "1 workspace" in out.getvalue()
    assert_same_rollups(before, snapshot(workspace))
    call_command("rebuild_rollups", stdout=out, stderr=err)
    assert "2 workspace" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("rebuild_rollups", "--workspace", "no-such-shop", stdout=out, stderr=err)


# --- the handler task ---------------------------------------------------------------------


def test_process_activities_twice_handles_once(workspace, handled):
    rows = ActivityFactory.create_batch(3, member__workspace=workspace)
    for row in rows:
        unhandled_chunk([row])
    ids = [row.pk for row in rows]
    assert process_activities(workspace.pk, ids) == 3
    assert process_activities(workspace.pk, ids) == 0
    assert handled.by_id == dict.fromkeys(ids, 1)
    assert DailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))["n"] == 3


def test_process_activities_ignores_ids_of_another_workspace(workspace, other_workspace, handled):
    row = ActivityFactory(member__workspace=other_workspace)
    chunk = unhandled_chunk([row])
    assert process_activities(workspace.pk, [row.pk]) == 0
    assert handled.calls == 0
    chunk.refresh_from_db()
    assert chunk.handled_at is None


def test_kind_filtered_handler_sees_only_its_kinds(workspace):
    seen = []

    def orders(*, workspace_id, activities):
        seen.extend(activity.kind for activity in activities)

    activity_handler(kinds=["order", "refund"])(orders)
    try:
        member = MemberFactory(workspace=workspace)
        rows = [ActivityFactory(member=member, kind=kind) for kind in ("post", "order", "refund")]
        unhandled_chunk(rows)
        process_activities(workspace.pk, [row.pk for row in rows])
    finally:
        activity_handler_remove(orders)
    assert sorted(seen) == ["order", "refund"]


def test_failing_handler_leaves_activities_for_the_sweep(workspace, handled):
    def broken(*, workspace_id, activities):
        raise RuntimeError("handler bug")

    activity_handler()(broken)
    row = ActivityFactory(member__workspace=workspace)
    chunk = unhandled_chunk([row])
    try:
        with pytest.raises(RuntimeError):
            process_activities(workspace.pk, [row.pk])
    finally:
        activity_handler_remove(broken)
    chunk.refresh_from_db()
    assert chunk.handled_at is None
    handled.by_id.clear()  # that run was rolled back with the claim
    assert not DailyRollup.objects.filter(workspace=workspace).exists()

    ActivityChunk.objects.filter(pk=chunk.pk).update(
        created_at=chunk.created_at - dt.timedelta(minutes=5)
    )
    assert process_pending() == 1
    assert handled.by_id == {row.pk: 1}
    assert DailyRollup.objects.get(workspace=workspace).count == 1


def test_process_pending_sweeps_only_old_unhandled(workspace, other_workspace, handled):
    old = [
        ActivityFactory(member__workspace=workspace),
        ActivityFactory(member__workspace=other_workspace),
    ]
    fresh = ActivityFactory(member__workspace=workspace)
    for row in old:
        unhandled_chunk([row], age=dt.timedelta(minutes=2))
    fresh_chunk = unhandled_chunk([fresh])
    assert process_pending() == 2
    assert set(handled.by_id) == {row.pk for row in old}
    fresh_chunk.refresh_from_db()
    assert fresh_chunk.handled_at is None
    assert process_pending() == 0
    assert process_pending(older_than_seconds=0) == 1
