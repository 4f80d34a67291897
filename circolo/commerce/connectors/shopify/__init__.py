"""The Shopify connector: signed webhooks in, the REST Admin API for backfill and repair.

signatures.py checks X-Shopify-Hmac-Sha256, payloads.py maps the REST resources onto
schema.py records, api.py pages through the Admin API, guide.py tells users how to connect.
Documentation followed: https://shopify.dev/docs/apps/build/webhooks (deliveries, headers,
duplicates), https://shopify.dev/docs/api/admin-rest (resources, pagination, rate limits) and
https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance (privacy topics).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.commerce.connectors.base import (
    Connector,
    ConnectorError,
    Event,
    Page,
    SetupGuide,
    SignatureError,
    register,
)
from circolo.commerce.connectors.http import ApiClient
from circolo.commerce.connectors.shopify import api, discounts, payloads
from circolo.commerce.connectors.shopify.guide import setup_guide
from circolo.commerce.connectors.shopify.signatures import (
    EVENT_ID_HEADER,
    HMAC_HEADER,
    SHOP_HEADER,
    TOPIC_HEADER,
    WEBHOOK_ID_HEADER,
    shop_domain,
    signature,
    signature_check,
)
from circolo.core.sealing import SealError

if TYPE_CHECKING:
    from circolo.commerce.discounts import CreatedDiscount, DiscountSpec
    from circolo.commerce.models import Store

logger = logging.getLogger(__name__)

CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})
PRODUCT_TOPICS = frozenset({"products/create", "products/update"})
ORDER_TOPICS = frozenset(
    {"orders/create", "orders/paid", "orders/updated", "orders/fulfilled", "orders/cancelled"}
)
REFUND_TOPICS = frozenset({"refunds/create"})
PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
# The harmless topic of the setup page's test delivery: acknowledged, nothing written.
TEST_TOPIC = "shop/update"


def _store_secret(store: Store) -> str:
    try:
        return store.webhook_secret
    except SealError as error:
        logger.error("store %s: the webhook secret cannot be unsealed: %s", store.pk, error)
        raise SignatureError("the store's webhook secret cannot be decrypted") from error


def _store_shop(store: Store) -> str:
    """The shop's myshopify.com domain: the store's shop id, else the API address's host."""
    if store.external_id:
        return shop_domain(store.external_id)
    return (urlsplit(store.api_url).hostname or "") if store.api_url else ""


def _shop_url(store: Store) -> str:
    if store.api_url:
        return store.api_url.rstrip("/")
    return f"https://{shop_domain(store.external_id)}" if store.external_id else ""


@dataclass
class ShopifyConnector(Connector):
    platform: ClassVar[str] = "shopify"
    label: ClassVar[str] = "Shopify"
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    # ---- webhooks
    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        """The HMAC of the body under the store's secret, and, when the store names its shop,
        the shop the delivery says it is from (one app secret can serve many shops)."""
        lowered = {key.lower(): value for key, value in headers.items()}
        signature_check(secret=_store_secret(store), header=lowered.get(HMAC_HEADER), body=body)
        if not store.external_id:
            return
        expected = shop_domain(store.external_id)
        given = shop_domain(lowered.get(SHOP_HEADER, ""))
        if given != expected:
            raise SignatureError(
                f"X-Shopify-Shop-Domain “{given or '(missing)'}” is not this store's shop"
            )
        if lowered.get(TOPIC_HEADER, "").strip().lower() in PRIVACY_TOPICS:
            # The privacy bodies name their shop too, inside the signed part.
            try:
                named = json.loads(body).get("shop_domain")
            except (ValueError, AttributeError):
                return
            if isinstance(named, str) and shop_domain(named) != expected:
                raise SignatureError(f"the body's shop_domain “{named}” is not this store's shop")

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        return str(headers.get(TOPIC_HEADER, "")).strip().lower()

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        """X-Shopify-Webhook-Id: the same on every retry of one delivery. Without it, the
        event id with the topic, else the topic, resource id and modification time."""
        webhook_id = str(headers.get(WEBHOOK_ID_HEADER, "")).strip()
        if webhook_id:
            return f"webhook:{webhook_id}"
        event_id = str(headers.get(EVENT_ID_HEADER, "")).strip()
        if event_id:
            return f"event:{event_id}:{topic}"
        data = payload if isinstance(payload, dict) else {}
        basis = json.dumps(
            [topic, data.get("id"), data.get("updated_at")], sort_keys=True, default=str
        )
        return f"body:{hashlib.sha256(basis.encode()).hexdigest()}"

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        if topic in ORDER_TOPICS:
            return Event(records=(payloads.order_in(payload, fallback_currency=store.currency),))
        if topic in REFUND_TOPICS:
            return Event(records=(payloads.refund_in(payload, currency=store.currency),))
        if topic in CUSTOMER_TOPICS:
            return Event(records=(payloads.customer_in(payload),))
        if topic in PRODUCT_TOPICS:
            record = payloads.product_in(
                payload, currency=store.currency, shop_url=_shop_url(store)
            )
            return Event(records=(record,))
        if topic == "customers/data_request":
            return Event(export_customers=(payloads.privacy_customer(payload),))
        if topic == "customers/redact":
            return Event(erase_customers=(payloads.privacy_customer(payload),))
        if topic == "shop/redact":
            return Event(shop_redact=True)
        return Event(ignored=True)

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        """A shop/update delivery carrying the shop, signed as Shopify signs it."""
        domain = _store_shop(store) or "example.myshopify.com"
        now = timezone.now()
        payload = {
            "id": 0,
            "name": store.name,
            "domain": domain,
            "myshopify_domain": domain,
            "currency": store.currency,
            "updated_at": now.isoformat(timespec="seconds"),
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": TEST_TOPIC,
            "X-Shopify-Hmac-Sha256": signature(_store_secret(store), body),
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-API-Version": api.API_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": now.isoformat(),
        }
        return headers, body

    # ---- API
    def client(self, *, store: Store) -> ApiClient:
        url = _shop_url(store)
        if not url:
            raise ConnectorError(_("api_url: give the shop's address or its myshopify.com domain."))
        try:
            token = str(store.credentials.get("access_token") or "")
        except SealError as error:
            raise ConnectorError(_("credentials: they cannot be decrypted.")) from error
        if not token:
            raise ConnectorError(_("access_token: the Admin API access token is missing."))
        return ApiClient(
            base_url=url,
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
            sleep=self.sleep,
            retry_after=api.retry_after,
        )

    def fetch_page(
        self, *, store: Store, resource: str, cursor: str, since: dt.datetime | None
    ) -> Page:
        with self.client(store=store) as client:
            return api.fetch_page(
                client=client,
                resource=resource,
                cursor=cursor,
                since=since,
                currency=store.currency,
                shop_url=_shop_url(store),
            )

    def setup_guide(self) -> SetupGuide:
        return setup_guide()

    # ---- discounts
    def create_discount(self, *, store: Store, spec: DiscountSpec) -> CreatedDiscount:
        """A price rule with one code (see discounts.py)."""
        return discounts.create(open_client=lambda: self.client(store=store), spec=spec)


shopify = register(ShopifyConnector())
