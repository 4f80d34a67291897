from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum

from circolo.activity.models import (
    Activity,
    ActivityChunk,
    DailyRollup,
    MemberDailyRollup,
    MemberScore,
)
from circolo.activity.selectors import member_score
from circolo.activity.services import (
    ActivityIn,
    ActivityValidationError,
    activities_reassign,
    activities_validate,
    activity_record,
    activity_record_bulk,
    activity_validate,
    member_stats_rebuild,
)
from circolo.activity.tests.conftest import at, on_commit_run
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db


def item(member, source_id, *, kind="post", when=None, source="shop", **extra):
    return ActivityIn(
        member_id=member.pk,
        kind=kind,
        channel=extra.pop("channel", "community"),
        occurred_at=when or at(1),
        source=source,
        source_id=source_id,
        properties=extra.pop("properties", {}),
    )


def record(workspace, member, source_id, **kwargs):
    return activity_record(
        workspace=workspace,
        member=member,
        kind=kwargs.pop("kind", "post"),
        channel=kwargs.pop("channel", "community"),
        occurred_at=kwargs.pop("occurred_at", at(1)),
        source=kwargs.pop("source", "shop"),
        source_id=source_id,
        **kwargs,
    )


# --- recording the same activity twice -------------------------------------------------


def test_record_twice_one_by_one_leaves_one_row_and_handles_once(workspace, member, handled):
    with on_commit_run():
        first, created = record(workspace, member, "o-1", kind="order", properties={"total": 1200})
    with on_commit_run():
        again, created_again = record(workspace, member, "o-1", kind="order")

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Activity.objects.filter(workspace=workspace).count() == 1
    assert handled.by_id == {first.pk: 1}
    stored = Activity.objects.get(workspace=workspace, pk=first.pk)
    assert stored.weight == 10
    assert stored.properties == {"total": 1200}
    assert ActivityChunk.objects.get(pk=stored.chunk_id).handled_at is not None


def test_record_returns_a_usable_instance(workspace, member):
    with on_commit_run():
        activity, _ = record(workspace, member, "p-1", properties={"lang": "it"})
    stored = Activity.objects.get(workspace=workspace, pk=activity.pk)
    assert (stored.kind, stored.source_id, stored.member_id) == ("post", "p-1", member.pk)
    assert activity.occurred_at == stored.occurred_at
    assert activity.properties == stored.properties == {"lang": "it"}


def test_batch_with_repeats_inside_and_across_batches(workspace, member, handled):
    other = MemberFactory(workspace=workspace)
    batch = [
        item(member, "a"),
        item(member, "b", kind="reply"),
        item(other, "a"),  # repeat of position 0 inside the batch
        item(member, "c", source="forum"),
        item(member, "c"),  # same id, another source: a different activity
        item(member, "b", kind="vote"),  # repeat of position 1
    ]
    with on_commit_run():
        result = activity_record_bulk(workspace=workspace, items=batch)

    assert result.created == [0, 1, 3, 4]
    assert result.duplicates == [2, 5]
    assert result.ids[2] == result.ids[0]
    assert result.ids[5] == result.ids[1]
    assert len(set(result.ids.values())) == 4
    assert Activity.objects.filter(workspace=workspace).count() == 4
    assert Activity.objects.get(pk=result.ids[0]).member_id == member.pk  # the first one wins

    with on_commit_run():
        second = activity_record_bulk(
            workspace=workspace, items=[item(member, "new"), *batch, item(member, "new")]
        )
    assert second.created == [0]
    assert second.duplicates == list(range(1, 8))
    assert [second.ids[n + 1] for n in range(6)] == [result.ids[n] for n in range(6)]
    assert second.ids[7] == second.ids[0]
    assert Activity.objects.filter(workspace=workspace).count() == 5
    assert set(handled.by_id.values()) == {1}
    assert set(handled.by_id) == set(Activity.objects.values_list("pk", flat=True))


def test_single_then_batch_then_single(workspace, member, handled):
    with on_commit_run():
        single, _ = record(workspace, member, "x")
        result = activity_record_bulk(workspace=workspace, items=[item(member, "x")])
        again, created = record(workspace, member, "x")
    assert result.duplicates == [0]
    assert result.ids[0] == single.pk == again.pk
    assert created is False
    assert handled.by_id == {single.pk: 1}


def test_bulk_spanning_several_chunks(workspace, member, handled, monkeypatch):
    from circolo.activity import services

    monkeypatch.setattr(services, "BULK_CHUNK", 7)
    items = [item(member, f"k{n % 23}", when=at(n % 5)) for n in range(40)]
    with on_commit_run():
        result = activity_record_bulk(workspace=workspace, items=items)
    assert result.created == list(range(23))
    assert result.duplicates == list(range(23, 40))
    assert all(result.ids[n] == result.ids[n % 23] for n in range(40))
    assert Activity.objects.filter(workspace=workspace).count() == 23
    assert handled.by_id == dict.fromkeys(Activity.objects.values_list("pk", flat=True), 1)
    assert handled.calls == 1  # one chunk per call, whatever the staging rounds
    assert ActivityChunk.objects.get(workspace=workspace).size == 23
    assert MemberScore.objects.get(member=member).activity_count == 23


def test_empty_batch(workspace):
    result = activity_record_bulk(workspace=workspace, items=[])
    assert (result.created, result.duplicates, result.ids) == ([], [], {})


def test_same_source_key_in_two_workspaces_is_two_activities(workspace, other_workspace):
    mine = MemberFactory(workspace=workspace)
    theirs = MemberFactory(workspace=other_workspace)
    with on_commit_run():
        a, created_a = record(workspace, mine, "shared")
        b, created_b = record(other_workspace, theirs, "shared")
    assert created_a and created_b and a.pk != b.pk


def test_handlers_receive_full_activities(workspace, member, handled):
    seen = []

    def keep(*, workspace_id, activities):
        seen.extend(activities)

    from circolo.activity.handlers import activity_handler, activity_handler_remove

    activity_handler(kinds=["order"])(keep)
    try:
        when = dt.datetime(2025, 3, 1, 10, 30, 15, 123456, tzinfo=dt.UTC)
        with on_commit_run():
            activity_record_bulk(
                workspace=workspace,
                items=[
                    item(member, "o", kind="order", when=when, properties={"total": 5, "ü": "é"}),
                    item(member, "p", kind="post"),
                ],
            )
    finally:
        activity_handler_remove(keep)
    [order] = seen
    assert order.kind == "order"
    assert order.workspace_id == workspace.pk
    assert order.member_id == member.pk
    assert order.occurred_at == when
    assert order.weight == 10
    assert order.properties == {"total": 5, "ü": "é"}
    assert (order.source, order.source_id) == ("shop", "o")


# --- member first/last seen --------------------------------------------------------------


def test_first_and_last_seen_follow_activities(workspace, member):
    with on_commit_run():
        activity_record_bulk(
            workspace=workspace,
            items=[item(member, "a", when=at(10)), item(member, "b", when=at(3))],
        )
    member.refresh_from_db()
    assert (member.first_seen, member.last_seen) == (at(10), at(3))
    with on_commit_run():
        record(workspace, member, "c", occurred_at=at(20))
        record(workspace, member, "d", occurred_at=at(5))
    member.refresh_from_db()
    assert (member.first_seen, member.last_seen) == (at(20), at(3))


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "teleport"}, "kind"),
        ({"occurred_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)}, "occurred_at"),
        ({"occurred_at": dt.datetime(2025, 1, 1, 12)}, "occurred_at"),
        ({"properties": {"blob": "x" * (16 * 1024)}}, "properties"),
        ({"properties": {"when": dt.date(2025, 1, 1)}}, "properties"),
        ({"properties": ["not", "an", "object"]}, "properties"),
        ({"source_id": ""}, "source_id"),
        ({"source_id": "   "}, "source_id"),
        ({"source_id": "x" * 201}, "source_id"),
        ({"source": ""}, "source"),
        ({"source": "s" * 41}, "source"),
        ({"channel": ""}, "channel"),
    ],
)
def test_record_rejects_bad_input(workspace, member, handled, changes, field):
    kwargs = {"occurred_at": at(1), **changes}
    with pytest.raises(ActivityValidationError) as raised, on_commit_run():
        record(workspace, member, kwargs.pop("source_id", "v-1"), **kwargs)
    assert set(raised.value.errors) == {field}
    assert raised.value.errors[field]
    assert not Activity.objects.filter(workspace=workspace).exists()
    assert handled.calls == 0


def test_validate_allows_up_to_24_hours_ahead_and_16_kb(workspace, member):
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    ok = item(member, "ok", when=now + dt.timedelta(hours=23, minutes=59))
    assert activity_validate(workspace=workspace, item=ok, now=now) == {}
    big = item(member, "big", when=now, properties={"b": "x" * (16 * 1024 - 8)})  # 16 KB
    assert activity_validate(workspace=workspace, item=big, now=now) == {}
    too_big = item(member, "big", when=now, properties={"b": "x" * (16 * 1024 - 7)})
    assert set(activity_validate(workspace=workspace, item=too_big, now=now)) == {"properties"}


def test_validate_member_of_another_workspace(workspace, other_workspace):
    stranger = MemberFactory(workspace=other_workspace)
    errors = activity_validate(workspace=workspace, item=item(stranger, "s"))
    assert set(errors) == {"member_id"}
    with pytest.raises(ActivityValidationError) as raised:
        record(workspace, stranger, "s")
    assert set(raised.value.errors) == {"member_id"}


def test_activities_validate_reports_positions(
    workspace, other_workspace, member, django_assert_max_num_queries
):
    stranger = MemberFactory(workspace=other_workspace)
    items = [
        item(member, "good"),
        item(member, "bad-kind", kind="nope"),
        item(stranger, "foreign"),
        item(member, "", when=dt.datetime(2025, 1, 1)),
    ]
    with django_assert_max_num_queries(1):
        invalid = activities_validate(workspace=workspace, items=items)
    assert set(invalid) == {1, 2, 3}
    assert set(invalid[1]) == {"kind"}
    assert set(invalid[2]) == {"member_id"}
    assert set(invalid[3]) == {"source_id", "occurred_at"}


# --- reassign and rebuild -----------------------------------------------------------------


def test_reassign_moves_activities_and_rebuilds_both_members(workspace, member):
    survivor = MemberFactory(workspace=workspace, first_seen=at(2), last_seen=at(2))
    with on_commit_run():
        result = activity_record_bulk(
            workspace=workspace,
            items=[
                item(member, "a", when=at(30)),
                item(member, "b", kind="order", when=at(1)),
                item(survivor, "c", kind="reply", when=at(2)),
            ],
        )
    growth_before = sum(MemberScore.objects.values_list("growth", flat=True))

    with on_commit_run():
        moved = activities_reassign(
            workspace=workspace, from_member_id=member.pk, to_member_id=survivor.pk
        )
    assert moved == sorted([result.ids[0], result.ids[1]])
    assert set(Activity.objects.filter(member=survivor).values_list("pk", flat=True)) == set(
        result.ids.values()
    )
    assert not MemberScore.objects.filter(member=member).exists()
    assert not MemberDailyRollup.objects.filter(member=member).exists()
    score = MemberScore.objects.get(member=survivor)
    assert score.activity_count == 3
    assert score.last_active == at(1)
    assert score.growth == pytest.approx(growth_before, rel=1e-12)
    assert member_score(member=member).activity_count == 0
    assert MemberDailyRollup.objects.filter(member=survivor).aggregate(n=Sum("count"))["n"] == 3
    # workspace x day x kind rollups do not depend on who did it
    assert DailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))["n"] == 3
    survivor.refresh_from_db()
    assert (survivor.first_seen, survivor.last_seen) == (at(30), at(1))

    # undo: move one back
    with on_commit_run():
        back = activities_reassign(
            workspace=workspace,
            from_member_id=survivor.pk,
            to_member_id=member.pk,
            activity_ids=[result.ids[1], result.ids[2] + 10_000],
        )
    assert back == [result.ids[1]]
    assert MemberScore.objects.get(member=member).activity_count == 1
    assert MemberScore.objects.get(member=survivor).activity_count == 2


def test_reassign_refuses_members_of_another_workspace(workspace, other_workspace, member):
    stranger = MemberFactory(workspace=other_workspace)
    with on_commit_run():
        record(workspace, member, "a")
    with pytest.raises(ActivityValidationError):
        activities_reassign(workspace=workspace, from_member_id=member.pk, to_member_id=stranger.pk)
    assert Activity.objects.get(source_id="a").member_id == member.pk


def test_reassign_of_unhandled_activities_counts_them_once(workspace, member):
    survivor = MemberFactory(workspace=workspace)
    # Recorded but handlers not run yet (their task is still queued).
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        activity_record_bulk(workspace=workspace, items=[item(member, "late")])
    activities_reassign(workspace=workspace, from_member_id=member.pk, to_member_id=survivor.pk)
    assert not MemberScore.objects.filter(member=survivor).exists()
    for callback in callbacks:
        callback()
    assert MemberScore.objects.get(member=survivor).activity_count == 1
    assert not MemberScore.objects.filter(member=member).exists()


def test_member_stats_rebuild_repairs_drift(workspace, member):
    with on_commit_run():
        record(workspace, member, "a")
        record(workspace, member, "b", occurred_at=at(40))
    expected = MemberScore.objects.get(member=member)
    MemberScore.objects.filter(member=member).update(growth=0, activity_count=99)
    MemberDailyRollup.objects.filter(member=member).delete()
    member_stats_rebuild(workspace=workspace, member_ids=[member.pk])
    repaired = MemberScore.objects.get(member=member)
    assert repaired.activity_count == 2
    assert repaired.growth == pytest.approx(expected.growth, rel=1e-12)
    assert MemberDailyRollup.objects.filter(member=member).count() == 2
