"""The Saleor connector: JWS-signed webhooks in, the GraphQL API for backfill and repair.

signatures.py checks Saleor-Signature against the shop's published keys, documents.py holds
the subscription queries that define what a delivery carries (and the API queries that read
the same shapes), payloads.py maps those shapes onto schema.py records, api.py pages through
the API, guide.py tells users how to connect. Documentation followed:
https://docs.saleor.io/developer/extending/webhooks/overview (subscription payloads),
https://docs.saleor.io/developer/extending/webhooks/payload-signature (signatures),
https://docs.saleor.io/developer/extending/webhooks/asynchronous-events (headers, retries)
and https://docs.saleor.io/api-usage/pagination (paging).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

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
from circolo.commerce.connectors.saleor import api, discounts, payloads
from circolo.commerce.connectors.saleor.documents import (
    CUSTOMER_EVENTS,
    ORDER_EVENTS,
    PRODUCT_EVENTS,
)
from circolo.commerce.connectors.saleor.guide import setup_guide
from circolo.commerce.connectors.saleor.signatures import (
    EVENT_HEADER,
    LEGACY_EVENT_HEADER,
    LEGACY_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    hmac_check,
    hmac_signature,
    jws_check,
    normalise_api_url,
    origin_check,
    shop_domain,
)
from circolo.commerce.schema import PayloadError
from circolo.core.sealing import SealError

if TYPE_CHECKING:
    from circolo.commerce.discounts import CreatedDiscount, DiscountSpec
    from circolo.commerce.models import Store

logger = logging.getLogger(__name__)

ORDER_TOPICS = frozenset(ORDER_EVENTS)
CUSTOMER_TOPICS = frozenset(CUSTOMER_EVENTS)
PRODUCT_TOPICS = frozenset(PRODUCT_EVENTS)
PRODUCT_DELETED = "product_deleted"
# The object each handled topic's body carries, under this key.
SUBJECTS = {
    **dict.fromkeys(ORDER_TOPICS, "order"),
    **dict.fromkeys(CUSTOMER_TOPICS, "user"),
    **dict.fromkeys(PRODUCT_TOPICS, "product"),
}
# The harmless topic of the setup page's test delivery: acknowledged, nothing written.
TEST_TOPIC = "shop_metadata_updated"
DEDUPE_KEY_MAX_LENGTH = 250


def _store_secret(store: Store) -> str:
    try:
        return store.webhook_secret
    except SealError as error:
        logger.error("store %s: the webhook secret cannot be unsealed: %s", store.pk, error)
        raise SignatureError("the store's webhook secret cannot be decrypted") from error


def _subject(topic: str, payload: Any) -> dict[str, Any]:
    """The object a delivery is about; PayloadError naming it when the body lacks it."""
    if not isinstance(payload, dict):
        raise PayloadError("body", _("Expected an object."))
    key = SUBJECTS[topic]
    value = payload.get(key)
    if isinstance(value, dict):
        return value
    errors = payload.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        message = first.get("message") if isinstance(first, dict) else first
        raise PayloadError(
            key,
            _("Saleor could not build the payload: %(message)s") % {"message": str(message)[:300]},
        )
    raise PayloadError(
        key,
        _("The delivery carries no %(key)s: check the webhook's subscription query.")
        % {"key": key},
    )


def signed_headers(*, api_url: str, external_id: str, topic: str, signature: str) -> dict[str, str]:
    """The headers Saleor sends with a delivery (the X-Saleor- ones are its deprecated twins)."""
    domain = shop_domain(api_url, external_id)
    return {
        "Content-Type": "application/json",
        "X-Saleor-Event": topic,
        "X-Saleor-Domain": domain,
        "X-Saleor-Signature": signature,
        "Saleor-Event": topic,
        "Saleor-Domain": domain,
        "Saleor-Signature": signature,
        "Saleor-Api-Url": normalise_api_url(api_url),
    }


@dataclass
class SaleorConnector(Connector):
    platform: ClassVar[str] = "saleor"
    label: ClassVar[str] = "Saleor"
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    # ---- webhooks
    def verify(
        self, *, store: Store, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> None:
        """The delivery names this store's shop, and Saleor-Signature is a JWS of the body by
        a key the shop publishes now (or, for a webhook with a secret key, its HMAC)."""
        lowered = {key.lower(): value for key, value in headers.items()}
        if not store.api_url:
            raise SignatureError("the store has no API address to check deliveries against")
        origin_check(api_url=store.api_url, external_id=store.external_id, headers=lowered)
        # The current header when present (even empty); older Saleors send only the X- one.
        name = SIGNATURE_HEADER if SIGNATURE_HEADER in lowered else LEGACY_SIGNATURE_HEADER
        header = lowered.get(name)
        secret = _store_secret(store)
        if secret:
            hmac_check(secret=secret, header=header, body=body)
        else:
            jws_check(api_url=store.api_url, header=header, body=body, now=now)

    def topic(self, *, headers: Mapping[str, str], payload: Any) -> str:
        value = headers.get(EVENT_HEADER) or headers.get(LEGACY_EVENT_HEADER) or ""
        return str(value).strip().lower()

    def dedupe_key(self, *, headers: Mapping[str, str], payload: Any, topic: str) -> str:
        """The event, the object's id and its updatedAt: Saleor sends retries of a delivery
        with the same body and has no delivery id header. Other bodies: a hash of them."""
        subject = (
            payload.get(SUBJECTS[topic])
            if topic in SUBJECTS and isinstance(payload, dict)
            else None
        )
        if isinstance(subject, dict):
            ident, updated = subject.get("id"), subject.get("updatedAt")
            if isinstance(ident, str) and isinstance(updated, str) and ident and updated:
                key = f"{topic}:{ident}:{updated}"
                if len(key) <= DEDUPE_KEY_MAX_LENGTH:
                    return key
        basis = json.dumps([topic, payload], sort_keys=True, default=str)
        return f"body:{hashlib.sha256(basis.encode()).hexdigest()}"

    def parse(self, *, store: Store, topic: str, payload: Any, headers: Mapping[str, str]) -> Event:
        if topic in ORDER_TOPICS:
            return Event(records=(payloads.order_in(_subject(topic, payload)),))
        if topic in CUSTOMER_TOPICS:
            return Event(records=(payloads.customer_in(_subject(topic, payload)),))
        if topic in PRODUCT_TOPICS:
            product = _subject(topic, payload)
            deleted_at = None
            if topic == PRODUCT_DELETED:
                deleted_at = payloads.event_time(payload) or payloads.event_time(
                    product, field="product.updatedAt", key="updatedAt"
                )
                if deleted_at is None:
                    raise PayloadError("issuedAt", _("The time is missing."))
            record = payloads.product_in(product, currency=store.currency, deleted_at=deleted_at)
            return Event(records=(record,))
        # Checkouts, drafts, variants and every other event: not Circolo's to store.
        return Event(ignored=True)

    def test_delivery(self, *, store: Store) -> tuple[dict[str, str], bytes]:
        """A shop_metadata_updated delivery, signed as Saleor signs for a webhook with a secret
        key. Deliveries signed with the shop's private key can only come from the shop."""
        secret = _store_secret(store)
        if not secret:
            raise ConnectorError(
                _(
                    "Saleor signs deliveries with your shop's private key, so only Saleor can "
                    "send one: save a product in the Saleor Dashboard to send a real delivery."
                )
            )
        if not store.api_url:
            raise ConnectorError(_("api_url: give the address of the shop's GraphQL API."))
        domain = shop_domain(store.api_url, store.external_id)
        payload = {
            "issuedAt": timezone.now().isoformat(),
            "shop": {"domain": {"host": domain, "url": normalise_api_url(store.api_url)}},
        }
        body = json.dumps(payload).encode()
        headers = signed_headers(
            api_url=store.api_url,
            external_id=store.external_id,
            topic=TEST_TOPIC,
            signature=hmac_signature(secret, body),
        )
        return headers, body

    # ---- API
    def client(self, *, store: Store) -> ApiClient:
        if not store.api_url:
            raise ConnectorError(_("api_url: give the address of the shop's GraphQL API."))
        try:
            token = str(store.credentials.get("token") or "")
        except SealError as error:
            raise ConnectorError(_("credentials: they cannot be decrypted.")) from error
        if not token:
            raise ConnectorError(_("token: the Saleor app token is missing."))
        return ApiClient(
            base_url=normalise_api_url(store.api_url),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            sleep=self.sleep,
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
            )

    def setup_guide(self) -> SetupGuide:
        return setup_guide()

    # ---- discounts
    def create_discount(self, *, store: Store, spec: DiscountSpec) -> CreatedDiscount:
        """A voucher with one code, listed in the shop's channels (see discounts.py)."""
        return discounts.create(open_client=lambda: self.client(store=store), spec=spec)


saleor = register(SaleorConnector())
