"""The BigCommerce connector: signatures, refetching parse, backfill, reconciliation, replay."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import time
from typing import Any

import httpx
import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.connectors.base import ConnectorError, Event, connector_for
from circolo.commerce.connectors.bigcommerce import BigCommerceConnector, api, payloads
from circolo.commerce.connectors.bigcommerce.signatures import signature
from circolo.commerce.models import (
    Delivery,
    Order,
    OrderStatus,
    Product,
    ProductVariant,
    Refund,
    Store,
    SyncRun,
)
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn
from circolo.commerce.sync import store_sync
from circolo.commerce.tests import fake_bigcommerce as fake
from circolo.commerce.tests.replay import REPLAY_DELIVERIES, replay_compare
from circolo.commerce.webhooks import delivery_process, delivery_receive
from circolo.people.models import Member
from circolo.testing.commerce import commerce_snapshot, make_store

pytestmark = pytest.mark.django_db

SECRET = "bc-client-secret-0123456789"
FAKE_API = "http://bigcommerce.test"


@pytest.fixture
def connector(monkeypatch: pytest.MonkeyPatch) -> BigCommerceConnector:
    registered = connector_for("bigcommerce")
    assert isinstance(registered, BigCommerceConnector)
    waits: list[float] = []
    monkeypatch.setattr(registered, "sleep", waits.append)
    monkeypatch.setattr(registered, "transport", None)
    monkeypatch.setattr(registered, "page_size", BigCommerceConnector.page_size)
    monkeypatch.setattr(registered, "waits", waits, raising=False)
    return registered


@pytest.fixture(autouse=True)
def _quiet_http_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx logs every request at INFO; thousands of fake API calls would drown the output."""
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)


@pytest.fixture
def shop() -> fake.FakeShop:
    return fake.FakeShop()


def _store(
    workspace: Any, *, api_url: str = f"{FAKE_API}/stores/{fake.STORE_HASH}/v3/", **extra: Any
) -> Store:
    credentials = {"access_token": fake.ACCESS_TOKEN, **extra}
    return make_store(
        workspace,
        platform="bigcommerce",
        secret=SECRET,
        api_url=api_url,
        credentials=credentials,
    )


@pytest.fixture
def store(workspace: Any) -> Store:
    return _store(workspace)


@pytest.fixture
def in_process(
    connector: BigCommerceConnector, shop: fake.FakeShop, monkeypatch: pytest.MonkeyPatch
) -> fake.FakeShop:
    """The fake shop answers the connector's API calls in process."""
    monkeypatch.setattr(connector, "transport", httpx.WSGITransport(app=shop))
    return shop


def _post(client: Any, store: Store, signed: fake.Signed) -> Any:
    headers, body = signed
    headers = {k: v for k, v in headers.items() if k != "content-type"}
    return client.post(
        f"/hooks/bigcommerce/{store.hook_token}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def _receive(store: Store, signed: fake.Signed) -> Any:
    headers, body = signed
    return delivery_receive(
        platform="bigcommerce", token=store.hook_token, headers=headers, body=body
    )


def _order_payload(order_id: int = 250, scope: str = "store/order/created") -> dict[str, Any]:
    return fake.webhook_payload(
        scope=scope, data={"type": "order", "id": order_id}, created_at=1561479335
    )


# --------------------------------------------------------------------------- signatures


def _now() -> int:
    return int(time.time())


def _forged(payload: dict[str, Any]) -> dict[str, fake.Signed]:
    body = json.dumps(payload).encode()
    good_headers, _ = fake.sign(body, secret=SECRET)
    msg_id, stamp = good_headers["webhook-id"], int(good_headers["webhook-timestamp"])
    tolerance = 300

    def with_headers(**changes: str | None) -> fake.Signed:
        headers = dict(good_headers)
        for key, value in changes.items():
            name = key.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return headers, body

    good_sig = good_headers["webhook-signature"]
    other_body = json.dumps({**payload, "data": {"type": "order", "id": 999}}).encode()
    return {
        "missing signature": with_headers(webhook_signature=None),
        "missing id": with_headers(webhook_id=None),
        "missing timestamp": with_headers(webhook_timestamp=None),
        "empty signature": with_headers(webhook_signature=""),
        "truncated signature": with_headers(webhook_signature=good_sig[:-6]),
        "signature without version": with_headers(webhook_signature=good_sig.split(",", 1)[1]),
        "unknown version only": with_headers(webhook_signature="v1a," + good_sig.split(",", 1)[1]),
        "not base64": with_headers(webhook_signature="v1,%%%not-base64%%%"),
        "wrong secret": fake.sign(
            body, secret="someone-elses-secret", msg_id=msg_id, timestamp=stamp
        ),
        "forged for another body": (
            {
                **good_headers,
                "webhook-signature": signature(
                    SECRET, msg_id=msg_id, timestamp=stamp, body=other_body
                ),
            },
            body,
        ),
        "tampered body": (good_headers, other_body),
        "other message id": with_headers(webhook_id="msg_other"),
        "stale timestamp": fake.sign(body, secret=SECRET, timestamp=_now() - tolerance - 5),
        "future timestamp": fake.sign(body, secret=SECRET, timestamp=_now() + tolerance + 5),
        "timestamp not a number": with_headers(webhook_timestamp="yesterday"),
        "timestamp in milliseconds": fake.sign(body, secret=SECRET, timestamp=_now() * 1000),
    }


FORGED_CASES = list(_forged(_order_payload()))


@pytest.mark.parametrize("case", FORGED_CASES)
def test_forged_deliveries_are_refused_and_counted(client: Any, store: Store, case: str) -> None:
    signed = _forged(_order_payload())[case]
    response = _post(client, store, signed)
    assert response.status_code == 401, case
    assert response.json() == {"result": "bad_signature"}
    assert Delivery.objects.count() == 0
    store.refresh_from_db()
    assert store.rejected_deliveries == 1
    assert store.rejected_last_at is not None


def test_signed_delivery_is_accepted(client: Any, store: Store) -> None:
    response = _post(client, store, fake.sign(_order_payload(), secret=SECRET))
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    delivery = Delivery.objects.get()
    assert delivery.topic == "store/order/created"
    assert set(delivery.headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    store.refresh_from_db()
    assert store.rejected_deliveries == 0


def test_any_matching_entry_of_several_signatures_is_enough(client: Any, store: Store) -> None:
    headers, body = fake.sign(_order_payload(), secret=SECRET)
    rotated = fake.sign(
        body,
        secret="old-secret",
        msg_id=headers["webhook-id"],
        timestamp=int(headers["webhook-timestamp"]),
    )[0]["webhook-signature"]
    headers["webhook-signature"] = f"{rotated} {headers['webhook-signature']}"
    assert _post(client, store, (headers, body)).status_code == 200


def test_store_without_secret_refuses_everything(client: Any, workspace: Any) -> None:
    store = make_store(
        workspace, platform="bigcommerce", secret="", api_url=f"{FAKE_API}/stores/x/"
    )
    assert _post(client, store, fake.sign(_order_payload(), secret="")).status_code == 401


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 401), ("wrong value", 401), ("let-me-in-4f9a", 200)],
)
def test_custom_header_is_required_when_configured(
    client: Any, workspace: Any, header: str | None, expected: int
) -> None:
    store = _store(workspace, hook_header_name="X-Circolo-Key", hook_header_value="let-me-in-4f9a")
    extra = {"x-circolo-key": header} if header is not None else {}
    signed = fake.sign(_order_payload(), secret=SECRET, extra=extra)
    assert _post(client, store, signed).status_code == expected
    assert Delivery.objects.count() == (1 if expected == 200 else 0)


def test_other_stores_secret_and_url_are_refused(
    client: Any, workspace: Any, other_workspace: Any
) -> None:
    mine = _store(workspace)
    theirs = make_store(other_workspace, platform="bigcommerce", secret="their-secret")
    signed_for_them = fake.sign(_order_payload(), secret="their-secret")
    assert _post(client, mine, signed_for_them).status_code == 401
    assert _post(client, theirs, signed_for_them).status_code == 200
    wrong_platform = client.post(
        f"/hooks/shopify/{mine.hook_token}/", data=b"{}", content_type="application/json"
    )
    assert wrong_platform.status_code == 404
    assert Delivery.objects.filter(store=mine).count() == 0


# --------------------------------------------------------------------------- topics and dedupe


def test_topic_and_dedupe_key(connector: BigCommerceConnector) -> None:
    payload = _order_payload()
    assert connector.topic(headers={}, payload=payload) == "store/order/created"
    key = connector.dedupe_key(headers={}, payload=payload, topic="store/order/created")
    assert key == f"store/order/created|order:250|{payload['hash']}"
    assert connector.topic(headers={}, payload=["not", "an", "object"]) == "unknown"
    no_hash = connector.dedupe_key(headers={}, payload={"x": 1}, topic="unknown")
    assert no_hash.startswith("unknown|:|sha256:")


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(
                ["store/order/updated", "store/order/statusUpdated", "store/product/updated"]
            ),
            st.integers(min_value=1, max_value=5),
            st.integers(min_value=1_700_000_000, max_value=1_700_000_050),
        ),
        min_size=1,
        max_size=20,
        unique=True,
    )
)
def test_dedupe_key_is_equal_for_resends_and_distinct_for_events(events: list[Any]) -> None:
    connector = BigCommerceConnector()
    keys = set()
    for scope, resource_id, created in events:
        payload = fake.webhook_payload(
            scope=scope, data={"type": "order", "id": resource_id}, created_at=created
        )
        first = fake.sign(payload, secret=SECRET, timestamp=created)
        again = fake.redeliver(first, secret=SECRET, timestamp=created + 60)
        assert first[1] == again[1] and first[0] != again[0]
        key = connector.dedupe_key(headers=first[0], payload=json.loads(first[1]), topic=scope)
        assert key == connector.dedupe_key(
            headers=again[0], payload=json.loads(again[1]), topic=scope
        )
        keys.add(key)
    assert len(keys) == len(events)


# --------------------------------------------------------------------------- parsing


def _order_events(shop: fake.FakeShop, order_id: int) -> list[dict[str, Any]]:
    return [
        p
        for p in shop.events
        if p["data"].get("type") == "order" and p["data"].get("id") == order_id
    ]


def _parse(connector: BigCommerceConnector, store: Store, payload: dict[str, Any]) -> Event:
    return connector.parse(store=store, topic=payload["scope"], payload=payload, headers={})


def _documented_shop(shop: fake.FakeShop) -> dict[str, int]:
    """A customer, a product with sizes and a single-variant one, a paid order with a coupon,
    shipped, and partially refunded."""
    customer = shop.add_customer(
        email="ada@example.com",
        first_name="Ada",
        last_name="Rossi",
        phone="+39 333 1234567",
        city="Torino",
        country="IT",
    )
    towel = shop.add_product(
        name="Chambray Towel", variants=[("TW-S", 2500, "S"), ("TW-L", 3000, "L")]
    )
    jar = shop.add_product(name="Parfait Jar", price_minor=795)
    small = shop.products[towel]["variants"][0]["id"]
    jar_variant = shop.products[jar]["variants"][0]["id"]
    order = shop.place_order(
        customer_id=customer, items=[(small, 2), (jar_variant, 1)], coupon=("SPRING5", 500)
    )
    shop.set_status(order, 2)
    line = shop.order_products[order][0]["id"]
    refund = shop.refund(order, items=[(line, 1)], shipping_minor=100, reason="Torn")
    return {
        "customer": customer,
        "towel": towel,
        "jar": jar,
        "order": order,
        "line": line,
        "refund": refund,
        "small": small,
    }


def test_order_is_read_again_with_lines_coupons_address_and_refunds(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    event = _parse(connector, store, _order_payload(ids["order"]))
    (order,) = event.records
    assert isinstance(order, OrderIn)
    assert order.external_id == order.number == str(ids["order"])
    assert order.currency == "EUR"
    assert order.status == "fulfilled"
    # 2 x 25.00 + 7.95 = 57.95, less 5.00 coupon, plus 5.00 shipping, 10% tax on 57.95.
    assert order.subtotal_minor == 5795
    assert order.discount_minor == 500
    assert order.shipping_minor == 500
    assert order.tax_minor == 580
    assert order.total_minor == 5795 - 500 + 500 + 580
    assert order.discount_codes == ("SPRING5",)
    assert order.placed_at == order.paid_at
    assert order.fulfilled_at is not None and order.fulfilled_at > order.placed_at
    assert order.cancelled_at is None
    assert order.updated_at >= order.fulfilled_at
    assert order.customer == CustomerIn(
        external_id=str(ids["customer"]),
        email="ada@example.com",
        phone="+39 333 1234567",
        first_name="Ada",
        last_name="Rossi",
        city="Torino",
        country="IT",
        languages=("it",),
        accepts_marketing=True,
    )
    assert order.shipping_address["city"] == "Torino"
    assert order.shipping_address["country_iso2"] == "IT"
    towel_line, jar_line = order.lines
    assert (towel_line.external_id, towel_line.quantity, towel_line.unit_price_minor) == (
        str(ids["line"]),
        2,
        2500,
    )
    assert towel_line.product_external_id == str(ids["towel"])
    assert towel_line.variant_external_id == str(ids["small"])
    assert towel_line.sku == "TW-S"
    assert towel_line.title == "Chambray Towel"
    # The coupon is spread over the lines by value: 5000/5795 and the rest.
    assert towel_line.discount_minor + jar_line.discount_minor == 500
    assert towel_line.discount_minor == 500 * 5000 // 5795
    (refund,) = order.refunds
    assert refund.external_id == str(ids["refund"])
    assert refund.order_external_id == order.external_id
    assert refund.reason == "Torn"
    (refund_line,) = refund.lines
    assert refund_line.line_external_id == str(ids["line"])
    assert refund_line.quantity == 1
    expected_line = (5000 - towel_line.discount_minor + 1) // 2
    assert refund_line.amount_minor == expected_line
    assert refund.amount_minor == expected_line + 100


def test_refund_and_status_topics_read_the_same_order(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    scopes = [p["scope"] for p in _order_events(in_process, ids["order"])]
    assert scopes == [
        "store/order/created",
        "store/order/statusUpdated",
        "store/order/updated",
        "store/order/refund/created",
        "store/order/statusUpdated",
        "store/order/updated",
    ]
    parsed = {
        p["scope"]: _parse(connector, store, p) for p in _order_events(in_process, ids["order"])
    }
    first, *others = [event.records for event in parsed.values()]
    assert all(records == first for records in others)


def test_customer_and_product_are_read_again(
    connector: BigCommerceConnector, in_process: fake.FakeShop, workspace: Any
) -> None:
    store = _store(workspace, storefront_url="https://shop.example.com/")
    ids = _documented_shop(in_process)
    customer_payload = next(p for p in in_process.events if p["scope"] == "store/customer/created")
    (customer,) = _parse(connector, store, customer_payload).records
    assert customer == CustomerIn(
        external_id=str(ids["customer"]),
        email="ada@example.com",
        phone="+39 333 1234567",
        first_name="Ada",
        last_name="Rossi",
        city="Torino",
        country="IT",
        created_at=fake.T0 + dt.timedelta(seconds=1),
        updated_at=fake.T0 + dt.timedelta(seconds=1),
    )
    product_payload = fake.webhook_payload(
        scope="store/product/updated", data={"type": "product", "id": ids["towel"]}, created_at=1
    )
    (product,) = _parse(connector, store, product_payload).records
    assert isinstance(product, ProductIn)
    assert product.title == "Chambray Towel"
    assert product.url == "https://shop.example.com/chambray-towel/"
    assert product.image_url.endswith(f"/{ids['towel']}.jpg")
    assert product.status == "active"
    assert [(v.sku, v.title, v.price_minor) for v in product.variants] == [
        ("TW-S", "S", 2500),
        ("TW-L", "L", 3000),
    ]
    in_process.update_product(ids["jar"], is_visible=False)
    jar_payload = in_process.events[-1]
    (jar,) = _parse(connector, store, jar_payload).records
    assert isinstance(jar, ProductIn)
    assert jar.status == "draft"
    assert [(v.sku, v.title, v.price_minor) for v in jar.variants] == [
        (f"SKU-{ids['jar']}", "Parfait Jar", 795)
    ]
    in_process.update_variant_price(ids["small"], 2200)
    (repriced,) = _parse(connector, store, in_process.events[-1]).records
    assert isinstance(repriced, ProductIn)
    assert repriced.variants[0].price_minor == 2200


def test_documented_order_example_maps(connector: BigCommerceConnector) -> None:
    """The "Get All Orders" example of the Orders V2 reference, field for field."""
    order = {
        "id": 100,
        "customer_id": 20,
        "date_created": "Wed, 10 Jan 2018 21:05:30 +0000",
        "date_modified": "Wed, 05 Dec 2018 20:16:55 +0000",
        "date_shipped": "",
        "status_id": 11,
        "status": "Awaiting Fulfillment",
        "subtotal_ex_tax": "336.3200",
        "subtotal_inc_tax": "361.9500",
        "subtotal_tax": "25.6300",
        "base_shipping_cost": "0.0000",
        "shipping_cost_ex_tax": "0.0000",
        "shipping_cost_inc_tax": "0.0000",
        "total_ex_tax": "361.9500",
        "total_inc_tax": "361.9500",
        "total_tax": "0.0000",
        "is_tax_inclusive_pricing": False,
        "items_total": 17,
        "items_shipped": 0,
        "payment_method": "Credit Card",
        "payment_status": "authorized",
        "refunded_amount": "0.0000",
        "currency_code": "USD",
        "default_currency_code": "USD",
        "discount_amount": "0.0000",
        "coupon_discount": "0.0000",
        "is_email_opt_in": False,
        "billing_address": {
            "first_name": "Jane",
            "last_name": "Doe",
            "company": "",
            "street_1": "455 Main Street",
            "street_2": "",
            "city": "Austin",
            "state": "Texas",
            "zip": "78751",
            "country": "United States",
            "country_iso2": "US",
            "phone": "555-123-4567",
            "email": "janedoe@example.com",
            "form_fields": [],
        },
        "order_source": "manual",
        "channel_id": 1,
        "external_source": "POS",
        "custom_status": "Awaiting Fulfillment",
        "customer_locale": "en",
    }
    products = [
        {
            "id": 65,
            "order_id": 100,
            "product_id": 77,
            "variant_id": 0,
            "name": "Fog Linen Towel",
            "sku": "S-ORAN",
            "price_ex_tax": "55.9900",
            "price_inc_tax": "65.2300",
            "quantity": 1,
            "applied_discounts": [
                {
                    "id": "manual-discount",
                    "amount": "1.5900",
                    "name": "Manual Discount",
                    "code": None,
                    "target": "order",
                }
            ],
        },
    ]
    coupons = [
        {
            "id": 3,
            "coupon_id": 1,
            "order_id": 100,
            "code": "S2549JM0Y",
            "amount": 5,
            "type": 2,
            "discount": 5,
        }
    ]
    refunds = [
        {
            "id": 12,
            "order_id": 100,
            "user_id": 0,
            "created": "2022-06-16T16:44:15+00:00",
            "reason": "Customer requires a refund.",
            "total_amount": 50,
            "total_tax": 5,
            "items": [
                {"item_type": "PRODUCT", "item_id": 65, "quantity": 1, "requested_amount": None}
            ],
            "payments": [{"id": 13, "provider_id": "storecredit", "amount": 50, "offline": True}],
        },
    ]
    record = payloads.order_record(
        order=order,
        products=products,
        coupons=coupons,
        shipping_addresses=None,
        refunds=refunds,
        store_currency="EUR",
    )
    assert record.currency == "USD"
    assert record.placed_at == dt.datetime(2018, 1, 10, 21, 5, 30, tzinfo=dt.UTC)
    assert record.updated_at == dt.datetime(2018, 12, 5, 20, 16, 55, tzinfo=dt.UTC)
    assert (record.status, record.paid_at) == ("paid", record.placed_at)
    assert (record.subtotal_minor, record.total_minor, record.tax_minor) == (33632, 36195, 0)
    assert record.discount_codes == ("S2549JM0Y",)
    assert record.customer is not None and record.customer.external_id == "20"
    assert record.customer.languages == ("en",)
    (line,) = record.lines
    assert (line.unit_price_minor, line.discount_minor, line.variant_external_id) == (5599, 159, "")
    (refund,) = record.refunds
    assert refund.amount_minor == 5000
    assert refund.refunded_at == dt.datetime(2022, 6, 16, 16, 44, 15, tzinfo=dt.UTC)
    assert refund.lines[0].amount_minor == 5599 - 159


@pytest.mark.parametrize(
    ("status_id", "shipped", "payment", "base", "cancelled"),
    [
        (1, "", "", "pending", False),
        (7, "", "pending", "pending", False),
        (11, "", "captured", "paid", False),
        (3, "", "captured", "paid", False),
        (2, "Thu, 12 Mar 2026 10:00:00 +0000", "captured", "fulfilled", False),
        (10, "", "captured", "fulfilled", False),
        (14, "", "partially refunded", "paid", False),
        (4, "Thu, 12 Mar 2026 10:00:00 +0000", "refunded", "fulfilled", False),
        (5, "", "void", "pending", True),
        (5, "", "captured", "paid", True),
        (6, "", "declined", "pending", True),
    ],
)
def test_status_mapping(
    status_id: int, shipped: str, payment: str, base: str, cancelled: bool
) -> None:
    placed = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    modified = dt.datetime(2026, 3, 14, tzinfo=dt.UTC)
    order = {"status_id": status_id, "date_shipped": shipped, "payment_status": payment}
    status, paid_at, fulfilled_at, cancelled_at = payloads.order_status(
        order, placed=placed, modified=modified
    )
    assert status == base
    assert (paid_at is not None) == (base in ("paid", "fulfilled"))
    assert (fulfilled_at is not None) == (base == "fulfilled")
    assert cancelled_at == (modified if cancelled else None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "abc"}, "id"),
        ({"date_created": "yesterday"}, "date_created"),
        ({"date_created": None}, "date_created"),
        ({"status_id": 99}, "status_id"),
        ({"total_inc_tax": "lots"}, "total_inc_tax"),
        ({"default_currency_code": "EURO"}, "default_currency_code"),
        ({"billing_address": "nowhere"}, "billing_address"),
        ({"is_tax_inclusive_pricing": "yes"}, "is_tax_inclusive_pricing"),
    ],
)
def test_bad_order_fields_are_named(change: dict[str, Any], field: str) -> None:
    order = {
        "id": 5,
        "date_created": "Wed, 10 Jan 2018 21:05:30 +0000",
        "status_id": 11,
        "total_inc_tax": "1.00",
        "default_currency_code": "EUR",
        **change,
    }
    with pytest.raises(PayloadError) as error:
        payloads.order_record(
            order=order,
            products=[],
            coupons=[],
            shipping_addresses=[],
            refunds=[],
            store_currency="EUR",
        )
    assert error.value.field == field


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
ORDER_KEYS = [
    "id",
    "customer_id",
    "date_created",
    "date_modified",
    "date_shipped",
    "status_id",
    "total_inc_tax",
    "subtotal_ex_tax",
    "default_currency_code",
    "billing_address",
    "is_tax_inclusive_pricing",
    "discount_amount",
    "customer_locale",
    "payment_status",
]


def _shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the documented keys holding arbitrary JSON (often plausible values)."""
    plausible = st.one_of(
        JSON,
        st.integers(min_value=0, max_value=20),
        st.sampled_from(
            ["Wed, 10 Jan 2018 21:05:30 +0000", "2018-09-05T20:42:07+00:00", "12.50", "EUR", ""]
        ),
    )
    return st.dictionaries(st.sampled_from(keys), plausible, max_size=len(keys))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.one_of(JSON, _shaped(ORDER_KEYS)),
    products=st.one_of(
        JSON,
        st.lists(
            _shaped(
                [
                    "id",
                    "quantity",
                    "price_ex_tax",
                    "product_id",
                    "variant_id",
                    "applied_discounts",
                    "sku",
                ]
            ),
            max_size=3,
        ),
    ),
    refunds=st.one_of(
        JSON, st.lists(_shaped(["id", "created", "total_amount", "items", "reason"]), max_size=2)
    ),
    coupons=JSON,
)
def test_arbitrary_api_answers_raise_only_payload_errors(
    order: Any, products: Any, refunds: Any, coupons: Any
) -> None:
    for build in (
        lambda: payloads.order_record(
            order=order,
            products=products,
            coupons=coupons,
            shipping_addresses=coupons,
            refunds=refunds,
            store_currency="EUR",
        ),
        lambda: payloads.customer_record(order),
        lambda: payloads.product_record(order, currency="EUR"),
        lambda: payloads.refund_record(refunds, order_id="1", currency="EUR", lines={}),
    ):
        with contextlib.suppress(PayloadError):
            build()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(JSON, _shaped(["scope", "data", "producer", "hash", "store_id"])),
    scope=st.sampled_from(
        [
            "store/order/created",
            "store/customer/updated",
            "store/product/updated",
            "store/sku/updated",
            "store/cart/created",
            "unknown",
        ]
    ),
)
def test_arbitrary_deliveries_parse_or_raise_payload_errors(
    connector: BigCommerceConnector,
    in_process: fake.FakeShop,
    store: Store,
    payload: Any,
    scope: str,
) -> None:
    try:
        event = connector.parse(store=store, topic=scope, payload=payload, headers={})
    except PayloadError:
        return
    assert isinstance(event, Event)


def test_incomplete_order_and_deleted_resources_write_nothing(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    abandoned = in_process.place_order(
        items=[(ids["small"], 1)], guest_email="x@example.net", status_id=0
    )
    assert _parse(connector, store, _order_payload(abandoned)).records == ()
    assert _parse(connector, store, _order_payload(987654)).records == ()
    in_process.delete_product(ids["jar"])
    gone = fake.webhook_payload(
        scope="store/product/updated", data={"type": "product", "id": ids["jar"]}, created_at=1
    )
    assert _parse(connector, store, gone) == Event()
    assert _parse(connector, store, in_process.events[-1]) == Event(ignored=True)
    customer = fake.webhook_payload(
        scope="store/customer/updated", data={"type": "customer", "id": 4242}, created_at=1
    )
    assert _parse(connector, store, customer) == Event()


def test_wrong_api_path_fails_loudly_instead_of_looking_empty(
    connector: BigCommerceConnector, in_process: fake.FakeShop, workspace: Any
) -> None:
    store = _store(workspace, api_url=f"{FAKE_API}/stores/wronghash/v3/")
    store.external_id = fake.STORE_HASH
    with pytest.raises(ConnectorError, match="api_url"):
        _parse(connector, store, _order_payload(1))


def test_delivery_from_another_store_hash_fails_for_good(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    payload = fake.webhook_payload(
        scope="store/order/created",
        data={"type": "order", "id": 1},
        created_at=1,
        store_hash="someoneelse",
    )
    delivery = _receive(store, fake.sign(payload, secret=SECRET))
    assert delivery_process(delivery_id=delivery.delivery_id) == "failed"
    row = Delivery.objects.get()
    assert row.permanent is True
    assert "producer" in row.last_error


# --------------------------------------------------------------------------- the inbox


def test_delivery_is_processed_by_reading_the_order(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store, other_workspace: Any
) -> None:
    ids = _documented_shop(in_process)
    received = _receive(store, fake.sign(_order_payload(ids["order"]), secret=SECRET))
    assert received.result == "accepted"
    assert delivery_process(delivery_id=received.delivery_id) == "processed"
    order = Order.objects.get(store=store)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.base_status == OrderStatus.FULFILLED
    assert order.lines.count() == 2
    assert Refund.objects.get().order == order
    assert order.member is not None
    assert Delivery.objects.get().outcome == {"order:created": 1}
    assert Order.objects.filter(workspace=other_workspace).count() == 0
    assert Member.objects.filter(workspace=other_workspace).count() == 0


def test_unknown_topic_is_acknowledged_and_ignored(
    client: Any, connector: BigCommerceConnector, store: Store
) -> None:
    payload = fake.webhook_payload(
        scope="store/cart/created",
        data={"type": "cart", "id": "09346904-4175-44fd-be53-f7e598531b6c"},
        created_at=1,
    )
    response = _post(client, store, fake.sign(payload, secret=SECRET))
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == "ignored"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "order", "id": "two-fifty"}, "data.id"),
        ({"type": "order"}, "data.id"),
        ("order 250", "data"),
        ({"type": "sku", "id": 461}, "data.sku"),
    ],
)
def test_malformed_delivery_fails_for_good_with_its_reason(
    connector: BigCommerceConnector, store: Store, data: Any, field: str
) -> None:
    scope = "store/sku/updated" if field == "data.sku" else "store/order/created"
    payload = fake.webhook_payload(scope=scope, data=data, created_at=1)
    received = _receive(store, fake.sign(payload, secret=SECRET))
    assert delivery_process(delivery_id=received.delivery_id) == "failed"
    delivery = Delivery.objects.get()
    assert delivery.permanent is True
    assert delivery.next_attempt_at is None
    assert delivery.last_error.startswith(f"{field}:")


def test_api_outage_is_retried_later(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    in_process.fail_after = 0
    received = _receive(store, fake.sign(_order_payload(ids["order"]), secret=SECRET))
    assert delivery_process(delivery_id=received.delivery_id) == "failed"
    delivery = Delivery.objects.get()
    assert delivery.permanent is False
    assert delivery.next_attempt_at is not None
    in_process.fail_after = None
    assert delivery_process(delivery_id=delivery.pk) == "processed"
    assert Order.objects.filter(store=store).count() == 1


def test_old_delivery_processed_late_does_no_harm(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    order_id = ids["order"]
    created, *later = _order_events(in_process, order_id)
    # The newest delivery is processed first and reads the current (refunded) order.
    newest = _receive(store, fake.sign(later[-1], secret=SECRET))
    delivery_process(delivery_id=newest.delivery_id)
    before = commerce_snapshot(store.workspace)
    # The API briefly answers with the order as it was when placed (a lagging replica) while
    # the old "created" delivery is finally processed: the older state changes nothing.
    current = copy.deepcopy(in_process.orders[order_id])
    in_process.orders[order_id].update(
        status_id=11,
        status="Awaiting Fulfillment",
        date_shipped="",
        date_modified=in_process.orders[order_id]["date_created"],
    )
    old = _receive(store, fake.sign(created, secret=SECRET))
    assert delivery_process(delivery_id=old.delivery_id) == "processed"
    assert Delivery.objects.get(pk=old.delivery_id).outcome == {"order:stale": 1}
    in_process.orders[order_id] = current
    assert commerce_snapshot(store.workspace) == before
    # Every other old delivery, processed now, reads the same current state: nothing moves.
    for payload in later[:-1]:
        received = _receive(store, fake.sign(payload, secret=SECRET))
        assert delivery_process(delivery_id=received.delivery_id) == "processed"
    assert commerce_snapshot(store.workspace) == before
    assert Order.objects.get().status == OrderStatus.PARTIALLY_REFUNDED


def test_resend_is_counted_as_a_duplicate(
    connector: BigCommerceConnector, in_process: fake.FakeShop, store: Store
) -> None:
    ids = _documented_shop(in_process)
    first = fake.sign(_order_payload(ids["order"]), secret=SECRET)
    assert _receive(store, first).result == "accepted"
    assert _receive(store, fake.redeliver(first, secret=SECRET)).result == "duplicate"
    assert Delivery.objects.get().duplicates == 1


def test_test_delivery_is_verified_and_reads_the_store(
    connector: BigCommerceConnector, in_process: fake.FakeShop, workspace: Any
) -> None:
    store = _store(workspace, hook_header_name="X-Circolo-Key", hook_header_value="k-123")
    headers, body = connector.test_delivery(store=store)
    assert json.loads(body)["scope"] == "store/information/updated"
    assert headers["x-circolo-key"] == "k-123"
    received = _receive(store, (headers, body))
    assert received.result == "accepted"
    assert delivery_process(delivery_id=received.delivery_id) == "processed"
    assert in_process.requests == [f"/stores/{fake.STORE_HASH}/v2/store"]
    assert Order.objects.count() == 0


def test_setup_guide_names_fields_and_topics(connector: BigCommerceConnector) -> None:
    guide = connector.setup_guide()
    names = {field.name: field for field in guide.fields}
    assert names["api_url"].target == "api_url" and names["api_url"].required
    assert names["access_token"].secret and names["access_token"].target == "credentials"
    assert names["webhook_secret"].secret and names["webhook_secret"].target == "webhook_secret"
    assert not names["hook_header_name"].required
    assert "store/order/refund/created" in guide.topics
    assert any("/v3/hooks" in str(step) or "hooks" in str(step) for step in guide.steps)
    assert all(str(step) for step in guide.steps)


def test_api_base_accepts_the_path_bigcommerce_shows() -> None:
    assert api.api_base("https://api.bigcommerce.com/stores/abc123/v3/") == (
        "https://api.bigcommerce.com/stores/abc123/"
    )
    assert api.api_base("https://api.bigcommerce.com/stores/abc123") == (
        "https://api.bigcommerce.com/stores/abc123/"
    )
    assert api.store_hash("https://api.bigcommerce.com/stores/abc123/v3/") == "abc123"
    with pytest.raises(ConnectorError, match="api_url"):
        api.api_base("")


# --------------------------------------------------------------------------- backfill


@pytest.fixture
def served(shop: fake.FakeShop) -> Any:
    """The fake shop over real loopback HTTP."""
    with fake.serve(shop) as base_url:
        yield base_url


def _stocked(shop: fake.FakeShop) -> fake.FakeShop:
    fake.busy_shop(160, seed=3, shop=shop)
    shop.place_order(
        items=[(shop.products[min(shop.products)]["variants"][0]["id"], 1)],
        guest_email="gone@example.net",
        status_id=0,
    )
    return shop


def _complete_orders(shop: fake.FakeShop) -> int:
    return sum(1 for order in shop.orders.values() if order["status_id"] != 0)


def test_backfill_reads_everything(
    connector: BigCommerceConnector,
    shop: fake.FakeShop,
    served: str,
    workspace: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stocked(shop)
    monkeypatch.setattr(connector, "page_size", 7)
    store = _store(workspace, api_url=fake.api_path(served))
    result = store_sync(store=store, mode="backfill")
    assert result.status == "done"
    assert Order.objects.filter(store=store).count() == _complete_orders(shop)
    assert Product.objects.filter(store=store).count() == len(shop.products)
    assert ProductVariant.objects.filter(store=store).count() == sum(
        len(p["variants"]) for p in shop.products.values()
    )
    assert Refund.objects.filter(store=store).count() == sum(len(r) for r in shop.refunds.values())
    assert Refund.objects.filter(store=store, order__isnull=True).count() == 0
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.resources_done == ["customers", "products", "orders"]
    assert run.fetched == len(shop.customers) + len(shop.products) + _complete_orders(shop)
    # Refunds of a page of orders come in one request, not one per order.
    assert any(
        "payment_actions/refunds?order_id" in path.replace("%3A", ":") for path in shop.requests
    )


@pytest.mark.parametrize("interruption", ["max_pages", "server_errors", "throttled"])
def test_interrupted_backfill_resumes_to_the_same_state(
    connector: BigCommerceConnector,
    shop: fake.FakeShop,
    served: str,
    workspace: Any,
    other_workspace: Any,
    monkeypatch: pytest.MonkeyPatch,
    interruption: str,
) -> None:
    _stocked(shop)
    monkeypatch.setattr(connector, "page_size", 7)
    whole = _store(workspace, api_url=fake.api_path(served))
    assert store_sync(store=whole, mode="backfill").status == "done"
    broken = _store(other_workspace, api_url=fake.api_path(served))
    if interruption == "max_pages":
        first = store_sync(store=broken, mode="backfill", max_pages=4)
        assert first.status == "running"
    elif interruption == "server_errors":
        shop.fail_after = 60
        first = store_sync(store=broken, mode="backfill")
        assert first.status == "failed"
        assert "HTTP 500" in SyncRun.objects.get(pk=first.run_id).error
        shop.fail_after = None
    else:
        # Throttled for longer than the client retries: the run fails and resumes later.
        shop.fail_after = 40
        shop.fail_status = 429
        first = store_sync(store=broken, mode="backfill")
        assert first.status == "failed"
        shop.fail_after = None
    assert Order.objects.filter(store=broken).count() < _complete_orders(shop)
    second = store_sync(store=broken, mode="backfill")
    assert second.status == "done"
    assert second.run_id == first.run_id
    assert commerce_snapshot(other_workspace) == commerce_snapshot(workspace)


def test_rate_limit_wait_header_is_honoured(
    connector: BigCommerceConnector, shop: fake.FakeShop, served: str, workspace: Any
) -> None:
    _stocked(shop)
    store = _store(workspace, api_url=fake.api_path(served))
    shop.throttle = 2
    shop.throttle_reset_ms = 1500
    with connector.client(store=store) as client:
        found, _more = api.customers_page(client, page=1, since=None)
        assert client.waits == [1.5, 1.5]
    assert found
    assert connector.waits == [1.5, 1.5]  # type: ignore[attr-defined]
    shop.throttle = 3
    shop.throttle_reset_ms = 250
    assert store_sync(store=store, mode="backfill").status == "done"
    assert connector.waits[-3:] == [0.25, 0.25, 0.25]  # type: ignore[attr-defined]


def test_wrong_token_fails_the_sync_with_the_reason(
    connector: BigCommerceConnector, shop: fake.FakeShop, served: str, workspace: Any
) -> None:
    store = make_store(
        workspace,
        platform="bigcommerce",
        secret=SECRET,
        api_url=fake.api_path(served),
        credentials={"access_token": "nope"},
    )
    result = store_sync(store=store, mode="backfill")
    assert result.status == "failed"
    assert "HTTP 401" in SyncRun.objects.get(pk=result.run_id).error


# --------------------------------------------------------------------------- reconciliation


def test_reconciliation_repairs_missed_deliveries(
    connector: BigCommerceConnector, served: str, workspace: Any
) -> None:
    shop_now = timezone.now() - dt.timedelta(hours=2)
    shop = fake.FakeShop(now=shop_now.replace(microsecond=0))
    with fake.serve(shop) as base_url:
        fake.busy_shop(120, seed=5, shop=shop)
        store = _store(workspace, api_url=fake.api_path(base_url))
        assert store_sync(store=store, mode="backfill").status == "done"
        before = Order.objects.filter(store=store).count()
        # Changes on the shop whose webhooks never arrived.
        shop.now = timezone.now().replace(microsecond=0)
        customer = min(shop.customers)
        shop.update_customer(customer, phone="+39 333 7654321")
        variant = shop.products[min(shop.products)]["variants"][0]["id"]
        new_order = shop.place_order(items=[(variant, 2)], customer_id=customer, status_id=7)
        paid = next(
            o for o, row in sorted(shop.orders.items()) if row["status_id"] == 11 and o != new_order
        )
        shop.set_status(paid, 2)
        refunded_line = shop.order_products[paid][0]["id"]
        shop.refund(paid, items=[(refunded_line, 1)])
        result = store_sync(store=store, mode="reconcile")
    assert result.status == "done"
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.since is not None
    # Customers are resolved, not counted; the new order and the shipped-and-refunded one are.
    assert run.repaired_detail == {"orders:created": 1, "orders:updated": 1}
    assert run.repaired == 2
    # Only what changed since the last run was read again.
    assert run.fetched < len(shop.customers) + len(shop.orders)
    assert Order.objects.filter(store=store).count() == before + 1
    order = Order.objects.get(store=store, external_id=str(paid))
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.base_status == OrderStatus.FULFILLED
    assert Refund.objects.filter(store=store, order=order).count() >= 1


# --------------------------------------------------------------------------- replay


@pytest.mark.replay
def test_replay_of_many_deliveries_converges(
    connector: BigCommerceConnector,
    monkeypatch: pytest.MonkeyPatch,
    workspace: Any,
    other_workspace: Any,
    settings: Any,
) -> None:
    """Acceptance 1: 10,000 deliveries in order into one store, and with 30 % resent and
    30 % moved later into another, end in the same state."""
    # Deliveries are signed when built, and playing 10,000 of them takes longer than the
    # freshness window; freshness has its own tests above.
    settings.CIRCOLO_WEBHOOK_TOLERANCE_SECONDS = 24 * 3600
    shop = fake.busy_shop(REPLAY_DELIVERIES)
    assert len(shop.events) == REPLAY_DELIVERIES
    monkeypatch.setattr(connector, "transport", httpx.WSGITransport(app=shop))
    in_order = _store(workspace)
    shuffled = _store(other_workspace)

    def make(store: Store) -> list[fake.Signed]:
        stamp = int(time.time())
        return [fake.sign(payload, secret=SECRET, timestamp=stamp) for payload in shop.events]

    def again(store: Store, signed: fake.Signed) -> fake.Signed:
        return fake.redeliver(signed, secret=SECRET)

    report = replay_compare(
        store_in_order=in_order, store_shuffled=shuffled, make=make, redeliver=again
    )
    assert report.failed_left == 0
    assert report.duplicates_sent > 0 and report.moved > 0
    assert report.duplicates_seen == report.duplicates_sent
    assert report.snapshot_shuffled == report.snapshot_in_order
    snapshot = report.snapshot_in_order
    assert len(snapshot["orders"]) == _complete_orders(shop)
    assert len(snapshot["refunds"]) == sum(len(r) for r in shop.refunds.values())
    assert len(snapshot["products"]) == len(shop.products)
    statuses = {row[10] for row in snapshot["orders"].values()}
    assert statuses >= {"pending", "paid", "fulfilled", "cancelled", "partially_refunded"}
