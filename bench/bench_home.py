"""Workspace home at 1,000,000 activities: render time and SQL queries, reading rollups.

    python bench/bench_home.py                      # SQLite, 1,000,000 activities
    python bench/bench_home.py --db postgres        # PostgreSQL
    python bench/bench_home.py --activities 200000  # a quicker run

Each run makes a fresh database (SQLite: a file in a temporary folder; PostgreSQL: the
database `circolo_bench_home`, created and dropped here, server from BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432), migrates it and fills one workspace with the
demo generator (members through people.services.member_resolve, activities through
activity.services.activity_record_bulk, handlers in process maintaining the rollups).

Then an analyst's session renders insights:home with Django's test Client: a few warm-up
requests, then --runs timed requests (p50 / p99 by nearest rank) and the SQL queries of one
request. The baseline, measured in the same run, computes the page's figures (active members
today / 7 / 30 days, 90 days of daily active members, 30 days of totals by kind) by scanning
the activity table instead of the rollups, which is what the page would cost without them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import configure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "circolo_bench_home"


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def fill(*, members: int, activities: int) -> tuple[Any, float]:
    """A workspace filled by the demo generator; returns it and the seconds it took."""
    from tqdm import tqdm

    from circolo.core.models import Workspace
    from circolo.demo.generator import demo_generate

    workspace = Workspace.objects.create(
        name="Bottega Bench", slug="bench", time_zone="Europe/Rome"
    )
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    started = time.perf_counter()
    demo_generate(workspace=workspace, members=members, activities=activities, progress=progress)
    return workspace, time.perf_counter() - started


def analyst_client(workspace: Any) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from circolo.core.models import Role, WorkspaceRole

    user = get_user_model().objects.create_user(
        username="analyst@bench.test", email="analyst@bench.test", password=None
    )
    WorkspaceRole.objects.create(workspace=workspace, user=user, role=Role.ANALYST)
    client = Client()
    client.force_login(user)
    return client


def time_page(
    client: Any, url: str, *, runs: int, warmup: int
) -> tuple[list[float], list[dict[str, str]], int]:
    """Timed renders of `url` (ms), the queries of one render and the response size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return samples, list(queries.captured_queries), len(response.content)


def scan_figures(workspace: Any) -> None:
    """The home page's figures computed from the activity table itself (the baseline)."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from circolo.activity.models import Activity

    end = dt.datetime.now(dt.UTC)
    today = end.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = Activity.objects.filter(workspace=workspace)
    for days in (1, 7, 30):
        since = today - dt.timedelta(days=days - 1)
        rows.filter(occurred_at__gte=since).values("member_id").distinct().count()
    list(
        rows.filter(occurred_at__gte=today - dt.timedelta(days=89))
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(members=Count("member_id", distinct=True))
        .values_list("day", "members")
    )
    list(
        rows.filter(occurred_at__gte=today - dt.timedelta(days=29))
        .values("kind")
        .annotate(total=Count("id"))
        .values_list("kind", "total")
    )


def time_scan(workspace: Any, *, runs: int) -> list[float]:
    scan_figures(workspace)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        scan_figures(workspace)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=20, help="timed page renders")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=5, help="timed table scans")
    args = parser.parse_args()

    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-home-")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.urls import reverse

        from circolo.activity.models import Activity, DailyRollup, MemberDailyRollup

        call_command("migrate", verbosity=0)
        workspace, fill_seconds = fill(members=args.members, activities=args.activities)
        stored = Activity.objects.filter(workspace=workspace).count()
        rollup_rows = (
            DailyRollup.objects.filter(workspace=workspace).count()
            + MemberDailyRollup.objects.filter(workspace=workspace).count()
        )
        client = analyst_client(workspace)
        url = reverse("insights:home", kwargs={"slug": workspace.slug})
        samples, queries, size = time_page(client, url, runs=args.runs, warmup=args.warmup)
        scans = time_scan(workspace, runs=args.baseline_runs)

        vendor = connection.vendor
        if vendor == "sqlite":
            version = connection.Database.sqlite_version
        else:
            number = connection.pg_version
            version = f"{number // 10000}.{number % 10000}"
        print()
        print(
            f"Workspace home (insights:home), {vendor} {version}, {stored:,} activities, "
            f"{args.members:,} members requested, {rollup_rows:,} rollup rows; "
            f"data generated in {fill_seconds:.0f} s."
        )
        print()
        print("| What | Runs | p50 ms | p99 ms | SQL queries |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| insights:home, warm, reading rollups ({size / 1024:.0f} KB) | {len(samples)} "
            f"| {statistics.median(samples):.1f} | {percentile(samples, 99):.1f} | {len(queries)} |"
        )
        print(
            f"| baseline: the same figures by scanning the activity table | {len(scans)} "
            f"| {statistics.median(scans):.1f} | {percentile(scans, 99):.1f} | 5 |"
        )
        print()
        print("Slowest SQL of one render (ms):")
        for query in sorted(queries, key=lambda q: -float(q["time"]))[:4]:
            print(f"- {float(query['time']) * 1000:.1f}: {' '.join(query['sql'].split())[:110]}")
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
