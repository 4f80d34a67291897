"""The few SQL fragments that differ between PostgreSQL and SQLite on the activity hot paths.

The bulk path, the handler claim and the rollup upserts run on the raw DB-API cursor of
Django's connection (psycopg 3 or sqlite3): every statement here is set-based, and going
around the ORM saves per-row Python work. Placeholders are `%s` on PostgreSQL, `?` on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

UTC = dt.UTC
# Member "love" decays by 0.9 per month; a month is a mean Gregorian month.
MONTH_SECONDS = 30.436875 * 86400.0
EPOCH = dt.datetime(2020, 1, 1, tzinfo=UTC)
# ln(1 / 0.9): growth of one activity = weight * exp(GROWTH_RATE * months from EPOCH).
GROWTH_RATE = -math.log(0.9)
_EPOCH_JULIAN_DAY = 2458849.5  # julianday('2020-01-01 00:00:00') in SQLite


def is_postgres() -> bool:
    """True on PostgreSQL, False on SQLite; any other backend is a configuration error."""
    vendor = connection.vendor
    if vendor == "postgresql":
        return True
    if vendor == "sqlite":
        return False
    raise ImproperlyConfigured(f"circolo.activity supports PostgreSQL and SQLite, not {vendor}")


def placeholder() -> str:
    return "%s" if is_postgres() else "?"


def raw_cursor() -> Any:
    """A DB-API cursor on Django's current connection (same transaction as the ORM)."""
    connection.ensure_connection()
    return connection.connection.cursor()


def ids_filter(column: str, ids: Sequence[int]) -> tuple[str, Any]:
    """`column` is one of `ids`, as one SQL parameter whatever the number of ids."""
    if is_postgres():
        return f"{column} = ANY(%s::bigint[])", list(ids)
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(ids))


def activities_by_ids(workspace_id: int, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """WHERE terms (and params) picking some activities of a workspace by primary key.

    The rows are looked up by primary key; see workspace_term() for the workspace check.
    """
    in_ids, ids_param = ids_filter("id", ids)
    return f"{workspace_term()} = {placeholder()} AND {in_ids}", [workspace_id, ids_param]


def workspace_term() -> str:
    """The workspace column for statements that select rows by a more selective key.

    Written `+workspace_id` so that no planner walks a (workspace_id, ...) index over the whole
    workspace instead of looking the rows up by id or member (statistics are often stale
    right after a bulk load, and then that index looks cheap).
    """
    return "+workspace_id"


def utc_day(column: str) -> str:
    """The UTC calendar day of a timestamp column."""
    if is_postgres():
        return f"(({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column})"


def growth_term(weight_column: str, time_column: str) -> str:
    """weight x (1/0.9)^(months from EPOCH to the timestamp), the same on both databases."""
    if is_postgres():
        seconds = f"(EXTRACT(EPOCH FROM {time_column})::double precision - {EPOCH.timestamp()!r})"
    else:
        seconds = f"((julianday({time_column}) - {_EPOCH_JULIAN_DAY!r}) * 86400.0)"
    return f"({weight_column} * EXP({GROWTH_RATE!r} * {seconds} / {MONTH_SECONDS!r}))"


def greatest(left: str, right: str) -> str:
    """The larger of two values where NULL means "none yet"."""
    if is_postgres():
        return f"GREATEST({left}, {right})"
    return f"MAX(COALESCE({left}, {right}), COALESCE({right}, {left}))"


def least(left: str, right: str) -> str:
    """The smaller of two values where NULL means "none yet"."""
    if is_postgres():
        return f"LEAST({left}, {right})"
    return f"MIN(COALESCE({left}, {right}), COALESCE({right}, {left}))"


def datetime_param(value: dt.datetime) -> Any:
    """A tz-aware datetime as this database stores it (SQLite: naive UTC text, like Django)."""
    if is_postgres():
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def datetime_value(raw: Any) -> dt.datetime:
    """A timestamp read through a raw cursor, as a tz-aware UTC datetime."""
    if isinstance(raw, str):
        raw = dt.datetime.fromisoformat(raw)
    if raw.tzinfo is None:
        return raw.replace(tzinfo=UTC)
    return raw.astimezone(UTC) if raw.utcoffset() else raw


def lock_workspace_rollups(workspace_id: int) -> None:
    """Serialise the writers of one workspace's rollups until the transaction ends.

    Handler batches, rebuilds and reassignments of a workspace take this lock before touching
    its rollups, so upserts never deadlock and a rebuild never interleaves with increments.
    SQLite needs nothing: its write transactions are already serial.
    """
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, workspace_id])


# First key of the two-key advisory lock: "ca" (circolo activity) as an int.
_LOCK_CLASS = 0x6361
