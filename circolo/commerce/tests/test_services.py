from __future__ import annotations

import datetime as dt

import pytest

from circolo.activity.models import Activity
from circolo.commerce.models import MemberCommerce, Order, OrderStatus, Refund
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
    order_upsert,
    product_upsert,
    refund_upsert,
)
from circolo.people.models import Member
from circolo.testing.commerce import commerce_snapshot, make_store

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def _order(**over: object) -> OrderIn:
    base: dict[str, object] = {
        "external_id": "1001",
        "number": "#1001",
        "currency": "EUR",
        "placed_at": T0,
        "updated_at": T0,
        "status": "pending",
        "subtotal_minor": 5000,
        "shipping_minor": 500,
        "tax_minor": 0,
        "total_minor": 5500,
        "customer": CustomerIn(email="Ada@Example.com", first_name="Ada", last_name="L"),
        "lines": (
            LineIn(
                external_id="L1",
                quantity=2,
                unit_price_minor=2000,
                product_external_id="P1",
                sku="MUG",
            ),
            LineIn(external_id="L2", quantity=1, unit_price_minor=1000, sku="TEA"),
        ),
    }
    base.update(over)
    return OrderIn(**base)  # type: ignore[arg-type]


def test_guest_order_then_account_meet_on_one_member(workspace):
    store = make_store(workspace)
    assert order_upsert(store=store, order=_order()) == CREATED
    account = CustomerIn(external_id="C9", email="ada@example.com", first_name="Ada")
    later = _order(external_id="1002", number="#1002", customer=account)
    order_upsert(store=store, order=later)
    members = Member.objects.filter(workspace=workspace, merged_into__isnull=True)
    assert members.count() == 1
    assert set(Order.objects.values_list("member_id", flat=True)) == {members.get().pk}
    summary = MemberCommerce.objects.get(member=members.get())
    assert (summary.order_count, summary.net_spend_minor) == (2, 11000)


def test_stale_update_never_overwrites_newer_state(workspace):
    store = make_store(workspace)
    paid = _order(status="paid", paid_at=T0, updated_at=T0 + dt.timedelta(minutes=5))
    assert order_upsert(store=store, order=paid) == CREATED
    assert order_upsert(store=store, order=_order()) == STALE
    assert order_upsert(store=store, order=paid) == UNCHANGED
    order = Order.objects.get()
    assert order.status == OrderStatus.PAID
    kinds = sorted(Activity.objects.values_list("kind", flat=True))
    assert kinds == ["order", "order_paid"]


def test_refund_before_its_order_links_when_the_order_arrives(workspace):
    store = make_store(workspace)
    refund = RefundIn(
        external_id="R1",
        order_external_id="1001",
        refunded_at=T0 + dt.timedelta(days=2),
        amount_minor=2000,
        currency="EUR",
        lines=(RefundLineIn(line_external_id="L1", quantity=1, amount_minor=2000),),
    )
    assert refund_upsert(store=store, refund=refund) == CREATED
    assert refund_upsert(store=store, refund=refund) == UNCHANGED
    order_upsert(store=store, order=_order(status="paid", paid_at=T0))
    order = Order.objects.get()
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.refunded_minor == 2000
    assert Refund.objects.get().lines.get().order_line is not None
    assert Activity.objects.filter(kind="refund").count() == 1
    assert MemberCommerce.objects.get().net_spend_minor == 3500


def test_products_link_to_lines_in_any_order(workspace):
    store = make_store(workspace)
    order_upsert(store=store, order=_order())
    product = ProductIn(
        external_id="P2", title="Tea", variants=(VariantIn(external_id="V2", sku="TEA"),)
    )
    assert product_upsert(store=store, product=product) == CREATED
    assert product_upsert(store=store, product=ProductIn(external_id="P1", title="Mug")) == CREATED
    titles = sorted(ln.product.title for ln in Order.objects.get().lines.select_related("product"))
    assert titles == ["Mug", "Tea"]


def test_bad_payloads_name_the_field(workspace):
    store = make_store(workspace)
    with pytest.raises(PayloadError) as error:
        order_upsert(store=store, order=_order(currency="EURO"))
    assert error.value.field == "currency"
    with pytest.raises(PayloadError):
        order_upsert(store=store, order=_order(placed_at=dt.datetime(2026, 1, 1)))
    assert not Order.objects.exists()


def test_merge_moves_orders_and_undo_moves_them_back(workspace, owner):
    from circolo.people.services import member_merge, merge_undo

    store = make_store(workspace)
    order_upsert(store=store, order=_order())
    other = CustomerIn(external_id="C2", email="bob@example.com")
    order_upsert(store=store, order=_order(external_id="2", customer=other))
    a, b = Member.objects.filter(workspace=workspace).order_by("pk")
    record = member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user)
    assert set(Order.objects.values_list("member_id", flat=True)) == {a.pk}
    assert MemberCommerce.objects.get(member=a).order_count == 2
    merge_undo(record=record, actor=owner.user)
    assert Order.objects.get(external_id="2").member_id == b.pk
    assert MemberCommerce.objects.get(member=b).order_count == 1


def test_updated_outcome_and_snapshot_stable(workspace):
    store = make_store(workspace)
    order_upsert(store=store, order=_order())
    before = commerce_snapshot(workspace)
    assert order_upsert(store=store, order=_order()) == UNCHANGED
    assert commerce_snapshot(workspace) == before
    newer = _order(status="fulfilled", fulfilled_at=T0, updated_at=T0 + dt.timedelta(hours=1))
    assert order_upsert(store=store, order=newer) == UPDATED
