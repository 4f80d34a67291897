"""Property: any sequence of records (single, batches with repeats, reassignments) leaves one
row per source key, handles every new activity exactly once, and keeps incremental rollups
equal to rollups rebuilt from scratch."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.activity.handlers import activity_handler, activity_handler_remove
from circolo.activity.models import Activity, DailyRollup, MemberDailyRollup
from circolo.activity.rollups import rollups_rebuild
from circolo.activity.services import (
    ActivityIn,
    activities_reassign,
    activity_record,
    activity_record_bulk,
)
from circolo.activity.tests.conftest import on_commit_run, unhandled_count
from circolo.activity.tests.test_rollups import assert_same_rollups, growth_of, snapshot
from circolo.core.models import Workspace
from circolo.people.models import Member

pytestmark = pytest.mark.django_db

MEMBERS = 3
START = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
KIND_WEIGHTS = {"post": 5, "reply": 3, "order": 10, "refund": 0}

items = st.builds(
    lambda key, member, kind, channel, seconds: {
        "key": key,
        "member": member,
        "kind": kind,
        "channel": channel,
        "when": START + dt.timedelta(seconds=seconds),
    },
    key=st.tuples(st.sampled_from(["shop", "forum"]), st.integers(0, 9).map(str)),
    member=st.integers(0, MEMBERS - 1),
    kind=st.sampled_from(sorted(KIND_WEIGHTS)),
    channel=st.sampled_from(["community", "shop"]),
    # up to ~400 days, with microseconds: days and score growth both matter
    seconds=st.floats(0, 400 * 86400, allow_nan=False).map(lambda s: round(s, 6)),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("single"), items),
        st.tuples(st.just("batch"), st.lists(items, min_size=1, max_size=12)),
        st.tuples(st.just("move"), st.integers(0, MEMBERS - 1), st.integers(0, MEMBERS - 1)),
    ),
    min_size=1,
    max_size=8,
)


def to_in(members, spec):
    return ActivityIn(
        member_id=members[spec["member"]].pk,
        kind=spec["kind"],
        channel=spec["channel"],
        occurred_at=spec["when"],
        source=spec["key"][0],
        source_id=spec["key"][1],
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_random_records_dedupe_handle_once_and_rebuild_equal(ops):
    handled = Counter()

    def count(*, workspace_id, activities):
        handled.update(activity.id for activity in activities)

    activity_handler()(count)
    try:
        with transaction.atomic():
            check_sequence(ops, handled)
            transaction.set_rollback(True)
    finally:
        activity_handler_remove(count)


def check_sequence(ops, handled):
    workspace = Workspace.objects.create(name="Prop", slug="prop")
    members = [
        Member.objects.create(workspace=workspace, display_name=f"m{n}") for n in range(MEMBERS)
    ]
    # The model: source key -> the activity spec that was recorded first, with its member now.
    stored: dict[tuple[str, str], dict] = {}
    ids: dict[tuple[str, str], int] = {}
    for op in ops:
        if op[0] == "single":
            spec = op[1]
            with on_commit_run():
                activity, created = activity_record(
                    workspace=workspace,
                    member=members[spec["member"]],
                    kind=spec["kind"],
                    channel=spec["channel"],
                    occurred_at=spec["when"],
                    source=spec["key"][0],
                    source_id=spec["key"][1],
                )
            assert created == (spec["key"] not in stored)
            stored.setdefault(spec["key"], dict(spec))
            assert ids.setdefault(spec["key"], activity.pk) == activity.pk
        elif op[0] == "batch":
            with on_commit_run():
                result = activity_record_bulk(
                    workspace=workspace, items=[to_in(members, spec) for spec in op[1]]
                )
            assert sorted(result.created + result.duplicates) == list(range(len(op[1])))
            for position, spec in enumerate(op[1]):
                assert (position in result.created) == (spec["key"] not in stored)
                stored.setdefault(spec["key"], dict(spec))
                assert ids.setdefault(spec["key"], result.ids[position]) == result.ids[position]
        else:
            _, source, target = op
            with on_commit_run():
                moved = activities_reassign(
                    workspace=workspace,
                    from_member_id=members[source].pk,
                    to_member_id=members[target].pk,
                )
            expected_moved = (
                []
                if source == target
                else sorted(ids[key] for key, spec in stored.items() if spec["member"] == source)
            )
            assert moved == expected_moved
            for spec in stored.values():
                if spec["member"] == source:
                    spec["member"] = target

        # one row per distinct key, each handled exactly once
        rows = dict(Activity.objects.filter(workspace=workspace).values_list("pk", "member_id"))
        assert len(rows) == len(stored)
        assert set(rows) == set(ids.values())
        assert handled == Counter(rows.keys())
        assert unhandled_count(workspace) == 0
        for key, spec in stored.items():
            assert rows[ids[key]] == members[spec["member"]].pk

    incremental = snapshot(workspace)
    # incremental rollups equal the model...
    daily, member_daily, scores = incremental
    expected_daily = defaultdict(lambda: [0, 0])
    expected_member_daily = defaultdict(lambda: [0, 0])
    expected_growth = defaultdict(float)
    for spec in stored.values():
        weight = KIND_WEIGHTS[spec["kind"]]
        day = spec["when"].date()
        member_id = members[spec["member"]].pk
        for table, key in (
            (expected_daily, (day, spec["kind"], spec["channel"])),
            (expected_member_daily, (member_id, day)),
        ):
            table[key][0] += 1
            table[key][1] += weight
        expected_growth[member_id] += growth_of(weight, spec["when"])
    assert daily == {key: tuple(value) for key, value in expected_daily.items()}
    assert member_daily == {key: tuple(value) for key, value in expected_member_daily.items()}
    assert scores.keys() == expected_growth.keys()
    for member_id, growth in expected_growth.items():
        assert scores[member_id][0] == pytest.approx(growth, rel=1e-9)

    # ...and rollups rebuilt from scratch equal the incremental ones
    rollups_rebuild(workspace=workspace)
    assert_same_rollups(incremental, snapshot(workspace))
    assert DailyRollup.objects.filter(workspace=workspace).count() == len(daily)
    assert MemberDailyRollup.objects.filter(workspace=workspace).count() == len(member_daily)

    # members' first/last seen cover their activities
    for index, member in enumerate(members):
        member.refresh_from_db()
        times = [spec["when"] for spec in stored.values() if spec["member"] == index]
        if times:
            assert member.first_seen <= min(times)
            assert member.last_seen >= max(times)
