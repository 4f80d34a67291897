"""Writes of the activity stream: record one or many activities, move them, set kind weights.

Recording is the one way in. An activity is unique per workspace on (source, source_id):
recording it again returns the existing row and fires nothing. Handlers run after commit,
once per new activity (see handlers.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from circolo.activity import dialect
from circolo.activity.kinds import KINDS, WEIGHT_MAX, WEIGHT_MIN, weights_for
from circolo.activity.models import Activity, KindWeight
from circolo.activity.rollups import member_rollups_rebuild, members_seen_extend
from circolo.activity.tasks import handlers_schedule
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.people.models import Member

SOURCE_MAX = 40
SOURCE_ID_MAX = 200
CHANNEL_MAX = 40
# Rows per staging round of the bulk path: one COPY/INSERT ... SELECT statement each.
BULK_CHUNK = 50_000
# Ids per UPDATE when moving activities between members.
_REASSIGN_CHUNK = 10_000


@dataclass(frozen=True)
class ActivityIn:
    member_id: int
    kind: str
    channel: str
    occurred_at: dt.datetime
    source: str
    source_id: str
    properties: dict[str, Any] = field(default_factory=dict)


class ActivityValidationError(ValueError):
    """Invalid input; `errors` maps each bad field to a message a person can read."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


@dataclass
class BulkResult:
    """Positions in the input list that were created or duplicates, and their activity ids."""

    created: list[int]
    duplicates: list[int]
    ids: dict[int, int]


def _properties_json(properties: dict[str, Any]) -> str:
    if not properties:
        return "{}"
    return json.dumps(properties, ensure_ascii=False, separators=(",", ":"))


def _field_errors(item: ActivityIn, now: dt.datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    if item.kind not in KINDS:
        errors["kind"] = gettext("Unknown activity kind “%(kind)s”.") % {"kind": item.kind}
    if not isinstance(item.occurred_at, dt.datetime) or timezone.is_naive(item.occurred_at):
        errors["occurred_at"] = gettext("Give the time with a time zone (e.g. 2025-03-01T10:00Z).")
    else:
        hours = settings.CIRCOLO_FUTURE_TOLERANCE_HOURS
        if item.occurred_at > now + dt.timedelta(hours=hours):
            errors["occurred_at"] = gettext(
                "The time is more than %(hours)d hours in the future."
            ) % {"hours": hours}
    for name, value, limit in (
        ("source", item.source, SOURCE_MAX),
        ("source_id", item.source_id, SOURCE_ID_MAX),
        ("channel", item.channel, CHANNEL_MAX),
    ):
        if not isinstance(value, str) or not value.strip():
            errors[name] = gettext("This field is required.")
        elif len(value) > limit:
            errors[name] = gettext("Use at most %(limit)d characters.") % {"limit": limit}
    if not isinstance(item.properties, dict):
        errors["properties"] = gettext("Properties must be a JSON object.")
    else:
        try:
            size = len(_properties_json(item.properties).encode())
        except (TypeError, ValueError):
            errors["properties"] = gettext("Properties must contain only JSON values.")
        else:
            limit = settings.CIRCOLO_PROPERTIES_MAX_BYTES
            if size > limit:
                errors["properties"] = gettext(
                    "Properties take %(size)d bytes; the limit is %(limit)d."
                ) % {"size": size, "limit": limit}
    return errors


def _member_error() -> str:
    return gettext("No such member in this workspace.")


def activity_validate(
    *, workspace: Workspace, item: ActivityIn, now: dt.datetime | None = None
) -> dict[str, str]:
    """Field -> message for everything wrong with `item` (empty when valid)."""
    errors = _field_errors(item, now or timezone.now())
    if not Member.objects.filter(workspace=workspace, pk=item.member_id).exists():
        errors["member_id"] = _member_error()
    return errors


def activities_validate(
    *, workspace: Workspace, items: Sequence[ActivityIn], now: dt.datetime | None = None
) -> dict[int, dict[str, str]]:
    """Position -> field errors for the invalid items of a batch (members checked in one query)."""
    moment = now or timezone.now()
    member_ids = {item.member_id for item in items}
    known = set(
        Member.objects.filter(workspace=workspace, pk__in=member_ids).values_list("pk", flat=True)
    )
    invalid: dict[int, dict[str, str]] = {}
    for position, item in enumerate(items):
        errors = _field_errors(item, moment)
        if item.member_id not in known:
            errors["member_id"] = _member_error()
        if errors:
            invalid[position] = errors
    return invalid


def activity_record(
    *,
    workspace: Workspace,
    member: Member,
    kind: str,
    channel: str,
    occurred_at: dt.datetime,
    source: str,
    source_id: str,
    properties: dict[str, Any] | None = None,
) -> tuple[Activity, bool]:
    """Record one activity; a repeat of its (source, source_id) returns the existing row, False.

    Raises ActivityValidationError. Safe under concurrent recorders (INSERT ... ON CONFLICT).
    """
    item = ActivityIn(
        member_id=member.pk,
        kind=kind,
        channel=channel,
        occurred_at=occurred_at,
        source=source,
        source_id=source_id,
        properties=properties if properties is not None else {},
    )
    now = timezone.now()
    errors = _field_errors(item, now)
    if member.workspace_id != workspace.pk:
        errors["member_id"] = _member_error()
    if errors:
        raise ActivityValidationError(errors)
    weight = weights_for(workspace=workspace)[kind]
    props = _properties_json(item.properties)
    p = dialect.placeholder()
    with transaction.atomic():
        cursor = dialect.raw_cursor()
        try:
            chunk_id = _chunk_open(cursor, workspace.pk, dialect.datetime_param(now))
            cursor.execute(
                "INSERT INTO activity_activity (workspace_id, member_id, kind, channel,"
                " occurred_at, weight, properties, source, source_id, created_at, chunk_id)"
                f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
                " ON CONFLICT (workspace_id, source, source_id) DO NOTHING RETURNING id",
                [
                    workspace.pk,
                    member.pk,
                    kind,
                    channel,
                    dialect.datetime_param(occurred_at),
                    weight,
                    props,
                    source,
                    source_id,
                    dialect.datetime_param(now),
                    chunk_id,
                ],
            )
            row = cursor.fetchone()
            _chunk_close(cursor, chunk_id, [row[0]] if row is not None else [])
        finally:
            cursor.close()
        if row is None:
            existing = Activity.objects.get(workspace=workspace, source=source, source_id=source_id)
            return existing, False
        activity = Activity(
            id=row[0],
            workspace=workspace,
            member=member,
            kind=kind,
            channel=channel,
            occurred_at=occurred_at,
            weight=weight,
            properties=json.loads(props),
            source=source,
            source_id=source_id,
            created_at=now,
            chunk_id=chunk_id,
        )
        activity._state.adding = False
        activity._state.db = connection.alias
        handlers_schedule(workspace_id=workspace.pk, chunk_id=chunk_id)
    return activity, True


def _chunk_open(cursor: Any, workspace_id: int, now: Any) -> int:
    """A new, still empty chunk for the activities this transaction records."""
    p = "%s" if dialect.is_postgres() else "?"
    cursor.execute(
        "INSERT INTO activity_activitychunk (workspace_id, first_id, last_id, size, created_at,"
        f" handled_at) VALUES ({p}, 0, 0, 0, {p}, NULL) RETURNING id",
        [workspace_id, now],
    )
    chunk_id: int = cursor.fetchone()[0]
    return chunk_id


def _chunk_close(cursor: Any, chunk_id: int, created_ids: Sequence[int]) -> None:
    """Store the chunk's id range, or drop it when nothing new was recorded."""
    p = "%s" if dialect.is_postgres() else "?"
    if created_ids:
        cursor.execute(
            f"UPDATE activity_activitychunk SET first_id = {p}, last_id = {p}, size = {p}"
            f" WHERE id = {p}",
            [min(created_ids), max(created_ids), len(created_ids), chunk_id],
        )
    else:
        cursor.execute(f"DELETE FROM activity_activitychunk WHERE id = {p}", [chunk_id])


_STAGING_COLUMNS = (
    "pos, member_id, kind, channel, occurred_at, weight, properties, source, source_id"
)


def _staging_prepare(cursor: Any, postgres: bool) -> None:
    if postgres:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS activity_staging (pos integer, member_id bigint,"
            " kind text, channel text, occurred_at timestamptz, weight integer,"
            " properties jsonb, source text, source_id text) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE activity_staging")
        # The INSERT sorts the staged rows by key: keep that sort in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
    else:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS activity_staging (pos INTEGER, member_id INTEGER,"
            " kind TEXT, channel TEXT, occurred_at TEXT, weight INTEGER, properties TEXT,"
            " source TEXT, source_id TEXT)"
        )
        cursor.execute("DELETE FROM temp.activity_staging")


def _staging_fill(cursor: Any, postgres: bool, rows: list[tuple[Any, ...]]) -> None:
    if postgres:
        # write_row (psycopg's C dumpers) measured faster than writing pre-formatted text.
        with cursor.copy(f"COPY activity_staging ({_STAGING_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor.executemany(
            f"INSERT INTO temp.activity_staging ({_STAGING_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _staging_insert(
    cursor: Any, postgres: bool, workspace_id: int, now: Any, chunk_id: int
) -> dict[tuple[str, str], int]:
    """Insert the staged rows that are new; (source, source_id) -> id of each new row."""
    p = "%s" if postgres else "?"
    # PostgreSQL: a fixed key order makes concurrent batches wait, never deadlock.
    order = " ORDER BY source, source_id" if postgres else ""
    cursor.execute(
        "INSERT INTO activity_activity (workspace_id, member_id, kind, channel, occurred_at,"
        " weight, properties, source, source_id, created_at, chunk_id)"
        f" SELECT {p}, member_id, kind, channel, occurred_at, weight, properties, source,"
        f" source_id, {p}, {p} FROM activity_staging WHERE true{order}"
        " ON CONFLICT (workspace_id, source, source_id) DO NOTHING"
        " RETURNING id, source, source_id",
        [workspace_id, now, chunk_id],
    )
    return {(source, source_id): pk for pk, source, source_id in cursor.fetchall()}


def _existing_ids(
    cursor: Any, postgres: bool, workspace_id: int, missing: list[tuple[int, tuple[str, str]]]
) -> dict[tuple[str, str], int]:
    """Ids of rows already stored under the source keys of these staged rows (one query)."""
    if postgres:
        cursor.execute(
            "SELECT a.id, a.source, a.source_id FROM activity_activity AS a"
            " JOIN unnest(%s::text[], %s::text[]) AS k(source, source_id)"
            " ON a.source = k.source AND a.source_id = k.source_id WHERE a.workspace_id = %s",
            [[key[0] for _, key in missing], [key[1] for _, key in missing], workspace_id],
        )
    else:
        cursor.execute(
            "SELECT a.id, a.source, a.source_id FROM temp.activity_staging AS s"
            " CROSS JOIN activity_activity AS a"
            " WHERE s.pos IN (SELECT value FROM json_each(?)) AND a.workspace_id = ?"
            " AND a.source = s.source AND a.source_id = s.source_id",
            [json.dumps([position for position, _ in missing]), workspace_id],
        )
    return {(source, source_id): pk for pk, source, source_id in cursor.fetchall()}


def activity_record_bulk(*, workspace: Workspace, items: Sequence[ActivityIn]) -> BulkResult:
    """Record many valid activities (validate first); per position: created or duplicate.

    PostgreSQL: COPY into a temp staging table, then one INSERT ... SELECT ... ON CONFLICT DO
    NOTHING RETURNING per round; SQLite: the same through executemany. One transaction, and
    one handler chunk per call.
    A source key repeated inside the batch is a duplicate of its first occurrence.
    """
    result = BulkResult(created=[], duplicates=[], ids={})
    if not items:
        return result
    postgres = dialect.is_postgres()
    workspace_id = workspace.pk
    weights = weights_for(workspace=workspace)
    now = timezone.now()

    # In-batch repeats are settled in Python: only first occurrences reach the database.
    first_position: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, int]] = []
    unique: list[int] = []
    for position, item in enumerate(items):
        first = first_position.setdefault((item.source, item.source_id), position)
        if first == position:
            unique.append(position)
        else:
            repeats.append((position, first))
    del first_position

    moment = _moment_converter(postgres)
    created_ids: list[int] = []
    ids = result.ids
    duplicates = result.duplicates
    with transaction.atomic():
        cursor = dialect.raw_cursor()
        try:
            chunk_id = _chunk_open(cursor, workspace_id, moment(now))
            for start in range(0, len(unique), BULK_CHUNK):
                chunk = unique[start : start + BULK_CHUNK]
                chunk_items = [items[position] for position in chunk]
                _round(
                    cursor,
                    postgres,
                    workspace_id,
                    chunk_id,
                    moment(now),
                    chunk,
                    chunk_items,
                    weights,
                    result,
                    created_ids,
                )
            _chunk_close(cursor, chunk_id, created_ids)
        finally:
            cursor.close()
        for position, first in repeats:
            ids[position] = ids[first]
            duplicates.append(position)
        duplicates.sort()
        if created_ids:
            handlers_schedule(workspace_id=workspace_id, chunk_id=chunk_id)
    return result


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _round(
    cursor: Any,
    postgres: bool,
    workspace_id: int,
    chunk_id: int,
    now: Any,
    positions: list[int],
    chunk_items: list[ActivityIn],
    weights: dict[str, int],
    result: BulkResult,
    created_ids: list[int],
) -> None:
    """One staging round: fill the staging table (PostgreSQL: COPY), INSERT ... SELECT ... ON
    CONFLICT DO NOTHING RETURNING, then the ids of the duplicates in one query."""
    dumps = _dumps
    moment = _moment_converter(postgres)
    rows = [
        (
            position,
            item.member_id,
            item.kind,
            item.channel,
            moment(item.occurred_at),
            weights[item.kind],
            dumps(item.properties) if item.properties else "{}",
            item.source,
            item.source_id,
        )
        for position, item in zip(positions, chunk_items, strict=True)
    ]
    _staging_prepare(cursor, postgres)
    _staging_fill(cursor, postgres, rows)
    del rows
    inserted = _staging_insert(cursor, postgres, workspace_id, now, chunk_id)
    ids = result.ids
    created = result.created
    missing: list[tuple[int, tuple[str, str]]] = []
    for position, item in zip(positions, chunk_items, strict=True):
        key = (item.source, item.source_id)
        pk = inserted.get(key)
        if pk is None:
            missing.append((position, key))
        else:
            ids[position] = pk
            created.append(position)
            created_ids.append(pk)
    if missing:
        existing = _existing_ids(cursor, postgres, workspace_id, missing)
        for position, key in missing:
            ids[position] = existing[key]
            result.duplicates.append(position)


def _moment_converter(postgres: bool) -> Any:
    """tz-aware datetime -> the value the staging table takes (SQLite: Django's naive UTC text)."""
    if postgres:
        return lambda value: value
    utc = dt.UTC

    def naive_utc_text(value: dt.datetime) -> str:
        if value.tzinfo is not utc:
            value = value.astimezone(utc)
        return value.isoformat(" ")[:-6]  # drop "+00:00"

    return naive_utc_text


def member_stats_rebuild(*, workspace: Workspace, member_ids: Sequence[int]) -> None:
    """Recompute the members' daily rollups and scores from their activities in handled chunks."""
    with transaction.atomic():
        dialect.lock_workspace_rollups(workspace.pk)
        member_rollups_rebuild(workspace_id=workspace.pk, member_ids=list(member_ids))


def activities_reassign(
    *,
    workspace: Workspace,
    from_member_id: int,
    to_member_id: int,
    activity_ids: Sequence[int] | None = None,
) -> list[int]:
    """Move activities (all of from_member's when ids is None) to another member of the
    workspace and rebuild both members' rollups and scores; returns the moved ids.

    Takes the workspace's rollup lock first: callers that also lock member rows should call
    this before locking them.
    """
    if from_member_id == to_member_id:
        return []
    with transaction.atomic():
        dialect.lock_workspace_rollups(workspace.pk)
        found = set(
            Member.objects.filter(
                workspace=workspace, pk__in=[from_member_id, to_member_id]
            ).values_list("pk", flat=True)
        )
        if found != {from_member_id, to_member_id}:
            raise ActivityValidationError({"member_id": _member_error()})
        selected = Activity.objects.filter(workspace=workspace, member_id=from_member_id)
        moved: list[int] = []
        if activity_ids is None:
            moved = list(selected.order_by("id").values_list("id", flat=True))
        else:
            wanted = sorted(set(activity_ids))
            for start in range(0, len(wanted), _REASSIGN_CHUNK):
                moved.extend(
                    selected.filter(pk__in=wanted[start : start + _REASSIGN_CHUNK])
                    .order_by("id")
                    .values_list("id", flat=True)
                )
        for start in range(0, len(moved), _REASSIGN_CHUNK):
            Activity.objects.filter(
                workspace=workspace,
                member_id=from_member_id,
                pk__in=moved[start : start + _REASSIGN_CHUNK],
            ).update(member_id=to_member_id)
        member_rollups_rebuild(workspace_id=workspace.pk, member_ids=[from_member_id, to_member_id])
        members_seen_extend(workspace_id=workspace.pk, member_id=to_member_id, activity_ids=moved)
    return moved


def kind_weight_set(*, workspace: Workspace, kind: str, weight: int, actor: Any) -> None:
    """Set the workspace's weight of a kind (0..1000) for activities recorded from now on."""
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = gettext("Unknown activity kind “%(kind)s”.") % {"kind": kind}
    if isinstance(weight, bool) or not isinstance(weight, int):
        errors["weight"] = gettext("Enter a whole number.")
    elif not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        errors["weight"] = gettext("Enter a weight from %(min)d to %(max)d.") % {
            "min": WEIGHT_MIN,
            "max": WEIGHT_MAX,
        }
    if errors:
        raise ActivityValidationError(errors)
    with transaction.atomic():
        previous = weights_for(workspace=workspace)[kind]
        row, _ = KindWeight.objects.update_or_create(
            workspace=workspace, kind=kind, defaults={"weight": weight}
        )
        audit_record(
            workspace=workspace,
            actor=actor,
            action="activity.kind_weight_set",
            target=row,
            data={"kind": kind, "weight": weight, "previous": previous},
        )


def activities_anonymise(*, workspace: Workspace, member_ids: Sequence[int]) -> int:
    """Drop the properties of these members' activities (erasure): kind, channel, time and
    weight stay, so counts, rollups and scores are unchanged. Returns the rows changed."""
    return (
        Activity.objects.filter(workspace=workspace, member_id__in=member_ids)
        .exclude(properties={})
        .update(properties={})
    )
