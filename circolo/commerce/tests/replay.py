"""Replay harness shared by the connector tests: the same deliveries in order into one store,
and with duplicates and reordering into another, must end in the same commerce state."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum

from circolo.commerce.models import Delivery, Order, Store
from circolo.commerce.webhooks import delivery_process, delivery_receive
from circolo.testing.commerce import commerce_snapshot

Signed = tuple[dict[str, str], bytes]
# The number of deliveries each platform's replay test sends: 10,000 (the acceptance
# figure) unless CIRCOLO_REPLAY_DELIVERIES says otherwise (CI runs a shorter replay).
REPLAY_DELIVERIES = int(os.environ.get("CIRCOLO_REPLAY_DELIVERIES", "10000"))


@dataclass
class ReplayReport:
    sent: int
    duplicates_sent: int
    moved: int
    duplicates_seen: int
    failed_left: int
    snapshot_in_order: dict[str, Any]
    snapshot_shuffled: dict[str, Any]


def shuffled(
    deliveries: list[Signed],
    *,
    redeliver: Callable[[Signed], Signed],
    seed: int = 7,
    dup_rate: float = 0.3,
    reorder_rate: float = 0.3,
) -> tuple[list[Signed], int, int]:
    """`deliveries` with dup_rate of them sent again later (through `redeliver`, which may
    change a per-attempt header) and reorder_rate of them moved to a later place."""
    rng = random.Random(seed)
    n = len(deliveries)
    # Each delivery gets a place key; moved ones and repeats get a later place.
    keyed: list[tuple[float, int, Signed]] = [
        (float(i), i, item) for i, item in enumerate(deliveries)
    ]
    moved_set = set(rng.sample(range(n), int(n * reorder_rate)))
    for index in moved_set:
        keyed[index] = (index + rng.uniform(1.5, max(n / 10, 2.0)), index, deliveries[index])
    dups = rng.sample(range(n), int(n * dup_rate))
    for index in dups:
        keyed.append(
            (index + rng.uniform(0.5, max(n / 5, 1.0)), n + index, redeliver(deliveries[index]))
        )
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    out = [item for _key, _tie, item in keyed]
    moved = len(moved_set)
    return out, len(dups), moved


def play(store: Store, deliveries: list[Signed]) -> None:
    """Receive every delivery, then process them as a worker would: arrival order, then
    retries of the failed ones until nothing more succeeds."""
    for headers, body in deliveries:
        received = delivery_receive(
            platform=store.platform, token=store.hook_token, headers=headers, body=body
        )
        assert received.status == 200, received
    pending = list(
        Delivery.objects.filter(store=store, status=Delivery.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for delivery_id in pending:
        delivery_process(delivery_id=delivery_id)
    while True:
        failed = list(
            Delivery.objects.filter(store=store, status=Delivery.Status.FAILED, permanent=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        progressed = [pk for pk in failed if delivery_process(delivery_id=pk) != "failed"]
        if not progressed:
            break


def replay_compare(
    *,
    store_in_order: Store,
    store_shuffled: Store,
    make: Callable[[Store], list[Signed]],
    redeliver: Callable[[Store, Signed], Signed] | None = None,
    seed: int = 7,
) -> ReplayReport:
    """Play make(store) in order into the first store, shuffled with duplicates into the
    second, and return both snapshots and counts for the test to compare."""
    in_order = make(store_in_order)
    play(store_in_order, in_order)
    base = make(store_shuffled)
    mixed, dups, moved = shuffled(
        base,
        redeliver=(lambda item: redeliver(store_shuffled, item)) if redeliver else (lambda i: i),
        seed=seed,
    )
    play(store_shuffled, mixed)
    seen = Delivery.objects.filter(store=store_shuffled).aggregate(n=Sum("duplicates"))["n"] or 0
    failed_left = Delivery.objects.filter(store=store_shuffled, status="failed").count()
    assert (
        Order.objects.filter(store=store_shuffled).count()
        == Order.objects.filter(store=store_in_order).count()
    )
    return ReplayReport(
        sent=len(mixed),
        duplicates_sent=dups,
        moved=moved,
        duplicates_seen=seen,
        failed_left=failed_left,
        snapshot_in_order=commerce_snapshot(store_in_order.workspace),
        snapshot_shuffled=commerce_snapshot(store_shuffled.workspace),
    )
