"""The BigCommerce connector: signed id-only webhooks in, the REST API for every record.

BigCommerce webhook bodies name an event and an id only, for example
{"scope": "store/order/created", "store_id": "1025646", "data": {"type": "order", "id": 250},
"hash": "dd70…", "created_at": 1561479335, "producer": "stores/abc123"}
("Webhook Events" > Callback structure, https://developer.bigcommerce.com/docs/integrations/webhooks/events).
So parse() reads the resource again through the API and maps what it is *now*. Deliveries
that arrive late, twice or out of order therefore all converge on the current state, and the
services' last-modified checks make an older answer (a lagging replica) change nothing.

signatures.py checks the Standard Webhooks signature BigCommerce sends (and an optional
custom header), api.py reads the REST API, payloads.py maps its resources onto schema.py
records, guide.py tells users how to connect.

Duplicates: BigCommerce resends an event with the same body, so the same ``hash`` ("a SHA1
hash of event metadata … if a hook fires twice for the same event, both request bodies should
have the same hash", "Webhooks Overview" > Security); the signature headers change with each
attempt. The dedupe key is scope + resource + hash. Should two different events ever share
all three, processing the first one already read the resource after both happened unless it
ran in between; the hourly reconciliation repairs that case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from django.conf import settings
from django.utils import timezone

from circolo.commerce.connectors.base import (
    Connector,
    ConnectorError,
    Event,
    Page,
    Record,
    SetupGuide,
    SignatureError,
    register,
)
from circolo.commerce.connectors.bigcommerce import api, discounts, payloads
from circolo.commerce.connectors.bigcommerce.guide import setup_guide
from circolo.commerce.connectors.bigcommerce.signatures import (
    custom_header_check,
    signature_check,
    signed_headers,
)
from circolo.commerce.connectors.http import ApiClient
from circolo.commerce.schema import PayloadError
from circolo.core.sealing import SealError

if TYPE_CHECKING:
    from circolo.commerce.discounts import CreatedDiscount, DiscountSpec
    from circolo.commerce.models import Store

logger = logging.getLogger(__name__)

CUSTOMER_TOPICS = frozenset({"store/customer/created", "store/customer/updated"})
PRODUCT_TOPICS = frozenset({"store/product/created", "store/product/updated"})
# SKU (variant) events name their product in data.sku.product_id.
SKU_TOPICS = frozenset({"store/sku/created", "store/sku/updated", "store/sku/deleted"})
ORDER_TOPICS = frozenset(
    {
        "store/order/created",
        "store/order/updated",
        "store/order/statusUpdated",
        "store/order/archived",
        "store/order/refund/created",
    }
)
# The harmless topic of the setup page's test delivery: it reads the store's information,
# which proves the API path and token too, and writes nothing.
TEST_TOPIC = "store/information/updated"


def _credentials(store: Store) -> dict[str, Any]:
    try:
        return store.credentials
    except SealError as error:
        raise ConnectorError("the store's credentials cannot be decrypted") from error


def _store_hash(store: Store) -> str:
    return store.external_id.strip() or api.store_hash(store.api_url)


def _data(payload: Any) -> Mapping[str, Any]:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def body_hash(payload: Mapping[str, Any]) -> str:
    """A SHA-1 over the payload's event metadata, as BigCommerce's ``hash`` field is."""
    metadata = {key: value for key, value in payload.items() if key != "hash"}
    encoded = json.dumps(metadata, separators=(",", ":")).encode("utf-8")
    return hashlib.sha1(encoded, usedforsecurity=False).hexdigest()


@dataclass
class BigCommerceConnector(Connector):
    platform: ClassVar[str] = "bigcommerce"
    label: ClassVar[str] = "BigCommerce"

    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    # How API requests travel; tests and benchmarks put an in-process fake shop here.
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    page_size: int = api.PAGE_SIZE

    # ---- webhooks
    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        """The Standard Webhooks signature under the client secret, fresh within the
        tolerance, and the store's custom header when it names one."""
        try:
            secret = store.webhook_secret
            credentials = store.credentials
        except SealError as error:
            logger.error("store %s: secrets cannot be unsealed: %s", store.pk, error)
            raise SignatureError("the store's secrets cannot be decrypted") from error
        signature_check(
            secret=secret,
            headers=headers,
            body=body,
            now=now,
            tolerance_seconds=settings.CIRCOLO_WEBHOOK_TOLERANCE_SECONDS,
        )
        name = str(credentials.get("hook_header_name") or "").strip()
        value = str(credentials.get("hook_header_value") or "")
        if name and value:
            custom_header_check(headers=headers, name=name, value=value)

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        scope = payload.get("scope") if isinstance(payload, Mapping) else None
        return scope if isinstance(scope, str) and scope else "unknown"

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        """scope + resource type and id + the payload's event hash (the same in every
        resend of one event). A payload without a hash is keyed by its whole content."""
        data = _data(payload)
        resource = f"{data.get('type', '')}:{data.get('id', '')}"
        given = payload.get("hash") if isinstance(payload, Mapping) else None
        if isinstance(given, str) and given.strip():
            marker = given.strip()
        else:
            canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
            marker = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return f"{topic}|{resource}|{marker}"

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        """Read the resource the delivery names as it is now. A resource that no longer
        exists yields no records (an old delivery processed late does nothing)."""
        body = payloads.obj(payload, "payload")
        self._check_producer(store, body)
        data = payloads.obj(body.get("data"), "data")
        if topic in ORDER_TOPICS:
            return self._order_event(store, payloads.ident(data.get("id"), "data.id"))
        if topic in CUSTOMER_TOPICS:
            return self._customer_event(store, payloads.ident(data.get("id"), "data.id"))
        if topic in PRODUCT_TOPICS:
            return self._product_event(store, payloads.ident(data.get("id"), "data.id"))
        if topic in SKU_TOPICS:
            sku = payloads.obj(data.get("sku"), "data.sku")
            return self._product_event(
                store, payloads.ident(sku.get("product_id"), "data.sku.product_id")
            )
        if topic == TEST_TOPIC:
            with self.client(store=store) as client:
                api.ping(client)
            return Event()
        # Deletions, carts, app uninstalls…: nothing Circolo keeps. Acknowledged and logged.
        return Event(ignored=True)

    def _check_producer(self, store: Store, body: Mapping[str, Any]) -> None:
        # One app's client secret signs the deliveries of every store that installed it:
        # the producer proves the delivery is about this store.
        expected = _store_hash(store)
        producer = payloads.text(body.get("producer"), "producer")
        if expected and producer and producer != f"stores/{expected}":
            raise PayloadError(
                "producer", f"the delivery is from {producer}, this store is stores/{expected}"
            )

    def _order_event(self, store: Store, order_id: str) -> Event:
        with self.client(store=store) as client:
            bundle = api.order_bundle(client, order_id)
        if bundle is None or payloads.is_incomplete(bundle.order):
            # Gone, or an abandoned checkout BigCommerce keeps as an "Incomplete" order.
            return Event()
        return Event(records=(self._order(store, bundle),))

    def _customer_event(self, store: Store, customer_id: str) -> Event:
        with self.client(store=store) as client:
            row = api.customer(client, customer_id)
        return Event(records=(payloads.customer_record(row),) if row is not None else ())

    def _product_event(self, store: Store, product_id: str) -> Event:
        with self.client(store=store) as client:
            row = api.product(client, product_id)
        if row is None:
            return Event()
        return Event(records=(self._product(store, row),))

    def _order(self, store: Store, bundle: api.OrderBundle) -> Record:
        return payloads.order_record(
            order=bundle.order,
            products=bundle.products,
            coupons=bundle.coupons,
            shipping_addresses=bundle.shipping_addresses,
            refunds=bundle.refunds,
            store_currency=store.currency,
        )

    def _product(self, store: Store, row: Any) -> Record:
        storefront = str(_credentials(store).get("storefront_url") or "").strip()
        return payloads.product_record(row, currency=store.currency, storefront_url=storefront)

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        """A signed store/information/updated delivery, as BigCommerce sends it."""
        payload: dict[str, Any] = {
            "scope": TEST_TOPIC,
            "store_id": "0",
            "data": {"type": "store"},
            "created_at": int(timezone.now().timestamp()),
            "producer": f"stores/{_store_hash(store)}",
        }
        payload["hash"] = body_hash(payload)
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        try:
            secret = store.webhook_secret
        except SealError as error:
            raise SignatureError("the store's webhook secret cannot be decrypted") from error
        headers = signed_headers(
            secret,
            msg_id=f"msg_{secrets.token_hex(12)}",
            timestamp=int(timezone.now().timestamp()),
            body=body,
        )
        headers["content-type"] = "application/json"
        credentials = _credentials(store)
        name = str(credentials.get("hook_header_name") or "").strip()
        if name and credentials.get("hook_header_value"):
            headers[name.lower()] = str(credentials["hook_header_value"])
        return headers, body

    # ---- API
    def client(self, *, store: Store) -> ApiClient:
        return api.make_client(
            api_url=store.api_url,
            access_token=str(_credentials(store).get("access_token") or ""),
            sleep=self.sleep,
            transport=self.transport,
        )

    def fetch_page(
        self, *, store: Store, resource: str, cursor: str, since: dt.datetime | None
    ) -> Page:
        """One page of customers, products or orders (with their refunds), oldest id first.
        The cursor is the page number; records that do not validate are logged and skipped
        so one bad record cannot stop a backfill."""
        page = int(cursor) if cursor.isdigit() and int(cursor) > 0 else 1
        limit = self.page_size
        with self.client(store=store) as client:
            if resource == "customers":
                rows, more = api.customers_page(client, page=page, since=since, limit=limit)
                records = self._records(store, resource, rows, payloads.customer_record)
            elif resource == "products":
                rows, more = api.products_page(client, page=page, since=since, limit=limit)
                records = self._records(store, resource, rows, partial(self._product, store))
            elif resource == "orders":
                bundles, more = api.orders_page(client, page=page, since=since, limit=limit)
                records = self._records(store, resource, bundles, partial(self._order, store))
            else:
                raise ConnectorError(f"unknown resource {resource!r}")
        return Page(records=tuple(records), next_cursor=str(page + 1) if more else None)

    @staticmethod
    def _records(
        store: Store, resource: str, items: Iterable[Any], build: Callable[[Any], Record]
    ) -> list[Record]:
        records = []
        for item in items:
            try:
                records.append(build(item))
            except PayloadError as error:
                logger.warning("store %s: skipped a %s record: %s", store.pk, resource, error)
        return records

    def setup_guide(self) -> SetupGuide:
        return setup_guide()

    # ---- discounts
    def create_discount(self, *, store: Store, spec: DiscountSpec) -> CreatedDiscount:
        """One coupon (see discounts.py)."""
        return discounts.create(open_client=lambda: self.client(store=store), spec=spec)


register(BigCommerceConnector())
