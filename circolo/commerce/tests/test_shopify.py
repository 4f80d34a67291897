from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.connectors.base import ConnectorError, Event, SignatureError, connector_for
from circolo.commerce.connectors.shopify import ShopifyConnector, api, payloads
from circolo.commerce.connectors.shopify.guide import TOPICS
from circolo.commerce.models import Delivery, Order, Product, Refund, Store, SyncRun
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn, RefundIn
from circolo.commerce.services import store_update
from circolo.commerce.sync import store_sync
from circolo.commerce.tests import fake_shopify as fake
from circolo.commerce.tests.replay import REPLAY_DELIVERIES, replay_compare
from circolo.commerce.webhooks import delivery_process
from circolo.testing.commerce import commerce_snapshot, make_store

SECRET = "shpss_hush-hush-secret"
DOMAIN = "bottega-verde.myshopify.com"
TOKEN = "shpat_fake_token"
T1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def _store(workspace: Any, *, api_url: str = "", external_id: str = DOMAIN, **extra: Any) -> Store:
    return make_store(
        workspace,
        platform="shopify",
        secret=SECRET,
        api_url=api_url,
        external_id=external_id,
        credentials={"access_token": TOKEN},
        **extra,
    )


def _post(client: Any, store: Store, signed: fake.Signed) -> Any:
    headers, body = signed
    return client.post(
        f"/hooks/shopify/{store.hook_token}/",
        data=body,
        content_type="application/json",
        headers=fake.as_client_headers(headers),
    )


def _order_payload(**over: Any) -> dict[str, Any]:
    """A full order as the docs list its fields: a customer, discounted lines, a
    fulfilment, a refund with shipping returned, a referral landing page."""
    buyer = fake.customer(
        207119551, email="ada@example.com", first_name="Ada", last_name="Rossi", created_at=T1
    )
    lines = [
        fake.line_item(
            466157049, product_id=632910392, variant_id=39072856, sku="TEA-50",
            title="Sencha", variant_title="50 g", quantity=2, price="12.50", discount="2.50",
        ),
        fake.line_item(
            518995019, product_id=None, variant_id=None, sku="", title="Gift wrap",
            quantity=1, price="3.00",
        ),
    ]  # fmt: skip
    placed = T1 + dt.timedelta(hours=1)
    made = fake.order(
        450789469,
        number=1001,
        created_at=placed,
        updated_at=placed + dt.timedelta(days=3),
        lines=lines,
        email="ada@example.com",
        customer=buyer,
        financial_status="partially_refunded",
        fulfillment_status="fulfilled",
        fulfillments=[
            fake.fulfillment(
                255858046, order_id=450789469, created_at=placed + dt.timedelta(days=1),
                lines=lines,
            )
        ],
        refunds=[
            fake.refund(
                509562969, order_id=450789469, created_at=placed + dt.timedelta(days=2),
                lines=[(lines[0], 1, Decimal("11.25"))], shipping=Decimal("4.90"),
                note="Damaged in transit",
            )
        ],
        discount_codes=["WELCOME10"],
        shipping="4.90",
        tax="4.16",
        landing_site="/products/sencha?ref=friend42&utm_source=instagram",
    )  # fmt: skip
    made.update(over)
    return made


# --------------------------------------------------------------------------- signatures


def _signed(body: dict[str, Any] | None = None, topic: str = "orders/create") -> fake.Signed:
    return fake.delivery(secret=SECRET, topic=topic, payload=body or _order_payload(), shop=DOMAIN)


def _forge(case: str) -> fake.Signed:
    headers, body = _signed()
    good = headers["X-Shopify-Hmac-Sha256"]
    if case == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    elif case == "empty":
        headers["X-Shopify-Hmac-Sha256"] = ""
    elif case == "not base64":
        headers["X-Shopify-Hmac-Sha256"] = "not a signature!"
    elif case == "truncated":
        headers["X-Shopify-Hmac-Sha256"] = good[:20]
    elif case == "one byte short":
        raw = base64.b64decode(good)[:-1]
        headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(raw).decode()
    elif case == "hex instead of base64":
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Shopify-Hmac-Sha256"] = digest
    elif case == "forged for another body":
        headers["X-Shopify-Hmac-Sha256"] = fake.signature(SECRET, b'{"id": 1}')
    elif case == "body changed after signing":
        body = body.replace(b'"total_price":"', b'"total_price":"1')
    elif case == "signed with another secret":
        headers["X-Shopify-Hmac-Sha256"] = fake.signature("shpss_someone-else", body)
    elif case == "another shop":
        headers["X-Shopify-Shop-Domain"] = "elsewhere.myshopify.com"
    elif case == "no shop domain":
        del headers["X-Shopify-Shop-Domain"]
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(case)
    return headers, body


FORGERIES = [
    "missing",
    "empty",
    "not base64",
    "truncated",
    "one byte short",
    "hex instead of base64",
    "forged for another body",
    "body changed after signing",
    "signed with another secret",
    "another shop",
    "no shop domain",
]


@pytest.mark.django_db
@pytest.mark.parametrize("case", FORGERIES)
def test_forged_deliveries_are_refused_and_counted(client, workspace, case):
    store = _store(workspace)
    response = _post(client, store, _forge(case))
    assert response.status_code == 401
    assert response.json() == {"result": "bad_signature"}
    assert Delivery.objects.count() == 0
    store.refresh_from_db()
    assert store.rejected_deliveries == 1
    assert store.rejected_last_at is not None


@pytest.mark.django_db
def test_signature_of_a_rotated_out_secret_is_stale(client, workspace, owner):
    store = _store(workspace)
    old = _signed()
    store_update(store=store, actor=owner.user, webhook_secret="shpss_the-new-secret")
    store.refresh_from_db()
    assert _post(client, store, old).status_code == 401
    headers, body = old
    headers = {**headers, "X-Shopify-Hmac-Sha256": fake.signature("shpss_the-new-secret", body)}
    assert _post(client, store, (headers, body)).status_code == 200
    store.refresh_from_db()
    assert store.rejected_deliveries == 1
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_signed_delivery_is_stored_and_processed(
    client, workspace, django_capture_on_commit_callbacks
):
    store = _store(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, store, _signed())
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    delivery = Delivery.objects.get()
    assert (delivery.topic, delivery.status) == ("orders/create", Delivery.Status.PROCESSED)
    assert delivery.dedupe_key.startswith("webhook:")
    assert delivery.headers["x-shopify-shop-domain"] == DOMAIN
    order = Order.objects.get(store=store)
    assert (order.number, order.total_minor, order.referring_code) == ("#1001", 3040, "friend42")
    assert order.member is not None
    store.refresh_from_db()
    assert store.rejected_deliveries == 0


@pytest.mark.django_db
def test_store_without_shop_domain_takes_any_shop_header(client, workspace):
    store = _store(workspace, external_id="")
    headers, body = _signed()
    headers["X-Shopify-Shop-Domain"] = "whatever.myshopify.com"
    assert _post(client, store, (headers, body)).status_code == 200


@pytest.mark.django_db
def test_privacy_body_for_another_shop_is_refused(client, workspace):
    store = _store(workspace)
    body = fake.customer_redact(shop="elsewhere.myshopify.com", customer_id=1, email="a@b.it")
    assert _post(client, store, _signed(body, "customers/redact")).status_code == 401
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_retry_with_same_webhook_id_is_a_duplicate(client, workspace):
    store = _store(workspace)
    first = _signed()
    assert _post(client, store, first).json() == {"result": "accepted"}
    again = _post(client, store, fake.redeliver(first))
    assert (again.status_code, again.json()) == (200, {"result": "duplicate"})
    # The same change sent to the subscription again is a new delivery with a new id.
    headers, body = first
    other = ({**headers, "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}, body)
    assert _post(client, store, other).json() == {"result": "accepted"}
    key = f"webhook:{headers['X-Shopify-Webhook-Id']}"
    assert Delivery.objects.get(dedupe_key=key).duplicates == 1
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_unknown_topic_is_acknowledged_and_ignored(client, workspace):
    store = _store(workspace)
    response = _post(client, store, _signed({"id": 1, "name": "Bottega"}, "themes/publish"))
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.IGNORED
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_malformed_payload_fails_permanently_with_the_field(client, workspace):
    store = _store(workspace)
    body = _order_payload()
    body["line_items"][0]["quantity"] = "two"
    assert _post(client, store, _signed(body)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.permanent is True
    assert delivery.next_attempt_at is None
    assert delivery.last_error.startswith("line_items[0].quantity:")
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_not_json_is_a_bad_request(client, workspace):
    store = _store(workspace)
    body = b"<xml/>"
    headers = {"X-Shopify-Hmac-Sha256": fake.signature(SECRET, body)}
    headers |= {"X-Shopify-Shop-Domain": DOMAIN, "X-Shopify-Topic": "orders/create"}
    assert _post(client, store, (headers, body)).status_code == 400


@pytest.mark.django_db
def test_deliveries_stay_in_their_own_workspace(client, workspace, other_workspace):
    ours = _store(workspace)
    theirs = make_store(
        other_workspace, platform="shopify", secret="shpss_their-secret", external_id=DOMAIN
    )
    signed = _signed()
    # Signed with our secret, posted to their URL: refused there, counted there only.
    assert _post(client, theirs, signed).status_code == 401
    assert _post(client, ours, signed).status_code == 200
    for delivery in Delivery.objects.all():
        delivery_process(delivery_id=delivery.pk)
    assert Order.objects.filter(workspace=workspace).count() == 1
    assert not Order.objects.filter(workspace=other_workspace).exists()
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.rejected_deliveries, theirs.rejected_deliveries) == (0, 1)
    # A Shopify token is no WooCommerce store's URL.
    url = f"/hooks/woocommerce/{ours.hook_token}/"
    headers, body = signed
    response = client.post(
        url, data=body, content_type="application/json", headers=fake.as_client_headers(headers)
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_test_delivery_verifies_and_is_ignored(client, workspace):
    store = _store(workspace)
    connector = connector_for("shopify")
    headers, body = connector.test_delivery(store=store)
    lowered = {key.lower(): value for key, value in headers.items()}
    connector.verify(store=store, headers=lowered, body=body, now=timezone.now())
    assert headers["X-Shopify-Topic"] == "shop/update"
    assert _post(client, store, (headers, body)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.IGNORED


def test_verify_refuses_a_store_without_secret():
    store = Store(platform="shopify", currency="EUR", name="x")
    headers, body = _signed()
    lowered = {key.lower(): value for key, value in headers.items()}
    with pytest.raises(SignatureError, match="no webhook secret"):
        ShopifyConnector().verify(store=store, headers=lowered, body=body, now=timezone.now())


# --------------------------------------------------------------------------- parsing

STORE = Store(
    platform="shopify", currency="EUR", name="Bottega", api_url=f"https://{DOMAIN}",
    external_id=DOMAIN,
)  # fmt: skip


def _parse(topic: str, payload: Any) -> Event:
    return ShopifyConnector().parse(store=STORE, topic=topic, payload=payload, headers={})


def test_order_maps_every_field_we_keep():
    event = _parse("orders/updated", _order_payload())
    (order,) = event.records
    assert isinstance(order, OrderIn)
    placed = T1 + dt.timedelta(hours=1)
    assert order.external_id == "450789469"
    assert order.number == "#1001"
    assert order.currency == "EUR"
    assert (order.placed_at, order.updated_at) == (placed, placed + dt.timedelta(days=3))
    assert order.status == "fulfilled"
    assert order.paid_at == placed
    assert order.fulfilled_at == placed + dt.timedelta(days=1)
    assert order.cancelled_at is None
    # 2 × 12.50 + 3.00 lines, 2.50 off, 4.90 shipping: 30.40; tax is included in prices.
    assert (order.subtotal_minor, order.discount_minor) == (2800, 250)
    assert (order.shipping_minor, order.tax_minor, order.total_minor) == (490, 416, 3040)
    assert order.discount_codes == ("WELCOME10",)
    assert order.landing_site == "/products/sencha?ref=friend42&utm_source=instagram"
    assert order.referring_code == "friend42"
    assert order.shipping_address["city"] == "Milano"
    assert order.shipping_address["country_code"] == "IT"
    assert order.customer == CustomerIn(
        external_id="207119551",
        email="ada@example.com",
        first_name="Ada",
        last_name="Rossi",
        city="Milano",
        country="IT",
        languages=("it",),
        accepts_marketing=False,
        created_at=T1,
        updated_at=T1,
    )
    first, second = order.lines
    assert (first.external_id, first.quantity, first.unit_price_minor) == ("466157049", 2, 1250)
    assert (first.discount_minor, first.product_external_id, first.variant_external_id) == (
        250, "632910392", "39072856",
    )  # fmt: skip
    assert (first.sku, first.title) == ("TEA-50", "Sencha - 50 g")
    assert (second.product_external_id, second.discount_minor, second.title) == ("", 0, "Gift wrap")
    (refund,) = order.refunds
    assert refund.external_id == "509562969"
    assert refund.order_external_id == "450789469"
    assert refund.refunded_at == placed + dt.timedelta(days=2)
    assert (refund.amount_minor, refund.currency) == (1615, "EUR")
    assert refund.reason == "Damaged in transit"
    assert [(ln.line_external_id, ln.quantity, ln.amount_minor) for ln in refund.lines] == [
        ("466157049", 1, 1125)
    ]


@pytest.mark.parametrize(
    ("financial", "fulfillment", "status", "paid"),
    [
        ("pending", None, "pending", False),
        ("authorized", None, "pending", False),
        ("partially_paid", None, "pending", False),
        ("paid", None, "paid", True),
        ("paid", "partial", "paid", True),
        ("partially_refunded", None, "paid", True),
        ("refunded", None, "paid", True),
        ("voided", None, "pending", False),
        ("paid", "fulfilled", "fulfilled", True),
        ("pending", "fulfilled", "fulfilled", False),
    ],
)
def test_base_status_from_financial_and_fulfillment_status(financial, fulfillment, status, paid):
    body = _order_payload(financial_status=financial, fulfillment_status=fulfillment)
    (order,) = _parse("orders/updated", body).records
    assert order.status == status
    assert (order.paid_at is not None) is paid
    assert (order.fulfilled_at is not None) is (fulfillment == "fulfilled")


def test_paid_at_comes_from_the_transactions_when_given():
    paid = T1 + dt.timedelta(days=5)
    body = _order_payload(
        financial_status="paid",
        transactions=[
            {"kind": "authorization", "status": "success", "processed_at": fake.iso(T1)},
            {"kind": "capture", "status": "failure", "processed_at": fake.iso(T1)},
            {"kind": "capture", "status": "success", "processed_at": fake.iso(paid)},
        ],
    )
    (order,) = _parse("orders/paid", body).records
    assert order.paid_at == paid


def test_cancelled_guest_order_without_customer():
    body = _order_payload(
        customer=None, email="guest@example.org", financial_status="voided",
        fulfillment_status=None, cancelled_at=fake.iso(T1 + dt.timedelta(hours=5)), refunds=[],
        landing_site=None, discount_codes=[],
    )  # fmt: skip
    (order,) = _parse("orders/cancelled", body).records
    assert order.cancelled_at == T1 + dt.timedelta(hours=5)
    assert order.customer is not None
    assert (order.customer.external_id, order.customer.email) == ("", "guest@example.org")
    assert (order.landing_site, order.referring_code, order.discount_codes) == ("", "", ())


def test_refund_delivery_carries_its_order_and_lines():
    item = fake.line_item(
        7, product_id=1, variant_id=2, sku="A", title="Tea", quantity=3, price="5.00"
    )
    body = fake.refund(
        90, order_id=450789469, created_at=T1, lines=[(item, 2, Decimal("10.00"))],
        shipping=Decimal("4.90"),
    )  # fmt: skip
    (refund,) = _parse("refunds/create", body).records
    assert refund == RefundIn(
        external_id="90",
        order_external_id="450789469",
        refunded_at=T1,
        amount_minor=1490,
        currency="EUR",
        lines=(payloads.RefundLineIn(line_external_id="7", quantity=2, amount_minor=1000),),
    )
    # Without transactions the amount is the lines, their tax and the refunded shipping.
    body["transactions"] = []
    body["refund_line_items"][0]["total_tax"] = "1.80"
    (refund,) = _parse("refunds/create", body).records
    assert refund.amount_minor == 1670


def test_product_with_variants_image_and_status():
    body = fake.product(
        632910392,
        title="Sencha",
        handle="sencha",
        status="draft",
        image="https://cdn.shopify.com/s/files/1/sencha.jpg",
        variants=[
            fake.variant(808950810, product_id=632910392, sku="TEA-50", title="50 g", price="12.5"),
            fake.variant(49148385, product_id=632910392, sku="", title="100 g", price="22.00"),
        ],
        created_at=T1,
        updated_at=T1 + dt.timedelta(days=1),
    )
    (product,) = _parse("products/update", body).records
    assert isinstance(product, ProductIn)
    assert (product.external_id, product.title, product.status) == ("632910392", "Sencha", "draft")
    assert product.url == f"https://{DOMAIN}/products/sencha"
    assert product.image_url == "https://cdn.shopify.com/s/files/1/sencha.jpg"
    assert product.updated_at == T1 + dt.timedelta(days=1)
    assert [(v.external_id, v.sku, v.title, v.price_minor) for v in product.variants] == [
        ("808950810", "TEA-50", "50 g", 1250),
        ("49148385", "", "100 g", 2200),
    ]


def test_customer_with_address_and_marketing_consent():
    body = fake.customer(
        207119551, email="ada@example.com", first_name="Ada", last_name="Rossi",
        phone="+39 333 1234567", city="Torino", marketing=True, created_at=T1,
    )  # fmt: skip
    (record,) = _parse("customers/create", body).records
    assert record == CustomerIn(
        external_id="207119551",
        email="ada@example.com",
        phone="+39 333 1234567",
        first_name="Ada",
        last_name="Rossi",
        city="Torino",
        country="IT",
        accepts_marketing=True,
        created_at=T1,
        updated_at=T1,
    )


def test_privacy_topics():
    who = CustomerIn(external_id="191167", email="john@example.com", phone="555-625-1199")
    asked = fake.data_request(
        shop=DOMAIN, customer_id=191167, email="john@example.com", phone="555-625-1199"
    )
    assert _parse("customers/data_request", asked) == Event(export_customers=(who,))
    erase = fake.customer_redact(
        shop=DOMAIN, customer_id=191167, email="john@example.com", phone="555-625-1199"
    )
    assert _parse("customers/redact", erase) == Event(erase_customers=(who,))
    assert _parse("shop/redact", fake.shop_redact(shop=DOMAIN)) == Event(shop_redact=True)
    with pytest.raises(PayloadError) as error:
        _parse("customers/redact", {"shop_domain": DOMAIN, "customer": {}})
    assert error.value.field == "customer"


def test_unknown_topic_is_ignored():
    assert _parse("app/uninstalled", {"id": 1}) == Event(ignored=True)
    assert _parse("", {}) == Event(ignored=True)


def _set(path: str, value: Any) -> dict[str, Any]:
    body = _order_payload()
    target: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return body


_DELETE = object()
ALLOCATION = "line_items[0].discount_allocations[0]"
REFUND_LINE = "refunds[0].refund_line_items[0]"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("id", _DELETE, "id"),
        ("id", True, "id"),
        ("currency", "EURO", "currency"),
        ("created_at", "2026-03-01T10:00:00", "created_at"),
        ("created_at", "yesterday", "created_at"),
        ("total_price", "12,50", "total_price"),
        ("total_price", "1e99", "total_price"),
        ("total_price", {"amount": "1"}, "total_price"),
        ("line_items", {"id": 1}, "line_items"),
        ("line_items.0.quantity", "two", "line_items[0].quantity"),
        ("line_items.0.quantity", -1, "line_items[0].quantity"),
        ("line_items.0.price", None, None),
        ("line_items.0.id", None, "line_items[0].id"),
        ("line_items.0.discount_allocations.0.amount", "x", f"{ALLOCATION}.amount"),
        ("refunds.0.refund_line_items.0.line_item_id", None, f"{REFUND_LINE}.line_item_id"),
        ("refunds.0.created_at", None, None),
        ("refunds.0.processed_at", None, None),
        ("customer", "Ada", "customer"),
        ("email", ["ada@example.com"], "email"),
        ("fulfillments.0.created_at", 5, "fulfillments[0].created_at"),
    ],
)
def test_bad_order_fields_are_named(path, value, field):
    body = _set(path, value)
    if field is None:
        # Not an error: a missing price is zero, a refund time falls back.
        if path == "refunds.0.processed_at":
            body["refunds"][0]["created_at"] = None
            with pytest.raises(PayloadError) as error:
                _parse("orders/updated", body)
            assert error.value.field == "refunds[0].created_at"
        else:
            _parse("orders/updated", body)
        return
    with pytest.raises(PayloadError) as error:
        _parse("orders/updated", body)
    assert error.value.field == field


def test_unknown_product_status_is_named():
    body = fake.product(1, title="x", handle="x", variants=[], status="hidden")
    with pytest.raises(PayloadError) as error:
        _parse("products/update", body)
    assert error.value.field == "status"
    body["status"] = "unlisted"
    (product,) = _parse("products/update", body).records
    assert product.status == "active"


KEYS = [
    "id", "created_at", "updated_at", "processed_at", "line_items", "refunds", "price",
    "quantity", "customer", "variants", "status", "refund_line_items", "transactions", "amount",
    "kind", "financial_status", "fulfillments", "discount_allocations", "order_id", "currency",
    "total_price", "email", "image", "images", "default_address", "shop_domain", "subtotal_set",
    "shop_money",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-03-01T10:00:00+01:00", "12.50", "1e400", "paid", "fulfilled", ""]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
fuzz = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HANDLED = sorted(
    {"customers/create", "products/update", "orders/updated", "refunds/create"}
    | {"customers/data_request", "customers/redact", "shop/redact", "orders/paid"}
)


@fuzz
@given(topic=st.sampled_from(HANDLED), payload=json_values)
def test_arbitrary_json_raises_only_payload_errors(topic, payload):
    with contextlib.suppress(PayloadError):
        _parse(topic, payload)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out.extend(_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out.extend(_paths(inner, (*prefix, index)))
    return out


ORDER_PATHS = _paths(_order_payload())


@fuzz
@given(path=st.sampled_from(ORDER_PATHS), value=json_values)
def test_any_field_of_a_real_order_replaced_raises_only_payload_errors(path, value):
    body = copy.deepcopy(_order_payload())
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        (order,) = _parse("orders/updated", body).records
    except PayloadError as error:
        assert error.field
    else:
        assert isinstance(order, OrderIn)


# --------------------------------------------------------------------------- the API


@pytest.fixture
def shop():
    shop = fake.FakeShop(domain=DOMAIN, token=TOKEN, page_size=7)
    history = fake.ShopHistory(shop, seed=3)
    history.events(260)
    shop.history = history  # type: ignore[attr-defined]
    return shop


@pytest.fixture
def waits(monkeypatch):
    taken: list[float] = []
    monkeypatch.setattr(connector_for("shopify"), "sleep", taken.append)
    return taken


def _until_done(store: Store, mode: str = "backfill", max_pages: int | None = None) -> int:
    rounds = 0
    while True:
        rounds += 1
        result = store_sync(store=store, mode=mode, max_pages=max_pages)
        if result.status == SyncRun.Status.DONE:
            return rounds
        assert rounds < 200


@pytest.mark.django_db
def test_backfill_reads_every_page_of_every_resource(workspace, shop, waits):
    with fake.serve(shop) as url:
        store = _store(workspace, api_url=url)
        result = store_sync(store=store, mode="backfill")
    assert result.status == SyncRun.Status.DONE
    total = sum(len(records) for records in shop.records.values())
    assert result.fetched == total
    assert Order.objects.filter(store=store).count() == len(shop.records["orders"])
    assert Product.objects.filter(store=store).count() == len(shop.records["products"])
    refunds = sum(len(o["refunds"]) for o in shop.records["orders"].values())
    assert Refund.objects.filter(store=store).count() == refunds > 0
    # Cancelled orders come too: the connector asks for status=any.
    cancelled = [o for o in shop.records["orders"].values() if o["cancelled_at"]]
    assert cancelled
    assert Order.objects.filter(store=store, cancelled_at__isnull=False).count() == len(cancelled)
    assert all(p.startswith(f"/admin/api/{api.API_VERSION}/") for p in shop.paths)
    assert waits == []


@pytest.mark.django_db
def test_interrupted_backfill_resumes_to_the_same_state(workspace, other_workspace, shop, waits):
    with fake.serve(shop) as url:
        whole = _store(workspace, api_url=url)
        assert store_sync(store=whole, mode="backfill").status == SyncRun.Status.DONE
        pieces = _store(other_workspace, api_url=url)
        rounds = _until_done(pieces, max_pages=2)
    assert rounds > 3
    assert SyncRun.objects.filter(store=pieces).count() == 1
    assert commerce_snapshot(other_workspace) == commerce_snapshot(workspace)


@pytest.mark.django_db
def test_backfill_failing_after_some_pages_restarts_where_it_stopped(
    workspace, other_workspace, shop, waits
):
    with fake.serve(shop) as url:
        whole = _store(workspace, api_url=url)
        store_sync(store=whole, mode="backfill")
        shop.requests = 0
        # After five good pages the shop answers 500 to every attempt at the sixth.
        shop.fail(after=5, times=6, status=500)
        broken = _store(other_workspace, api_url=url)
        failed = store_sync(store=broken, mode="backfill")
        assert failed.status == SyncRun.Status.FAILED
        run = SyncRun.objects.get(pk=failed.run_id)
        assert "HTTP 500" in run.error
        assert 0 < run.fetched <= 5 * 7
        assert len(waits) == 5
        done = store_sync(store=broken, mode="backfill")
    assert done.status == SyncRun.Status.DONE
    assert done.run_id == failed.run_id
    assert commerce_snapshot(other_workspace) == commerce_snapshot(workspace)


@pytest.mark.django_db
def test_throttled_requests_wait_as_shopify_asks(workspace, shop, waits):
    with fake.serve(shop) as url:
        store = _store(workspace, api_url=url)
        shop.fail(after=2, times=2, status=429, retry_after="2.0")
        result = store_sync(store=store, mode="backfill")
        assert result.status == SyncRun.Status.DONE
        assert waits == [2.0, 2.0]
        # The client records the waits too; a bare 429 waits one leak interval.
        shop.fail(after=shop.requests, times=1, status=429)
        connector = connector_for("shopify")
        with connector.client(store=store) as client:
            page = api.fetch_page(
                client=client, resource="customers", cursor="", since=None,
                currency="EUR", shop_url=url,
            )  # fmt: skip
        assert client.waits == [api.LEAK_WAIT_SECONDS]
        assert len(page.records) == 7 and page.next_cursor


@pytest.mark.django_db
def test_nearly_full_call_bucket_slows_down(workspace, shop, waits):
    shop.bucket = 39
    with fake.serve(shop) as url:
        store = _store(workspace, api_url=url)
        with connector_for("shopify").client(store=store) as client:
            api.fetch_page(
                client=client, resource="products", cursor="", since=None, currency="EUR",
                shop_url=url,
            )  # fmt: skip
    assert client.waits == [api.LEAK_WAIT_SECONDS]


@pytest.mark.django_db
def test_backfill_without_token_fails_naming_it(workspace, shop):
    with fake.serve(shop) as url:
        store = make_store(workspace, platform="shopify", api_url=url, external_id=DOMAIN)
        result = store_sync(store=store, mode="backfill")
        assert result.status == SyncRun.Status.FAILED
        assert SyncRun.objects.get(pk=result.run_id).error.startswith("access_token:")
        wrong = _store(workspace, api_url=url, name="wrong")
        store_update(store=wrong, actor=None, credentials={"access_token": "shpat_wrong"})
        result = store_sync(store=wrong, mode="backfill")
    assert result.status == SyncRun.Status.FAILED
    assert "HTTP 401" in SyncRun.objects.get(pk=result.run_id).error


def test_page_params_and_cursor():
    since = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert api.page_params("orders", "", since) == {
        "limit": "250",
        "status": "any",
        "updated_at_min": "2026-03-01T08:30:00+00:00",
    }
    assert api.page_params("orders", "abc", since) == {"limit": "250", "page_info": "abc"}
    with pytest.raises(ConnectorError):
        api.endpoint("refunds")


@pytest.mark.django_db
def test_reconciliation_finds_and_repairs_missed_changes(workspace, other_workspace, shop, waits):
    history = shop.history
    with fake.serve(shop) as url:
        store = _store(workspace, api_url=url)
        assert store_sync(store=store, mode="backfill").status == SyncRun.Status.DONE
        before = commerce_snapshot(workspace)
        # Changes happen in the shop now; their webhooks never arrive.
        history.clock = timezone.now() - dt.timedelta(minutes=1)
        missed = (
            history.order_create() + history.order_pay() + history.order_fulfil()
            + history.order_refund() + history.product_update() + history.customer_create()
        )  # fmt: skip
        changed = {
            resource: {p["id"] for t, p in missed if t.startswith(resource)}
            for resource in ("customers", "products", "orders")
        }
        changed["orders"] |= {p["order_id"] for t, p in missed if t == "refunds/create"}
        result = store_sync(store=store, mode="reconcile")
        fresh = _store(other_workspace, api_url=url)
        store_sync(store=fresh, mode="backfill")
    assert result.status == SyncRun.Status.DONE
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.since is not None
    assert run.fetched == sum(len(ids) for ids in changed.values())
    repaired_orders = sum(v for k, v in run.repaired_detail.items() if k.startswith("orders:"))
    assert repaired_orders == len(changed["orders"])
    assert run.repaired_detail.get("products:updated") == len(changed["products"])
    assert run.repaired == len(changed["orders"]) + len(changed["products"])
    assert commerce_snapshot(workspace) != before
    assert commerce_snapshot(workspace) == commerce_snapshot(other_workspace)
    # Nothing changed since: the next reconciliation repairs nothing.
    with fake.serve(shop) as url:
        store.api_url = url
        store.save(update_fields=["api_url"])
        again = store_sync(store=store, mode="reconcile")
    assert again.status == SyncRun.Status.DONE
    assert again.repaired == 0


# --------------------------------------------------------------------------- setup


def test_setup_guide_lists_fields_and_topics():
    guide = connector_for("shopify").setup_guide()
    assert guide.topics == TOPICS
    assert {"customers/redact", "customers/data_request", "shop/redact"} <= set(guide.topics)
    assert {"orders/paid", "refunds/create", "products/update"} <= set(guide.topics)
    names = {f.name: f for f in guide.fields}
    assert names["access_token"].secret and names["webhook_secret"].secret
    assert names["webhook_secret"].target == "webhook_secret"
    assert names["external_id"].target == "external_id"
    assert not names["api_url"].required
    assert all(str(step) for step in guide.steps)
    assert any("webhook" in str(step) for step in guide.steps)


# --------------------------------------------------------------------------- replay


@pytest.mark.replay
@pytest.mark.django_db
def test_replay_in_order_and_shuffled_with_retries_end_the_same(workspace, other_workspace):
    in_order = _store(workspace)
    shuffled = _store(other_workspace)
    report = replay_compare(
        store_in_order=in_order,
        store_shuffled=shuffled,
        make=lambda store: fake.history_deliveries(
            secret=SECRET, shop=DOMAIN, count=REPLAY_DELIVERIES, seed=11
        ),
        redeliver=lambda store, item: fake.redeliver(item),
    )
    assert report.duplicates_sent > 0 and report.moved > 0
    assert report.duplicates_seen == report.duplicates_sent
    assert report.failed_left == 0
    assert report.snapshot_in_order["orders"]
    assert report.snapshot_in_order["refunds"]
    assert report.snapshot_in_order == report.snapshot_shuffled
