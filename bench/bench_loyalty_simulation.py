"""Loyalty: simulating a rule set over 90 days of activities and orders.

    python bench/bench_loyalty_simulation.py --db postgres --activities 1000000 --orders 1000000
    python bench/bench_loyalty_simulation.py --db sqlite --activities 1000000 --orders 1000000

Each run makes a fresh database (see harness.configure) and loads, straight into the tables,
--activities community activities (posts, replies, reviews, a third of them with photos,
answers, sign-ups) and --orders paid orders (1-3 lines each) spread over 90 days, one member
per 10 of each, a few members in a tier with a multiplier. It then times `simulate` (one
GROUP BY over the activities, one streamed query over the orders, both rule sets in one
pass), and next to it a baseline that reads the same rows one by one through the ORM and
groups them in Python (what the replay costs without the set-based reads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import zoneinfo
from collections import Counter
from pathlib import Path
from typing import Any

from harness import configure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "circolo_bench_loyalty_simulation"
KINDS = ("post", "reply", "reply", "review", "accepted_answer", "event_attendance", "signup")


def load(activities: int, orders: int, seed: int) -> Any:
    from django.db import transaction
    from django.utils import timezone

    from circolo.activity.models import Activity
    from circolo.commerce.models import Order, OrderLine
    from circolo.commerce.services import store_create
    from circolo.core.models import Workspace
    from circolo.loyalty.models import MemberTier, Tier
    from circolo.people.models import Member

    rng = random.Random(seed)
    workspace = Workspace.objects.create(
        name="Bench simulation", slug="bench-simulation", time_zone="Europe/Rome"
    )
    store = store_create(
        workspace=workspace, platform="file", name="Shop", currency="EUR", actor=None,
        api_url="", external_id="", credentials={}, webhook_secret="",
    )  # fmt: skip
    size = max(activities, orders) // 10 + 1
    members = Member.objects.bulk_create(
        [Member(workspace=workspace, display_name=f"M{i}") for i in range(size)], batch_size=5000
    )
    ids = [m.pk for m in members]
    gold = Tier.objects.create(
        workspace=workspace, name="Gold", threshold=1, multiplier_percent=150
    )
    MemberTier.objects.bulk_create(
        [MemberTier(member_id=pk, workspace=workspace, tier=gold) for pk in ids[::50]]
    )
    now = timezone.now()
    span = 89 * 86400
    for start in range(0, activities, 50_000):
        with transaction.atomic():
            Activity.objects.bulk_create(
                [
                    Activity(
                        workspace=workspace,
                        member_id=ids[rng.randrange(len(ids))],
                        kind=(kind := rng.choice(KINDS)),
                        channel="community",
                        occurred_at=now - dt.timedelta(seconds=rng.randrange(span)),
                        weight=1,
                        properties={"photos": 1} if kind == "review" and rng.random() < 0.3 else {},
                        source="bench",
                        source_id=str(start + i),
                    )
                    for i in range(min(50_000, activities - start))
                ],
                batch_size=5000,
            )
    for start in range(0, orders, 20_000):
        with transaction.atomic():
            rows = Order.objects.bulk_create(
                [
                    Order(
                        workspace=workspace, store=store, external_id=str(start + i),
                        member_id=ids[rng.randrange(len(ids))], currency="EUR",
                        status="paid", base_status="paid", placed_at=(
                            paid := now - dt.timedelta(seconds=rng.randrange(span))
                        ), paid_at=paid, source_updated_at=paid,
                    )
                    for i in range(min(20_000, orders - start))
                ],
                batch_size=5000,
            )  # fmt: skip
            OrderLine.objects.bulk_create(
                [
                    OrderLine(
                        workspace=workspace, order=row, external_id=str(k),
                        quantity=rng.randint(1, 3), unit_price_minor=rng.randint(500, 12_000),
                        discount_minor=rng.choice((0, 0, 100)),
                    )
                    for row in rows
                    for k in range(rng.randint(1, 3))
                ],
                batch_size=5000,
            )  # fmt: skip
    return workspace


def baseline(workspace: Any, now: dt.datetime) -> int:
    """The replay without set-based reads: every activity and order line through the ORM."""
    from circolo.activity.models import Activity
    from circolo.commerce.models import OrderLine
    from circolo.loyalty.orders import order_points
    from circolo.loyalty.rules import default_rules

    rules = default_rules()
    zone = zoneinfo.ZoneInfo(workspace.time_zone)
    since = now - dt.timedelta(days=90)
    per_day: Counter[tuple[int, Any, str]] = Counter()
    for member_id, kind, occurred in (
        Activity.objects.filter(workspace=workspace, occurred_at__gte=since, occurred_at__lt=now)
        .values_list("member_id", "kind", "occurred_at")
        .iterator(chunk_size=5000)
    ):
        per_day[(member_id, occurred.astimezone(zone).date(), kind)] += 1
    points = 0
    for (_member, _day, kind), n in per_day.items():
        rule = rules.get(kind)
        if rule and rule["enabled"]:
            cap = int(rule["daily_cap"])
            points += (min(n, cap) if cap else n) * int(rule["points"])
    bases: Counter[int] = Counter()
    for order_id, quantity, price, discount in (
        OrderLine.objects.filter(workspace=workspace, order__paid_at__gte=since)
        .values_list("order_id", "quantity", "unit_price_minor", "discount_minor")
        .iterator(chunk_size=5000)
    ):
        bases[order_id] += max(quantity * price - discount, 0)
    for base in bases.values():
        points += order_points(base_minor=base, currency="EUR", rule=rules["order"], multiplier=100)
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-simulation-")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from circolo.loyalty.rules import rules_clean
        from circolo.loyalty.simulation import simulate

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        workspace = load(args.activities, args.orders, args.seed)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        print(f"loaded {args.activities:,} activities and {args.orders:,} orders "
              f"in {time.perf_counter() - started:.1f}s ({args.db})")  # fmt: skip
        now = timezone.now()
        draft = rules_clean({"post": {"points": 20, "daily_cap": 1}, "order": {"per": 2}})
        for attempt in range(2):
            started = time.perf_counter()
            result = simulate(workspace_id=workspace.pk, rules=draft, now=now)
            took = time.perf_counter() - started
            total = result.total
            print(
                f"simulate (run {attempt + 1}): {took:.2f}s — {total.events:,} events, in force "
                f"{total.in_force.points:,} points, draft {total.draft.points:,}, "
                f"{total.in_force.members:,} members"
            )
        if not args.skip_baseline:
            started = time.perf_counter()
            baseline(workspace, now)
            print(f"baseline (rows through the ORM, grouped in Python, one rule set): "
                  f"{time.perf_counter() - started:.2f}s")  # fmt: skip
    finally:
        cleanup()


if __name__ == "__main__":
    main()
