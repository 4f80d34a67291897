"""Background work of the activity stream: run handlers on new activities, sweep leftovers."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from circolo.activity.handlers import activities_handle, chunks_handle
from circolo.activity.models import ActivityChunk
from circolo.core.background import enqueue_on_commit

logger = logging.getLogger(__name__)

# Unhandled chunks per sweep query.
CHUNKS_PER_SWEEP = 100
# Chunks left unhandled this long are picked up by the sweep (their task was lost/failed).
PENDING_AFTER = dt.timedelta(minutes=1)


def handlers_schedule(*, workspace_id: int, chunk_id: int) -> None:
    """Run the handlers on a chunk of new activities after the current transaction commits."""
    enqueue_on_commit(process_chunk, workspace_id, chunk_id)


@shared_task(
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def process_chunk(workspace_id: int, chunk_id: int) -> int:
    """Handle a chunk of new activities; idempotent (claims the chunk via handled_at)."""
    return chunks_handle(workspace_id=workspace_id, chunk_ids=[chunk_id])


@shared_task(
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def process_activities(workspace_id: int, ids: list[int]) -> int:
    """Handle the chunks of the listed activities of a workspace; idempotent."""
    return activities_handle(workspace_id=workspace_id, ids=ids)


@shared_task
def process_pending(older_than_seconds: float | None = None) -> int:
    """Handle chunks still unhandled after a while; returns how many activities were handled.

    Walks the unhandled chunks once by id (a chunk whose handler fails is logged and left for
    the next sweep, so one bad handler cannot stall the others).
    """
    age = (
        dt.timedelta(seconds=older_than_seconds)
        if older_than_seconds is not None
        else PENDING_AFTER
    )
    cutoff = timezone.now() - age
    handled = 0
    after_id = 0
    while True:
        page = list(
            ActivityChunk.objects.filter(
                handled_at__isnull=True, created_at__lt=cutoff, id__gt=after_id
            )
            .order_by("id")
            .values_list("workspace_id", "id")[:CHUNKS_PER_SWEEP]
        )
        if not page:
            return handled
        after_id = page[-1][1]
        for workspace_id, chunk_id in page:
            try:
                handled += chunks_handle(workspace_id=workspace_id, chunk_ids=[chunk_id])
            except Exception:
                # Logged with its traceback; the chunk stays unhandled for the next sweep.
                logger.exception(
                    "activity handlers failed for workspace %s (chunk %d); retried on next sweep",
                    workspace_id,
                    chunk_id,
                )
