"""How WooCommerce signs webhook deliveries, the headers that travel with them, and the
unsigned ping it sends when a webhook is saved.

Every delivery is an HTTP POST of the REST API resource as JSON with these headers ("Webhooks",
https://developer.woocommerce.com/docs/apis/rest-api/v3/webhooks/ > Delivery/payload, and
WC_Webhook::deliver() in plugins/woocommerce/includes/class-wc-webhook.php):

- X-WC-Webhook-Source: the site's home URL, e.g. "https://shop.example/";
- X-WC-Webhook-Topic ("order.updated"), X-WC-Webhook-Resource ("order"), X-WC-Webhook-Event
  ("updated");
- X-WC-Webhook-Signature: base64 of the HMAC-SHA256 of the raw body, keyed by the webhook's
  secret (WC_Webhook::generate_signature);
- X-WC-Webhook-ID: the webhook's id;
- X-WC-Webhook-Delivery-ID: a hash of the webhook id and the current time, new on every attempt,
  so it cannot tell two copies of one event apart (the connector deduplicates on the resource's
  own id, modification time and status instead).

WooCommerce signs no timestamp. A "stale" signature is one made with a secret the store no
longer uses: it does not verify against the current secret and is refused like any other.

WooCommerce POSTs a ping (WC_Webhook::deliver_ping) when a webhook is created or activated,
when its delivery URL changes, and on every save of the webhook while no ping has been answered
with exactly HTTP 200 yet (WC_Webhook_Data_Store::update; each delivery saves the webhook, so an
unanswered ping follows every delivery). It carries the form body "webhook_id=<id>", a
User-Agent, and no signature, topic or delivery id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

from circolo.commerce.connectors.base import SignatureError

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
RESOURCE_HEADER = "x-wc-webhook-resource"
EVENT_HEADER = "x-wc-webhook-event"
SOURCE_HEADER = "x-wc-webhook-source"
WEBHOOK_ID_HEADER = "x-wc-webhook-id"
DELIVERY_ID_HEADER = "x-wc-webhook-delivery-id"

# An HMAC-SHA256 digest is 32 bytes: 44 characters of base64.
DIGEST_BYTES = 32
# The ping's whole body; webhook ids are database ids, a few digits long.
PING_BODY = re.compile(rb"\Awebhook_id=([0-9]{1,20})\Z")


def signature(secret: str, body: bytes) -> str:
    """The X-WC-Webhook-Signature value WooCommerce sends with `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_check(*, secret: str, header: str | None, body: bytes) -> None:
    """Raise SignatureError unless `header` is the base64 HMAC-SHA256 of `body` under `secret`.

    Anything that is not exactly 32 bytes of strict base64 is refused before comparing; the
    digests are compared in constant time.
    """
    if not secret:
        raise SignatureError("the store has no webhook secret")
    given = (header or "").strip()
    if not given:
        raise SignatureError("X-WC-Webhook-Signature is missing")
    try:
        decoded = base64.b64decode(given.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError("X-WC-Webhook-Signature is not base64") from None
    if len(decoded) != DIGEST_BYTES:
        raise SignatureError("X-WC-Webhook-Signature has the wrong length")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(decoded, expected):
        raise SignatureError("X-WC-Webhook-Signature does not match the body")


def ping_webhook_id(*, headers: Mapping[str, str], body: bytes) -> str | None:
    """The webhook id of a WooCommerce ping, or None when this is not one.

    A ping carries no signature and no topic; anything signed, or with any other body, is an
    ordinary delivery and goes through verification.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get(SIGNATURE_HEADER) or lowered.get(TOPIC_HEADER):
        return None
    match = PING_BODY.match(body.strip())
    return match.group(1).decode("ascii") if match else None
