"""Run background work: on Celery when a broker is configured, else in process after commit."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connections, transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task, *args: Any) -> None:
    """Schedule `task(*args)` once the current transaction commits (at once outside one).

    Tasks take ids and are idempotent, so a retry or a second delivery changes nothing.
    """

    def _send() -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            task.apply(args=args, throw=True)
        else:
            task.apply_async(args=args)

    transaction.on_commit(_send, robust=False)


class InProcessBeat:
    """The embedded runtime's stand-in for Celery beat: plays settings.CELERY_BEAT_SCHEDULE
    inside a web worker, so sweeps and purges also happen without Redis. The scheduled
    tasks are idempotent, so several workers playing the same schedule is harmless."""

    def __init__(self, schedule: dict[str, dict[str, Any]], *, now: float | None = None) -> None:
        from circolo.celery import app

        start = time.monotonic() if now is None else now
        app.loader.import_default_modules()
        # An unknown task name is a configuration error: fail at start, not every turn.
        self.tasks: dict[str, Task] = {
            name: app.tasks[str(entry["task"])] for name, entry in schedule.items()
        }
        self.periods = {name: float(entry["schedule"]) for name, entry in schedule.items()}
        self.next_run = {name: start + period for name, period in self.periods.items()}

    def tick(self, *, now: float | None = None) -> list[str]:
        """Run every task that is due; return the names of the tasks that ran."""
        moment = time.monotonic() if now is None else now
        ran: list[str] = []
        for name, task in self.tasks.items():
            if moment < self.next_run[name]:
                continue
            self.next_run[name] = moment + self.periods[name]
            try:
                task.apply(throw=True)
            except Exception:
                logger.exception("scheduled task %s failed; it runs again next turn", task.name)
            else:
                ran.append(task.name)
        return ran

    def run_forever(self, stop: threading.Event, *, poll_seconds: float = 5.0) -> None:
        while not stop.wait(poll_seconds):
            try:
                self.tick()
            finally:
                # This thread's connections only: the worker's request threads keep theirs.
                connections.close_all()


def start_in_process_beat() -> threading.Event | None:
    """Start the in-process schedule in a daemon thread when no Celery workers exist."""
    if not settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BEAT_SCHEDULE:
        return None
    stop = threading.Event()
    beat = InProcessBeat(dict(settings.CELERY_BEAT_SCHEDULE))
    thread = threading.Thread(target=beat.run_forever, args=(stop,), name="circolo-beat")
    thread.daemon = True
    thread.start()
    return stop
