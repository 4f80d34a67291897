"""Webhook deliveries: receiving over real HTTP, and draining a replay with duplicates.

    python bench/bench_webhooks.py receive --db sqlite --n 3000
    python bench/bench_webhooks.py receive --db postgres --n 3000   # + Redis and a Celery worker
    python bench/bench_webhooks.py replay --db sqlite --n 100000

receive: one web process (`circolo serve --workers 1 --threads 4`) on a fresh database; --n
signed Shopify order deliveries are posted by --concurrency client threads over loopback.
Inbox mode is Circolo's: verify, store raw, answer, process after (SQLite: the process's
background thread; PostgreSQL: a Celery worker on Redis). The baseline, measured in the same
run on the same server set-up, processes each delivery inside its request. Figures:
deliveries/s and p50/p99 latency as the client sees it, and the time until every delivery
is processed.

replay: --n deliveries of a Shopify store's life (customers, products, orders created/paid/
updated/fulfilled/cancelled, refunds) with 30% duplicates (same X-Shopify-Webhook-Id) and 30%
of them moved later, each received and processed as it arrives; time to drain, and the check
against an in-order replay of the same deliveries: rows that differ (wrong) and duplicate rows
(both must be 0). The two replays run at the same time in two processes (one core each), on
two fresh databases.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import configure, free_port, percentile, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "circolo_bench_hooks"


def make_store(slug: str) -> Any:
    from circolo.core.models import Workspace
    from circolo.testing.commerce import make_store as store_new

    workspace = Workspace.objects.create(name=slug.title(), slug=slug)
    return store_new(workspace, platform="shopify", external_id=f"{slug}.myshopify.com")


def deliveries(store: Any, n: int, *, seed: int = 1) -> list[tuple[dict[str, str], bytes]]:
    from circolo.commerce.tests.fake_shopify import history_deliveries

    return history_deliveries(
        secret=store.webhook_secret, shop=store.external_id, count=n, seed=seed
    )


def drained(store_id: int) -> bool:
    from circolo.commerce.models import Delivery

    return not Delivery.objects.filter(store_id=store_id, status="pending").exists()


def post_all(
    port: int, token: str, items: list[tuple[dict[str, str], bytes]], concurrency: int
) -> tuple[list[float], float, dict[int, int]]:
    import httpx

    url = f"http://127.0.0.1:{port}/hooks/shopify/{token}/"
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    def send(chunk: list[tuple[dict[str, str], bytes]]) -> None:
        with httpx.Client(timeout=60) as client:
            for headers, body in chunk:
                start = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    chunks = [items[i::concurrency] for i in range(concurrency)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, chunks))
    return latencies, time.perf_counter() - start, statuses


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "circolo.cli", "serve", "--port", str(port),
        "--workers", "1", "--threads", "4", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    wait_port(port)
    return process


def receive(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    rows = []
    for mode in ("inbox", "baseline"):
        store = make_store(f"hooks-{mode}")
        items = deliveries(store, args.n)
        connections.close_all()
        env = dict(os.environ)
        worker = None
        if mode == "baseline":
            env["CELERY_TASK_ALWAYS_EAGER"] = "true"
            env["CIRCOLO_BACKGROUND_THREAD"] = "false"
            env.pop("REDIS_URL", None)
        elif args.db == "postgres":
            env["REDIS_URL"] = args.redis
            env["CELERY_TASK_ALWAYS_EAGER"] = "false"
            worker = subprocess.Popen(
                [sys.executable, "-m", "circolo.cli", "worker", "--concurrency", "1",
                 "--loglevel", "warning", "--pool", "solo"],
                env=env, cwd=ROOT,
            )  # fmt: skip
        port = free_port()
        server = serve(env, port)
        try:
            start = time.perf_counter()
            latencies, seconds, statuses = post_all(port, store.hook_token, items, args.concurrency)
            deadline = time.monotonic() + args.drain_timeout
            while not drained(store.pk):
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"{mode}: deliveries still pending after {args.drain_timeout} s"
                    )
                time.sleep(0.05)
            drain = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait()
            if worker is not None:
                worker.terminate()
                worker.wait()
        rows.append((mode, len(items), seconds, latencies, drain, statuses))
    print(f"\nwebhook receive, {args.db}, one web process, {args.concurrency} client threads")
    print(f"{'mode':<10}{'deliveries':>11}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'drained s':>11}")
    for mode, n, seconds, latencies, drain, statuses in rows:
        print(
            f"{mode:<10}{n:>11}{n / seconds:>9.0f}{percentile(latencies, 50):>9.1f}"
            f"{percentile(latencies, 99):>9.1f}{drain:>11.1f}  {statuses}"
        )


def replay_part(args: argparse.Namespace) -> None:
    """One side of the replay in this process: the in-order reference or the mixed replay;
    its snapshot, time and counts go to --out (pickle) for the parent to compare."""
    import pickle

    import django

    django.setup()
    from django.core.management import call_command

    from circolo.commerce.models import Order, OrderLine, Refund
    from circolo.commerce.tests.replay import play, shuffled
    from circolo.testing.commerce import commerce_snapshot

    call_command("migrate", verbosity=0)
    store = make_store(f"replay-{args.part}")
    items = deliveries(store, args.n)
    dups = moved = 0
    if args.part == "mixed":
        items, dups, moved = shuffled(items, redeliver=lambda item: item)
    start = time.perf_counter()
    play(store, items)
    seconds = time.perf_counter() - start
    duplicate_rows = 0
    for model, field in ((Order, "external_id"), (Refund, "external_id")):
        rows = model.objects.filter(store=store)
        duplicate_rows += rows.count() - rows.values(field).distinct().count()
    lines = OrderLine.objects.filter(order__store=store)
    duplicate_rows += lines.count() - lines.values("order_id", "external_id").distinct().count()
    result = {
        "snapshot": commerce_snapshot(store.workspace),
        "seconds": seconds,
        "deliveries": len(items),
        "dups": dups,
        "moved": moved,
        "duplicate_rows": duplicate_rows,
    }
    Path(args.out).write_bytes(pickle.dumps(result))


def differing(want: dict[str, Any], got: dict[str, Any]) -> int:
    """Rows of the two snapshots that differ (or exist on one side only)."""
    wrong = 0
    for key, value in want.items():
        other = got[key]
        if isinstance(value, dict):
            wrong += sum(1 for k in value.keys() | other.keys() if value.get(k) != other.get(k))
        elif isinstance(value, list):
            wrong += len(set(map(repr, value)) ^ set(map(repr, other)))
        elif value != other:
            wrong += abs(int(value) - int(other)) or 1
    return wrong


def replay(args: argparse.Namespace) -> None:
    """The in-order reference and the mixed replay, in two processes (one core each) on two
    fresh databases; then the comparison."""
    import pickle
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="circolo-bench-replay-"))
    children = []
    for part in ("reference", "mixed"):
        command = [
            sys.executable, __file__, "replay", "--part", part, "--db", args.db,
            "--n", str(args.n), "--out", str(folder / f"{part}.pickle"),
        ]  # fmt: skip
        children.append(subprocess.Popen(command, cwd=ROOT))
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(f"a replay process failed: {codes}")
    # Written a moment ago by the two child processes above, in a private temporary folder.
    reference = pickle.loads((folder / "reference.pickle").read_bytes())  # noqa: S301
    mixed = pickle.loads((folder / "mixed.pickle").read_bytes())  # noqa: S301
    shutil.rmtree(folder, ignore_errors=True)
    wrong = differing(reference["snapshot"], mixed["snapshot"])
    orders = len(mixed["snapshot"].get("orders", {}))
    print(
        f"\nreplay, {args.db}: {mixed['deliveries']:,} deliveries "
        f"({mixed['dups']:,} duplicates, {mixed['moved']:,} moved), {orders:,} orders"
    )
    print(
        f"  drained in {mixed['seconds']:.1f} s "
        f"({mixed['deliveries'] / mixed['seconds']:,.0f} deliveries/s)"
    )
    print(f"  in-order replay of {args.n:,}: {reference['seconds']:.1f} s (baseline)")
    print(
        f"  rows differing from the in-order replay: {wrong}; "
        f"duplicate rows: {mixed['duplicate_rows'] + reference['duplicate_rows']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["receive", "replay"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    parser.add_argument("--part", choices=["reference", "mixed"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "replay" and args.part is None:
        replay(args)
        return
    if args.what == "replay":
        os.environ["CIRCOLO_BACKGROUND_THREAD"] = "false"  # each delivery processed on arrival
    database = BENCH_DB if args.part is None else f"{BENCH_DB}_{args.part}"
    cleanup = configure(args.db, database=database, prefix="circolo-bench-hooks-")
    try:
        (receive if args.what == "receive" else replay_part)(args)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
