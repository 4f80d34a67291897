"""Backfill and reconciliation: walk a store's API page by page and write what it returns.

A run remembers the resource and cursor of the next page, committed together with the
records of the page before it, so a run that stops (crash, deploy, outage) resumes exactly
where it stopped. A backfill walks everything; a reconciliation walks what changed since the
last finished reconciliation (less an overlap), and counts what it had to repair: records
that were missing here or older than the platform's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from circolo.commerce.connectors.base import RESOURCES, ConnectorError, connector_for
from circolo.commerce.models import Store, SyncRun
from circolo.commerce.schema import PayloadError
from circolo.commerce.services import CREATED, UPDATED
from circolo.commerce.webhooks import record_apply

logger = logging.getLogger(__name__)

# Reconciliation looks back this far before the last run's start: clocks and late commits.
RECONCILE_OVERLAP = dt.timedelta(minutes=10)
# A first reconciliation without any earlier run looks back this far.
RECONCILE_FIRST_WINDOW = dt.timedelta(days=3)


@dataclass(frozen=True)
class SyncResult:
    run_id: int
    status: str
    fetched: int
    repaired: int


def store_sync(*, store: Store, mode: str, max_pages: int | None = None) -> SyncResult:
    """Run, or resume, a backfill or reconciliation of `store`.

    An unfinished run of the same mode is resumed from its cursor. `max_pages` stops after so
    many pages (the run stays "running" and resumes next time). Connector failures end the
    run as failed with the error; the next call starts where it failed.
    """
    if mode not in SyncRun.Mode.values:
        raise ValueError(f"unknown sync mode {mode!r}")
    connector = connector_for(store.platform)
    run = _run_open(store, mode)
    pages = 0
    while True:
        if max_pages is not None and pages >= max_pages:
            break
        resource = run.resource
        try:
            page = connector.fetch_page(
                store=store, resource=resource, cursor=run.cursor, since=run.since
            )
        except ConnectorError as error:
            run.status = SyncRun.Status.FAILED
            run.error = str(error)[:4000]
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            logger.warning("sync %s of store %s failed: %s", run.pk, store.pk, error)
            break
        with transaction.atomic():
            for record in page.records:
                try:
                    with transaction.atomic():
                        outcome = record_apply(store=store, record=record)
                except PayloadError as error:
                    # One bad record must not stop the walk; it is logged and counted.
                    logger.warning("sync %s: skipped a record: %s", run.pk, error)
                    _count(run, resource, "invalid")
                    continue
                run.fetched += 1
                if outcome in (CREATED, UPDATED):
                    run.repaired += 1
                    _count(run, resource, outcome)
            pages += 1
            if page.next_cursor:
                run.cursor = page.next_cursor
            else:
                run.resources_done = [*run.resources_done, resource]
                remaining = [r for r in RESOURCES if r not in run.resources_done]
                run.cursor = ""
                if remaining:
                    run.resource = remaining[0]
                else:
                    run.status = SyncRun.Status.DONE
                    run.finished_at = timezone.now()
            run.save()
        if run.status != SyncRun.Status.RUNNING:
            break
    return SyncResult(run_id=run.pk, status=run.status, fetched=run.fetched, repaired=run.repaired)


def _count(run: SyncRun, resource: str, outcome: str) -> None:
    detail = dict(run.repaired_detail)
    key = f"{resource}:{outcome}"
    detail[key] = int(detail.get(key, 0)) + 1
    run.repaired_detail = detail


def _run_open(store: Store, mode: str) -> SyncRun:
    with transaction.atomic():
        unfinished = (
            SyncRun.objects.select_for_update()
            .filter(
                store=store, mode=mode, status__in=[SyncRun.Status.RUNNING, SyncRun.Status.FAILED]
            )
            .order_by("-started_at")
            .first()
        )
        if unfinished is not None:
            unfinished.status = SyncRun.Status.RUNNING
            unfinished.error = ""
            unfinished.finished_at = None
            unfinished.save(update_fields=["status", "error", "finished_at"])
            return unfinished
        since = None
        if mode == SyncRun.Mode.RECONCILE:
            last = (
                SyncRun.objects.filter(store=store, status=SyncRun.Status.DONE)
                .order_by("-started_at")
                .first()
            )
            since = (
                last.started_at - RECONCILE_OVERLAP
                if last is not None
                else timezone.now() - RECONCILE_FIRST_WINDOW
            )
        return SyncRun.objects.create(
            workspace_id=store.workspace_id,
            store=store,
            mode=mode,
            since=since,
            resource=RESOURCES[0],
            started_at=timezone.now(),
        )


def last_reconciliation(*, store: Store) -> SyncRun | None:
    return (
        SyncRun.objects.filter(store=store, mode=SyncRun.Mode.RECONCILE)
        .order_by("-started_at")
        .first()
    )
