"""Commerce writes commute: any order of arrival, with repeats, ends in the in-order state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    ProductIn,
    RefundIn,
    RefundLineIn,
    VariantIn,
)
from circolo.commerce.webhooks import record_apply
from circolo.core.models import Workspace
from circolo.testing.commerce import commerce_snapshot, make_store

T0 = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)


def _history(orders: int, customers: int) -> list[Any]:
    """A shop's life: products, then each order created, paid, maybe fulfilled, maybe
    refunded in part, maybe cancelled — each step a newer version of the order."""
    records: list[Any] = [
        ProductIn(
            external_id=f"p{i}",
            title=f"Product {i}",
            updated_at=T0,
            variants=(VariantIn(external_id=f"v{i}", sku=f"SKU-{i}", price_minor=1000 + i),),
        )
        for i in range(3)
    ]
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

        def version(
            step: int,
            status: str,
            *,
            n: int = n,
            placed: dt.datetime = placed,
            total: int = total,
            customer: CustomerIn = customer,
            lines: tuple[LineIn, ...] = lines,
            **extra: Any,
        ) -> OrderIn:
            return OrderIn(
                external_id=str(n),
                number=f"#{n}",
                currency="EUR",
                placed_at=placed,
                updated_at=placed + dt.timedelta(minutes=step),
                status=status,
                total_minor=total,
                subtotal_minor=total,
                customer=customer,
                lines=lines,
                **extra,
            )

        records.append(version(0, "pending"))
        records.append(version(1, "paid", paid_at=placed))
        if n % 2 == 0:
            records.append(version(2, "fulfilled", paid_at=placed, fulfilled_at=placed))
        if n % 4 == 1:
            records.append(
                RefundIn(
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
            )
        if n % 5 == 3:
            records.append(version(3, "paid", paid_at=placed, cancelled_at=placed))
    return records


HISTORY = _history(orders=8, customers=3)


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    order=st.permutations(range(len(HISTORY))),
    repeats=st.lists(st.integers(0, len(HISTORY) - 1), max_size=10),
)
def test_any_arrival_order_with_repeats_ends_in_the_in_order_state(
    order: list[int], repeats: list[int]
) -> None:
    reference_ws = Workspace.objects.create(name="Ref", slug="ref")
    reference = make_store(reference_ws)
    for record in HISTORY:
        record_apply(store=reference, record=record)
    mixed_ws = Workspace.objects.create(name="Mixed", slug="mixed")
    mixed = make_store(mixed_ws)
    for index in [*order, *repeats]:
        record_apply(store=mixed, record=HISTORY[index])
    assert commerce_snapshot(mixed_ws) == commerce_snapshot(reference_ws)
    reference_ws.delete()
    mixed_ws.delete()
