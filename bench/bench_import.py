"""File import of order lines: lines/s of the import pipeline, next to ORM-loop baselines
measured in the same run.

    python bench/bench_import.py --db sqlite --lines 1000000
    python bench/bench_import.py --db postgres --lines 1000000

Each run makes a fresh database (SQLite: a file in a temporary folder; PostgreSQL: the
database `circolo_bench_import`, created and dropped here, server from BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432), migrates it and writes a CSV file shaped like
Shopify's order export: one row per order line, the order's fields on its first row only,
1-5 lines per order (3 on average), one customer per 4 orders (repeat buyers), 500 SKUs,
every order paid, half of them fulfilled, 2% cancelled, 5% partly refunded.

Figures (lines/s count every line of the file):
- dry run: every row read, mapped and checked, the report written (nothing else);
- import: the run, in batches (--batch-rows) of whole orders, each one transaction with
  its progress; members resolved, activities recorded and their handlers run in process
  after each commit (rollups, scores, first/last seen), buying summaries recomputed;
- same file again: the second import, which must change nothing;
- ORM loop (baseline): csv.DictReader and Order.objects.update_or_create +
  OrderLine.objects.update_or_create per line, in one transaction; no members, no
  activities, no refunds: the least a hand-written loop does; on --loop-lines lines;
- one by one (baseline): the same rows parsed the same way, then services.order_upsert per
  order (the import's semantics without the batching); on --loop-lines lines.
At the end the stored rows are checked: one order per order id, one line per file row, and
the second import changed nothing.
"""

from __future__ import annotations

import argparse
import csv
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

BENCH_DB = "circolo_bench_import"
SKUS = 500
COLUMNS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
    "Lineitem discount", "Billing Name", "Billing City", "Billing Country", "Refunded Amount",
    "Cancelled at", "Id", "Customer ID",
]  # fmt: skip


@dataclass
class Figure:
    scenario: str
    lines: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else float("inf")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def write_file(path: Path, lines: int, seed: int) -> tuple[int, int]:
    """The export: `lines` rows; returns (orders, lines)."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, 8, 0)
    customers = max(lines // 12, 1)
    orders = written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        while written < lines:
            count = min(rng.randint(1, 5), lines - written)
            orders += 1
            number = orders
            who = rng.randrange(customers)
            placed = start + dt.timedelta(minutes=number * 3 + rng.randrange(3))
            stamp = placed.strftime("%Y-%m-%d %H:%M:%S +0100")
            items = []
            for _k in range(count):
                sku = rng.randrange(SKUS)
                quantity = rng.randint(1, 3)
                price = 500 + (sku * 37) % 4500
                items.append((sku, quantity, price))
            subtotal = sum(q * p for _s, q, p in items)
            total = subtotal + 490
            fulfilled = number % 2 == 0
            cancelled = number % 50 == 7
            refunded = items[0][2] if number % 20 == 3 else 0
            for index, (sku, quantity, price) in enumerate(items):
                first = index == 0
                row = {
                    "Name": f"#{1000 + number}",
                    "Email": f"customer{who}@example.com",
                    "Created at": stamp,
                    "Id": str(4_000_000 + number),
                    "Currency": "EUR",
                    "Lineitem quantity": str(quantity),
                    "Lineitem name": f"Product {sku}",
                    "Lineitem price": f"{price / 100:.2f}",
                    "Lineitem sku": f"SKU-{sku:04d}",
                    "Lineitem discount": "0.00",
                }
                if first:
                    row.update(
                        {
                            "Financial Status": "partially_refunded" if refunded else "paid",
                            "Paid at": stamp,
                            "Fulfillment Status": "fulfilled" if fulfilled else "unfulfilled",
                            "Fulfilled at": stamp if fulfilled else "",
                            "Subtotal": f"{subtotal / 100:.2f}",
                            "Shipping": "4.90",
                            "Taxes": "0.00",
                            "Total": f"{total / 100:.2f}",
                            "Discount Code": "",
                            "Discount Amount": "0.00",
                            "Billing Name": f"Customer {who}",
                            "Billing City": "Bologna",
                            "Billing Country": "IT",
                            "Refunded Amount": f"{refunded / 100:.2f}",
                            "Cancelled at": stamp if cancelled else "",
                            "Customer ID": f"c{who}" if who % 10 < 7 else "",
                        }
                    )
                out.writerow([row.get(column, "") for column in COLUMNS])
                written += 1
    return orders, written


def make_store(slug: str) -> Any:
    from circolo.core.models import Workspace
    from circolo.testing.commerce import make_store as store_new

    workspace = Workspace.objects.create(name=slug.title(), slug=slug)
    return store_new(workspace, platform="file", secret="")


def bench_pipeline(path: Path, lines: int, batch_rows: int) -> tuple[list[Figure], Any]:
    from circolo.commerce.imports.runner import (
        import_check,
        import_create,
        import_map,
        import_run,
        import_start,
        job_fields,
        job_options,
    )

    store = make_store("import")

    def create() -> Any:
        def chunks() -> Any:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        job = import_create(
            store=store, kind="orders", file_name=path.name, chunks=chunks(), actor=None
        )
        return import_map(job=job, mapping=job_fields(job), options=job_options(job))

    create_seconds, job = timed(create)
    check_seconds, job = timed(lambda: import_check(job_id=job.pk))
    if job.rows_bad:
        raise SystemExit(f"the dry run found {job.rows_bad} bad rows")

    def run() -> Any:
        started = import_start(job=job, skip_bad_rows=False, actor=None)
        return import_run(job_id=started.pk, batch_rows=batch_rows)

    run_seconds, done = timed(run)
    figures = [
        Figure("upload: store, hash, sniff, suggest", lines, create_seconds, "one pass"),
        Figure("dry run", lines, check_seconds, "read, map, check every row; report only"),
        Figure(
            "import (the run)",
            lines,
            run_seconds,
            f"batches of {batch_rows:,} rows; members, activities + handlers, summaries",
        ),
        Figure(
            "import, end to end",
            lines,
            create_seconds + check_seconds + run_seconds,
            "upload + dry run + run",
        ),
    ]
    return figures, done


def bench_again(path: Path, lines: int, batch_rows: int, store: Any) -> tuple[Figure, Any]:
    from circolo.commerce.imports.runner import (
        import_check,
        import_create,
        import_map,
        import_run,
        import_start,
        job_fields,
        job_options,
    )

    def again() -> Any:
        job = import_create(
            store=store,
            kind="orders",
            file_name=path.name,
            chunks=[path.read_bytes()],
            actor=None,
        )
        job = import_map(job=job, mapping=job_fields(job), options=job_options(job))
        job = import_check(job_id=job.pk)
        job = import_start(job=job, skip_bad_rows=False, actor=None)
        return import_run(job_id=job.pk, batch_rows=batch_rows)

    seconds, job = timed(again)
    return Figure(
        "same file again (changes nothing)", lines, seconds, "upload + dry run + run"
    ), job


def loop_sample(path: Path, lines: int) -> Path:
    """The first `lines` rows of the file (whole orders), for the baselines."""
    sample = path.with_name("sample.csv")
    with (
        path.open(newline="", encoding="utf-8") as source,
        sample.open("w", newline="", encoding="utf-8") as target,
    ):
        reader = csv.reader(source)
        writer = csv.writer(target)
        writer.writerow(next(reader))
        total_column = COLUMNS.index("Total")
        for count, row in enumerate(reader):
            if count >= lines and row[total_column]:
                break  # stop before the next order's first row
            writer.writerow(row)
    return sample


def bench_orm_loop(sample: Path) -> Figure:
    """The plain loop a script would be: read, parse, update_or_create order and line."""
    from decimal import Decimal

    from django.db import transaction

    from circolo.commerce.models import Order, OrderLine

    store = make_store("orm-loop")

    def when(text: str) -> dt.datetime:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")

    def cents(text: str) -> int:
        return int(Decimal(text or "0") * 100)

    def run() -> int:
        count = 0
        current: dict[str, str] = {}
        with transaction.atomic(), sample.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["Total"]:
                    current = row
                placed = when(row["Created at"])
                order, _created = Order.objects.update_or_create(
                    store=store,
                    external_id=row["Id"],
                    defaults={
                        "workspace_id": store.workspace_id,
                        "number": row["Name"],
                        "email": row["Email"],
                        "currency": row["Currency"],
                        "subtotal_minor": cents(current["Subtotal"]),
                        "shipping_minor": cents(current["Shipping"]),
                        "total_minor": cents(current["Total"]),
                        "status": "paid",
                        "base_status": "paid",
                        "placed_at": placed,
                        "source_updated_at": placed,
                    },
                )
                OrderLine.objects.update_or_create(
                    order=order,
                    external_id=row["Lineitem sku"],
                    defaults={
                        "workspace_id": store.workspace_id,
                        "sku": row["Lineitem sku"],
                        "title": row["Lineitem name"],
                        "quantity": int(row["Lineitem quantity"]),
                        "unit_price_minor": cents(row["Lineitem price"]),
                    },
                )
                count += 1
        return count

    seconds, count = timed(run)
    return Figure(
        "ORM loop: update_or_create order + line per row",
        count,
        seconds,
        "one transaction; no members, activities or refunds",
    )


def bench_one_by_one(sample: Path) -> Figure:
    """The import's own parsing, then services.order_upsert per order (no batching)."""
    from circolo.commerce.imports.mapping import mapping_suggest, options_suggest
    from circolo.commerce.imports.reading import format_of, layout_detect, rows_read
    from circolo.commerce.imports.rows import groups_read
    from circolo.commerce.services import order_upsert

    store = make_store("one-by-one")
    layout = layout_detect(
        sample, file_format=format_of(sample.name, sample, "utf-8"), encoding="utf-8"
    )
    mapping = mapping_suggest("orders", layout.columns)
    options = options_suggest(mapping, [], time_zone="UTC")

    def run() -> int:
        count = 0
        groups = groups_read(
            "orders", rows_read(sample, layout), mapping, options, store_currency="EUR"
        )
        for group in groups:
            assert group.record is not None, group.problems
            order_upsert(store=store, order=group.record)  # type: ignore[arg-type]
            count += len(group.lines)
        return count

    seconds, count = timed(run)
    return Figure(
        "one by one: services.order_upsert per order",
        count,
        seconds,
        "same semantics as the import; handlers after each order",
    )


def fingerprint(store: Any) -> tuple[Any, ...]:
    from django.db.models import Count, Sum

    from circolo.activity.models import Activity
    from circolo.commerce.models import MemberCommerce, Order, OrderLine, Refund

    orders = Order.objects.filter(store=store).aggregate(
        n=Count("id"), total=Sum("total_minor"), refunded=Sum("refunded_minor")
    )
    return (
        orders["n"],
        orders["total"],
        orders["refunded"],
        OrderLine.objects.filter(order__store=store).count(),
        Refund.objects.filter(store=store).count(),
        Activity.objects.filter(workspace_id=store.workspace_id).count(),
        MemberCommerce.objects.filter(workspace_id=store.workspace_id).aggregate(
            s=Sum("net_spend_minor")
        )["s"],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--lines", type=int, default=100_000, help="order lines in the file")
    parser.add_argument("--batch-rows", type=int, default=2_000, help="rows per import batch")
    parser.add_argument("--loop-lines", type=int, default=5_000, help="lines for the baselines")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-again", action="store_true", help="no second import")
    args = parser.parse_args()

    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-import-")
    try:
        import django

        django.setup()
        from django.conf import settings
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

        path = Path(settings.DATA_DIR) / "orders_export.csv"
        gen_seconds, (orders, lines) = timed(lambda: write_file(path, args.lines, args.seed))
        size_mb = path.stat().st_size / 1e6
        print(
            f"file: {lines:,} lines, {orders:,} orders, {size_mb:,.0f} MB "
            f"(written in {gen_seconds:.1f} s)",
            flush=True,
        )

        figures, job = bench_pipeline(path, lines, args.batch_rows)
        for figure in figures:
            print(f"  {figure.scenario}: {figure.seconds:.1f} s", flush=True)
        store = job.store
        first = fingerprint(store)
        problems = []
        if job.status != "done" or job.rows_ok != lines:
            problems.append(f"import ended {job.status} with {job.rows_ok} of {lines} rows")
        if first[0] != orders or first[3] != lines:
            problems.append(
                f"{first[0]} orders and {first[3]} lines stored, expected {orders}/{lines}"
            )
        if not args.skip_again:
            figure, again = bench_again(path, lines, args.batch_rows, store)
            figures.append(figure)
            print(f"  {figure.scenario}: {figure.seconds:.1f} s", flush=True)
            if fingerprint(store) != first:
                problems.append("the second import changed the stored data")
            if set(again.created) != {"unchanged"}:
                problems.append(f"second import outcomes: {again.created}")

        sample = loop_sample(path, args.loop_lines)
        figures.append(bench_orm_loop(sample))
        figures.append(bench_one_by_one(sample))

        print(
            f"\n### File import, {version}, {os.cpu_count()} CPUs, {lines:,} order lines "
            f"({orders:,} orders, {size_mb:,.0f} MB CSV)\n"
        )
        print("| scenario | lines | seconds | lines/s | notes |")
        print("|---|---:|---:|---:|---|")
        for figure in figures:
            print(
                f"| {figure.scenario} | {figure.lines:,} | {figure.seconds:.1f} "
                f"| {figure.rate:,.0f} | {figure.note} |"
            )
        print()
        if problems:
            print("FAILED checks: " + "; ".join(problems))
            return 1
        print(
            "Checks: one order per order id, one line per file row, "
            + ("the second import changed nothing." if not args.skip_again else "(no second run).")
        )
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
