"""Run background work: on Celery when a broker is configured, else in process after commit."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction

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
