"""Acceptance 2 on PostgreSQL: OS processes recording the same batch at the same time leave
one row per source key and run the handlers once per row."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random

import pytest
from django.db import connection
from django.db.models import Sum

from circolo.activity.models import Activity, DailyRollup, MemberDailyRollup, MemberScore
from circolo.activity.tests.concurrent_worker import record_batch
from circolo.activity.tests.conftest import unhandled_count
from circolo.core.models import Workspace
from circolo.people.models import Member

PROCESSES = 3


def database_url() -> str:
    conf = connection.settings_dict
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{conf['USER']}{password}@{conf['HOST']}{port}/{conf['NAME']}"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_processes_recording_the_same_batch_leave_one_row_each_handled_once():
    workspace = Workspace.objects.create(name="Race", slug="race")
    members = [Member.objects.create(workspace=workspace, display_name=f"r{n}") for n in range(20)]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rng = random.Random(7)
    specs = [
        {
            "member_id": members[n % 20].pk,
            "kind": ("post", "reply", "order")[n % 3],
            "when": (start + dt.timedelta(minutes=37 * n)).isoformat(),
            "source_id": f"k{n % 900}",  # repeats inside the batch too
        }
        for n in range(1200)
    ]
    batches = []
    for _ in range(PROCESSES):
        shuffled = specs[:]
        rng.shuffle(shuffled)  # different orders make the processes collide on locks
        batches.append((database_url(), workspace.pk, shuffled))

    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        created = pool.starmap(record_batch, batches, chunksize=1)

    distinct = 900
    assert sum(created) == distinct
    rows = Activity.objects.filter(workspace=workspace)
    assert rows.count() == distinct
    assert unhandled_count(workspace) == 0
    daily = DailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))["n"]
    member_daily = MemberDailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))[
        "n"
    ]
    scores = MemberScore.objects.filter(workspace=workspace).aggregate(n=Sum("activity_count"))["n"]
    assert daily == member_daily == scores == distinct
