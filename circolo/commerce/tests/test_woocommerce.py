"""The WooCommerce connector: signatures through the real URL, the ping, payload mapping
(documented examples and arbitrary JSON), refunds read from the API, backfill and
reconciliation against a fake site, and the 10,000-delivery replay."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.connectors import base
from circolo.commerce.connectors.base import ConnectorError, SignatureError, connector_for
from circolo.commerce.connectors.woocommerce import api, payloads
from circolo.commerce.connectors.woocommerce import woocommerce as connector
from circolo.commerce.connectors.woocommerce.signatures import ping_webhook_id, signature
from circolo.commerce.models import (
    Delivery,
    Order,
    OrderLine,
    Product,
    ProductVariant,
    Refund,
    RefundLine,
    Store,
    SyncRun,
)
from circolo.commerce.schema import PayloadError
from circolo.commerce.services import store_update
from circolo.commerce.sync import store_sync
from circolo.commerce.tests import fake_woocommerce as fake
from circolo.commerce.tests.replay import REPLAY_DELIVERIES, play, replay_compare
from circolo.commerce.webhooks import delivery_process, delivery_receive
from circolo.people.models import Identity, IdentityKind
from circolo.testing.commerce import commerce_snapshot, make_store

SECRET = "wc-webhook-secret-Tr0ub4dor&3"
OLD_SECRET = "wc-webhook-secret-of-last-year"
CREDENTIALS = {"consumer_key": fake.CONSUMER_KEY, "consumer_secret": fake.CONSUMER_SECRET}
T1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def _store(workspace: Any, *, api_url: str = "", **extra: Any) -> Store:
    return make_store(
        workspace,
        platform="woocommerce",
        secret=SECRET,
        api_url=api_url,
        credentials=dict(CREDENTIALS),
        **extra,
    )


def _post(client: Any, store: Store, signed: fake.Signed, *, form: bool = False) -> Any:
    headers, body = signed
    return client.post(
        f"/hooks/woocommerce/{store.hook_token}/",
        data=body,
        content_type="application/x-www-form-urlencoded" if form else "application/json",
        headers=fake.as_client_headers(headers),
    )


def _delivery(topic: str, payload: dict[str, Any], *, secret: str = SECRET) -> fake.Signed:
    return fake.delivery(secret=secret, topic=topic, payload=payload)


def _order_payload(**over: Any) -> dict[str, Any]:
    """An order as the docs list its fields: a registered customer, a coupon, discounted
    and taxed lines (one a variation), shipping, a referral landing page."""
    lines = [
        fake.line_item(
            315,
            product_id=93,
            name="Woo Single #1",
            sku="SINGLE",
            quantity=2,
            price="3.00",
            tax_rate="0.075",
        ),
        fake.line_item(
            316,
            product_id=22,
            variation_id=23,
            name="Ship Your Idea - Black, M",
            sku="Bar3",
            quantity=3,
            price="10.00",
            discount="1.00",
        ),
    ]
    billing = fake.address(
        first_name="John",
        last_name="Doe",
        city="San Francisco",
        country="US",
        email="john.doe@example.com",
        phone="(555) 555-5555",
    )
    record = fake.order(
        727,
        created_at=T1,
        modified_at=T1 + dt.timedelta(minutes=9),
        paid_at=T1 + dt.timedelta(minutes=5),
        status="processing",
        lines=lines,
        billing=billing,
        customer_id=42,
        coupons=("welcome10",),
        shipping_total="10.00",
        landing_page="https://bottega.example/tea/?ref=ada7&utm_source=newsletter",
    )
    record.update(over)
    return record


# --------------------------------------------------------------------------- signatures


def _forgeries() -> list[tuple[str, Any]]:
    body = fake.wc_json(_order_payload())
    good = signature(SECRET, body)
    other = fake.wc_json(_order_payload(total="0.01"))
    return [
        (
            "missing",
            lambda h, b: ({k: v for k, v in h.items() if k != "X-WC-Webhook-Signature"}, b),
        ),
        ("empty", lambda h, b: ({**h, "X-WC-Webhook-Signature": ""}, b)),
        ("truncated", lambda h, b: ({**h, "X-WC-Webhook-Signature": good[:-6]}, b)),
        ("not base64", lambda h, b: ({**h, "X-WC-Webhook-Signature": "not*base64*at/all=="}, b)),
        (
            "forged",
            lambda h, b: ({**h, "X-WC-Webhook-Signature": base64.b64encode(bytes(32)).decode()}, b),
        ),
        ("wrong secret", lambda h, b: ({**h, "X-WC-Webhook-Signature": signature("guess", b)}, b)),
        (
            "stale secret",
            lambda h, b: ({**h, "X-WC-Webhook-Signature": signature(OLD_SECRET, b)}, b),
        ),
        (
            "another body",
            lambda h, b: ({**h, "X-WC-Webhook-Signature": signature(SECRET, other)}, b),
        ),
        ("tampered body", lambda h, b: (h, b.replace(b'"total":"', b'"total":"1'))),
        (
            "hex digest",
            lambda h, b: ({**h, "X-WC-Webhook-Signature": base64.b64decode(good).hex()}, b),
        ),
    ]


FORGERIES = _forgeries()


@pytest.mark.django_db
@pytest.mark.parametrize("name,forge", FORGERIES, ids=[name for name, _f in FORGERIES])
def test_forged_deliveries_are_refused_and_counted(client, workspace, name, forge):
    store = _store(workspace)
    headers, body = forge(*_delivery("order.updated", _order_payload()))
    response = _post(client, store, (headers, body))
    assert response.status_code == 401, name
    assert response.json() == {"result": "bad_signature"}
    assert not Delivery.objects.exists()
    store.refresh_from_db()
    assert store.rejected_deliveries == 1
    assert store.rejected_last_at is not None


@pytest.mark.django_db
def test_signature_of_a_rotated_out_secret_is_stale(client, workspace):
    store = _store(workspace)
    signed_old = _delivery(
        "customer.updated", fake.customer(7, email="a@example.com"), secret=SECRET
    )
    store_update(store=store, actor=None, webhook_secret="the-new-secret")
    assert _post(client, store, signed_old).status_code == 401
    fresh = fake.delivery(
        secret="the-new-secret",
        topic="customer.updated",
        payload=fake.customer(7, email="a@example.com"),
    )
    assert _post(client, store, fresh).status_code == 200
    assert Store.objects.get(pk=store.pk).rejected_deliveries == 1


@pytest.mark.django_db
def test_signed_delivery_is_stored_and_processed(
    client, workspace, django_capture_on_commit_callbacks
):
    store = _store(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, store, _delivery("order.created", _order_payload()))
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    delivery = Delivery.objects.get()
    assert (delivery.topic, delivery.status) == ("order.created", "processed")
    assert delivery.dedupe_key == "order:727:2026-03-01T10:09:00:processing:"
    assert "x-wc-webhook-signature" in delivery.headers
    order = Order.objects.get(store=store)
    assert (order.status, order.total_minor) == ("paid", 4545)


def test_verify_refuses_a_store_without_secret():
    store = Store(platform="woocommerce")
    store.webhook_secret = ""
    headers, body = _delivery("order.created", _order_payload())
    with pytest.raises(SignatureError, match="no webhook secret"):
        connector.verify(store=store, headers=headers, body=body, now=timezone.now())


# --------------------------------------------------------------------------- the ping


def test_the_ping_is_recognised_and_nothing_else_is():
    headers, body = fake.ping(12)
    assert ping_webhook_id(headers=headers, body=body) == "12"
    assert connector.handshake(headers=headers, body=body)
    signed = _delivery("order.created", _order_payload())
    assert not connector.handshake(headers=signed[0], body=signed[1])
    # A signed body that happens to look like a ping is an ordinary (verified) delivery.
    assert not connector.handshake(headers={**headers, "X-WC-Webhook-Signature": "x"}, body=body)
    for other in (b"webhook_id=", b"webhook_id=1&x=2", b"webhook_id=abc", b'{"webhook_id":1}'):
        assert not connector.handshake(headers=headers, body=other)


@pytest.mark.django_db
@pytest.mark.skipif(
    not hasattr(base.Connector, "handshake"),
    reason="webhooks.delivery_receive does not yet ask the connector about handshakes",
)
def test_the_ping_is_answered_200_without_storing_or_counting(client, workspace):
    store = _store(workspace)
    response = _post(client, store, fake.ping(12), form=True)
    assert response.status_code == 200
    assert not Delivery.objects.exists()
    assert Store.objects.get(pk=store.pk).rejected_deliveries == 0


# --------------------------------------------------------------------------- the inbox


@pytest.mark.django_db
def test_the_same_state_sent_again_is_a_duplicate(client, workspace):
    store = _store(workspace)
    first = _delivery("order.updated", _order_payload())
    again = fake.redeliver(first)
    assert first[0]["X-WC-Webhook-Delivery-ID"] != again[0]["X-WC-Webhook-Delivery-ID"]
    assert _post(client, store, first).json() == {"result": "accepted"}
    assert _post(client, store, again).json() == {"result": "duplicate"}
    # order.created of the same state is the same event too.
    created = _delivery("order.created", _order_payload())
    assert _post(client, store, created).json() == {"result": "duplicate"}
    assert Delivery.objects.get().duplicates == 2


def test_dedupe_key_tells_states_apart():
    def key(topic: str, payload: Any) -> str:
        return connector.dedupe_key(headers={}, payload=payload, topic=topic)

    order = _order_payload()
    refunded = _order_payload(refunds=[{"id": 801, "reason": "", "total": "-3.00"}])
    completed = _order_payload(status="completed")
    later = _order_payload(date_modified_gmt="2026-03-01T10:10:00")
    keys = {key("order.updated", p) for p in (order, refunded, completed, later)}
    assert len(keys) == 4
    # A partial refund need not touch date_modified: its id still makes it a new event.
    assert key("order.updated", refunded).endswith(":801")
    assert key("order.deleted", {"id": 727}) == "order:727:deleted"
    assert key("product.updated", fake.product(5, name="Tea")).startswith("product:5:")
    assert key("action.woocommerce_add_to_cart", {"action": "x", "arg": "y"}).startswith("body:")
    assert key("order.updated", "just a string").startswith("body:")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "topic,payload",
    [
        (
            "coupon.updated",
            {"id": 5, "code": "welcome10", "date_modified_gmt": "2026-03-01T10:00:00"},
        ),
        ("order.deleted", {"id": 727}),
        ("product.deleted", {"id": 93}),
        ("customer.deleted", {"id": 42}),
        ("order.restored", _order_payload()),
        ("action.woocommerce_add_to_cart", {"action": "woocommerce_add_to_cart", "arg": "a1b2"}),
    ],
)
def test_other_topics_are_acknowledged_and_ignored(client, workspace, topic, payload):
    store = _store(workspace)
    assert _post(client, store, _delivery(topic, payload)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == "ignored"
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_malformed_payload_fails_permanently_with_the_field(client, workspace):
    store = _store(workspace)
    payload = _order_payload(date_created_gmt="yesterday-ish")
    assert _post(client, store, _delivery("order.created", payload)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.permanent
    assert delivery.next_attempt_at is None
    assert delivery.last_error.startswith("date_created_gmt:")


@pytest.mark.django_db
def test_not_json_is_a_bad_request(client, workspace):
    store = _store(workspace)
    body = b"webhook_id=3&extra=1"
    headers = {"X-WC-Webhook-Signature": signature(SECRET, body), "X-WC-Webhook-Topic": "x.y"}
    assert _post(client, store, (headers, body), form=True).status_code == 400
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_deliveries_stay_in_their_own_workspace(client, workspace, other_workspace):
    ours = _store(workspace)
    theirs = make_store(other_workspace, platform="woocommerce", secret="their-own-secret")
    signed = _delivery("order.created", _order_payload())
    # Our delivery posted to their address does not verify with their secret.
    assert _post(client, theirs, signed).status_code == 401
    assert _post(client, ours, signed).status_code == 200
    delivery_process(delivery_id=Delivery.objects.get(store=ours).pk)
    theirs_signed = fake.delivery(
        secret="their-own-secret", topic="order.created", payload=_order_payload()
    )
    assert _post(client, theirs, theirs_signed).status_code == 200
    delivery_process(delivery_id=Delivery.objects.get(store=theirs).pk)
    mine = Order.objects.get(store=ours)
    other = Order.objects.get(store=theirs)
    assert mine.workspace_id == workspace.pk and other.workspace_id == other_workspace.pk
    assert mine.member_id != other.member_id
    assert Store.objects.get(pk=theirs.pk).rejected_deliveries == 1
    assert Store.objects.get(pk=ours.pk).rejected_deliveries == 0


@pytest.mark.django_db
def test_test_delivery_verifies_and_is_ignored(workspace):
    store = _store(workspace, api_url="https://bottega.example")
    headers, body = connector.test_delivery(store=store)
    assert headers["X-WC-Webhook-Topic"] == "coupon.updated"
    assert headers["X-WC-Webhook-Source"] == "https://bottega.example/"
    received = delivery_receive(
        platform="woocommerce", token=store.hook_token, headers=headers, body=body
    )
    assert (received.status, received.result) == (200, "accepted")
    assert received.delivery_id is not None
    assert delivery_process(delivery_id=received.delivery_id) == "ignored"


# --------------------------------------------------------------------------- payloads


def test_order_maps_every_field_we_keep():
    order = payloads.order_in(_order_payload(), fallback_currency="USD")
    assert order.external_id == "727" and order.number == "727"
    assert order.currency == "EUR"
    assert order.placed_at == T1
    assert order.updated_at == T1 + dt.timedelta(minutes=9)
    assert (order.status, order.paid_at, order.fulfilled_at, order.cancelled_at) == (
        "paid",
        T1 + dt.timedelta(minutes=5),
        None,
        None,
    )
    # Lines 2 × 3.00 (+7.5 % tax) and 3 × 10.00 less 1.00; shipping 10.00.
    assert order.subtotal_minor == 3600
    assert order.discount_minor == 100
    assert order.shipping_minor == 1000
    assert order.tax_minor == 45
    assert order.total_minor == 3600 - 100 + 45 + 1000
    assert order.discount_codes == ("welcome10",)
    first, second = order.lines
    assert (first.external_id, first.quantity, first.unit_price_minor, first.discount_minor) == (
        "315",
        2,
        300,
        0,
    )
    assert (first.product_external_id, first.variant_external_id, first.sku) == (
        "93",
        "93",
        "SINGLE",
    )
    assert (second.unit_price_minor, second.discount_minor) == (1000, 100)
    assert (second.product_external_id, second.variant_external_id) == ("22", "23")
    assert order.customer is not None
    assert order.customer.external_id == "42"
    assert (order.customer.email, order.customer.phone) == (
        "john.doe@example.com",
        "(555) 555-5555",
    )
    assert (order.customer.first_name, order.customer.city, order.customer.country) == (
        "John",
        "San Francisco",
        "US",
    )
    assert order.landing_site.startswith("https://bottega.example/tea/")
    assert order.referring_code == "ada7"
    assert order.shipping_address["city"] == "San Francisco"
    assert "email" not in order.shipping_address
    assert order.refunds == ()


def test_the_documented_example_order():
    """The JSON response example of "Retrieve an order" in the REST API docs."""
    doc = {
        "id": 727,
        "parent_id": 0,
        "number": "727",
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "rest-api",
        "version": "3.0.0",
        "status": "processing",
        "currency": "USD",
        "date_created": "2017-03-22T16:28:02",
        "date_created_gmt": "2017-03-22T19:28:02",
        "date_modified": "2017-03-22T16:28:08",
        "date_modified_gmt": "2017-03-22T19:28:08",
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "10.00",
        "shipping_tax": "0.00",
        "cart_tax": "1.35",
        "total": "29.35",
        "total_tax": "1.35",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": "",
        "billing": {
            "first_name": "John",
            "last_name": "Doe",
            "company": "",
            "address_1": "969 Market",
            "address_2": "",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
            "email": "john.doe@example.com",
            "phone": "(555) 555-5555",
        },
        "shipping": {
            "first_name": "John",
            "last_name": "Doe",
            "company": "",
            "address_1": "969 Market",
            "address_2": "",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
        },
        "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer",
        "transaction_id": "",
        "date_paid": "2017-03-22T16:28:08",
        "date_paid_gmt": "2017-03-22T19:28:08",
        "date_completed": None,
        "date_completed_gmt": None,
        "cart_hash": "",
        "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
        "line_items": [
            {
                "id": 315,
                "name": "Woo Single #1",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 2,
                "tax_class": "",
                "subtotal": "6.00",
                "subtotal_tax": "0.45",
                "total": "6.00",
                "total_tax": "0.45",
                "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}],
                "meta_data": [],
                "sku": "",
                "price": 3,
            },
            {
                "id": 316,
                "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
                "product_id": 22,
                "variation_id": 23,
                "quantity": 1,
                "tax_class": "",
                "subtotal": "12.00",
                "subtotal_tax": "0.90",
                "total": "12.00",
                "total_tax": "0.90",
                "taxes": [{"id": 75, "total": "0.9", "subtotal": "0.9"}],
                "meta_data": [
                    {"id": 2095, "key": "pa_color", "value": "black"},
                    {"id": 2096, "key": "size", "value": "M Test"},
                ],
                "sku": "Bar3",
                "price": 12,
            },
        ],
        "tax_lines": [
            {
                "id": 318,
                "rate_code": "US-CA-STATE TAX",
                "rate_id": 75,
                "label": "State Tax",
                "compound": False,
                "tax_total": "1.35",
                "shipping_tax_total": "0.00",
                "meta_data": [],
            }
        ],
        "shipping_lines": [
            {
                "id": 317,
                "method_title": "Flat Rate",
                "method_id": "flat_rate",
                "total": "10.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
    }
    order = payloads.order_in(doc, fallback_currency="EUR")
    assert order.currency == "USD"
    assert order.placed_at == dt.datetime(2017, 3, 22, 19, 28, 2, tzinfo=dt.UTC)
    assert order.paid_at == dt.datetime(2017, 3, 22, 19, 28, 8, tzinfo=dt.UTC)
    assert (order.status, order.total_minor, order.tax_minor, order.subtotal_minor) == (
        "paid",
        2935,
        135,
        1800,
    )
    assert order.customer is not None and order.customer.external_id == ""
    assert [(ln.external_id, ln.quantity, ln.unit_price_minor) for ln in order.lines] == [
        ("315", 2, 300),
        ("316", 1, 1200),
    ]


@pytest.mark.parametrize(
    "status,paid,completed,expected",
    [
        ("pending", False, False, "pending"),
        ("on-hold", False, False, "pending"),
        ("failed", False, False, "pending"),
        ("processing", True, False, "paid"),
        ("processing", False, False, "paid"),
        ("completed", True, True, "fulfilled"),
        ("refunded", True, False, "paid"),
        ("refunded", True, True, "fulfilled"),
        ("cancelled", False, False, "pending"),
        ("cancelled", True, False, "paid"),
        ("shipped", True, True, "fulfilled"),
    ],
)
def test_base_status_from_the_woocommerce_status(status, paid, completed, expected):
    over: dict[str, Any] = {"status": status}
    over.update(fake.dates("date_paid", T1 if paid else None))
    over.update(fake.dates("date_completed", T1 + dt.timedelta(days=1) if completed else None))
    order = payloads.order_in(_order_payload(**over), fallback_currency="EUR")
    assert order.status == expected
    assert (order.cancelled_at is not None) == (status == "cancelled")
    if expected == "fulfilled":
        assert order.fulfilled_at == T1 + dt.timedelta(days=1)
    if expected == "pending":
        assert order.paid_at is None


def test_guest_order_is_identified_by_its_billing_email():
    order = payloads.order_in(_order_payload(customer_id=0), fallback_currency="EUR")
    assert order.customer is not None
    assert (order.customer.external_id, order.customer.email) == ("", "john.doe@example.com")
    empty = _order_payload(customer_id=0, billing=fake.address(email="", phone=""))
    nobody = payloads.order_in(empty, fallback_currency="EUR")
    assert nobody.customer is None


def test_uneven_line_keeps_its_total():
    line = fake.line_item(
        1, product_id=5, name="Tea", sku="T", quantity=3, price="3.3333", discount="0"
    )
    line.update(subtotal="10.00", total="9.00")
    order = payloads.order_in(_order_payload(line_items=[line]), fallback_currency="EUR")
    (parsed,) = order.lines
    assert parsed.unit_price_minor == 334
    assert parsed.quantity * parsed.unit_price_minor - parsed.discount_minor == 900
    assert parsed.discount_minor >= 100


def test_refund_from_the_api_names_its_order_lines():
    order = _order_payload()
    item = order["line_items"][1]
    made = fake.refund(
        801,
        order_id=727,
        created_at=T1 + dt.timedelta(days=2),
        lines=[(item, 1, Decimal("9.67"))],
        extra=Decimal("10.00"),
        reason="Damaged in transit",
    )
    parsed = payloads.refund_in(made, order_id="727", currency="EUR")
    assert (parsed.external_id, parsed.order_external_id) == ("801", "727")
    assert parsed.refunded_at == T1 + dt.timedelta(days=2)
    assert (parsed.amount_minor, parsed.currency, parsed.reason) == (
        1967,
        "EUR",
        "Damaged in transit",
    )
    (line,) = parsed.lines
    assert (line.line_external_id, line.quantity, line.amount_minor) == ("316", 1, 967)
    # Without _refunded_item_id, the order line of the same product and variation.
    made["line_items"][0]["meta_data"] = []
    by_product = payloads.lines_by_product(order)
    parsed = payloads.refund_in(made, order_id="727", currency="EUR", lines_by_product=by_product)
    assert parsed.lines[0].line_external_id == "316"


def test_the_documented_example_refund():
    doc = {
        "id": 726,
        "date_created": "2017-03-21T17:07:11",
        "date_created_gmt": "2017-03-21T20:07:11",
        "amount": "10.00",
        "reason": "",
        "refunded_by": 1,
        "refunded_payment": False,
        "meta_data": [],
        "line_items": [],
    }
    parsed = payloads.refund_in(doc, order_id="723", currency="USD")
    assert (parsed.amount_minor, parsed.refunded_at, parsed.lines) == (
        1000,
        dt.datetime(2017, 3, 21, 20, 7, 11, tzinfo=dt.UTC),
        (),
    )


def test_customer_with_billing_details():
    record = fake.customer(
        25,
        email="ada@example.com",
        first_name="Ada",
        last_name="Rossi",
        phone="+39 333 1234567",
        city="Torino",
        created_at=T1,
        modified_at=T1 + dt.timedelta(hours=1),
    )
    parsed = payloads.customer_in(record)
    assert (parsed.external_id, parsed.email, parsed.phone) == (
        "25",
        "ada@example.com",
        "+39 333 1234567",
    )
    assert (parsed.first_name, parsed.last_name, parsed.city, parsed.country) == (
        "Ada",
        "Rossi",
        "Torino",
        "IT",
    )
    assert parsed.created_at == T1 and parsed.updated_at == T1 + dt.timedelta(hours=1)
    # Names missing on the account come from the billing address.
    record.update(first_name="", last_name="")
    assert payloads.customer_in(record).first_name == "Ada"


def test_simple_product_is_its_own_variant():
    record = fake.product(
        93,
        name="Woo Single #1",
        sku="SINGLE",
        price="3.00",
        status="private",
        image="https://bottega.example/single.jpg",
        created_at=T1,
    )
    parsed = payloads.product_in(record, currency="EUR")
    assert (parsed.external_id, parsed.title, parsed.status) == ("93", "Woo Single #1", "archived")
    assert parsed.url == "https://bottega.example/product/woo-single-#1/"
    assert parsed.image_url == "https://bottega.example/single.jpg"
    assert parsed.updated_at == T1
    assert [(v.external_id, v.sku, v.price_minor) for v in parsed.variants] == [
        ("93", "SINGLE", 300)
    ]


def test_variable_product_takes_its_variations():
    record = fake.product(22, name="Ship Your Idea", kind="variable", price="", variations=[23, 24])
    variations = [
        fake.variation(23, parent_id=22, sku="Bar3", price="12.00", option="Black"),
        fake.variation(24, parent_id=22, sku="Bar4", price="13.50", option="Green"),
    ]
    parsed = payloads.product_in(record, currency="EUR", variations=variations)
    assert [(v.external_id, v.sku, v.title, v.price_minor) for v in parsed.variants] == [
        ("23", "Bar3", "Black", 1200),
        ("24", "Bar4", "Green", 1350),
    ]
    with pytest.raises(PayloadError) as error:
        payloads.product_in(fake.variation_as_product(variations[0], name="X"), currency="EUR")
    assert error.value.field == "type"


BAD_FIELDS = [
    (("id",), None, "id"),
    (("id",), 0, "id"),
    (("currency",), "euro", "currency"),
    (("date_created_gmt",), "not a date", "date_created_gmt"),
    (("date_modified_gmt",), 12, "date_modified_gmt"),
    (("total",), "12,50", "total"),
    (("total",), "1e99", "total"),
    (("line_items",), {"id": 1}, "line_items"),
    (("line_items", 0, "quantity"), -2, "line_items[0].quantity"),
    (("line_items", 0, "id"), "", "line_items[0].id"),
    (("line_items", 1, "subtotal"), [], "line_items[1].subtotal"),
    (("billing",), "john", "billing"),
    (("billing", "email"), {"x": 1}, "billing.email"),
    (("coupon_lines", 0), "welcome10", "coupon_lines[0]"),
    (("refunds", 0), {"id": None}, "refunds[0].id"),
    (("meta_data",), {"key": "x"}, "meta_data"),
]


@pytest.mark.parametrize("path,value,field", BAD_FIELDS)
def test_bad_order_fields_are_named(path, value, field):
    payload = _order_payload(refunds=[{"id": 801, "reason": "", "total": "-1.00"}])
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(PayloadError) as error:
        payloads.refund_ids(payload)
        payloads.order_in(payload, fallback_currency="EUR")
    assert error.value.field == field


def test_site_time_without_gmt_is_refused_but_an_offset_is_fine():
    payload = _order_payload()
    del payload["date_created_gmt"]
    with pytest.raises(PayloadError) as error:
        payloads.order_in(payload, fallback_currency="EUR")
    assert error.value.field == "date_created_gmt"
    payload["date_created"] = "2026-03-01T11:00:00+01:00"
    assert payloads.order_in(payload, fallback_currency="EUR").placed_at == T1


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True)
        | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=12,
    )


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


TOPICS = st.sampled_from(
    ["order.created", "order.updated", "product.updated", "customer.created", "coupon.updated", ""]
)
ORDER_PATHS = _paths(_order_payload(refunds=[{"id": 801, "reason": "", "total": "-1.00"}]))


def _siteless_store(workspace: Any) -> Store:
    """A saved store without a site address (one per test, shared by the examples)."""
    return Store.objects.filter(workspace=workspace).first() or _store(workspace)


def _parse_safely(store: Store, topic: str, payload: Any) -> None:
    headers = {"x-wc-webhook-topic": topic}
    assert isinstance(connector.topic(headers=headers, payload=payload), str)
    key = connector.dedupe_key(headers=headers, payload=payload, topic=topic)
    assert isinstance(key, str) and 0 < len(key) <= 300
    try:
        connector.parse(store=store, topic=topic, payload=payload, headers=headers)
    except PayloadError as error:
        assert str(error)
    except ConnectorError as error:
        # Only reading refunds or variations from the API may need the (absent) site.
        assert "api_url" in str(error)


@pytest.mark.django_db
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(topic=TOPICS, payload=_json_values())
def test_arbitrary_json_raises_only_payload_errors(workspace, topic, payload):
    _parse_safely(_siteless_store(workspace), topic, payload)


@pytest.mark.django_db
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(ORDER_PATHS), value=_json_values())
def test_any_field_of_a_real_order_replaced_raises_only_payload_errors(workspace, path, value):
    payload = _order_payload(refunds=[{"id": 801, "reason": "", "total": "-1.00"}])
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _parse_safely(_siteless_store(workspace), "order.updated", payload)


# --------------------------------------------------------------------------- the fake site


@pytest.fixture
def shop() -> fake.FakeShop:
    """A site with a few hundred events of history, served five records to a page."""
    made = fake.FakeShop(page_cap=5)
    fake.ShopHistory(made, seed=3).events(160)
    return made


@pytest.fixture
def site(shop: fake.FakeShop) -> Iterator[str]:
    with fake.serve(shop) as url:
        yield url


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(connector, "sleep", slept.append)
    return slept


def _refund_count(shop: fake.FakeShop) -> int:
    return sum(len(found) for found in shop.refunds.values())


@pytest.mark.django_db
def test_refunds_of_an_order_delivery_are_read_from_the_api(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    order_id = next(o for o, found in shop.refunds.items() if found)
    payload = shop.get("orders", order_id)
    headers, body = _delivery("order.updated", payload)
    received = delivery_receive(
        platform="woocommerce", token=store.hook_token, headers=headers, body=body
    )
    before = shop.requests
    assert delivery_process(delivery_id=received.delivery_id) == "processed"
    assert shop.paths[before:] == [f"/wp-json/wc/v3/orders/{order_id}/refunds"]
    refunds = Refund.objects.filter(store=store, order__external_id=str(order_id))
    assert refunds.count() == len(shop.refunds[order_id])
    lines = RefundLine.objects.filter(refund__in=refunds)
    assert lines.exists() and all(line.order_line_id for line in lines)
    order = Order.objects.get(store=store, external_id=str(order_id))
    assert order.refunded_minor == sum(
        int(Decimal(r["amount"]) * 100) for r in shop.refunds[order_id].values()
    )
    # Known refunds are not read again.
    again = fake.redeliver((headers, body))
    assert (
        connector.parse(
            store=store, topic="order.updated", payload=json.loads(again[1]), headers={}
        )
        .records[0]
        .refunds
        == ()
    )
    assert shop.requests == before + 1


@pytest.mark.django_db
def test_refund_read_failing_is_retried_later(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    order_id = next(o for o, found in shop.refunds.items() if found)
    headers, body = _delivery("order.updated", shop.get("orders", order_id))
    received = delivery_receive(
        platform="woocommerce", token=store.hook_token, headers=headers, body=body
    )
    shop.fail(after=shop.requests, times=6, status=503)
    assert delivery_process(delivery_id=received.delivery_id) == "failed"
    delivery = Delivery.objects.get()
    assert not delivery.permanent and delivery.next_attempt_at is not None
    assert "503" in delivery.last_error
    assert not Order.objects.exists()
    assert delivery_process(delivery_id=received.delivery_id) == "processed"
    assert Refund.objects.filter(store=store).count() == len(shop.refunds[order_id])


@pytest.mark.django_db
def test_variable_product_and_variation_deliveries_read_the_api(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    parent = next(p for p in shop.records["products"].values() if p["type"] == "variable")
    event = connector.parse(
        store=store, topic="product.created", payload=copy.deepcopy(parent), headers={}
    )
    (record,) = event.records
    assert {v.external_id for v in record.variants} == {str(i) for i in parent["variations"]}
    variation = next(iter(shop.variations[parent["id"]].values()))
    as_product = fake.variation_as_product(variation, name=parent["name"])
    event = connector.parse(store=store, topic="product.updated", payload=as_product, headers={})
    (record,) = event.records
    assert record.external_id == str(parent["id"])
    assert record.title == parent["name"]
    assert shop.paths[-2:] == [
        f"/wp-json/wc/v3/products/{parent['id']}",
        f"/wp-json/wc/v3/products/{parent['id']}/variations",
    ]


@pytest.mark.django_db
def test_backfill_reads_every_page_of_every_resource(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    result = store_sync(store=store, mode="backfill")
    assert result.status == "done"
    assert Order.objects.filter(store=store).count() == len(shop.records["orders"])
    assert Product.objects.filter(store=store).count() == len(shop.records["products"])
    variants = sum(
        len(shop.variations.get(p["id"], {})) if p["type"] == "variable" else 1
        for p in shop.records["products"].values()
    )
    assert ProductVariant.objects.filter(store=store).count() == variants
    assert Refund.objects.filter(store=store).count() == _refund_count(shop)
    assert not Refund.objects.filter(store=store, order__isnull=True).exists()
    assert not OrderLine.objects.filter(order__store=store, product__isnull=True).exists()
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.resources_done == ["customers", "products", "orders"]
    listed = [
        p for p in shop.paths if p.rstrip("/").endswith(("/customers", "/products", "/orders"))
    ]
    assert len(listed) >= 3 * 2
    assert waits == []


@pytest.mark.django_db
def test_deliveries_and_backfill_end_in_the_same_state(workspace, other_workspace, waits):
    """What the webhooks told one store and what the API gives another agree exactly."""
    shop = fake.FakeShop(page_cap=7)
    events = fake.ShopHistory(shop, seed=4).events(150)
    with fake.serve(shop) as url:
        by_hooks = _store(workspace, api_url=url)
        play(by_hooks, fake.sign_events(events, secret=SECRET))
        by_api = _store(other_workspace, api_url=url)
        assert store_sync(store=by_api, mode="backfill").status == "done"
    assert Delivery.objects.filter(store=by_hooks, status="processed").count() == 150
    snapshot = commerce_snapshot(workspace)
    assert snapshot["refunds"] and snapshot["variants"]
    assert snapshot == commerce_snapshot(other_workspace)


@pytest.mark.django_db
def test_interrupted_backfill_resumes_to_the_same_state(
    workspace, other_workspace, shop, site, waits
):
    whole = _store(workspace, api_url=site)
    assert store_sync(store=whole, mode="backfill").status == "done"
    pieces = _store(other_workspace, api_url=site)
    runs = 0
    while store_sync(store=pieces, mode="backfill", max_pages=3).status == "running":
        runs += 1
    assert runs > 3
    assert SyncRun.objects.filter(store=pieces).count() == 1
    assert commerce_snapshot(workspace) == commerce_snapshot(other_workspace)


@pytest.mark.django_db
def test_backfill_failing_after_some_pages_restarts_where_it_stopped(
    workspace, other_workspace, shop, site, waits
):
    whole = _store(workspace, api_url=site)
    store_sync(store=whole, mode="backfill")
    broken = _store(other_workspace, api_url=site)
    shop.fail(after=shop.requests + 7, times=6, status=500)
    failed = store_sync(store=broken, mode="backfill")
    assert failed.status == "failed"
    run = SyncRun.objects.get(pk=failed.run_id)
    assert "HTTP 500" in run.error
    assert run.resources_done == ["customers", "products"]
    assert len(waits) == 5
    resumed = store_sync(store=broken, mode="backfill")
    assert (resumed.status, resumed.run_id) == ("done", failed.run_id)
    assert commerce_snapshot(workspace) == commerce_snapshot(other_workspace)


@pytest.mark.django_db
def test_throttled_requests_wait_as_the_site_asks(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    shop.fail(after=0, times=2, status=429, retry_after="3")
    with connector.client(store=store) as client:
        page = api.fetch_page(
            client=client,
            resource="customers",
            cursor="",
            since=None,
            currency="EUR",
            known_refunds=lambda ids: set(),
        )
        assert client.waits == [3.0, 3.0]
    assert page.records and page.next_cursor == "2"
    shop.fail(after=shop.requests, times=1, status=429, retry_after="7")
    assert store_sync(store=store, mode="backfill").status == "done"
    assert waits == [3.0, 3.0, 7.0]


@pytest.mark.django_db
def test_backfill_without_credentials_fails_naming_them(workspace, shop, site):
    store = make_store(
        workspace, platform="woocommerce", api_url=site, credentials={"consumer_key": "ck_x"}
    )
    result = store_sync(store=store, mode="backfill")
    assert result.status == "failed"
    assert SyncRun.objects.get(pk=result.run_id).error.startswith("consumer_secret:")
    wrong = make_store(
        workspace,
        platform="woocommerce",
        api_url=site,
        credentials={"consumer_key": "ck_x", "consumer_secret": "cs_y"},
    )
    result = store_sync(store=wrong, mode="backfill")
    assert "HTTP 401" in SyncRun.objects.get(pk=result.run_id).error
    no_site = make_store(workspace, platform="woocommerce", credentials=dict(CREDENTIALS))
    with pytest.raises(ConnectorError, match=r"^api_url:"):
        connector.client(store=no_site)


def test_page_params_and_cursor():
    since = dt.datetime(2026, 3, 1, 11, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    params = api.page_params("orders", 3, since)
    assert params == {
        "per_page": "100",
        "page": "3",
        "orderby": "id",
        "order": "asc",
        "status": "any",
        "modified_after": "2026-03-01T10:00:29",
        "dates_are_gmt": "true",
    }
    assert "modified_after" not in api.page_params("customers", 1, since)
    assert api.page_number("") == 1
    with pytest.raises(ConnectorError):
        api.page_number("abc")
    with pytest.raises(ConnectorError):
        api.endpoint("coupons")


@pytest.mark.django_db
def test_reconciliation_finds_and_repairs_missed_changes(workspace, shop, site, waits):
    store = _store(workspace, api_url=site)
    assert store_sync(store=store, mode="backfill").status == "done"
    now = timezone.now()
    history = fake.ShopHistory.continuing(shop, seed=99, start=now)
    # Changes made on the site whose deliveries never arrived.
    missed_customer = history.customer_create()[0][1]
    missed_order = history.order_create()[-1][1]
    paid = next(
        o
        for o in shop.records["orders"].values()
        if o["status"] == "processing" and o["id"] != missed_order["id"]
    )
    item = paid["line_items"][0]
    made = fake.refund(
        99_001,
        order_id=paid["id"],
        created_at=now,
        lines=[(item, 1, Decimal(item["total"]) / item["quantity"])],
    )
    shop.put_refund(paid["id"], made)
    paid["refunds"].insert(0, fake.refund_summary(made))
    paid.update(fake.dates("date_modified", now + dt.timedelta(seconds=5)))
    shop.put("orders", paid)
    assert not Order.objects.filter(store=store, external_id=str(missed_order["id"])).exists()

    result = store_sync(store=store, mode="reconcile")
    assert result.status == "done"
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.since is not None and run.since < now
    assert Order.objects.filter(store=store, external_id=str(missed_order["id"])).exists()
    assert Refund.objects.filter(store=store, external_id="99001").exists()
    assert Order.objects.get(store=store, external_id=str(paid["id"])).refunded_minor > 0
    assert run.repaired >= 2
    assert run.repaired_detail.get("orders:created") == 1
    assert run.repaired_detail.get("orders:updated", 0) >= 1
    # Only what changed since the last run was fetched (customers are filtered here).
    assert run.fetched < len(shop.records["orders"])
    assert Identity.objects.filter(
        workspace=workspace,
        channel=store.channel,
        kind=IdentityKind.CUSTOMER_ID,
        value=str(missed_customer["id"]),
    ).exists()
    # Nothing changed since: a second reconciliation repairs nothing.
    again = store_sync(store=store, mode="reconcile")
    assert again.repaired == 0


# --------------------------------------------------------------------------- the guide


def test_setup_guide_lists_fields_and_topics():
    guide = connector_for("woocommerce").setup_guide()
    assert [f.name for f in guide.fields] == [
        "api_url",
        "consumer_key",
        "consumer_secret",
        "webhook_secret",
    ]
    assert {f.target for f in guide.fields} == {"api_url", "credentials", "webhook_secret"}
    assert all(f.secret for f in guide.fields if f.name != "api_url")
    assert guide.topics == (
        "customer.created",
        "customer.updated",
        "product.created",
        "product.updated",
        "order.created",
        "order.updated",
    )
    assert all(str(step) for step in guide.steps)
    assert any("REST API" in str(step) for step in guide.steps)
    assert any("Webhooks" in str(step) for step in guide.steps)


# --------------------------------------------------------------------------- replay


@pytest.mark.replay
@pytest.mark.django_db
def test_replay_in_order_and_shuffled_with_duplicates_end_the_same(
    workspace, other_workspace, waits
):
    shop = fake.FakeShop()
    events = fake.ShopHistory(shop, seed=11).events(REPLAY_DELIVERIES)
    rng = random.Random(5)
    with fake.serve(shop) as url:
        in_order = _store(workspace, api_url=url)
        shuffled = _store(other_workspace, api_url=url)
        report = replay_compare(
            store_in_order=in_order,
            store_shuffled=shuffled,
            make=lambda store: fake.sign_events(events, secret=SECRET, seed=11),
            redeliver=lambda store, item: fake.redeliver(item, rng),
        )
    assert report.sent == REPLAY_DELIVERIES + report.duplicates_sent
    assert report.duplicates_sent > 0 and report.moved > 0
    assert report.duplicates_seen == report.duplicates_sent
    assert report.failed_left == 0
    assert report.snapshot_in_order["orders"]
    assert report.snapshot_in_order["refunds"]
    assert report.snapshot_in_order["refund_lines"]
    assert report.snapshot_in_order["variants"]
    assert report.snapshot_in_order == report.snapshot_shuffled
