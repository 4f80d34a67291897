"""Run background work: on Celery when a broker is configured, else in process after commit."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection, connections, transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task, *args: Any, detach: bool = False) -> None:
    """Schedule `task(*args)` once the current transaction commits (at once outside one).

    Tasks take ids and are idempotent, so a retry or a second delivery changes nothing.
    `detach`: without Celery, run it on the process's background thread instead of in the
    caller's thread, for work the caller must not wait for (webhook processing).
    """

    def _send() -> None:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            task.apply_async(args=args)
        elif detach and settings.CIRCOLO_BACKGROUND_THREAD:
            _background().put((task, args))
        else:
            task.apply(args=args, throw=True)

    transaction.on_commit(_send, robust=False)


_queue: queue.Queue[tuple[Task, tuple[Any, ...]]] | None = None
_queue_lock = threading.Lock()


def _background() -> queue.Queue[tuple[Task, tuple[Any, ...]]]:
    """The embedded runtime's worker: one daemon thread per process running queued tasks in
    order. Work lost with the process is found again by the tasks' sweeps (their inboxes)."""
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.Queue()
            thread = threading.Thread(target=_drain, args=(_queue,), name="circolo-worker")
            thread.daemon = True
            thread.start()
        return _queue


class _WriteTurns:
    """Turns at writing to SQLite among the threads of one process, urgent ones first.

    SQLite has one writer at a time, and a writer that finds the database busy sleeps in
    steps of up to 100 ms before it looks again, so a short write queued behind the background
    thread's jobs could wait a second. Here the web threads and the background thread take
    turns on a condition that wakes the next one at once, and a waiting urgent writer (a
    webhook being stored) goes before the background's next job. Other processes still meet
    SQLite's own lock; PostgreSQL needs none of this."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = 0

    @contextmanager
    def turn(self, *, urgent: bool) -> Iterator[None]:
        with self._cond:
            if urgent:
                self._urgent += 1
                while self._busy:
                    self._cond.wait()
                self._urgent -= 1
            else:
                while self._busy or self._urgent:
                    self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


_turns = _WriteTurns()


@contextmanager
def write_turn(*, urgent: bool = False) -> Iterator[None]:
    """Hold this process's turn at writing while on SQLite (see _WriteTurns); a no-op on
    other databases. Not re-entrant: take it around a whole transaction, once."""
    if connection.vendor != "sqlite":
        yield
        return
    with _turns.turn(urgent=urgent):
        yield


def _drain(jobs: queue.Queue[tuple[Task, tuple[Any, ...]]]) -> None:
    while True:
        task, args = jobs.get()
        try:
            with write_turn():
                task.apply(args=args, throw=True)
        except Exception:
            logger.exception("background task %s failed; its sweep retries it", task.name)
        finally:
            connections.close_all()
            jobs.task_done()


def background_idle(timeout: float = 60.0) -> bool:
    """Wait until the background thread has nothing queued (benchmarks, the demo)."""
    jobs = _queue
    if jobs is None:
        return True
    deadline = time.monotonic() + timeout
    while jobs.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    return not jobs.unfinished_tasks


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
