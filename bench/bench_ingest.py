"""Bulk activity ingest with dedupe: activities/s, next to ORM baselines measured in the same run.

    python bench/bench_ingest.py --db sqlite --n 200000
    python bench/bench_ingest.py --db postgres --n 200000

Each run makes a fresh database (SQLite: a file in a temporary folder; PostgreSQL: the
database `circolo_bench`, created and dropped here, server from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432), migrates it, creates a workspace per scenario with
2,000 members, and feeds n activities of which 30% are duplicates: half repeat rows stored
before the timing starts (a re-import), half repeat keys inside the input itself.

Scenarios (rates count every input item, duplicates included):
- bulk path: activity_record_bulk() in batches (--batch), handlers run in process after each
  commit (rollups, scores, first/last seen), as in the embedded default;
- bulk insert only: the same with the handlers deferred, then the handlers timed on their own;
- ORM loop: Activity.objects.get_or_create() per item, on --n-loop items, extrapolated;
- bulk_create(ignore_conflicts=True): no per-item result, no ids of duplicates, no handlers.
Finally every workspace is checked for duplicate rows and for one row per distinct key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import configure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "circolo_bench"
MEMBERS = 2_000
DUPLICATE_SHARE = 0.30


@dataclass
class Figure:
    scenario: str
    items: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("inf")


def make_workspace(slug: str) -> tuple[Any, list[int]]:
    from circolo.core.models import Workspace
    from circolo.people.models import Member

    workspace = Workspace.objects.create(name=slug.title(), slug=slug)
    Member.objects.bulk_create(
        Member(workspace=workspace, display_name=f"Customer {n}") for n in range(MEMBERS)
    )
    ids = list(Member.objects.filter(workspace=workspace).values_list("pk", flat=True))
    return workspace, ids


def make_items(n: int, member_ids: list[int], seed: int) -> tuple[list[Any], list[Any]]:
    """(stored beforehand, input): the input has n items, 30% of them duplicates."""
    from circolo.activity.services import ActivityIn

    rng = random.Random(seed)
    kinds = ["post", "reply", "reaction_given", "order", "review", "vote", "event_rsvp", "idea"]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=540)
    span = 540 * 86400

    def item(key: int) -> Any:
        kind = kinds[key % len(kinds)]
        properties: dict[str, Any] = {}
        if kind == "order":
            properties = {"total": rng.randrange(500, 30_000), "currency": "EUR"}
        elif kind == "review":
            properties = {"rating": rng.randrange(1, 6), "language": "it"}
        return ActivityIn(
            member_id=member_ids[rng.randrange(len(member_ids))],
            kind=kind,
            channel="shop" if kind in ("order", "review") else "community",
            occurred_at=start + dt.timedelta(seconds=rng.random() * span),
            source="bench",
            source_id=f"{kind}-{key}",
            properties=properties,
        )

    duplicates = int(n * DUPLICATE_SHARE)
    new = n - duplicates
    stored_count = duplicates // 2
    stored = [item(key) for key in range(stored_count)]
    fresh = [item(key) for key in range(stored_count, stored_count + new)]
    repeats = [fresh[rng.randrange(new)] for _ in range(duplicates - stored_count)]
    items = stored + fresh + repeats
    rng.shuffle(items)
    return stored, items


def distinct_keys(n: int) -> int:
    """Rows expected after make_items(n): the stored half of the duplicates plus the new."""
    duplicates = int(n * DUPLICATE_SHARE)
    return n - duplicates + duplicates // 2


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def bench_bulk(n: int, batch: int, handlers: bool, seed: int) -> list[Figure]:
    from circolo.activity import services
    from circolo.activity.handlers import chunks_handle
    from circolo.activity.services import activity_record_bulk

    slug = "bulk" if handlers else "bulk-no-handlers"
    workspace, members = make_workspace(slug)
    stored, items = make_items(n, members, seed)
    activity_record_bulk(workspace=workspace, items=stored)

    deferred: list[int] = []
    original = services.handlers_schedule
    if not handlers:

        def collect(*, workspace_id: int, chunk_id: int) -> None:
            deferred.append(chunk_id)

        services.handlers_schedule = collect

    def run() -> tuple[int, int]:
        created = duplicates = 0
        for start in range(0, len(items), batch):
            result = activity_record_bulk(workspace=workspace, items=items[start : start + batch])
            created += len(result.created)
            duplicates += len(result.duplicates)
        return created, duplicates

    try:
        seconds, (created, duplicates) = timed(run)
    finally:
        services.handlers_schedule = original
    note = f"{created:,} new, {duplicates:,} duplicates, batches of {batch:,}"
    if handlers:
        return [Figure("bulk path (handlers included)", n, seconds, note)]
    figures = [Figure("bulk insert only (handlers deferred)", n, seconds, note)]

    def handle() -> int:
        done = 0
        for chunk_id in deferred:
            done += chunks_handle(workspace_id=workspace.pk, chunk_ids=[chunk_id])
        return done

    handle_seconds, handled = timed(handle)
    figures.append(
        Figure(
            "handlers alone (rollups, scores, seen)",
            handled,
            handle_seconds,
            "per new activity, one chunk (a bulk call's new rows) per run",
        )
    )
    return figures


def bench_orm_loop(n: int, seed: int) -> Figure:
    from django.db import transaction

    from circolo.activity.kinds import weights_for
    from circolo.activity.models import Activity
    from circolo.activity.services import activity_record_bulk

    workspace, members = make_workspace("orm-loop")
    stored, items = make_items(n, members, seed)
    activity_record_bulk(workspace=workspace, items=stored)
    weights = weights_for(workspace=workspace)

    def run() -> None:
        with transaction.atomic():
            for item in items:
                Activity.objects.get_or_create(
                    workspace=workspace,
                    source=item.source,
                    source_id=item.source_id,
                    defaults={
                        "member_id": item.member_id,
                        "kind": item.kind,
                        "channel": item.channel,
                        "occurred_at": item.occurred_at,
                        "weight": weights[item.kind],
                        "properties": item.properties,
                    },
                )

    seconds, _ = timed(run)
    return Figure("ORM loop: get_or_create per item", n, seconds, "one transaction, no handlers")


def bench_bulk_create(n: int, batch: int, seed: int) -> Figure:
    from django.db import transaction

    from circolo.activity.kinds import weights_for
    from circolo.activity.models import Activity
    from circolo.activity.services import activity_record_bulk

    workspace, members = make_workspace("bulk-create")
    stored, items = make_items(n, members, seed)
    activity_record_bulk(workspace=workspace, items=stored)
    weights = weights_for(workspace=workspace)

    def run() -> None:
        with transaction.atomic():
            Activity.objects.bulk_create(
                (
                    Activity(
                        workspace=workspace,
                        member_id=item.member_id,
                        kind=item.kind,
                        channel=item.channel,
                        occurred_at=item.occurred_at,
                        weight=weights[item.kind],
                        properties=item.properties,
                        source=item.source,
                        source_id=item.source_id,
                    )
                    for item in items
                ),
                batch_size=min(batch, 5_000),
                ignore_conflicts=True,
            )

    seconds, _ = timed(run)
    return Figure(
        "bulk_create(ignore_conflicts=True)",
        n,
        seconds,
        "no per-item result, no ids for duplicates, no handlers",
    )


def check_no_duplicates(expected_rows: dict[str, int], handled: set[str]) -> list[str]:
    from django.db.models import Count

    from circolo.activity.models import Activity, ActivityChunk
    from circolo.core.models import Workspace

    problems = []
    duplicated = (
        Activity.objects.values("workspace_id", "source", "source_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    if duplicated:
        problems.append(f"{duplicated} source keys stored more than once")
    for slug, rows in expected_rows.items():
        workspace = Workspace.objects.get(slug=slug)
        found = Activity.objects.filter(workspace=workspace).count()
        if found != rows:
            problems.append(f"{slug}: {found} rows, expected {rows}")
        unhandled = Activity.objects.filter(
            workspace=workspace,
            chunk__in=ActivityChunk.objects.filter(workspace=workspace, handled_at__isnull=True),
        ).count()
        if slug in handled and unhandled:
            problems.append(f"{slug}: {unhandled} activities left unhandled")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=200_000, help="input items per scenario")
    parser.add_argument("--batch", type=int, default=50_000, help="items per bulk call")
    parser.add_argument("--n-loop", type=int, default=5_000, help="items for the ORM loop")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        if args.db == "sqlite":
            import sqlite3

            version = f"SQLite {sqlite3.sqlite_version}"
        else:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                version = f"PostgreSQL {cursor.fetchone()[0]}"

        figures = []
        figures += bench_bulk(args.n, args.batch, handlers=True, seed=args.seed)
        figures += bench_bulk(args.n, args.batch, handlers=False, seed=args.seed)
        figures.append(bench_bulk_create(args.n, args.batch, seed=args.seed))
        figures.append(bench_orm_loop(args.n_loop, seed=args.seed))

        problems = check_no_duplicates(
            {
                "bulk": distinct_keys(args.n),
                "bulk-no-handlers": distinct_keys(args.n),
                "orm-loop": distinct_keys(args.n_loop),
            },
            handled={"bulk", "bulk-no-handlers"},
        )

        print(
            f"\n### Activity ingest, {version}, {os.cpu_count()} CPUs, "
            f"{args.n:,} items with {DUPLICATE_SHARE:.0%} duplicates\n"
        )
        print("| scenario | items | seconds | activities/s | notes |")
        print("|---|---:|---:|---:|---|")
        for figure in figures:
            print(
                f"| {figure.scenario} | {figure.items:,} | {figure.seconds:.2f} "
                f"| {figure.rate:,.0f} | {figure.note} |"
            )
        print()
        if problems:
            print("FAILED checks: " + "; ".join(problems))
            return 1
        print("Checks: zero duplicate rows, one row per distinct key, every activity handled.")
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
