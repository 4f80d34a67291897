"""Periodic housekeeping of the core app (scheduled by Celery beat in settings.py)."""

from __future__ import annotations

from celery import shared_task

from circolo.core.idempotency import idempotency_purge


@shared_task(name="circolo.core.tasks.idempotency_purge_task")
def idempotency_purge_task() -> int:
    """Delete idempotency records past their 24-hour retention; safe to run any number of times."""
    return idempotency_purge()
