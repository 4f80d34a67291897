from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.commerce.connectors.base import ConnectorError, Event, SignatureError, connector_for
from circolo.commerce.connectors.saleor import SaleorConnector, api, documents, signatures
from circolo.commerce.connectors.saleor.guide import TOPICS
from circolo.commerce.models import Delivery, Order, Product, Refund, Store, SyncRun
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn
from circolo.commerce.services import store_update
from circolo.commerce.sync import store_sync
from circolo.commerce.tests import fake_saleor as fake
from circolo.commerce.tests.replay import REPLAY_DELIVERIES, replay_compare
from circolo.commerce.webhooks import delivery_process
from circolo.testing.commerce import commerce_snapshot, make_store

T1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def shop():
    """A served fake Saleor; deliveries made inside a test name its loopback address."""
    shop = fake.FakeSaleor(page_size=7)
    with fake.serve(shop):
        yield shop


def _store(workspace: Any, shop: fake.FakeSaleor, **extra: Any) -> Store:
    options: dict[str, Any] = {
        "platform": "saleor",
        "secret": "",
        "api_url": shop.api_url,
        "credentials": {"token": shop.token},
    }
    options.update(extra)
    return make_store(workspace, **options)


def _post(client: Any, store: Store, signed: fake.Signed) -> Any:
    headers, body = signed
    return client.post(
        f"/hooks/saleor/{store.hook_token}/",
        data=body,
        content_type="application/json",
        headers=fake.as_client_headers(headers),
    )


def _example_order(shop: fake.FakeSaleor) -> fake.Order:
    """An order with every part Circolo reads: an account, a discounted line with its own
    voucher, a line without a product, an order voucher, a referral landing page, paid,
    fulfilled and partly refunded through a granted refund."""
    shop.user_put(
        7,
        at=T1,
        email="ada@example.com",
        first_name="Ada",
        last_name="Rossi",
        phone="+39 347 123 4567",
    )
    tea = fake.Line(
        pk="1",
        product_pk=10,
        variant_pk=11,
        sku="TEA-50",
        name="Sencha",
        quantity=2,
        unit_minor=1250,
        unit_discount_minor=125,
        voucher_code="TEA5",
    )
    wrap = fake.Line(
        pk="2",
        product_pk=None,
        variant_pk=None,
        sku="",
        name="Gift wrap",
        quantity=1,
        unit_minor=300,
    )
    order = shop.order_place(
        at=T1 + dt.timedelta(hours=1),
        lines=[tea, wrap],
        user_pk=7,
        voucher_code="WELCOME10",
        metadata={"landing_site": "/products/sencha?ref=friend42&utm_source=instagram"},
    )
    shop.order_pay(order, at=T1 + dt.timedelta(hours=2))
    shop.order_fulfil(order, at=T1 + dt.timedelta(days=1))
    shop.order_refund(order, at=T1 + dt.timedelta(days=2), lines=[(tea, 1)])
    return order


# --------------------------------------------------------------------------- signatures


def _signed(shop: fake.FakeSaleor) -> fake.Signed:
    return shop.delivery("order_created", shop.order_node(_example_order(shop)))


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(case: str, shop: fake.FakeSaleor) -> fake.Signed:
    headers, body = _signed(shop)
    good = headers["Saleor-Signature"]
    protected, _empty, signature = good.split(".")
    if case == "missing":
        del headers["Saleor-Signature"], headers["X-Saleor-Signature"]
    elif case == "empty":
        headers["Saleor-Signature"] = ""
    elif case == "not a JWS":
        headers["Saleor-Signature"] = "not a signature"
    elif case == "truncated":
        headers["Saleor-Signature"] = good[:-12]
    elif case == "signature bytes changed":
        flipped = "A" if signature[5] != "A" else "B"
        headers["Saleor-Signature"] = f"{protected}..{signature[:5]}{flipped}{signature[6:]}"
    elif case == "payload attached instead of detached":
        headers["Saleor-Signature"] = jwt.api_jws.encode(
            body, key=shop.key.private, algorithm="RS256", headers={"kid": shop.key.kid}
        )
    elif case == "another body's signature":
        headers["Saleor-Signature"] = shop.key.sign(b'{"order": {"id": "x"}}')
    elif case == "body changed after signing":
        body = body.replace(b'"number": "', b'"number": "9')
    elif case == "signed with another key":
        headers["Saleor-Signature"] = fake.SigningKey().sign(body)
    elif case == "another key under the shop's kid":
        headers["Saleor-Signature"] = fake.SigningKey().sign(body, kid=shop.key.kid)
    elif case == "alg none":
        headers["Saleor-Signature"] = f"{_b64({'alg': 'none', 'kid': shop.key.kid})}.."
    elif case == "HS256 keyed with the public key":
        headers["Saleor-Signature"] = jwt.api_jws.encode(
            body,
            key="k" * 32,
            algorithm="HS256",
            headers={"kid": shop.key.kid, "crit": ["b64"]},
            is_payload_detached=True,
        )
    elif case == "b64 not declared critical":
        header = {"alg": "RS256", "kid": shop.key.kid, "b64": False}
        headers["Saleor-Signature"] = f"{_b64(header)}..{signature}"
    elif case == "HMAC where the shop signs with its key":
        headers["Saleor-Signature"] = signatures.hmac_signature("any-secret", body)
    elif case == "another shop's domain":
        headers["Saleor-Domain"] = headers["X-Saleor-Domain"] = "elsewhere.example"
    elif case == "another shop's API":
        headers["Saleor-Api-Url"] = "https://elsewhere.example/graphql/"
    elif case == "no shop headers":
        for name in ("Saleor-Domain", "X-Saleor-Domain", "Saleor-Api-Url"):
            del headers[name]
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(case)
    return headers, body


FORGERIES = [
    "missing",
    "empty",
    "not a JWS",
    "truncated",
    "signature bytes changed",
    "payload attached instead of detached",
    "another body's signature",
    "body changed after signing",
    "signed with another key",
    "another key under the shop's kid",
    "alg none",
    "HS256 keyed with the public key",
    "b64 not declared critical",
    "HMAC where the shop signs with its key",
    "another shop's domain",
    "another shop's API",
    "no shop headers",
]


@pytest.mark.django_db
@pytest.mark.parametrize("case", FORGERIES)
def test_forged_deliveries_are_refused_and_counted(client, workspace, shop, case):
    store = _store(workspace, shop)
    response = _post(client, store, _forge(case, shop))
    assert response.status_code == 401
    assert response.json() == {"result": "bad_signature"}
    assert Delivery.objects.count() == 0
    store.refresh_from_db()
    assert store.rejected_deliveries == 1
    assert store.rejected_last_at is not None


@pytest.mark.django_db
def test_signed_delivery_is_stored_and_processed(
    client, workspace, shop, django_capture_on_commit_callbacks
):
    store = _store(workspace, shop)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, store, _signed(shop))
    assert (response.status_code, response.json()) == (200, {"result": "accepted"})
    delivery = Delivery.objects.get()
    assert (delivery.topic, delivery.status) == ("order_created", Delivery.Status.PROCESSED)
    node = json.loads(delivery.body)["order"]
    assert delivery.dedupe_key == f"order_created:{node['id']}:{node['updatedAt']}"
    assert delivery.headers["saleor-api-url"] == shop.api_url
    order = Order.objects.get(store=store)
    assert (order.number, order.total_minor, order.referring_code) == ("1001", 3355, "friend42")
    assert order.member is not None
    assert order.refunded_minor == 1125
    store.refresh_from_db()
    assert store.rejected_deliveries == 0
    # One fetch of the keys (again only if the run outlasts their freshness).
    assert 1 <= shop.jwks_requests <= 3


@pytest.mark.django_db
def test_keys_are_cached_and_a_new_key_is_fetched_once(client, workspace, shop):
    store = _store(workspace, shop)
    for _n in range(3):
        assert _post(client, store, _signed(shop)).status_code == 200
    # One fetch of the keys (again only if the run outlasts their freshness).
    assert 1 <= shop.jwks_requests <= 3
    # Saleor rotates its key: the unknown kid makes us ask again (in a later window).
    shop.rotate()
    connector = connector_for("saleor")
    headers, body = _signed(shop)
    lowered = {k.lower(): v for k, v in headers.items()}
    later = timezone.now() + dt.timedelta(seconds=signatures.REFRESH_WINDOW_SECONDS)
    connector.verify(store=store, headers=lowered, body=body, now=later)
    assert shop.jwks_requests == 2


@pytest.mark.django_db
def test_a_flood_of_unknown_kids_fetches_the_keys_once_per_window(workspace, shop):
    store = _store(workspace, shop)
    connector = connector_for("saleor")
    headers, body = _signed(shop)
    lowered = {k.lower(): v for k, v in headers.items()}
    now = timezone.now()
    stranger = fake.SigningKey()
    for n in range(40):
        bogus = {**lowered, "saleor-signature": stranger.sign(body, kid=f"kid-{n}")}
        with pytest.raises(SignatureError, match="does not publish"):
            connector.verify(store=store, headers=bogus, body=body, now=now)
    # One fetch of the keys (again only if the run outlasts their freshness).
    assert 1 <= shop.jwks_requests <= 3
    # The genuine key still verifies from the cache, without asking again.
    connector.verify(store=store, headers=lowered, body=body, now=now)
    next_window = now + dt.timedelta(seconds=signatures.REFRESH_WINDOW_SECONDS)
    for n in range(10):
        bogus = {**lowered, "saleor-signature": stranger.sign(body, kid=f"more-{n}")}
        with pytest.raises(SignatureError):
            connector.verify(store=store, headers=bogus, body=body, now=next_window)
    assert shop.jwks_requests == 2


@pytest.mark.django_db
def test_signature_of_a_key_no_longer_published_is_stale(client, workspace, shop):
    store = _store(workspace, shop)
    old = _signed(shop)
    assert _post(client, store, old).status_code == 200
    shop.rotate(keep_old=False)
    connector = connector_for("saleor")
    headers, body = old
    lowered = {k.lower(): v for k, v in headers.items()}
    # Once the cached key set is old, it is fetched again and the retired key is refused.
    later = timezone.now() + dt.timedelta(seconds=signatures.JWKS_FRESH_SECONDS + 1)
    with pytest.raises(SignatureError, match="does not publish"):
        connector.verify(store=store, headers=lowered, body=body, now=later)
    cache.clear()
    assert _post(client, store, old).status_code == 401
    headers = {**headers, "Saleor-Signature": shop.key.sign(body)}
    assert _post(client, store, (headers, body)).json() == {"result": "duplicate"}
    store.refresh_from_db()
    assert store.rejected_deliveries == 1


@pytest.mark.django_db
def test_unreachable_keys_refuse_without_hammering(client, workspace, shop):
    store = _store(workspace, shop, api_url="http://127.0.0.1:9/graphql/")
    headers, body = _signed(shop)
    headers = {**headers, "Saleor-Api-Url": store.api_url}
    headers["Saleor-Domain"] = headers["X-Saleor-Domain"] = "127.0.0.1:9"
    connector = connector_for("saleor")
    lowered = {k.lower(): v for k, v in headers.items()}
    now = timezone.now()
    with pytest.raises(SignatureError, match="could not be fetched"):
        connector.verify(store=store, headers=lowered, body=body, now=now)
    with pytest.raises(SignatureError, match="not available yet"):
        connector.verify(store=store, headers=lowered, body=body, now=now)


@pytest.mark.django_db
def test_retried_delivery_is_a_duplicate(client, workspace, shop):
    store = _store(workspace, shop)
    first = _signed(shop)
    assert _post(client, store, first).json() == {"result": "accepted"}
    # Saleor retries with the same body; the JWS of the same body under the same key is equal.
    again = _post(client, store, first)
    assert (again.status_code, again.json()) == (200, {"result": "duplicate"})
    # Another event about the same order state is another delivery.
    headers, body = first
    paid = ({**headers, "Saleor-Event": "order_fully_paid"}, body)
    assert _post(client, store, paid).json() == {"result": "accepted"}
    assert Delivery.objects.get(topic="order_created").duplicates == 1
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_unknown_topic_is_acknowledged_and_ignored(client, workspace, shop):
    store = _store(workspace, shop)
    body = json.dumps({"checkout": {"id": "Q2hlY2tvdXQ6MQ==", "email": "a@b.it"}}).encode()
    response = _post(client, store, shop.sign("checkout_created", body))
    assert response.status_code == 200
    delivery = Delivery.objects.get()
    assert delivery.dedupe_key.startswith("body:")
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.IGNORED
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_malformed_payload_fails_permanently_with_the_field(client, workspace, shop):
    store = _store(workspace, shop)
    node = shop.order_node(_example_order(shop))
    node["lines"][0]["quantity"] = "two"
    assert _post(client, store, shop.delivery("order_updated", node)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.permanent is True
    assert delivery.next_attempt_at is None
    assert delivery.last_error.startswith("order.lines[0].quantity:")
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_subscription_errors_fail_naming_what_saleor_said(client, workspace, shop):
    store = _store(workspace, shop)
    body = json.dumps(
        {"order": None, "errors": [{"message": "You need MANAGE_ORDERS to access order."}]}
    ).encode()
    assert _post(client, store, shop.sign("order_created", body)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.permanent
    assert delivery.last_error == (
        "order: Saleor could not build the payload: You need MANAGE_ORDERS to access order."
    )


@pytest.mark.django_db
def test_not_json_is_a_bad_request(client, workspace, shop):
    store = _store(workspace, shop)
    assert _post(client, store, shop.sign("order_created", b"<xml/>")).status_code == 400


@pytest.mark.django_db
def test_deliveries_stay_in_their_own_workspace(client, workspace, other_workspace, shop):
    ours = _store(workspace, shop)
    elsewhere = fake.FakeSaleor()
    with fake.serve(elsewhere):
        theirs = _store(other_workspace, elsewhere)
        signed = _signed(shop)
        # Our shop's delivery posted to their URL: not their shop, refused and counted there.
        assert _post(client, theirs, signed).status_code == 401
        # Even with their shop's headers, our key is not in their shop's key set.
        headers, body = signed
        dressed = {**headers, "Saleor-Api-Url": elsewhere.api_url}
        dressed["Saleor-Domain"] = dressed["X-Saleor-Domain"] = elsewhere.api_url.split("/")[2]
        assert _post(client, theirs, (dressed, body)).status_code == 401
    assert _post(client, ours, signed).status_code == 200
    for delivery in Delivery.objects.all():
        delivery_process(delivery_id=delivery.pk)
    assert Order.objects.filter(workspace=workspace).count() == 1
    assert not Order.objects.filter(workspace=other_workspace).exists()
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.rejected_deliveries, theirs.rejected_deliveries) == (0, 2)
    # A Saleor token is no Shopify store's URL.
    response = client.post(
        f"/hooks/shopify/{ours.hook_token}/",
        data=signed[1],
        content_type="application/json",
        headers=fake.as_client_headers(signed[0]),
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_webhook_with_a_secret_key_is_checked_by_hmac(client, workspace, shop, owner):
    store = _store(workspace, shop, secret="legacy-secret")
    headers, body = _signed(shop)
    legacy = {**headers, "Saleor-Signature": signatures.hmac_signature("legacy-secret", body)}
    assert _post(client, store, (legacy, body)).status_code == 200
    # With a secret key Saleor never signs with its private key.
    assert _post(client, store, (headers, body)).status_code == 401
    wrong = {**headers, "Saleor-Signature": signatures.hmac_signature("other-secret", body)}
    assert _post(client, store, (wrong, body)).status_code == 401
    # Rotating the secret makes signatures with the old one stale.
    store_update(store=store, actor=owner.user, webhook_secret="new-secret")
    store.refresh_from_db()
    assert _post(client, store, (legacy, body)).status_code == 401
    store.refresh_from_db()
    assert store.rejected_deliveries == 3
    assert shop.jwks_requests == 0


@pytest.mark.django_db
def test_test_delivery_verifies_and_is_ignored(client, workspace, shop):
    connector = connector_for("saleor")
    jws_store = _store(workspace, shop)
    with pytest.raises(ConnectorError, match="only Saleor can send one"):
        connector.test_delivery(store=jws_store)
    store = _store(workspace, shop, secret="legacy-secret", name="legacy")
    headers, body = connector.test_delivery(store=store)
    lowered = {key.lower(): value for key, value in headers.items()}
    connector.verify(store=store, headers=lowered, body=body, now=timezone.now())
    assert headers["Saleor-Event"] == "shop_metadata_updated"
    assert _post(client, store, (headers, body)).status_code == 200
    delivery = Delivery.objects.get()
    assert delivery_process(delivery_id=delivery.pk) == Delivery.Status.IGNORED


def test_verify_refuses_a_store_without_api_address():
    store = Store(platform="saleor", currency="EUR", name="x")
    shop = fake.FakeSaleor()
    headers, body = shop.sign("order_created", b"{}")
    lowered = {key.lower(): value for key, value in headers.items()}
    with pytest.raises(SignatureError, match="no API address"):
        SaleorConnector().verify(store=store, headers=lowered, body=body, now=timezone.now())


def test_domain_and_api_address_are_compared_as_saleor_sends_them():
    assert signatures.normalise_api_url("HTTPS://Shop.Example/graphql") == (
        "https://shop.example/graphql/"
    )
    assert signatures.shop_domain("https://shop.example:8443/graphql/") == "shop.example:8443"
    assert signatures.shop_domain("https://api.example/graphql/", "Shop.Example") == "shop.example"
    assert signatures.jwks_url("https://shop.example/graphql/") == (
        "https://shop.example/.well-known/jwks.json"
    )
    with pytest.raises(SignatureError):
        signatures.jwks_url("shop.example/graphql/")


# --------------------------------------------------------------------------- parsing

STORE = Store(
    platform="saleor", currency="EUR", name="Bottega", api_url="https://shop.example/graphql/"
)


def _parse(topic: str, payload: Any) -> Event:
    return SaleorConnector().parse(store=STORE, topic=topic, payload=payload, headers={})


def _order_body() -> dict[str, Any]:
    shop = fake.FakeSaleor()
    return {"issuedAt": fake.iso(T1), "order": shop.order_node(_example_order(shop))}


def test_order_maps_every_field_we_keep():
    body = _order_body()
    (order,) = _parse("order_refunded", body).records
    assert isinstance(order, OrderIn)
    node = body["order"]
    assert order.external_id == node["id"]
    assert (order.number, order.currency) == ("1001", "EUR")
    assert order.placed_at == T1 + dt.timedelta(hours=1)
    assert order.updated_at == T1 + dt.timedelta(days=2)
    assert order.status == "fulfilled"
    assert order.paid_at == T1 + dt.timedelta(hours=2)
    assert order.fulfilled_at == T1 + dt.timedelta(days=1)
    assert order.cancelled_at is None
    # 2 x 12.50 less 1.25 each, 3.00 of gift wrap, 5.00 shipping, 10 % tax.
    assert (order.subtotal_minor, order.shipping_minor) == (2550, 500)
    assert (order.discount_minor, order.tax_minor, order.total_minor) == (250, 305, 3355)
    assert order.discount_codes == ("WELCOME10", "TEA5")
    assert order.landing_site == "/products/sencha?ref=friend42&utm_source=instagram"
    assert order.referring_code == "friend42"
    assert order.customer == CustomerIn(
        external_id=fake.gid("User", 7),
        email="ada@example.com",
        phone="",
        first_name="Ada",
        last_name="Rossi",
        city="MILANO",
        country="IT",
        languages=("it",),
    )
    assert order.shipping_address == {
        "name": "Ada Rossi",
        "address1": "Via Roma 1",
        "city": "MILANO",
        "zip": "20121",
        "country_code": "IT",
    }
    tea, wrap = order.lines
    assert (tea.external_id, tea.quantity, tea.unit_price_minor, tea.discount_minor) == (
        fake.gid("OrderLine", "1"),
        2,
        1250,
        250,
    )
    assert (tea.product_external_id, tea.variant_external_id, tea.sku) == (
        fake.gid("Product", 10),
        fake.gid("ProductVariant", 11),
        "TEA-50",
    )
    assert tea.title == "Sencha – tea-50"
    assert (wrap.product_external_id, wrap.variant_external_id, wrap.title) == ("", "", "Gift wrap")
    (refund,) = order.refunds
    success = [e for e in node["transactions"][0]["events"] if e["type"] == "REFUND_SUCCESS"]
    assert refund.external_id == success[0]["id"]
    assert (refund.order_external_id, refund.amount_minor, refund.currency) == (
        node["id"],
        1125,
        "EUR",
    )
    assert refund.refunded_at == T1 + dt.timedelta(days=2)
    assert [(ln.line_external_id, ln.quantity, ln.amount_minor) for ln in refund.lines] == [
        (tea.external_id, 1, 1125)
    ]


def test_legacy_payment_refunds_are_read_from_order_events():
    body = _order_body()
    node = body["order"]
    node["transactions"], node["grantedRefunds"] = [], []
    node["events"].append(
        {
            "id": "T3JkZXJFdmVudDo5OQ==",
            "date": fake.iso(T1 + dt.timedelta(days=3)),
            "type": "PAYMENT_REFUNDED",
            "amount": 4.9,
        }
    )
    (order,) = _parse("order_refunded", body).records
    (refund,) = order.refunds
    assert (refund.external_id, refund.amount_minor, refund.lines) == (
        "T3JkZXJFdmVudDo5OQ==",
        490,
        (),
    )
    assert order.paid_at == T1 + dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("status", "charge", "is_paid", "events", "expected", "paid"),
    [
        ("UNCONFIRMED", "NONE", False, [], "pending", False),
        ("UNFULFILLED", "PARTIAL", False, [], "pending", False),
        ("UNFULFILLED", "FULL", False, [], "paid", True),
        ("UNFULFILLED", "OVERCHARGED", False, [], "paid", True),
        ("UNFULFILLED", "NONE", True, [], "paid", True),
        ("UNFULFILLED", "NONE", False, ["ORDER_MARKED_AS_PAID"], "paid", True),
        ("PARTIALLY_FULFILLED", "FULL", True, [], "paid", True),
        ("FULFILLED", "FULL", True, [], "fulfilled", True),
        ("FULFILLED", "NONE", False, [], "fulfilled", False),
        ("RETURNED", "FULL", True, [], "fulfilled", True),
        ("PARTIALLY_RETURNED", "FULL", True, [], "fulfilled", True),
        ("CANCELED", "NONE", False, ["CANCELED"], "pending", False),
        ("EXPIRED", "NONE", False, ["EXPIRED"], "pending", False),
    ],
)
def test_base_status_from_status_and_charge(status, charge, is_paid, events, expected, paid):
    shop = fake.FakeSaleor()
    order = shop.order_place(at=T1, lines=[], email="guest@example.com")
    for number, kind in enumerate(events):
        order.events.append(shop._event(kind, T1 + dt.timedelta(hours=number + 1)))
    order.updated = T1 + dt.timedelta(days=1)
    node = shop.order_node(order)
    node.update({"status": status, "chargeStatus": charge, "isPaid": is_paid})
    (record,) = _parse("order_updated", {"order": node}).records
    assert record.status == expected
    assert (record.paid_at is not None) == paid
    if status in ("CANCELED", "EXPIRED"):
        assert record.cancelled_at == T1 + dt.timedelta(hours=1)
    else:
        assert record.cancelled_at is None
    if expected == "fulfilled":
        # No fulfilment listed: the order's last change is the best time there is.
        assert record.fulfilled_at == order.updated


def test_cancelled_guest_order_without_customer_account():
    shop = fake.FakeSaleor()
    order = shop.order_place(at=T1, lines=[], email="Guest@Example.com")
    shop.order_cancel(order, at=T1 + dt.timedelta(hours=3))
    node = shop.order_node(order)
    node["billingAddress"] = None
    (record,) = _parse("order_cancelled", {"order": node}).records
    assert record.cancelled_at == T1 + dt.timedelta(hours=3)
    assert record.customer == CustomerIn(email="Guest@Example.com", languages=("it",))
    node["userEmail"] = None
    (record,) = _parse("order_cancelled", {"order": node}).records
    assert record.customer is None


def test_product_with_variants_image_translations_and_status():
    shop = fake.FakeSaleor()
    node = shop.product_put(
        10,
        at=T1,
        name="Sencha",
        variants=[(11, "TEA-50", 1250), (12, "TEA-100", 2200)],
        translations={"it": "Tè verde", "zh-hans": "煎茶"},
    )
    (product,) = _parse("product_updated", {"product": node}).records
    assert product == ProductIn(
        external_id=fake.gid("Product", 10),
        title="Sencha",
        titles={"it": "Tè verde", "zh-hans": "煎茶"},
        image_url="https://shop.example/media/thumbnails/10.webp",
        status="active",
        updated_at=T1,
        variants=product.variants,
    )
    assert [(v.sku, v.title, v.price_minor) for v in product.variants] == [
        ("TEA-50", "tea-50", 1250),
        ("TEA-100", "tea-100", 2200),
    ]
    # Prices in another channel's currency are not this store's.
    node["variants"][0]["channelListings"][0]["channel"]["currencyCode"] = "USD"
    node["variants"][0]["channelListings"][0]["price"]["currency"] = "USD"
    (product,) = _parse("product_updated", {"product": node}).records
    assert product.variants[0].price_minor == 0
    unpublished = shop.product_put(10, at=T1, name="Sencha", variants=[], published=False)
    (draft,) = _parse("product_updated", {"product": unpublished}).records
    assert draft.status == "draft"
    deleted_at = T1 + dt.timedelta(days=1)
    (gone,) = _parse("product_deleted", {"issuedAt": fake.iso(deleted_at), "product": node}).records
    assert (gone.status, gone.updated_at) == ("archived", deleted_at)


def test_customer_with_address_and_language():
    shop = fake.FakeSaleor()
    node = shop.user_put(
        7,
        at=T1,
        email="ada@example.com",
        first_name="Ada",
        last_name="Rossi",
        city="Roma",
        country="IT",
        phone="+39 06 1234567",
        language="ZH_HANS",
    )
    (customer,) = _parse("customer_created", {"user": node}).records
    assert customer == CustomerIn(
        external_id=fake.gid("User", 7),
        email="ada@example.com",
        phone="+39 06 1234567",
        first_name="Ada",
        last_name="Rossi",
        city="ROMA",
        country="IT",
        languages=("zh-hans",),
        created_at=T1,
        updated_at=T1,
    )
    node["defaultBillingAddress"] = None
    (customer,) = _parse("customer_updated", {"user": node}).records
    assert (customer.city, customer.country, customer.phone) == ("", "", "")


def test_unknown_and_unhandled_topics_are_ignored():
    assert _parse("checkout_created", {"checkout": {}}) == Event(ignored=True)
    assert _parse("draft_order_created", {"order": {}}) == Event(ignored=True)
    assert _parse("", {}) == Event(ignored=True)


def test_dedupe_key_is_event_object_and_modification_time():
    connector = SaleorConnector()
    body = {"order": {"id": "T3JkZXI6MQ==", "updatedAt": "2026-03-01T10:00:00+00:00"}}
    key = connector.dedupe_key(headers={}, payload=body, topic="order_paid")
    assert key == "order_paid:T3JkZXI6MQ==:2026-03-01T10:00:00+00:00"
    assert connector.dedupe_key(headers={}, payload=body, topic="order_updated") != key
    # Without the fields the key is a hash of the whole body: equal bodies, equal keys.
    odd = {"order": {"id": 5}}
    assert connector.dedupe_key(headers={}, payload=odd, topic="order_paid").startswith("body:")
    assert connector.dedupe_key(headers={}, payload=odd, topic="order_paid") == (
        connector.dedupe_key(headers={}, payload=copy.deepcopy(odd), topic="order_paid")
    )


def _set(path: str, value: Any) -> dict[str, Any]:
    body = _order_body()
    target: Any = body["order"]
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last: Any = int(keys[-1]) if keys[-1].isdigit() else keys[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("id", _DELETE, "order.id"),
        ("id", True, "order.id"),
        ("total.gross.currency", "EURO", "order.total.gross.currency"),
        ("total.tax.currency", "USD", "order.total.tax.currency"),
        ("created", "2026-03-01T10:00:00", "order.created"),
        ("updatedAt", "yesterday", "order.updatedAt"),
        ("updatedAt", None, "order.updatedAt"),
        ("total.gross.amount", "12,50", "order.total.gross.amount"),
        ("total.gross.amount", "1e99", "order.total.gross.amount"),
        ("total.gross", 12.5, "order.total.gross"),
        ("lines", {"id": 1}, "order.lines"),
        ("lines.0.quantity", -1, "order.lines[0].quantity"),
        ("lines.0.quantity", 2.5, "order.lines[0].quantity"),
        ("lines.0.id", None, "order.lines[0].id"),
        ("lines.0.unitPrice", None, "order.lines[0].unitPrice"),
        ("lines.0.variant.product", "P", "order.lines[0].variant.product"),
        ("grantedRefunds.0.lines.0.orderLine", None, "order.grantedRefunds[0].lines[0].orderLine"),
        ("transactions.0.events.2.createdAt", None, "order.transactions[0].events[2].createdAt"),
        (
            "transactions.0.events.2.amount.amount",
            [],
            "order.transactions[0].events[2].amount.amount",
        ),
        ("user", "Ada", "order.user"),
        ("userEmail", ["ada@example.com"], "order.userEmail"),
        ("fulfillments.0.created", 5, "order.fulfillments[0].created"),
        ("metadata.0", "landing", "order.metadata[0]"),
        ("events.0.date", "soon", "order.events[0].date"),
    ],
)
def test_bad_order_fields_are_named(path, value, field):
    with pytest.raises(PayloadError) as error:
        _parse("order_updated", _set(path, value))
    assert error.value.field == field


def test_missing_subject_names_the_subscription():
    with pytest.raises(PayloadError) as error:
        _parse("customer_created", {"issuedAt": fake.iso(T1)})
    assert error.value.field == "user"
    assert "subscription query" in error.value.message
    with pytest.raises(PayloadError) as error:
        _parse("product_updated", ["not", "an", "object"])
    assert error.value.field == "body"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-03-01T10:00:00+01:00", "12.50", "1e400", "FULFILLED", "EUR", ""]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "created",
                    "updatedAt",
                    "lines",
                    "events",
                    "transactions",
                    "grantedRefunds",
                    "amount",
                    "currency",
                    "gross",
                    "net",
                    "tax",
                    "total",
                    "quantity",
                    "type",
                    "user",
                    "variants",
                    "channelListings",
                    "price",
                    "channel",
                    "currencyCode",
                    "status",
                    "order",
                    "product",
                    "orderLine",
                    "fulfillments",
                    "metadata",
                    "key",
                    "value",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)
HANDLED = [
    "customer_updated",
    "order_created",
    "order_refunded",
    "product_deleted",
    "product_updated",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(topic=st.sampled_from(HANDLED), payload=json_values)
def test_arbitrary_json_raises_only_payload_errors(topic, payload):
    connector = SaleorConnector()
    connector.dedupe_key(headers={}, payload=payload, topic=topic)
    try:
        _parse(topic, payload)
    except PayloadError as error:
        assert error.field


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out.extend(_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out.extend(_paths(inner, (*prefix, index)))
    return out


ORDER_PATHS = _paths(_order_body())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(ORDER_PATHS), value=json_values)
def test_any_field_of_a_real_order_replaced_raises_only_payload_errors(path, value):
    body = _order_body()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        (order,) = _parse("order_updated", body).records
    except PayloadError as error:
        assert error.field
    else:
        assert isinstance(order, OrderIn)


# --------------------------------------------------------------------------- the API


@pytest.fixture
def lived(shop):
    """The served shop after a month of its life (deliveries made and dropped)."""
    history = fake.ShopHistory(shop, seed=3, start=timezone.now() - dt.timedelta(days=30))
    history.deliveries(260)
    shop.history = history
    return shop


@pytest.fixture
def waits(monkeypatch):
    taken: list[float] = []
    monkeypatch.setattr(connector_for("saleor"), "sleep", taken.append)
    return taken


def _refund_events(shop: fake.FakeSaleor) -> int:
    return sum(
        1
        for order in shop.orders.values()
        for transaction in order.transactions
        for event in transaction["events"]
        if event["type"] == "REFUND_SUCCESS"
    )


def _until_done(store: Store, mode: str = "backfill", max_pages: int | None = None) -> int:
    rounds = 0
    while True:
        rounds += 1
        result = store_sync(store=store, mode=mode, max_pages=max_pages)
        if result.status == SyncRun.Status.DONE:
            return rounds
        assert rounds < 200


@pytest.mark.django_db
def test_backfill_reads_every_page_of_every_resource(workspace, lived, waits):
    shop = lived
    store = _store(workspace, shop)
    result = store_sync(store=store, mode="backfill")
    assert result.status == SyncRun.Status.DONE
    assert result.fetched == len(shop.users) + len(shop.products) + len(shop.orders)
    assert Order.objects.filter(store=store).count() == len(shop.orders)
    assert Product.objects.filter(store=store).count() == len(shop.products)
    assert Refund.objects.filter(store=store).count() == _refund_events(shop) > 0
    cancelled = [o for o in shop.orders.values() if o.status == "CANCELED"]
    assert cancelled
    assert Order.objects.filter(store=store, cancelled_at__isnull=False).count() == len(cancelled)
    # Every request was one of our documents, 100 at a time, with the app token.
    queries = {request["query"] for request in shop.graphql_requests}
    assert queries == set(documents.QUERIES.values())
    assert all(request["variables"]["first"] == 100 for request in shop.graphql_requests)
    assert len(shop.graphql_requests) > 3
    assert waits == []


@pytest.mark.django_db
def test_interrupted_backfill_resumes_to_the_same_state(workspace, other_workspace, lived, waits):
    whole = _store(workspace, lived)
    assert store_sync(store=whole, mode="backfill").status == SyncRun.Status.DONE
    pieces = _store(other_workspace, lived)
    rounds = _until_done(pieces, max_pages=2)
    assert rounds > 3
    assert SyncRun.objects.filter(store=pieces).count() == 1
    assert commerce_snapshot(other_workspace) == commerce_snapshot(workspace)


@pytest.mark.django_db
def test_backfill_failing_after_some_pages_restarts_where_it_stopped(
    workspace, other_workspace, lived, waits
):
    shop = lived
    whole = _store(workspace, shop)
    store_sync(store=whole, mode="backfill")
    # After five good pages the shop answers 500 to every attempt at the sixth.
    shop.fail(500, after=5, times=6)
    broken = _store(other_workspace, shop)
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
def test_throttled_requests_wait_as_saleor_asks(workspace, lived, waits):
    shop = lived
    store = _store(workspace, shop)
    shop.fail(429, after=2, times=2, headers={"Retry-After": "2"})
    result = store_sync(store=store, mode="backfill")
    assert result.status == SyncRun.Status.DONE
    assert waits == [2.0, 2.0]
    shop.fail(429, times=1, headers={"Retry-After": "1.5"})
    with connector_for("saleor").client(store=store) as client:
        page = api.fetch_page(
            client=client, resource="customers", cursor="", since=None, currency="EUR"
        )
    assert client.waits == [1.5]
    assert len(page.records) == 7 and page.next_cursor


@pytest.mark.django_db
def test_backfill_without_permission_or_token_fails_naming_it(workspace, lived, waits):
    store = make_store(workspace, platform="saleor", secret="", api_url=lived.api_url)
    result = store_sync(store=store, mode="backfill")
    assert result.status == SyncRun.Status.FAILED
    assert SyncRun.objects.get(pk=result.run_id).error.startswith("token:")
    wrong = _store(workspace, lived, name="wrong", credentials={"token": "someone-else"})
    result = store_sync(store=wrong, mode="backfill")
    assert result.status == SyncRun.Status.FAILED
    error = SyncRun.objects.get(pk=result.run_id).error
    assert error == (
        "Saleor answered with an error: To access this path, you need one of the following "
        "permissions: MANAGE_USERS"
    )
    assert waits == []


def test_page_variables_and_cursor():
    since = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert api.page_variables("", since) == {
        "first": 100,
        "after": None,
        "filter": {"updatedAt": {"gte": "2026-03-01T08:30:00+00:00"}},
    }
    assert api.page_variables("WyIxMCJd", None) == {"first": 100, "after": "WyIxMCJd"}
    assert api._next_cursor({"pageInfo": {"hasNextPage": False, "endCursor": "x"}}) is None
    assert api._next_cursor({"pageInfo": {"hasNextPage": True, "endCursor": "x"}}) == "x"
    with pytest.raises(ConnectorError):
        api._next_cursor({"pageInfo": {"hasNextPage": True, "endCursor": None}})


@pytest.mark.django_db
def test_reconciliation_finds_and_repairs_missed_changes(workspace, other_workspace, lived, waits):
    shop = lived
    history = shop.history
    store = _store(workspace, shop)
    assert store_sync(store=store, mode="backfill").status == SyncRun.Status.DONE
    before = commerce_snapshot(workspace)
    stamps = {
        "customers": {pk: u["updatedAt"] for pk, u in shop.users.items()},
        "products": {pk: p["updatedAt"] for pk, p in shop.products.items()},
        "orders": {pk: o.updated for pk, o in shop.orders.items()},
    }
    # Changes happen in the shop now; their webhooks never arrive.
    history.now = timezone.now() - dt.timedelta(minutes=1)
    for step in (
        "order_create",
        "order_pay",
        "order_fulfil",
        "order_refund",
        "product_update",
        "customer_create",
        "customer_update",
    ):
        getattr(history, step)()
    changed = {
        "customers": {
            pk for pk, u in shop.users.items() if stamps["customers"].get(pk) != u["updatedAt"]
        },
        "products": {
            pk for pk, p in shop.products.items() if stamps["products"].get(pk) != p["updatedAt"]
        },
        "orders": {pk for pk, o in shop.orders.items() if stamps["orders"].get(pk) != o.updated},
    }
    result = store_sync(store=store, mode="reconcile")
    fresh = _store(other_workspace, shop)
    store_sync(store=fresh, mode="backfill")
    assert result.status == SyncRun.Status.DONE
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.since is not None
    assert run.fetched == sum(len(ids) for ids in changed.values())
    repaired_orders = sum(v for k, v in run.repaired_detail.items() if k.startswith("orders:"))
    assert repaired_orders == len(changed["orders"]) >= 1
    assert run.repaired_detail.get("products:updated") == len(changed["products"]) == 1
    assert run.repaired == len(changed["orders"]) + len(changed["products"])
    assert commerce_snapshot(workspace) != before
    assert commerce_snapshot(workspace) == commerce_snapshot(other_workspace)
    # Nothing changed since: the next reconciliation repairs nothing.
    again = store_sync(store=store, mode="reconcile")
    assert again.status == SyncRun.Status.DONE
    assert again.repaired == 0


# --------------------------------------------------------------------------- setup


def test_setup_guide_lists_fields_topics_and_subscriptions():
    guide = connector_for("saleor").setup_guide()
    assert guide.topics == TOPICS
    assert {
        "order_created",
        "order_fully_paid",
        "order_refunded",
        "customer_updated",
        "product_deleted",
    } <= set(guide.topics)
    names = {f.name: f for f in guide.fields}
    assert names["token"].secret and names["token"].target == "credentials"
    assert names["api_url"].required and names["api_url"].target == "api_url"
    assert not names["webhook_secret"].required and names["webhook_secret"].secret
    assert not names["external_id"].required
    steps = [str(step) for step in guide.steps]
    assert all(steps)
    for document in (
        documents.ORDER_SUBSCRIPTION,
        documents.CUSTOMER_SUBSCRIPTION,
        documents.PRODUCT_SUBSCRIPTION,
    ):
        assert any(document.strip() in step for step in steps)


def test_subscriptions_select_every_field_the_parser_reads():
    # Every key the fake renders (the parser's input) is selected by the documents.
    node = _order_body()["order"]
    for key in _paths(node):
        name = next((part for part in reversed(key) if isinstance(part, str)), None)
        assert name is None or name in documents.ORDER + documents.ADDRESS, name
    for event in documents.ORDER_EVENTS:
        type_name = "".join(part.capitalize() for part in event.split("_"))
        assert f"... on {type_name} {{ issuedAt order {{ ...CircoloOrder }} }}" in (
            documents.ORDER_SUBSCRIPTION
        )


# --------------------------------------------------------------------------- replay


@pytest.mark.replay
@pytest.mark.django_db
def test_replay_in_order_and_shuffled_with_retries_end_the_same(workspace, other_workspace, shop):
    history = fake.ShopHistory(shop, seed=11, start=T1)
    deliveries = history.deliveries(REPLAY_DELIVERIES)
    report = replay_compare(
        store_in_order=_store(workspace, shop),
        store_shuffled=_store(other_workspace, shop),
        make=lambda store: deliveries,
        # Saleor retries a delivery with the same body and headers.
        redeliver=lambda store, item: item,
    )
    assert report.sent == REPLAY_DELIVERIES + report.duplicates_sent
    assert report.duplicates_sent > 0 and report.moved > 0
    assert report.duplicates_seen == report.duplicates_sent
    assert report.failed_left == 0
    assert report.snapshot_in_order["orders"]
    assert report.snapshot_in_order["refunds"]
    assert report.snapshot_in_order == report.snapshot_shuffled
    # One fetch of the keys (again only if the run outlasts their freshness).
    assert 1 <= shop.jwks_requests <= 3
