"""Handlers react to new activities, exactly once per activity, after the recording commits.

A handler is `fn(*, workspace_id: int, activities: Sequence[HandledActivity]) -> None`,
registered with `@activity_handler(kinds=...)` (None = every kind). `chunks_handle()`
claims whole chunks (`ActivityChunk`: the new activities of one recording call) by setting
their `handled_at` (only chunks still unclaimed) and runs the handlers on the chunks'
activities in the same transaction: a second run, a retry or a concurrent worker finds
nothing left to claim, and a handler that fails rolls the claim back so that the sweep
(`process_pending`) tries again later. Every new activity belongs to exactly one chunk, so it
is handled exactly once, and recording writes each activity row once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from django.db import transaction
from django.utils import timezone

from circolo.activity import dialect


@dataclass(frozen=True, slots=True)
class HandledActivity:
    """A new activity as handlers see it (read-only)."""

    id: int
    workspace_id: int
    member_id: int
    kind: str
    channel: str
    occurred_at: dt.datetime
    weight: int
    source: str
    source_id: str
    properties_json: str = field(repr=False)

    @property
    def properties(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.properties_json)
        return value


# Columns of a claimed row, in the order the claim returns them.
_ROW_ID, _ROW_KIND = 0, 2


class ActivityBatch(Sequence[HandledActivity]):
    """Claimed activities of one workspace; rows become HandledActivity only when read.

    Set-based handlers only need `.ids` and never pay for building Python objects per row.
    """

    __slots__ = ("_items", "_rows", "ids", "workspace_id")

    def __init__(self, *, workspace_id: int, rows: list[tuple[Any, ...]]) -> None:
        self.workspace_id = workspace_id
        self._rows = rows
        self._items: list[HandledActivity] | None = None
        self.ids: list[int] = [row[_ROW_ID] for row in rows]

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The claimed rows: id, member_id, kind, channel, occurred_at, weight, source,
        source_id, properties (JSON text; occurred_at as the driver returned it)."""
        return self._rows

    def of_kinds(self, kinds: frozenset[str]) -> ActivityBatch:
        return ActivityBatch(
            workspace_id=self.workspace_id,
            rows=[row for row in self._rows if row[_ROW_KIND] in kinds],
        )

    def _materialised(self) -> list[HandledActivity]:
        if self._items is None:
            self._items = [
                HandledActivity(
                    id=row[0],
                    workspace_id=self.workspace_id,
                    member_id=row[1],
                    kind=row[2],
                    channel=row[3],
                    occurred_at=dialect.datetime_value(row[4]),
                    weight=row[5],
                    source=row[6],
                    source_id=row[7],
                    properties_json=row[8] if isinstance(row[8], str) else json.dumps(row[8]),
                )
                for row in self._rows
            ]
        return self._items

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> HandledActivity: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[HandledActivity]: ...

    def __getitem__(self, index: int | slice) -> HandledActivity | Sequence[HandledActivity]:
        return self._materialised()[index]

    def __iter__(self) -> Iterator[HandledActivity]:
        return iter(self._materialised())


class ChunkBatch(Sequence[HandledActivity]):
    """The activities of one claimed chunk, read from the database only when a handler asks.

    Set-based handlers select the rows in SQL with `where()` and never bring them to Python;
    iterating, indexing, `.rows`, `.ids` or `of_kinds()` read them once (ordered by id).
    """

    __slots__ = ("_batch", "chunk_id", "first_id", "last_id", "size", "workspace_id")

    def __init__(
        self, *, workspace_id: int, chunk_id: int, first_id: int, last_id: int, size: int
    ) -> None:
        self.workspace_id = workspace_id
        self.chunk_id = chunk_id
        self.first_id = first_id
        self.last_id = last_id
        self.size = size
        self._batch: ActivityBatch | None = None

    def where(self) -> tuple[str, list[Any]]:
        """WHERE terms (and params) selecting this chunk's rows of activity_activity."""
        p = dialect.placeholder()
        return (
            f"id BETWEEN {p} AND {p} AND chunk_id = {p} AND {dialect.workspace_term()} = {p}",
            [self.first_id, self.last_id, self.chunk_id, self.workspace_id],
        )

    def _loaded(self) -> ActivityBatch:
        if self._batch is None:
            where, params = self.where()
            properties = "properties::text" if dialect.is_postgres() else "properties"
            cursor = dialect.raw_cursor()
            try:
                cursor.execute(
                    "SELECT id, member_id, kind, channel, occurred_at, weight, source,"
                    f" source_id, {properties} FROM activity_activity WHERE {where}"
                    " ORDER BY id",
                    params,
                )
                rows: list[tuple[Any, ...]] = cursor.fetchall()
            finally:
                cursor.close()
            self._batch = ActivityBatch(workspace_id=self.workspace_id, rows=rows)
        return self._batch

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self._loaded().rows

    @property
    def ids(self) -> list[int]:
        return self._loaded().ids

    def of_kinds(self, kinds: frozenset[str]) -> ActivityBatch:
        return self._loaded().of_kinds(kinds)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> HandledActivity: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[HandledActivity]: ...

    def __getitem__(self, index: int | slice) -> HandledActivity | Sequence[HandledActivity]:
        return self._loaded()[index]

    def __iter__(self) -> Iterator[HandledActivity]:
        return iter(self._loaded())


def batch_columns(activities: Sequence[HandledActivity]) -> tuple[list[Any], ...]:
    """(member_id, kind, channel, occurred_at, weight) of a batch as five lists (for SQL arrays)."""
    if isinstance(activities, ActivityBatch | ChunkBatch):
        rows = activities.rows
        return (
            [row[1] for row in rows],
            [row[2] for row in rows],
            [row[3] for row in rows],
            [row[4] for row in rows],
            [row[5] for row in rows],
        )
    return (
        [activity.member_id for activity in activities],
        [activity.kind for activity in activities],
        [activity.channel for activity in activities],
        [activity.occurred_at for activity in activities],
        [activity.weight for activity in activities],
    )


def activity_ids(activities: Sequence[HandledActivity]) -> list[int]:
    """The ids of a batch, without building objects when it is an ActivityBatch."""
    if isinstance(activities, ActivityBatch | ChunkBatch):
        return activities.ids
    return [activity.id for activity in activities]


class Handler(Protocol):
    def __call__(self, *, workspace_id: int, activities: Sequence[HandledActivity]) -> None: ...


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    kinds: frozenset[str] | None


_REGISTRY: list[_Registration] = []


def activity_handler(kinds: Iterable[str] | None = None) -> Callable[[Handler], Handler]:
    """Register a handler for new activities of `kinds` (None: every kind); runs in order."""
    wanted = frozenset(kinds) if kinds is not None else None

    def register(handler: Handler) -> Handler:
        if not any(entry.handler is handler for entry in _REGISTRY):
            _REGISTRY.append(_Registration(handler=handler, kinds=wanted))
        return handler

    return register


def activity_handler_remove(handler: Handler) -> None:
    """Unregister a handler (tests, plugins being unloaded)."""
    _REGISTRY[:] = [entry for entry in _REGISTRY if entry.handler is not handler]


def _claim(*, workspace_id: int, chunk_ids: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Mark the still-unhandled chunks among `chunk_ids` handled: (id, first, last, size)."""
    p = dialect.placeholder()
    in_chunks, chunks_param = dialect.ids_filter("id", chunk_ids)
    cursor = dialect.raw_cursor()
    try:
        cursor.execute(
            f"UPDATE activity_activitychunk SET handled_at = {p}"
            f" WHERE workspace_id = {p} AND {in_chunks} AND handled_at IS NULL"
            " RETURNING id, first_id, last_id, size",
            [dialect.datetime_param(timezone.now()), workspace_id, chunks_param],
        )
        claimed: list[tuple[int, int, int, int]] = cursor.fetchall()
    finally:
        cursor.close()
    return claimed


def chunks_handle(*, workspace_id: int, chunk_ids: Sequence[int]) -> int:
    """Claim the still-unhandled chunks among `chunk_ids` and run every handler once on each
    chunk's activities, in the claim's transaction (a failing handler rolls the claim back).

    Returns how many activities this call handled (0 when another run got them first).
    """
    if not chunk_ids:
        return 0
    handled = 0
    with transaction.atomic():
        dialect.lock_workspace_rollups(workspace_id)
        for chunk_id, first_id, last_id, size in sorted(
            _claim(workspace_id=workspace_id, chunk_ids=chunk_ids)
        ):
            batch = ChunkBatch(
                workspace_id=workspace_id,
                chunk_id=chunk_id,
                first_id=first_id,
                last_id=last_id,
                size=size,
            )
            handled += size
            for entry in list(_REGISTRY):
                selected = batch if entry.kinds is None else batch.of_kinds(entry.kinds)
                if len(selected):
                    entry.handler(workspace_id=workspace_id, activities=selected)
    return handled


def activities_handle(*, workspace_id: int, ids: Sequence[int]) -> int:
    """Handle the chunks that the activities `ids` were recorded in (each chunk once).

    Returns how many activities this call handled (0 when another run got them first).
    """
    if not ids:
        return 0
    where, params = dialect.activities_by_ids(workspace_id, ids)
    cursor = dialect.raw_cursor()
    try:
        cursor.execute(
            f"SELECT DISTINCT chunk_id FROM activity_activity WHERE {where}"
            " AND chunk_id IS NOT NULL",
            params,
        )
        chunk_ids = [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()
    return chunks_handle(workspace_id=workspace_id, chunk_ids=chunk_ids)
