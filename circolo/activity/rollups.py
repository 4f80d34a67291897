"""Daily rollups, member daily rollups, member scores and first/last seen.

Kept up to date by the built-in handler below, one set-based statement per table and batch:
the claimed activities are aggregated with GROUP BY in SQL and added with
INSERT ... ON CONFLICT DO UPDATE (count = count + excluded.count). `rollups_rebuild()`
recomputes the same tables from the activity table; it counts the activities of handled
chunks only, because the others are added by their chunk's handler run when it comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction

from circolo.activity import dialect
from circolo.activity.handlers import (
    ChunkBatch,
    HandledActivity,
    activity_handler,
    activity_ids,
    batch_columns,
)
from circolo.core.models import Workspace

# Steps of a workspace rebuild, reported to the progress callback one by one.
REBUILD_STEPS = ("daily", "member_daily", "scores")


def _daily_insert(where: str, source: str = "activity_activity") -> str:
    day = dialect.utc_day("occurred_at")
    return (
        "INSERT INTO activity_dailyrollup (workspace_id, day, kind, channel, count, weight_sum)"
        f" SELECT workspace_id, {day}, kind, channel, COUNT(*), SUM(weight)"
        f" FROM {source} WHERE {where}"
        f" GROUP BY workspace_id, {day}, kind, channel ORDER BY 2, 3, 4"
    )


def _member_daily_insert(where: str, source: str = "activity_activity") -> str:
    day = dialect.utc_day("occurred_at")
    return (
        "INSERT INTO activity_memberdailyrollup (workspace_id, member_id, day, count, weight_sum)"
        f" SELECT workspace_id, member_id, {day}, COUNT(*), SUM(weight)"
        f" FROM {source} WHERE {where}"
        f" GROUP BY workspace_id, member_id, {day} ORDER BY 2, 3"
    )


def _score_insert(where: str, source: str = "activity_activity") -> str:
    growth = dialect.growth_term("weight", "occurred_at")
    return (
        "INSERT INTO activity_memberscore"
        " (member_id, workspace_id, growth, activity_count, last_active)"
        f" SELECT member_id, workspace_id, SUM({growth}), COUNT(*), MAX(occurred_at)"
        f" FROM {source} WHERE {where}"
        " GROUP BY member_id, workspace_id ORDER BY 1"
    )


_DAILY_ADD = (
    " ON CONFLICT (workspace_id, day, kind, channel) DO UPDATE SET"
    " count = activity_dailyrollup.count + excluded.count,"
    " weight_sum = activity_dailyrollup.weight_sum + excluded.weight_sum"
)
_MEMBER_DAILY_ADD = (
    " ON CONFLICT (member_id, day) DO UPDATE SET"
    " count = activity_memberdailyrollup.count + excluded.count,"
    " weight_sum = activity_memberdailyrollup.weight_sum + excluded.weight_sum"
)


def _score_add() -> str:
    last_active = dialect.greatest("activity_memberscore.last_active", "excluded.last_active")
    return (
        " ON CONFLICT (member_id) DO UPDATE SET"
        " growth = activity_memberscore.growth + excluded.growth,"
        " activity_count = activity_memberscore.activity_count + excluded.activity_count,"
        f" last_active = {last_active}"
    )


def _members_seen_update(where: str, source: str = "activity_activity") -> str:
    """Move members' first_seen/last_seen to cover the selected activities."""
    p = dialect.placeholder()
    return (
        "UPDATE people_member AS m SET"
        f" first_seen = {dialect.least('m.first_seen', 'a.first_at')},"
        f" last_seen = {dialect.greatest('m.last_seen', 'a.last_at')}"
        " FROM (SELECT member_id, MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at"
        f" FROM {source} WHERE {where} GROUP BY member_id) AS a"
        f" WHERE m.id = a.member_id AND m.workspace_id = {p}"
        " AND (m.first_seen IS NULL OR m.first_seen > a.first_at"
        " OR m.last_seen IS NULL OR m.last_seen < a.last_at)"
    )


def _run(statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    cursor = dialect.raw_cursor()
    try:
        for sql, params in statements:
            cursor.execute(sql, list(params))
    finally:
        cursor.close()


@activity_handler()
def rollups_add(*, workspace_id: int, activities: Sequence[HandledActivity]) -> None:
    """Built-in handler: add new activities to the rollups, scores and members' seen times."""
    if isinstance(activities, ChunkBatch):
        # A whole chunk: aggregated straight from the activity table, never read in Python.
        where, params = activities.where()
        if dialect.is_postgres():
            _rollups_add_postgres_chunk(workspace_id, where, params)
            return
    elif dialect.is_postgres():
        _rollups_add_postgres(workspace_id, activities)
        return
    else:
        where, params = dialect.activities_by_ids(workspace_id, activity_ids(activities))
    _run(
        [
            (_daily_insert(where) + _DAILY_ADD, params),
            (_member_daily_insert(where) + _MEMBER_DAILY_ADD, params),
            (_score_insert(where) + _score_add(), params),
            (_members_seen_update(where), [*params, workspace_id]),
        ]
    )


def _rollups_add_postgres(workspace_id: int, activities: Sequence[HandledActivity]) -> None:
    """One statement: the batch comes back as arrays, and data-modifying CTEs aggregate it
    into every table without reading the activity table again."""
    columns = batch_columns(activities)
    batch = (
        "WITH batch AS MATERIALIZED (SELECT %s::bigint AS workspace_id, b.*"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::integer[])"
        " AS b(member_id, kind, channel, occurred_at, weight)),"
        f" daily AS ({_daily_insert('true', 'batch') + _DAILY_ADD}),"
        f" member_daily AS ({_member_daily_insert('true', 'batch') + _MEMBER_DAILY_ADD}),"
        f" scores AS ({_score_insert('true', 'batch') + _score_add()})"
        f" {_members_seen_update('true', 'batch')}"
    )
    _run([(batch, [workspace_id, *columns, workspace_id])])


def _rollups_add_postgres_chunk(workspace_id: int, where: str, params: list[Any]) -> None:
    """One statement: data-modifying CTEs aggregate the chunk's rows into every table."""
    batch = (
        "WITH batch AS MATERIALIZED (SELECT workspace_id, member_id, kind, channel,"
        f" occurred_at, weight FROM activity_activity WHERE {where}),"
        f" daily AS ({_daily_insert('true', 'batch') + _DAILY_ADD}),"
        f" member_daily AS ({_member_daily_insert('true', 'batch') + _MEMBER_DAILY_ADD}),"
        f" scores AS ({_score_insert('true', 'batch') + _score_add()})"
        f" {_members_seen_update('true', 'batch')}"
    )
    _run([(batch, [*params, workspace_id])])


def _handled_term() -> str:
    """Activities whose chunk is handled (one parameter: the workspace id).

    Chunks are claimed under the workspace's rollup lock, which the rebuilds hold too.
    """
    p = dialect.placeholder()
    return (
        "(chunk_id IS NULL OR chunk_id NOT IN (SELECT id FROM activity_activitychunk"
        f" WHERE handled_at IS NULL AND workspace_id = {p}))"
    )


def rollups_rebuild(*, workspace: Workspace, progress: Callable[[str], None] | None = None) -> None:
    """Recompute the workspace's rollups and member scores from its activities in handled
    chunks."""
    p = dialect.placeholder()
    where = f"workspace_id = {p} AND {_handled_term()}"
    params = [workspace.pk]
    handled_params = [workspace.pk, workspace.pk]
    steps = {
        "daily": [
            (f"DELETE FROM activity_dailyrollup WHERE workspace_id = {p}", params),
            (_daily_insert(where), handled_params),
        ],
        "member_daily": [
            (f"DELETE FROM activity_memberdailyrollup WHERE workspace_id = {p}", params),
            (_member_daily_insert(where), handled_params),
        ],
        "scores": [
            (f"DELETE FROM activity_memberscore WHERE workspace_id = {p}", params),
            (_score_insert(where), handled_params),
        ],
    }
    with transaction.atomic():
        dialect.lock_workspace_rollups(workspace.pk)
        for name in REBUILD_STEPS:
            _run(steps[name])
            if progress is not None:
                progress(name)


def member_rollups_rebuild(*, workspace_id: int, member_ids: Sequence[int]) -> None:
    """Recompute member daily rollups and scores of some members (caller holds the lock)."""
    if not member_ids:
        return
    p = dialect.placeholder()
    workspace = dialect.workspace_term()
    in_members, members_param = dialect.ids_filter("member_id", member_ids)
    params = [workspace_id, members_param]
    selected = f"{workspace} = {p} AND {in_members}"
    handled = f"{selected} AND {_handled_term()}"
    handled_params = [*params, workspace_id]
    _run(
        [
            (f"DELETE FROM activity_memberdailyrollup WHERE {selected}", params),
            (_member_daily_insert(handled), handled_params),
            (f"DELETE FROM activity_memberscore WHERE {selected}", params),
            (_score_insert(handled), handled_params),
        ]
    )


def members_seen_extend(*, workspace_id: int, member_id: int, activity_ids: Sequence[int]) -> None:
    """Widen a member's first/last seen to cover some activities (after a reassignment)."""
    if not activity_ids:
        return
    p = dialect.placeholder()
    by_ids, params = dialect.activities_by_ids(workspace_id, activity_ids)
    where = f"{by_ids} AND member_id = {p}"
    _run([(_members_seen_update(where), [*params, member_id, workspace_id])])
