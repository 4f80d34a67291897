"""Loyalty: points for paid orders (earning + the approval job) and concurrent redemptions.

    python bench/bench_loyalty.py --db postgres --orders 1000000
    python bench/bench_loyalty.py --db sqlite --orders 100000 --skip-rush

Each run makes a fresh database (see harness.configure), loads --orders paid orders (1-3
lines each, one customer per 10 orders, 5% with a partial refund) straight into the
commerce tables, then measures:
- earning, set-based: `orders_for_points` + `orders_sync` per 5,000 orders (what the
  activity handler runs per chunk: points split over lines, refunds clawed back, all
  posted through the double-entry ledger), then `earnings_approve_due` until nothing is
  due (30 days later); orders/s over the whole;
- earning, per row (baseline): the same services called for one order at a time, each in
  its own transaction, then each earning approved on its own; on --loop-orders orders;
- a rush of --rush redemptions from --processes processes over --members members
  (PostgreSQL): redemptions/s, balances below zero and codes given twice (both must be 0),
  next to an unlocked read-then-write baseline that shows what the lock prevents.
At the end the ledger is verified (every movement sums to zero, every balance equals its
entries).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import configure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "circolo_bench_loyalty"
CHUNK = 5_000


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def load_orders(n: int, seed: int) -> tuple[Any, Any, list[int]]:
    """A workspace with a store and n paid orders (plus lines and some refunds)."""
    from django.db import transaction
    from django.utils import timezone

    from circolo.commerce.models import Order, OrderLine, Refund, RefundLine
    from circolo.commerce.services import store_create
    from circolo.core.models import Workspace
    from circolo.people.models import Member

    rng = random.Random(seed)
    workspace = Workspace.objects.create(name="Bench loyalty", slug="bench-loyalty")
    store = store_create(
        workspace=workspace,
        platform="file",
        name="Shop",
        currency="EUR",
        actor=None,
        api_url="",
        external_id="",
        credentials={},
        webhook_secret="",
    )
    members = Member.objects.bulk_create(
        [Member(workspace=workspace, display_name=f"Customer {i}") for i in range(n // 10 + 1)],
        batch_size=5000,
    )
    member_ids = [m.pk for m in members]
    paid = timezone.now() - dt.timedelta(days=40)
    order_ids: list[int] = []
    for start in range(0, n, 20_000):
        size = min(20_000, n - start)
        with transaction.atomic():
            orders = Order.objects.bulk_create(
                [
                    Order(
                        workspace=workspace,
                        store=store,
                        external_id=str(start + i),
                        number=f"#{start + i}",
                        member_id=member_ids[(start + i) % len(member_ids)],
                        currency="EUR",
                        total_minor=0,
                        status="paid",
                        base_status="paid",
                        placed_at=paid,
                        paid_at=paid + dt.timedelta(seconds=start + i),
                        source_updated_at=paid,
                    )
                    for i in range(size)
                ],
                batch_size=5000,
            )
            lines = []
            for order in orders:
                for k in range(rng.randint(1, 3)):
                    lines.append(
                        OrderLine(
                            workspace=workspace,
                            order=order,
                            external_id=f"{order.external_id}-{k}",
                            quantity=rng.randint(1, 3),
                            unit_price_minor=rng.randint(500, 12_000),
                        )
                    )
            OrderLine.objects.bulk_create(lines, batch_size=5000)
            refunded = lines[::20]
            refunds = Refund.objects.bulk_create(
                [
                    Refund(
                        workspace=workspace,
                        store=store,
                        external_id=f"r{line.pk}",
                        order_external_id=line.order.external_id,
                        order=line.order,
                        amount_minor=line.unit_price_minor // 2,
                        currency="EUR",
                        refunded_at=paid + dt.timedelta(days=1),
                    )
                    for line in refunded
                ],
                batch_size=5000,
            )
            RefundLine.objects.bulk_create(
                [
                    RefundLine(
                        workspace=workspace,
                        refund=refund,
                        line_external_id=line.external_id,
                        order_line=line,
                        quantity=1,
                        amount_minor=refund.amount_minor,
                    )
                    for refund, line in zip(refunds, refunded, strict=True)
                ],
                batch_size=5000,
            )
            order_ids.extend(order.pk for order in orders)
    return workspace, store, order_ids


def earn_set_based(workspace: Any, order_ids: list[int]) -> tuple[float, float]:
    from django.utils import timezone

    from circolo.commerce.selectors import orders_for_points
    from circolo.loyalty.orders import earnings_approve_due, orders_sync

    def earn() -> None:
        for start in range(0, len(order_ids), CHUNK):
            chunk = order_ids[start : start + CHUNK]
            orders = orders_for_points(workspace_id=workspace.pk, order_ids=chunk)
            orders_sync(workspace_id=workspace.pk, orders=orders)

    def approve() -> None:
        later = timezone.now() + dt.timedelta(days=31)
        while earnings_approve_due(now=later):
            pass

    earn_seconds, _ = timed(earn)
    approve_seconds, _ = timed(approve)
    return earn_seconds, approve_seconds


def earn_per_row(workspace: Any, order_ids: list[int]) -> float:
    from django.db import transaction
    from django.utils import timezone

    from circolo.commerce.selectors import orders_for_points
    from circolo.loyalty.models import OrderEarning
    from circolo.loyalty.orders import _approve, orders_sync

    def run() -> None:
        for order_id in order_ids:
            with transaction.atomic():
                orders = orders_for_points(workspace_id=workspace.pk, order_ids=[order_id])
                orders_sync(workspace_id=workspace.pk, orders=orders)
        later = timezone.now() + dt.timedelta(days=31)
        due = OrderEarning.objects.filter(order_id__in=order_ids, status="pending")
        for order_id in list(due.values_list("order_id", flat=True)):
            with transaction.atomic():
                _approve(workspace.pk, [order_id], later)

    seconds, _ = timed(run)
    return seconds


# --------------------------------------------------------------------------- the rush


def _rush_worker(args: tuple[str, int, list[int], int, int, Any]) -> Counter[str]:
    mode, reward_id, member_ids, seed, attempts, barrier = args
    from django.db import connections

    from circolo.loyalty.models import Reward
    from circolo.loyalty.rewards import RedeemError, redemption_request
    from circolo.people.models import Member

    connections.close_all()
    rng = random.Random(seed)
    reward = Reward.objects.get(pk=reward_id)
    members = list(Member.objects.filter(pk__in=member_ids))
    outcome: Counter[str] = Counter()
    barrier.wait(timeout=120)
    for n in range(attempts):
        member = rng.choice(members)
        if mode == "unlocked":
            outcome[_unlocked_redeem(member, reward, f"u{seed}-{n}")] += 1
            continue
        try:
            redemption_request(member=member, reward=reward, request_key=f"{seed}-{n}")
            outcome["issued"] += 1
        except RedeemError as error:
            outcome[error.field] += 1
    connections.close_all()
    return outcome


def _unlocked_redeem(member: Any, reward: Any, key: str) -> str:
    """The baseline: read the balance, then spend, with no lock (what not to do)."""
    from django.db import transaction
    from django.utils import timezone

    from circolo.loyalty import ledger
    from circolo.loyalty.models import Account, Reason

    balance = (
        Account.objects.filter(member=member, kind="member").values_list("balance", flat=True)
    ).first() or 0
    if balance < reward.cost_points:
        return "points"
    time.sleep(0.001)  # the work between the read and the write (making a code)
    with transaction.atomic():
        # Posting without the lock-and-check, as a naive service would.
        ledger._post(
            member.workspace_id,
            [
                ledger.transfer(
                    key=f"unlocked:{key}",
                    reason=Reason.REDEMPTION,
                    member_id=member.pk,
                    source=ledger.member_account(member.pk),
                    target=ledger.REDEMPTION,
                    points=reward.cost_points,
                )
            ],
            timezone.now(),
        )
    return "issued"


def rush(
    workspace: Any, *, mode: str, members: int, total: int, processes: int, start: int
) -> dict[str, Any]:
    from django.db import connections
    from django.utils import timezone

    from circolo.loyalty import ledger
    from circolo.loyalty.models import PoolCode, Reason, Redemption, Reward
    from circolo.people.models import Member

    cost = 100
    reward = Reward.objects.create(
        workspace=workspace,
        name=f"Rush {mode}",
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=cost,
        amount_minor=500,
        currency="EUR",
        code_source=Reward.CodeSource.POOL,
    )
    PoolCode.objects.bulk_create(
        PoolCode(workspace=workspace, reward=reward, code=f"{mode}-{i}", uploaded_at=timezone.now())
        for i in range(total)
    )
    people = Member.objects.bulk_create(
        [Member(workspace=workspace, display_name=f"Rusher {mode} {i}") for i in range(members)]
    )
    ids = [m.pk for m in people]
    ledger.movements_post(
        workspace_id=workspace.pk,
        items=[
            ledger.transfer(
                key=f"rush:{mode}:{pk}",
                reason=Reason.BONUS,
                member_id=pk,
                source=ledger.ISSUANCE,
                target=ledger.member_account(pk),
                points=start,
            )
            for pk in ids
        ],
    )
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Manager().Barrier(processes)
    per = total // processes
    began = time.perf_counter()
    with context.Pool(processes) as pool:
        results = pool.map(
            _rush_worker,
            [(mode, reward.pk, ids, seed, per, barrier) for seed in range(processes)],
        )
    seconds = time.perf_counter() - began
    outcome = sum(results, Counter())
    balances = ledger.members_balances(workspace_id=workspace.pk, member_ids=ids)
    overspent = sum(1 for b in balances.values() if b.points < 0)
    codes = list(
        Redemption.objects.filter(workspace=workspace, reward=reward).values_list("code", flat=True)
    )
    return {
        "mode": mode,
        "attempts": per * processes,
        "issued": outcome["issued"],
        "refused": outcome["points"],
        "seconds": seconds,
        "overspent": overspent,
        "codes_twice": len(codes) - len(set(codes)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--loop-orders", type=int, default=5_000)
    parser.add_argument("--rush", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--skip-rush", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    cleanup = configure(args.db, database=BENCH_DB, prefix="circolo-bench-loyalty-")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from circolo.loyalty import ledger
        from circolo.loyalty.models import OrderEarning

        call_command("migrate", verbosity=0)
        if args.db == "sqlite":
            import sqlite3

            version = f"SQLite {sqlite3.sqlite_version}"
        else:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                version = f"PostgreSQL {cursor.fetchone()[0]}"
        load_seconds, (workspace, _store, order_ids) = timed(
            lambda: load_orders(args.orders, args.seed)
        )
        print(f"loaded {len(order_ids):,} orders in {load_seconds:.1f} s", flush=True)
        if args.db == "postgres":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        loop_ids = order_ids[: args.loop_orders]
        main_ids = order_ids[args.loop_orders :]
        earn_s, approve_s = earn_set_based(workspace, main_ids)
        print(f"set-based: earn {earn_s:.1f} s, approve {approve_s:.1f} s", flush=True)
        loop_s = earn_per_row(workspace, loop_ids)
        print(f"per row: {loop_s:.1f} s for {len(loop_ids):,} orders", flush=True)
        problems = []
        left = OrderEarning.objects.filter(workspace=workspace, status="pending").count()
        if left:
            problems.append(f"{left} earnings still pending")
        rushes = []
        if not args.skip_rush and args.db == "postgres":
            start = args.rush // args.members * 100 * 8 // 10  # ~80% of the asks affordable
            for mode in ("locked", "unlocked"):
                rushes.append(
                    rush(
                        workspace,
                        mode=mode,
                        members=args.members,
                        total=args.rush,
                        processes=args.processes,
                        start=start,
                    )
                )
                print(rushes[-1], flush=True)
            if rushes[0]["overspent"] or rushes[0]["codes_twice"]:
                problems.append("the locked rush overspent or gave a code twice")
        check = ledger.ledger_verify(workspace_id=workspace.pk)
        if not check.ok:
            problems.append(f"ledger: {check}")

        total = len(main_ids)
        print(f"\n### Loyalty, {version}, {os.cpu_count()} CPUs, {len(order_ids):,} orders\n")
        print("| scenario | orders | seconds | orders/s | notes |")
        print("|---|---:|---:|---:|---|")
        print(
            f"| earning, set-based | {total:,} | {earn_s + approve_s:.1f} "
            f"| {total / (earn_s + approve_s):,.0f} | earn {earn_s:.1f} s + approval job "
            f"{approve_s:.1f} s, chunks of {CHUNK:,} |"
        )
        print(
            f"| earning, per row (baseline) | {len(loop_ids):,} | {loop_s:.1f} "
            f"| {len(loop_ids) / loop_s:,.0f} | one transaction per order and per approval |"
        )
        if rushes:
            print("\n| rush | attempts | issued | refused | seconds | redemptions/s "
                  "| balances below zero | codes given twice |")  # fmt: skip
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for r in rushes:
                print(
                    f"| {r['mode']} | {r['attempts']:,} | {r['issued']:,} | {r['refused']:,} "
                    f"| {r['seconds']:.1f} | {r['attempts'] / r['seconds']:,.0f} "
                    f"| {r['overspent']} | {r['codes_twice']} |"
                )
        print(
            f"\nLedger verified: {check.movements:,} movements, {check.accounts:,} accounts, "
            f"{'balanced' if check.ok else 'NOT balanced'}."
        )
        if problems:
            print("FAILED checks: " + "; ".join(problems))
            return 1
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
