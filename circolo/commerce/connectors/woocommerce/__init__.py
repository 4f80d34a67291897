"""The WooCommerce connector: signed webhooks in, the REST API v3 for refunds, backfill and repair.

signatures.py checks X-WC-Webhook-Signature and recognises WooCommerce's unsigned ping,
payloads.py maps the REST resources onto schema.py records, api.py pages through the REST API,
guide.py tells users how to connect. Documentation followed: "Webhooks"
(https://developer.woocommerce.com/docs/apis/rest-api/v3/webhooks/), the REST API v3 reference
(https://woocommerce.github.io/woocommerce-rest-api-docs/) and, where the documentation is
silent (ping, delivery ids, which hooks fire a topic), WC_Webhook in WooCommerce's source,
plugins/woocommerce/includes/class-wc-webhook.php.

Deduplication: X-WC-Webhook-Delivery-ID is made anew for every send, and WooCommerce sends a
resource again whenever another hook fires for it, so two deliveries are the same event when
they carry the same resource, id, date_modified_gmt and status (and, for orders, the same
refunds: a partial refund fires order.updated without necessarily touching the order).

Refunds: an order body lists its refunds by id and total only. parse() reads the lines and
times of the refunds it does not have yet from GET /orders/<id>/refunds (refunds never change,
so the ones already stored are not read again); an API failure raises ConnectorError and the
delivery is retried. Refunds are facts of their own that services.order_upsert applies even
from an older copy of the order, so the final state does not depend on delivery order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

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
from circolo.commerce.connectors.woocommerce import api, discounts, payloads
from circolo.commerce.connectors.woocommerce.guide import setup_guide
from circolo.commerce.connectors.woocommerce.signatures import (
    EVENT_HEADER,
    RESOURCE_HEADER,
    SIGNATURE_HEADER,
    TOPIC_HEADER,
    ping_webhook_id,
    signature,
    signature_check,
)
from circolo.commerce.schema import OrderIn, ProductIn
from circolo.core.sealing import SealError

if TYPE_CHECKING:
    from circolo.commerce.discounts import CreatedDiscount, DiscountSpec
    from circolo.commerce.models import Store

logger = logging.getLogger(__name__)

# Resources whose created/updated topics are parsed; deletions and restores are acknowledged
# and logged (the commerce services keep history and have no deletion).
RESOURCES = frozenset({"customer", "product", "order"})
PARSED_EVENTS = frozenset({"created", "updated"})
# The harmless topic of the setup page's test delivery: a real topic the connector ignores.
TEST_TOPIC = "coupon.updated"
USER_AGENT = "WooCommerce/9.8.0 Hookshot (WordPress/6.8)"
DEDUPE_KEY_LIMIT = 300

T = TypeVar("T")


def _store_secret(store: Store) -> str:
    try:
        return store.webhook_secret
    except SealError as error:
        logger.error("store %s: the webhook secret cannot be unsealed: %s", store.pk, error)
        raise SignatureError("the store's webhook secret cannot be decrypted") from error


def _known_refunds(store: Store) -> api.KnownRefunds:
    from circolo.commerce.models import Refund

    def known(ids: Collection[str]) -> set[str]:
        return set(
            Refund.objects.filter(store=store, external_id__in=list(ids)).values_list(
                "external_id", flat=True
            )
        )

    return known


def _simple_id(value: Any) -> str:
    """An id as it may appear in a dedupe key: digits (or a short plain string), else ""."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 40 and value.isalnum():
        return value
    return ""


def _refunds_part(data: dict[str, Any]) -> str:
    refunds = data.get("refunds")
    if not isinstance(refunds, list):
        return ""
    ids = sorted(
        {_simple_id(item.get("id")) for item in refunds if isinstance(item, dict)} - {""},
        key=lambda value: (len(value), value),
    )
    return ",".join(ids)


@dataclass
class WooCommerceConnector(Connector):
    platform: ClassVar[str] = "woocommerce"
    label: ClassVar[str] = "WooCommerce"
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    # ---- webhooks
    def handshake(self, *, headers: Mapping[str, str], body: bytes) -> bool:
        """True for WooCommerce's unsigned ping ("webhook_id=<id>", see signatures.py), which
        it repeats after every delivery until one is answered 200. To be acknowledged with 200
        before verification, storing and changing nothing: it proves nothing, and counting it
        as a refused delivery would bury real forgeries."""
        return ping_webhook_id(headers=headers, body=body) is not None

    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        """The base64 HMAC-SHA256 of the raw body under the store's webhook secret. WooCommerce
        signs no time, so there is nothing to be stale but the secret itself."""
        lowered = {key.lower(): value for key, value in headers.items()}
        signature_check(
            secret=_store_secret(store), header=lowered.get(SIGNATURE_HEADER), body=body
        )

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        """X-WC-Webhook-Topic ("order.updated"); else X-WC-Webhook-Resource and -Event."""
        lowered = {key.lower(): value for key, value in headers.items()}
        named = str(lowered.get(TOPIC_HEADER, "")).strip().lower()
        if named:
            return named
        resource = str(lowered.get(RESOURCE_HEADER, "")).strip().lower()
        event = str(lowered.get(EVENT_HEADER, "")).strip().lower()
        return f"{resource}.{event}" if resource and event else ""

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        """resource:id:date_modified_gmt:status (orders add their refund ids); a deletion is
        resource:id:deleted. Bodies without a usable id are keyed by their content."""
        resource, _sep, event = topic.partition(".")
        data = payload if isinstance(payload, dict) else {}
        ident = _simple_id(data.get("id"))
        if resource and ident and resource != "action":
            if event == "deleted":
                return f"{resource}:{ident}:deleted"
            modified = data.get("date_modified_gmt") or data.get("date_modified")
            if not modified and resource == "customer":
                modified = data.get("date_created_gmt") or data.get("date_created")
            status = data.get("status")
            parts = [
                resource,
                ident,
                str(modified or "")[:40],
                str(status or "")[:40] if isinstance(status, str) else "",
            ]
            if resource == "order":
                refunds = _refunds_part(data)
                if len(refunds) > 120:
                    refunds = "h" + hashlib.sha256(refunds.encode()).hexdigest()[:32]
                parts.append(refunds)
            key = ":".join(parts)
            if len(key) <= DEDUPE_KEY_LIMIT:
                return key
        canonical = json.dumps([topic, payload], sort_keys=True, default=str)
        return f"body:{hashlib.sha256(canonical.encode()).hexdigest()}"

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        resource, _sep, event = topic.partition(".")
        if resource not in RESOURCES or event not in PARSED_EVENTS:
            return Event(ignored=True)
        if resource == "customer":
            return Event(records=(payloads.customer_in(payload),))
        if resource == "product":
            return Event(records=(self._product(store, payload),))
        return Event(records=(self._order(store, payload),))

    def _product(self, store: Store, payload: Any) -> ProductIn:
        if payloads.is_variation(payload):
            # A variation's own save: the product it belongs to, with every variation.
            parent_id = payloads.variation_parent(payload)
            return self._with_client(
                store,
                lambda client: api.product_record(
                    client, api.product(client, parent_id), currency=store.currency
                ),
            )
        if payloads.product_type(payload) in payloads.VARIABLE_TYPES:
            # Its variations are only listed by id: read them (after checking the id).
            payloads.resource_id(payload, "product")
            return self._with_client(
                store, lambda client: api.product_record(client, payload, currency=store.currency)
            )
        return payloads.product_in(payload, currency=store.currency)

    def _order(self, store: Store, payload: Any) -> OrderIn:
        ids = payloads.refund_ids(payload)
        known = _known_refunds(store)(ids) if ids else set()
        if all(ident in known for ident in ids):
            return payloads.order_in(payload, fallback_currency=store.currency)
        # Validate the order before asking the API for its refunds.
        payloads.order_in(payload, fallback_currency=store.currency)
        return self._with_client(
            store,
            lambda client: api.order_record(
                client, payload, currency=store.currency, known_refunds=lambda _ids: known
            ),
        )

    def _with_client(self, store: Store, work: Callable[[ApiClient], T]) -> T:
        client = self.client(store=store)
        try:
            return work(client)
        finally:
            client.close()

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        """A coupon.updated delivery (a topic Circolo acknowledges and ignores) carrying a
        coupon as the REST API describes it, signed as WooCommerce signs it."""
        now = timezone.now().astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
        stamp = now.isoformat()
        payload = {
            "id": 1,
            "code": "circolo-test",
            "amount": "0.00",
            "status": "publish",
            "date_created": stamp,
            "date_created_gmt": stamp,
            "date_modified": stamp,
            "date_modified_gmt": stamp,
            "discount_type": "percent",
            "description": "Circolo test delivery",
            "date_expires": None,
            "date_expires_gmt": None,
            "usage_count": 0,
            "individual_use": False,
            "product_ids": [],
            "excluded_product_ids": [],
            "usage_limit": None,
            "usage_limit_per_user": None,
            "limit_usage_to_x_items": None,
            "free_shipping": False,
            "product_categories": [],
            "excluded_product_categories": [],
            "exclude_sale_items": False,
            "minimum_amount": "0.00",
            "maximum_amount": "0.00",
            "email_restrictions": [],
            "used_by": [],
            "meta_data": [],
        }
        body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()
        source = (store.api_url or "https://example.com").rstrip("/") + "/"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": source,
            "X-WC-Webhook-Topic": TEST_TOPIC,
            "X-WC-Webhook-Resource": "coupon",
            "X-WC-Webhook-Event": "updated",
            "X-WC-Webhook-Signature": signature(_store_secret(store), body),
            "X-WC-Webhook-ID": "0",
            "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
        }
        return headers, body

    # ---- API
    def client(self, *, store: Store) -> ApiClient:
        url = store.api_url.strip()
        if not url:
            raise ConnectorError(_("api_url: give the address of the WordPress site."))
        try:
            credentials = store.credentials
        except SealError as error:
            raise ConnectorError(_("credentials: they cannot be decrypted.")) from error
        key = str(credentials.get("consumer_key") or "").strip()
        secret = str(credentials.get("consumer_secret") or "").strip()
        if not key:
            raise ConnectorError(_("consumer_key: the REST API consumer key is missing."))
        if not secret:
            raise ConnectorError(_("consumer_secret: the REST API consumer secret is missing."))
        return ApiClient(
            base_url=url,
            headers={"Accept": "application/json"},
            auth=(key, secret),
            sleep=self.sleep,
            transport=api.transport(),
        )

    def fetch_page(
        self, *, store: Store, resource: str, cursor: str, since: dt.datetime | None
    ) -> Page:
        return self._with_client(
            store,
            lambda client: api.fetch_page(
                client=client,
                resource=resource,
                cursor=cursor,
                since=since,
                currency=store.currency,
                known_refunds=_known_refunds(store),
            ),
        )

    def setup_guide(self) -> SetupGuide:
        return setup_guide()

    # ---- discounts
    def create_discount(self, *, store: Store, spec: DiscountSpec) -> CreatedDiscount:
        """One coupon (see discounts.py)."""
        return discounts.create(open_client=lambda: self.client(store=store), spec=spec)


woocommerce = register(WooCommerceConnector())
