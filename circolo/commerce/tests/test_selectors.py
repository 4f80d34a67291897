"""Commerce reads: purchases, member summaries, orders, line amounts and store health."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circolo.commerce.models import (
    Delivery,
    MemberCommerce,
    Order,
    OrderLine,
    Product,
    Store,
    SyncRun,
)
from circolo.commerce.schema import (
    CustomerIn,
    LineIn,
    OrderIn,
    ProductIn,
    RefundIn,
    RefundLineIn,
    VariantIn,
)
from circolo.commerce.selectors import (
    LATENCY_SAMPLE,
    RECENT_SYNCS,
    member_bought_products,
    member_orders,
    member_purchase,
    member_summary,
    order_line_net_merchandise,
    order_lines_net,
    percentile,
    store_health,
    workspace_stores,
)
from circolo.commerce.services import order_upsert, product_upsert, refund_upsert
from circolo.people.models import Member
from circolo.testing.commerce import make_store

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
ADA = CustomerIn(external_id="C1", email="ada@example.com", first_name="Ada")


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def place(
    store: Store,
    external_id: str,
    *,
    customer: CustomerIn = ADA,
    lines: tuple[LineIn, ...] = (),
    when: dt.datetime = T0,
    currency: str = "EUR",
    total: int | None = None,
    **extra: Any,
) -> Order:
    """An order written through the real service; returns the stored row."""
    subtotal = sum(ln.quantity * ln.unit_price_minor - ln.discount_minor for ln in lines)
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=external_id,
            number=f"#{external_id}",
            currency=currency,
            placed_at=when,
            updated_at=extra.pop("updated_at", when),
            status=extra.pop("status", "paid"),
            paid_at=when,
            subtotal_minor=subtotal,
            total_minor=subtotal if total is None else total,
            customer=customer,
            lines=lines,
            **extra,
        ),
    )
    return Order.objects.get(store=store, external_id=external_id)


def line(external_id: str, product: str, *, qty: int = 1, price: int = 1000, discount: int = 0):
    return LineIn(
        external_id=external_id,
        quantity=qty,
        unit_price_minor=price,
        discount_minor=discount,
        product_external_id=product,
        sku=f"SKU-{product}",
        title=f"Line {product}",
    )


def refund(store: Store, order: str, external_id: str, *lines: tuple[str, int, int]) -> None:
    refund_upsert(
        store=store,
        refund=RefundIn(
            external_id=external_id,
            order_external_id=order,
            refunded_at=day(3),
            amount_minor=sum(amount for _id, _qty, amount in lines),
            currency="EUR",
            lines=tuple(
                RefundLineIn(line_external_id=line_id, quantity=qty, amount_minor=amount)
                for line_id, qty, amount in lines
            ),
        ),
    )


@pytest.fixture
def shop(workspace: Any) -> Store:
    store = make_store(workspace)
    for pid, title in (("P1", "Moka pot"), ("P2", "Espresso cups"), ("P3", "Tea tin")):
        product_upsert(
            store=store,
            product=ProductIn(
                external_id=pid, title=title, variants=(VariantIn(external_id=f"V{pid}"),)
            ),
        )
    return store


def product(store: Store, external_id: str) -> Product:
    return Product.objects.get(store=store, external_id=external_id)


def ada(workspace: Any) -> Member:
    return Member.objects.get(workspace=workspace, merged_into__isnull=True, display_name="Ada")


# --------------------------------------------------------------------------- purchases


class TestPurchases:
    def test_first_purchase_and_fulfilment(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),), when=day(2))
        place(shop, "2", lines=(line("L1", "P1"),), when=day(0), fulfilled_at=day(1))
        member = ada(workspace)
        assert member_purchase(member=member, product=product(shop, "P1")) == (day(0), True)

    def test_unfulfilled_and_never_bought(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),))
        member = ada(workspace)
        assert member_purchase(member=member, product=product(shop, "P1")) == (T0, False)
        assert member_purchase(member=member, product=product(shop, "P2")) is None

    def test_cancelled_orders_and_fully_refunded_lines_do_not_count(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),), cancelled_at=day(1))
        place(shop, "2", lines=(line("L1", "P2", qty=2), line("L2", "P3", qty=2)))
        refund(shop, "2", "R1", ("L1", 2, 2000), ("L2", 1, 1000))
        member = ada(workspace)
        assert member_purchase(member=member, product=product(shop, "P1")) is None
        assert member_purchase(member=member, product=product(shop, "P2")) is None
        # One of two tea tins refunded: still a buyer.
        assert member_purchase(member=member, product=product(shop, "P3")) == (T0, False)

    def test_amount_only_refund_of_a_whole_line_does_not_count(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1", price=1500, discount=500), line("L2", "P2")))
        refund(shop, "1", "R1", ("L1", 0, 1000))
        member = ada(workspace)
        assert member_purchase(member=member, product=product(shop, "P1")) is None
        assert member_purchase(member=member, product=product(shop, "P2")) is not None

    def test_fully_refunded_order_does_not_count(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),))
        # No line detail: the whole order's amount given back.
        refund_upsert(
            store=shop,
            refund=RefundIn(
                external_id="R2",
                order_external_id="1",
                refunded_at=day(2),
                amount_minor=1000,
                currency="EUR",
            ),
        )
        assert Order.objects.get().status == "refunded"
        assert member_purchase(member=ada(workspace), product=product(shop, "P1")) is None

    def test_products_of_another_workspace_are_never_bought(self, workspace, other_workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),))
        elsewhere = make_store(other_workspace)
        product_upsert(store=elsewhere, product=ProductIn(external_id="P1", title="Moka pot"))
        place(elsewhere, "1", lines=(line("L1", "P1"),))
        theirs = product(elsewhere, "P1")
        assert member_purchase(member=ada(workspace), product=theirs) is None
        assert [b.product for b in member_bought_products(member=ada(workspace))] == [
            product(shop, "P1")
        ]

    def test_bought_products_list(self, workspace, shop, django_assert_max_num_queries):
        place(shop, "1", lines=(line("L1", "P1"), line("L2", "P2")), when=day(0))
        place(shop, "2", lines=(line("L1", "P2"),), when=day(5), fulfilled_at=day(6))
        place(shop, "3", lines=(line("L1", "P3"),), when=day(9), cancelled_at=day(9))
        place(shop, "4", lines=(LineIn(external_id="L1", quantity=1, unit_price_minor=5),))
        member = ada(workspace)
        with django_assert_max_num_queries(2):
            bought = member_bought_products(member=member)
        assert [(b.product.title, b.first_bought_at, b.fulfilled) for b in bought] == [
            ("Espresso cups", day(0), True),
            ("Moka pot", day(0), False),
        ]

    def test_no_orders(self, workspace, shop):
        member = Member.objects.create(workspace=workspace, display_name="Nobody")
        assert member_bought_products(member=member) == []
        assert member_summary(member=member) is None
        assert member_orders(member=member).paginator.count == 0


# --------------------------------------------------------------------------- summary


class TestMemberSummary:
    def test_figures_in_the_workspace_currency(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1", price=1000),), when=day(0))
        place(shop, "2", lines=(line("L1", "P2", price=2001),), when=day(4))
        # A shop may take orders in other currencies too: more of them, still EUR first.
        for n in range(3):
            place(shop, f"9{n}", lines=(line("L1", "X", price=500),), currency="USD", when=day(1))
        refund(shop, "2", "R1", ("L1", 0, 1))
        summary = member_summary(member=ada(workspace))
        assert summary is not None
        assert summary.currency == "EUR"
        assert (summary.order_count, summary.net_spend_minor, summary.refunded_minor) == (
            2,
            3000,
            1,
        )
        assert summary.average_order_minor == 1500
        assert (summary.first_order_at, summary.last_order_at) == (day(0), day(4))
        assert summary.other_currencies == ("USD",)

    def test_falls_back_to_the_main_currency(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "X", price=333),), currency="GBP")
        place(shop, "2", lines=(line("L1", "X", price=334),), currency="GBP", when=day(1))
        place(shop, "3", lines=(line("L1", "X", price=9000),), currency="JPY")
        summary = member_summary(member=ada(workspace))
        assert summary is not None
        assert (summary.currency, summary.order_count, summary.net_spend_minor) == ("GBP", 2, 667)
        assert summary.average_order_minor == 334  # 333.5 rounded half up
        assert summary.other_currencies == ("JPY",)

    def test_only_cancelled_orders_means_no_summary(self, workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),), cancelled_at=day(1))
        assert member_summary(member=ada(workspace)) is None

    def test_summary_of_another_workspace_is_not_mixed_in(self, workspace, other_workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),))
        member = ada(workspace)
        MemberCommerce.objects.create(
            workspace=other_workspace, member=member, currency="CHF", order_count=50
        )
        summary = member_summary(member=member)
        assert summary is not None
        assert (summary.currency, summary.order_count, summary.other_currencies) == ("EUR", 1, ())


# --------------------------------------------------------------------------- line amounts


class TestNetMerchandise:
    def test_discounts_and_refunds(self, workspace, shop):
        order = place(
            shop,
            "1",
            lines=(line("L1", "P1", qty=3, price=1000, discount=300), line("L2", "P2", price=500)),
        )
        refund(shop, "1", "R1", ("L1", 1, 900))
        refund(shop, "1", "R2", ("L2", 1, 700))  # more than the line: never below zero
        nets = order_lines_net(order)
        by_id = {ln.external_id: ln for ln in OrderLine.objects.filter(order=order)}
        assert nets == {by_id["L1"].pk: 1800, by_id["L2"].pk: 0}
        for row in OrderLine.objects.filter(order=order).prefetch_related("refund_lines"):
            assert order_line_net_merchandise(row) == nets[row.pk]

    def test_prefetched_refunds_need_no_query(self, workspace, shop, django_assert_num_queries):
        place(shop, "1", lines=(line("L1", "P1", qty=2),))
        refund(shop, "1", "R1", ("L1", 1, 1000))
        row = OrderLine.objects.prefetch_related("refund_lines").get()
        with django_assert_num_queries(0):
            assert order_line_net_merchandise(row) == 1000


# --------------------------------------------------------------------------- orders


class TestMemberOrders:
    def test_pages_newest_first_with_lines(self, workspace, shop, django_assert_num_queries):
        for n in range(12):
            place(shop, str(n), lines=(line("L1", "P1"), line("L2", "P2")), when=day(n))
        member = ada(workspace)
        with django_assert_num_queries(4):
            page = member_orders(member=member, page=1)
            numbers = [order.number for order in page.object_list]
            lines = [[ln.product.title for ln in order.lines.all()] for order in page]
            nets = [sum(order_line_net_merchandise(ln) for ln in o.lines.all()) for o in page]
        assert numbers == [f"#{n}" for n in range(11, 1, -1)]
        assert lines[0] == ["Moka pot", "Espresso cups"]
        assert nets == [2000] * 10
        assert [o.number for o in member_orders(member=member, page="2")] == ["#1", "#0"]
        assert member_orders(member=member, page="nonsense").number == 1
        assert member_orders(member=member, page=99).number == 2

    def test_only_the_members_orders(self, workspace, other_workspace, shop):
        place(shop, "1", lines=(line("L1", "P1"),))
        place(shop, "2", customer=CustomerIn(email="bea@example.com", first_name="Bea"))
        elsewhere = make_store(other_workspace)
        place(elsewhere, "3")
        assert [o.external_id for o in member_orders(member=ada(workspace))] == ["1"]


# --------------------------------------------------------------------------- store health


def deliveries(store: Store, *rows: dict[str, Any]) -> None:
    Delivery.objects.bulk_create(
        Delivery(
            workspace_id=store.workspace_id,
            store=store,
            topic=row.get("topic", "orders/create"),
            dedupe_key=f"k{index}",
            body="{}",
            received_at=row.get("received_at", T0),
            status=row.get("status", Delivery.Status.PROCESSED),
            processed_at=row.get("processed_at"),
            duplicates=row.get("duplicates", 0),
            last_error=row.get("last_error", ""),
        )
        for index, row in enumerate(rows)
    )


class TestStoreHealth:
    def test_figures(self, workspace, other_workspace, django_assert_max_num_queries):
        store = make_store(workspace)
        Store.objects.filter(pk=store.pk).update(rejected_deliveries=4, rejected_last_at=day(1))
        store.refresh_from_db()
        processed = [
            {"received_at": T0, "processed_at": T0 + dt.timedelta(seconds=s), "duplicates": 1}
            for s in range(1, 101)
        ]
        deliveries(
            store,
            *processed,
            {"status": Delivery.Status.FAILED, "last_error": "lines[0].id: missing"},
            {"status": Delivery.Status.FAILED, "received_at": day(2), "last_error": "later"},
            {"status": Delivery.Status.IGNORED},
            {"status": Delivery.Status.PENDING, "received_at": day(3)},
        )
        other = make_store(other_workspace)
        deliveries(other, {"status": Delivery.Status.FAILED}, {"duplicates": 7})
        SyncRun.objects.create(
            workspace=workspace,
            store=store,
            mode=SyncRun.Mode.RECONCILE,
            status=SyncRun.Status.DONE,
            started_at=day(1),
            repaired=3,
            repaired_detail={"orders:created": 2, "orders:updated": 1},
        )
        SyncRun.objects.create(
            workspace=workspace, store=store, mode=SyncRun.Mode.BACKFILL, started_at=day(2)
        )
        SyncRun.objects.create(
            workspace=other_workspace, store=other, mode=SyncRun.Mode.RECONCILE, started_at=day(5)
        )
        with django_assert_max_num_queries(5):
            health = store_health(store=store)
        counts = health.deliveries
        assert (counts.received, counts.processed, counts.failed) == (104, 100, 2)
        assert (counts.ignored, counts.pending, counts.duplicates) == (1, 1, 100)
        assert counts.last_received_at == day(3)
        assert (health.rejected_signatures, health.rejected_last_at) == (4, day(1))
        assert (health.latency_p50, health.latency_p99, health.latency_sample) == (50, 99, 100)
        assert health.last_reconciliation is not None
        assert health.last_reconciliation.repaired == 3
        assert health.last_reconciliation.repaired_detail == {
            "orders:created": 2,
            "orders:updated": 1,
        }
        assert [run.mode for run in health.recent_syncs] == ["backfill", "reconcile"]
        assert [d.last_error for d in health.recent_failed] == ["later", "lines[0].id: missing"]

    def test_latency_over_the_latest_deliveries_only(self, workspace):
        store = make_store(workspace)
        slow = [{"received_at": T0, "processed_at": T0 + dt.timedelta(hours=1)} for _ in range(10)]
        fast = [
            {"received_at": day(1), "processed_at": day(1) + dt.timedelta(seconds=2)}
            for _ in range(LATENCY_SAMPLE)
        ]
        deliveries(store, *slow, *fast)
        health = store_health(store=store)
        assert health.latency_sample == LATENCY_SAMPLE
        assert health.latency_p99 == 2

    def test_last_reconciliation_older_than_the_listed_syncs(self, workspace):
        store = make_store(workspace)
        SyncRun.objects.create(
            workspace=workspace, store=store, mode="reconcile", started_at=T0, repaired=9
        )
        for n in range(RECENT_SYNCS):
            SyncRun.objects.create(
                workspace=workspace, store=store, mode="backfill", started_at=day(n + 1)
            )
        health = store_health(store=store)
        assert health.last_reconciliation is not None
        assert health.last_reconciliation.repaired == 9
        assert len(health.recent_syncs) == RECENT_SYNCS

    def test_empty_store(self, workspace):
        health = store_health(store=make_store(workspace))
        assert health.deliveries.received == 0
        assert health.latency_p50 is None and health.last_reconciliation is None
        assert health.recent_failed == [] and health.recent_syncs == []


class TestWorkspaceStores:
    def test_each_store_with_its_own_counts(
        self, workspace, other_workspace, django_assert_max_num_queries
    ):
        first = make_store(workspace, name="A shop")
        second = make_store(workspace, platform="woocommerce", name="B shop")
        deliveries(first, {}, {"status": Delivery.Status.FAILED, "duplicates": 2})
        SyncRun.objects.create(workspace=workspace, store=first, mode="backfill", started_at=T0)
        latest = SyncRun.objects.create(
            workspace=workspace, store=first, mode="reconcile", started_at=day(1)
        )
        make_store(other_workspace, name="Their shop")
        with django_assert_max_num_queries(2):
            rows = workspace_stores(workspace=workspace)
        assert [row.store for row in rows] == [first, second]
        assert (rows[0].deliveries.received, rows[0].deliveries.failed) == (2, 1)
        assert rows[0].deliveries.duplicates == 2
        assert rows[0].last_sync == latest
        assert rows[1].deliveries.received == 0 and rows[1].last_sync is None

    def test_no_stores(self, workspace):
        assert workspace_stores(workspace=workspace) == []


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_percentiles_are_values_of_the_sample_in_order(values):
    ordered = sorted(values)
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    assert p50 in ordered and p99 in ordered
    assert ordered[0] <= p50 <= p99 <= ordered[-1]


def test_no_percentile_of_nothing():
    assert percentile([], 0.5) is None
