"""The embedded runtime plays Celery beat's schedule in process."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.utils import timezone

from circolo.activity.models import ActivityChunk, DailyRollup
from circolo.core import background
from circolo.core.background import InProcessBeat, start_in_process_beat
from circolo.testing.factories import ActivityFactory

SCHEDULE = {
    "sweep": {"task": "circolo.activity.tasks.process_pending", "schedule": 300.0},
    "purge": {"task": "circolo.core.tasks.idempotency_purge_task", "schedule": 3600.0},
}


@pytest.mark.django_db
def test_due_tasks_run_once_per_period_and_sweep_unhandled_chunks(workspace) -> None:
    row = ActivityFactory(member__workspace=workspace)
    chunk = ActivityChunk.objects.create(
        workspace=workspace,
        first_id=row.pk,
        last_id=row.pk,
        size=1,
        created_at=timezone.now() - dt.timedelta(minutes=10),
    )
    type(row).objects.filter(pk=row.pk).update(chunk=chunk)
    beat = InProcessBeat(SCHEDULE, now=0.0)
    assert beat.tick(now=10.0) == []
    assert beat.tick(now=301.0) == ["circolo.activity.tasks.process_pending"]
    chunk.refresh_from_db()
    assert chunk.handled_at is not None
    assert DailyRollup.objects.get(workspace=workspace).count == 1
    assert beat.tick(now=302.0) == []
    assert beat.tick(now=3601.0) == [
        "circolo.activity.tasks.process_pending",
        "circolo.core.tasks.idempotency_purge_task",
    ]


def test_an_unknown_task_fails_at_start() -> None:
    with pytest.raises(KeyError):
        InProcessBeat({"bad": {"task": "circolo.no.such.task", "schedule": 1.0}}, now=0.0)


def test_a_failing_task_is_logged_and_runs_again_next_turn(monkeypatch) -> None:
    beat = InProcessBeat({"purge": SCHEDULE["purge"]}, now=0.0)
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("database away")

    monkeypatch.setattr(beat.tasks["purge"], "apply", broken)
    logged = []
    monkeypatch.setattr(
        background.logger, "exception", lambda message, *args: logged.append(message % args)
    )
    assert beat.tick(now=3601.0) == []
    assert logged == [
        "scheduled task circolo.core.tasks.idempotency_purge_task failed; it runs again next turn"
    ]
    assert beat.tick(now=3602.0) == []
    assert beat.tick(now=7202.0) == []
    assert len(calls) == 2


def test_not_started_when_celery_workers_do_the_work(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert start_in_process_beat() is None


def test_an_urgent_writer_goes_before_the_next_background_job() -> None:
    turns = background._WriteTurns()
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turns.turn(urgent=False):
            holding.set()
            release.wait(5)
            order.append("first job")

    def take(name: str, urgent: bool) -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    first = threading.Thread(target=hold)
    first.start()
    assert holding.wait(5)
    job = threading.Thread(target=take, args=("next job", False))
    job.start()
    time.sleep(0.05)  # the job is queued before the webhook arrives
    hook = threading.Thread(target=take, args=("webhook", True))
    hook.start()
    time.sleep(0.05)
    release.set()
    for thread in (first, job, hook):
        thread.join(5)
    assert order == ["first job", "webhook", "next job"]
