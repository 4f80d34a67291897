"""Background work of the activity stream: run handlers on new activities, sweep leftovers."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from circolo.activity.handlers import activities_handle
from circolo.activity.models import Activity
from circolo.core.background import enqueue_on_commit

logger = logging.getLogger(__name__)

# Ids per task message: small enough for a broker message, big enough for set-based SQL.
IDS_PER_TASK = 5_000
# Activities left unhandled this long are picked up by the sweep (their task was lost/failed).
PENDING_AFTER = dt.timedelta(minutes=1)


def handlers_schedule(*, workspace_id: int, ids: Sequence[int]) -> None:
    """Run the handlers on `ids` after the current transaction commits, in chunks."""
    for start in range(0, len(ids), IDS_PER_TASK):
        enqueue_on_commit(process_activities, workspace_id, list(ids[start : start + IDS_PER_TASK]))


@shared_task(
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def process_activities(workspace_id: int, ids: list[int]) -> int:
    """Handle the listed activities of a workspace; idempotent (claims via handled_at)."""
    return activities_handle(workspace_id=workspace_id, ids=ids)


@shared_task
def process_pending(older_than_seconds: float | None = None) -> int:
    """Handle activities still unhandled after a while; returns how many were handled.

    Walks the unhandled rows once by id (a batch whose handler fails is logged and left for
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
            Activity.objects.filter(handled_at__isnull=True, created_at__lt=cutoff, id__gt=after_id)
            .order_by("id")
            .values_list("workspace_id", "id")[:IDS_PER_TASK]
        )
        if not page:
            return handled
        after_id = page[-1][1]
        by_workspace: dict[int, list[int]] = defaultdict(list)
        for workspace_id, activity_id in page:
            by_workspace[workspace_id].append(activity_id)
        for workspace_id, ids in by_workspace.items():
            try:
                handled += activities_handle(workspace_id=workspace_id, ids=ids)
            except Exception:
                # Logged with its traceback; the rows stay unhandled for the next sweep.
                logger.exception(
                    "activity handlers failed for workspace %s (%d ids); retried on next sweep",
                    workspace_id,
                    len(ids),
                )
