"""Fixtures of the activity tests: handlers in process, a counting handler, members."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.test import TestCase

from circolo.activity.handlers import HandledActivity, activity_handler, activity_handler_remove
from circolo.activity.models import Activity, ActivityChunk
from circolo.testing.factories import MemberFactory


@pytest.fixture(autouse=True)
def handlers_in_process(settings: Any) -> None:
    """Handlers run in this process when the transaction commits, even with REDIS_URL set."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


def unhandled_chunk(rows: Sequence[Activity], *, age: dt.timedelta | None = None) -> ActivityChunk:
    """Put rows made by ActivityFactory (no chunk: counted as handled) into one unhandled
    chunk, as if just recorded (`age` ago) and waiting for their handlers."""
    ids = [row.pk for row in rows]
    chunk = ActivityChunk.objects.create(
        workspace_id=rows[0].workspace_id,
        first_id=min(ids),
        last_id=max(ids),
        size=len(ids),
        created_at=dt.datetime.now(dt.UTC) - (age or dt.timedelta()),
    )
    Activity.objects.filter(pk__in=ids).update(chunk=chunk)
    return chunk


def unhandled_count(workspace: Any) -> int:
    """Activities of the workspace whose chunk still waits for its handlers."""
    return Activity.objects.filter(
        workspace=workspace,
        chunk__in=ActivityChunk.objects.filter(workspace=workspace, handled_at__isnull=True),
    ).count()


def on_commit_run() -> AbstractContextManager[Any]:
    """Run the on-commit callbacks (the handlers) registered inside the block at its end.

    Tests run inside a transaction that never commits; this stands in for the commit.
    """
    return TestCase.captureOnCommitCallbacks(execute=True)


class HandlerCalls:
    """Counts how many times each activity id reached the handler."""

    def __init__(self) -> None:
        self.by_id: Counter[int] = Counter()
        self.calls = 0

    def __call__(self, *, workspace_id: int, activities: Sequence[HandledActivity]) -> None:
        self.calls += 1
        for activity in activities:
            self.by_id[activity.id] += 1


@pytest.fixture
def handled() -> Iterator[HandlerCalls]:
    calls = HandlerCalls()
    activity_handler()(calls)
    yield calls
    activity_handler_remove(calls)


@pytest.fixture
def member(workspace: Any) -> Any:
    return MemberFactory(workspace=workspace, first_seen=None, last_seen=None)


def at(days_ago: float = 0.0, *, hour: int = 12) -> dt.datetime:
    """A UTC moment `days_ago` days before today at `hour`."""
    today = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days_ago)
