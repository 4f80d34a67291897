"""A community thread with 200 replies: requests per second with 2 worker processes,
rendered each time (uncached) against the same page from the anonymous page cache.

    python bench/bench_thread_page.py                  # SQLite
    python bench/bench_thread_page.py --db postgres    # PostgreSQL (+ Redis cache if running)
    python bench/bench_thread_page.py --seconds 10 --concurrency 4

Each run makes a fresh database (harness.configure), writes one thread with 200 replies by
50 members with reactions through community.services, counts the SQL queries of one page
view with Django's test client, then starts `circolo serve --workers 2` twice on it:
first with the page cache off (CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS=0: every request runs
the queries and renders the 200 posts), then with it on (visitors who are not signed in get
the posts' HTML from the cache; the page around them is still rendered per request).
Clients are threads of this process with keep-alive connections, on the same 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness import configure, free_port, percentile, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "circolo_bench_thread"
REPLIES = 200
# The first page holds 200 posts: the question and replies 0 to 198.
LAST_ON_PAGE = b"Risposta 198"


def build() -> tuple[str, int]:
    """One workspace, one public space, a question with REPLIES replies and reactions."""
    import datetime as dt

    from django.utils import timezone

    from circolo.community import safety, services, trust
    from circolo.core.models import Workspace
    from circolo.people.models import Member

    # The bench writes faster than any member could: posting limits and spam checks off.
    unlimited = trust.Limits(10_000, 10_000, 0, 10_000, 10_000, 10_000)
    trust.LIMITS = dict.fromkeys(trust.LIMITS, unlimited)
    safety.SPAM_CHECKS = False
    workspace = Workspace.objects.create(name="Bottega Bench", slug="bench")
    members = [
        Member.objects.create(workspace=workspace, display_name=f"Cliente {n}") for n in range(50)
    ]
    space = services.space_create(workspace=workspace, actor=None, name="Domande", language="it")
    start = timezone.now() - dt.timedelta(days=30)
    thread = services.thread_create(
        space=space, author=members[0], kind="question", title="Quanto fine la macinatura?",
        body="Uso una **moka** da 3 tazze: che macinatura consigliate?", now=start,
    )  # fmt: skip
    for n in range(REPLIES):
        post = services.reply_create(
            thread=thread,
            author=members[(n % 49) + 1],
            body=f"Risposta {n}: per la moka va bene una macinatura *media*, "
            f"né troppo fine né troppo grossa. [Guida](https://example.com/guida-{n})",
            now=start + dt.timedelta(minutes=n + 1),
        )
        if n % 3 == 0:
            services.reaction_add(post=post, member=members[0], emoji="like")
    return workspace.slug, thread.pk


def count_queries(path: str) -> int:
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    client = Client()
    with override_settings(CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS=0):
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
    assert response.status_code == 200, response.status_code
    return len(captured)


def hammer(port: int, path: str, seconds: float, concurrency: int) -> dict[str, Any]:
    import http.client

    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < stop:
            begin = time.perf_counter()
            connection.request("GET", path, headers={"Accept-Language": "it"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or LAST_ON_PAGE not in body:
                errors[0] += 1
            mine.append((time.perf_counter() - begin) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    # Warm up each worker (imports, connections, the cache) before measuring.
    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(10):
        warm.request("GET", path)
        warm.getresponse().read()
    warm.close()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "errors": errors[0],
    }


def run_server(port: int, cache_seconds: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS=str(cache_seconds))
    command = [
        sys.executable, "-m", "circolo.cli", "serve", "--port", str(port),
        "--workers", "2", "--threads", "1", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    wait_port(port)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-thread-")
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    redis = os.environ.get("BENCH_REDIS_URL", "")
    if args.db == "postgres" and redis:
        os.environ["REDIS_URL"] = redis  # a shared cache for both workers
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        slug, thread_id = build()
        path = f"/c/{slug}/t/{thread_id}/"
        queries = count_queries(path)
        connections.close_all()
        results = {}
        for label, seconds in (("uncached", 0), ("cached", 30)):
            port = free_port()
            server = run_server(port, seconds)
            try:
                results[label] = hammer(port, path, args.seconds, args.concurrency)
            finally:
                server.terminate()
                server.wait()
        print(f"\nThread page, {REPLIES} replies, {args.db}, 2 workers, "
              f"{args.concurrency} clients, {args.seconds:g} s each")  # fmt: skip
        print(f"SQL queries per uncached view: {queries}")
        for label, figures in results.items():
            print(
                f"{label:>9}: {figures['rps']:7.1f} req/s  p50 {figures['p50']:6.1f} ms  "
                f"p99 {figures['p99']:6.1f} ms  ({figures['requests']} requests, "
                f"{figures['errors']} errors)"
            )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
