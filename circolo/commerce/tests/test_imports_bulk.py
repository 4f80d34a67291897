"""The batched writers of bulk.py end in the same state as the one-by-one services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.bulk import (
    customers_upsert_bulk,
    orders_upsert_bulk,
    products_upsert_bulk,
)
from circolo.commerce.models import MemberCommerce, Order, OrderLine, Refund
from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    PayloadError,
    ProductIn,
    RefundIn,
    RefundLineIn,
    VariantIn,
)
from circolo.commerce.services import (
    CREATED,
    STALE,
    UNCHANGED,
    UPDATED,
    customer_upsert,
    order_upsert,
    product_upsert,
)
from circolo.core.models import Workspace
from circolo.people.models import Member
from circolo.testing.commerce import commerce_snapshot, make_store

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)


def summaries(workspace: Workspace) -> list[tuple[Any, ...]]:
    """Buying summaries keyed by the member's first identity (row ids differ between runs)."""
    rows = []
    for mc in MemberCommerce.objects.filter(workspace=workspace).select_related("member"):
        first = sorted(i.value for i in mc.member.identities.all())
        rows.append(
            (
                tuple(first),
                mc.currency,
                mc.order_count,
                mc.net_spend_minor,
                mc.refunded_minor,
                mc.first_order_at,
                mc.last_order_at,
            )
        )
    return sorted(rows)


def members(workspace: Workspace, *, seen: bool) -> list[tuple[Any, ...]]:
    """Members by their identities, with what resolution wrote on them (first and last seen
    once the activity handlers have run)."""
    rows = []
    for member in Member.objects.filter(workspace=workspace, merged_into__isnull=True):
        idents = tuple(sorted(i.value for i in member.identities.all()))
        row: tuple[Any, ...] = (idents, member.display_name, member.city, member.country)
        if seen:
            row += (member.first_seen, member.last_seen)
        rows.append(row)
    return sorted(rows)


def state(workspace: Workspace, *, seen: bool = False) -> dict[str, Any]:
    return {
        **commerce_snapshot(workspace),
        "summaries": summaries(workspace),
        "members": members(workspace, seen=seen),
    }


def history(orders: int = 12, customers: int = 4) -> list[OrderIn]:
    """Versions of orders as a shop sends them: created, paid, fulfilled or edited (a line
    dropped), refunded (the refund carried by a newer version), cancelled."""
    records: list[OrderIn] = []
    for n in range(orders):
        who = n % customers
        customer = CustomerIn(
            external_id=f"c{who}" if n % 3 else "",
            email=f"person{who}@example.com",
            first_name=f"P{who}",
        )
        lines = tuple(
            LineIn(
                external_id=f"{n}-{k}",
                quantity=1 + k,
                unit_price_minor=1000 + k,
                discount_minor=100 * k,
                product_external_id=f"p{k}",
                sku=f"SKU-{k}",
            )
            for k in range(1 + n % 3)
        )
        total = sum(ln.quantity * ln.unit_price_minor - ln.discount_minor for ln in lines)
        placed = T0 + dt.timedelta(hours=n)

        common: dict[str, Any] = {
            "external_id": str(n),
            "number": f"#{n}",
            "currency": "EUR",
            "placed_at": placed,
            "total_minor": total,
            "subtotal_minor": total,
            "customer": customer if n % 7 != 6 else None,
            "lines": lines,
        }

        def version(
            step: int, status: str, common: dict[str, Any] = common, **extra: Any
        ) -> OrderIn:
            fields = {**common, "status": status, **extra}
            fields["updated_at"] = common["placed_at"] + dt.timedelta(minutes=step)
            return OrderIn(**fields)

        # Each version keeps what the earlier ones said (paid, fulfilled), as platforms do.
        done: dict[str, Any] = {"paid_at": placed}
        records.append(version(0, "pending"))
        records.append(version(1, "paid", **done))
        status = "paid"
        if n % 2 == 0:
            status = "fulfilled"
            done["fulfilled_at"] = placed
            records.append(version(2, status, **done))
        if n % 3 == 2:
            done["lines"] = lines[:1]
            records.append(version(3, status, **done))
        if n % 4 == 1:
            refund = RefundIn(
                external_id=f"r{n}",
                order_external_id=str(n),
                refunded_at=placed + dt.timedelta(days=1),
                amount_minor=lines[0].unit_price_minor,
                currency="EUR",
                lines=(
                    RefundLineIn(
                        line_external_id=lines[0].external_id,
                        quantity=1,
                        amount_minor=lines[0].unit_price_minor,
                    ),
                ),
            )
            done["refunds"] = (refund,)
            records.append(version(4, status, **done))
        if n % 5 == 3:
            records.append(version(5, status, cancelled_at=placed, **done))
    return records


PRODUCTS = [
    ProductIn(
        external_id=f"p{i}",
        title=f"Product {i}",
        updated_at=T0,
        variants=(VariantIn(external_id=f"v{i}", sku=f"SKU-{i}", price_minor=1000 + i),),
    )
    for i in range(3)
]


def fresh_store(slug: str) -> Any:
    return make_store(Workspace.objects.create(name=slug.title(), slug=slug), platform="file")


def one_by_one(records: list[OrderIn], slug: str = "single") -> Workspace:
    store = fresh_store(slug)
    for record in records:
        order_upsert(store=store, order=record)
    return store.workspace


def test_bulk_equals_one_by_one_in_input_order(django_capture_on_commit_callbacks: Any) -> None:
    records = history()
    with django_capture_on_commit_callbacks(execute=True):
        reference = one_by_one(records)
        store = fresh_store("bulk")
        outcomes: list[str] = []
        for start in range(0, len(records), 7):
            outcomes += orders_upsert_bulk(store=store, orders=records[start : start + 7])
    assert state(store.workspace, seen=True) == state(reference, seen=True)
    assert outcomes.count(CREATED) == 12
    # Dropped lines went (the edit), cancelled orders left the summaries.
    assert OrderLine.objects.filter(workspace=store.workspace, order__external_id="2").count() == 1
    assert Order.objects.filter(workspace=store.workspace, status="cancelled").exists()


def test_outcomes_follow_the_one_by_one_rules() -> None:
    records = history(orders=2)
    paid = records[1]
    pending = records[0]
    store = fresh_store("outcomes")
    # Two versions of one order in one call apply in input order; the older one after is stale.
    assert orders_upsert_bulk(store=store, orders=[pending, paid, pending]) == [
        CREATED,
        UPDATED,
        STALE,
    ]
    assert orders_upsert_bulk(store=store, orders=[paid]) == [UNCHANGED]
    assert Order.objects.get(workspace=store.workspace, external_id="0").status == "paid"


def test_same_batch_twice_changes_nothing(django_capture_on_commit_callbacks: Any) -> None:
    records = history()
    store = fresh_store("twice")
    with django_capture_on_commit_callbacks(execute=True):
        orders_upsert_bulk(store=store, orders=records)
    before = state(store.workspace)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = orders_upsert_bulk(store=store, orders=records)
    assert set(outcomes) <= {UNCHANGED, STALE}
    assert state(store.workspace) == before


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 12))
def test_any_arrival_order_in_batches_ends_in_the_in_order_state(seed: int, batch: int) -> None:
    records = history(orders=8, customers=3)
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    with transaction.atomic():
        in_order = one_by_one(records)
        same_input = one_by_one(shuffled, slug="shuffled")
        store = fresh_store("mixed")
        for start in range(0, len(shuffled), batch):
            orders_upsert_bulk(store=store, orders=shuffled[start : start + batch])
        got, expected, reference = state(store.workspace), state(same_input), state(in_order)
        # Each example leaves nothing behind for the next one.
        transaction.set_rollback(True)
    assert got == expected
    assert got == reference


def test_refund_lines_merge_when_a_refund_comes_in_parts() -> None:
    base = history(orders=2)[-1]
    line_ids = [line.external_id for line in base.lines]
    assert len(line_ids) == 2

    def part(line_id: str) -> OrderIn:
        refund = RefundIn(
            external_id="r-split",
            order_external_id=base.external_id,
            refunded_at=T0 + dt.timedelta(days=2),
            amount_minor=2000,
            currency="EUR",
            lines=(RefundLineIn(line_external_id=line_id, quantity=1, amount_minor=1000),),
        )
        line = next(ln for ln in base.lines if ln.external_id == line_id)
        return dataclasses.replace(base, lines=(line,), refunds=(refund,))

    store = fresh_store("parts")
    orders_upsert_bulk(store=store, orders=[part(line_ids[0])], merge_lines=True)
    orders_upsert_bulk(store=store, orders=[part(line_ids[1])], merge_lines=True)
    order = Order.objects.get(workspace=store.workspace)
    assert order.lines.count() == 2
    refund = Refund.objects.get(workspace=store.workspace)
    assert sorted(refund.lines.values_list("line_external_id", flat=True)) == sorted(line_ids)
    assert all(refund.lines.values_list("order_line_id", flat=True))
    assert order.refunded_minor == 2000


def test_products_bulk_equals_one_by_one() -> None:
    records = history(orders=6)
    later = [
        ProductIn(
            external_id="p1",
            title="Product 1 renamed",
            updated_at=T0 + dt.timedelta(days=1),
            variants=(VariantIn(external_id="v1b", sku="SKU-1", price_minor=1500),),
        ),
        ProductIn(external_id="p0", title="Old title", updated_at=T0 - dt.timedelta(days=1)),
    ]
    reference = one_by_one(records)
    reference_store = reference.stores.get()
    for product in [*PRODUCTS, *later]:
        product_upsert(store=reference_store, product=product)

    store = fresh_store("products")
    orders_upsert_bulk(store=store, orders=records)
    outcomes = products_upsert_bulk(store=store, products=[*PRODUCTS, *later])
    assert outcomes == [CREATED, CREATED, CREATED, UPDATED, STALE]
    assert commerce_snapshot(store.workspace) == commerce_snapshot(reference)
    assert not OrderLine.objects.filter(workspace=store.workspace, product__isnull=True).exists()


def test_customers_bulk_equals_one_by_one() -> None:
    customers = [
        CustomerIn(external_id="c1", email="ada@example.com", first_name="Ada"),
        CustomerIn(email="ADA@example.com"),
        CustomerIn(external_id="c2", phone="+39 333 123 4567", country="IT"),
        CustomerIn(),
        CustomerIn(external_id="c1", email="ada@example.com", first_name="Ada"),
    ]
    reference_store = fresh_store("people-one")
    for customer in customers:
        customer_upsert(store=reference_store, customer=customer)
    store = fresh_store("people-bulk")
    assert customers_upsert_bulk(store=store, customers=customers) == [
        "resolved",
        "resolved",
        "resolved",
        "empty",
        "resolved",
    ]
    assert commerce_snapshot(store.workspace) == commerce_snapshot(reference_store.workspace)


def test_a_malformed_order_writes_nothing() -> None:
    records = history(orders=3)
    bad = dataclasses.replace(records[-1], currency="EURO")
    store = fresh_store("bad")
    with pytest.raises(PayloadError) as error:
        orders_upsert_bulk(store=store, orders=[*records, bad])
    assert error.value.field == "currency"
    assert not Order.objects.filter(workspace=store.workspace).exists()


def test_queries_do_not_grow_with_orders_of_known_customers(
    django_assert_max_num_queries: Any,
) -> None:
    store = fresh_store("queries")
    customer = CustomerIn(external_id="c1", email="ada@example.com")
    orders = [
        OrderIn(
            external_id=str(n),
            currency="EUR",
            placed_at=T0,
            updated_at=T0,
            status="paid",
            paid_at=T0,
            total_minor=1000,
            customer=customer,
            lines=(LineIn(external_id="1", quantity=1, unit_price_minor=1000, sku="MUG"),),
        )
        for n in range(300)
    ]
    orders_upsert_bulk(store=store, orders=orders[:1])
    # 300 orders, 300 lines, 600 activities: a fixed number of statements, not per order.
    with django_assert_max_num_queries(60):
        orders_upsert_bulk(store=store, orders=orders[1:])
    assert Order.objects.filter(workspace=store.workspace).count() == 300


def test_known_customers_are_looked_up_not_resolved_again(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    import circolo.commerce.bulk as bulk

    records = history(orders=9, customers=3)
    first, rest = records[:3], records[3:]
    with django_capture_on_commit_callbacks(execute=True):
        reference = one_by_one(records)
        store = fresh_store("known")
        orders_upsert_bulk(store=store, orders=first)
    calls: list[CustomerIn] = []
    real = bulk.customers_resolve

    def counting(*, store: Any, wanted: Any) -> Any:
        calls.extend(customer for customer, _seen in wanted)
        return real(store=store, wanted=wanted)

    monkeypatch.setattr(bulk, "customers_resolve", counting)
    with django_capture_on_commit_callbacks(execute=True):
        orders_upsert_bulk(store=store, orders=rest)
    # Only records bringing something new (a first customer id for a known email, a new
    # customer) go through member_resolve; the rest are found in three queries.
    distinct = {r.customer for r in rest if r.customer is not None}
    assert 0 < len(set(calls)) < len(distinct)
    assert state(store.workspace, seen=True) == state(reference, seen=True)
