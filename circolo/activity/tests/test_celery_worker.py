"""Handlers on a real Celery worker consuming from Redis (runs when REDIS_URL is set)."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections
from django.db.models import Sum

from circolo.activity.models import ActivityChunk, DailyRollup, MemberScore
from circolo.activity.services import ActivityIn, activity_record, activity_record_bulk
from circolo.celery import app as celery_app
from circolo.core.models import Workspace
from circolo.people.models import Member


def close_worker_connections(**kwargs):
    # The worker thread has its own database connections: close them after each task so
    # that the test database can be dropped at the end of the run.
    connections.close_all()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (Redis broker)")
@pytest.mark.django_db(transaction=True)
def test_handlers_run_on_a_celery_worker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    eager_before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    task_postrun.connect(close_worker_connections, weak=False)
    workspace = Workspace.objects.create(name="Worker", slug="worker")
    member = Member.objects.create(workspace=workspace, display_name="Ada")
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
            result = activity_record_bulk(
                workspace=workspace,
                items=[
                    ActivityIn(
                        member_id=member.pk,
                        kind="post",
                        channel="community",
                        occurred_at=when,
                        source="w",
                        source_id=str(n % 40),
                    )
                    for n in range(50)
                ],
            )
            activity_record(
                workspace=workspace, member=member, kind="order", channel="shop",
                occurred_at=when, source="w", source_id="order-1",
            )  # fmt: skip
            assert len(result.created) == 40
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if not ActivityChunk.objects.filter(
                    workspace=workspace, handled_at__isnull=True
                ).exists():
                    break
                time.sleep(0.2)
    finally:
        task_postrun.disconnect(close_worker_connections)
        celery_app.conf.task_always_eager = eager_before

    assert not ActivityChunk.objects.filter(workspace=workspace, handled_at__isnull=True).exists()
    assert DailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))["n"] == 41
    assert MemberScore.objects.get(member=member).activity_count == 41
    member.refresh_from_db()
    assert member.first_seen == member.last_seen == when
