"""How Shopify signs webhook deliveries, and the headers that travel with them.

Every HTTPS delivery carries X-Shopify-Hmac-Sha256: the base64 HMAC-SHA256 of the raw request
body, keyed by the app's client secret (or, for webhooks created under Settings >
Notifications, the signing key shown there). See "Verify webhook deliveries"
(https://shopify.dev/docs/apps/build/webhooks/verify-deliveries) and "Webhooks delivery
structure" (https://shopify.dev/docs/apps/build/webhooks/delivery-structure) for the header list:
X-Shopify-Topic, X-Shopify-Hmac-Sha256, X-Shopify-Shop-Domain, X-Shopify-API-Version,
X-Shopify-Webhook-Id, X-Shopify-Event-Id and X-Shopify-Triggered-At.

Shopify signs no timestamp, so a replayed delivery cannot be told from a fresh one by its
signature; replays are harmless because deliveries are deduplicated by X-Shopify-Webhook-Id
and every write is idempotent. After the secret is rotated, a signature made with the old
secret no longer verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from circolo.commerce.connectors.base import SignatureError

HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
SHOP_HEADER = "x-shopify-shop-domain"
API_VERSION_HEADER = "x-shopify-api-version"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
EVENT_ID_HEADER = "x-shopify-event-id"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"

# An HMAC-SHA256 digest is 32 bytes: 44 characters of base64.
DIGEST_BYTES = 32


def signature(secret: str, body: bytes) -> str:
    """The X-Shopify-Hmac-Sha256 value Shopify sends with `body` when signing with `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_check(*, secret: str, header: str | None, body: bytes) -> None:
    """Raise SignatureError unless `header` is the base64 HMAC-SHA256 of `body` under `secret`.

    The digests are compared in constant time; anything that is not exactly 32 bytes of
    strict base64 is refused before comparing.
    """
    if not secret:
        raise SignatureError("the store has no webhook secret")
    given = (header or "").strip()
    if not given:
        raise SignatureError("X-Shopify-Hmac-Sha256 is missing")
    try:
        decoded = base64.b64decode(given.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError("X-Shopify-Hmac-Sha256 is not base64") from None
    if len(decoded) != DIGEST_BYTES:
        raise SignatureError("X-Shopify-Hmac-Sha256 has the wrong length")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(decoded, expected):
        raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")


def shop_domain(value: str) -> str:
    """A shop domain in the form Shopify sends it: lower case, no scheme, no trailing slash."""
    value = value.strip().lower()
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    return value.rstrip("/")
