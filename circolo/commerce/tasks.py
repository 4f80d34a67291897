"""Background work of commerce: process webhook deliveries, retry them, reconcile stores."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from circolo.commerce.models import Store
from circolo.commerce.webhooks import deliveries_due, delivery_process, delivery_schedule

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def delivery_process_task(delivery_id: int) -> str:
    """Process one stored delivery (idempotent: a processed delivery is left alone)."""
    return delivery_process(delivery_id=delivery_id)


@shared_task
def deliveries_retry() -> int:
    """Schedule every delivery whose retry is due, and any whose task was lost."""
    due = deliveries_due(now=timezone.now())
    for delivery_id in due:
        delivery_schedule(delivery_id=delivery_id)
    return len(due)


@shared_task(autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def store_sync_task(store_id: int, mode: str) -> int:
    """Run or resume a backfill or reconciliation of one store; returns records repaired."""
    from circolo.commerce.sync import store_sync

    store = Store.objects.filter(pk=store_id).first()
    if store is None or store.status != Store.Status.ACTIVE:
        return 0
    return store_sync(store=store, mode=mode).repaired


@shared_task
def stores_reconcile() -> int:
    """Reconcile every active connected store (the beat schedule runs this hourly)."""
    from circolo.commerce.sync import store_sync

    count = 0
    stores = Store.objects.filter(status=Store.Status.ACTIVE).exclude(platform="file")
    for store in stores.select_related("workspace"):
        try:
            store_sync(store=store, mode="reconcile")
        except Exception:
            # One store's outage must not stop the others; the run keeps its error.
            logger.exception("reconciliation of store %s failed", store.pk)
        count += 1
    return count
