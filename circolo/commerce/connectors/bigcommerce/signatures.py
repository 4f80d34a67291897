"""How BigCommerce authenticates webhook deliveries.

BigCommerce documents two mechanisms, and Circolo checks both:

* **The signature.** HTTPS webhooks are signed as the Standard Webhooks specification says
  ("HTTPS Webhooks Overview" > Security > Webhook signature, in BigCommerce's developer
  documentation: docs/integrations/webhooks/https-webhook-overview.mdx of
  https://github.com/bigcommerce/docs; the scheme: https://www.standardwebhooks.com).
  Every delivery carries three headers: ``webhook-id`` (the message id),
  ``webhook-timestamp`` (Unix seconds, when it was sent) and ``webhook-signature``:
  space-separated ``v1,<base64>`` entries, each the HMAC-SHA256 of
  ``<webhook-id>.<webhook-timestamp>.<raw body>``. The key is the API account's client
  secret: BigCommerce's own examples pass base64(client secret) to the Standard Webhooks
  library, which base64-decodes its secret, so the HMAC key is the client secret's bytes.
  The timestamp is signed, so a delivery older (or newer) than
  settings.CIRCOLO_WEBHOOK_TOLERANCE_SECONDS is refused: a captured delivery cannot be
  replayed later. A retry is signed afresh with a new timestamp over the same body.
* **Custom headers.** A webhook may be created with a ``headers`` object; BigCommerce sends
  those headers with every delivery ("Webhooks Overview" > Security,
  https://developer.bigcommerce.com/docs/integrations/webhooks#security). When the store's
  settings name such a header, its value must match too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping

from circolo.commerce.connectors.base import SignatureError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# The only signature version the specification defines (v1a is asymmetric, not used here).
VERSION = "v1"
# An HMAC-SHA256 digest is 32 bytes.
DIGEST_BYTES = 32
# Longer values are not a webhook id / Unix time a sender could mean; refuse before hashing.
MAX_ID_LENGTH = 256
MAX_TIMESTAMP_DIGITS = 12


def _digest(secret: str, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()


def signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value BigCommerce sends with `body` when signing with `secret`."""
    digest = _digest(secret, msg_id, str(timestamp), body)
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, msg_id=msg_id, timestamp=timestamp, body=body),
    }


def signature_check(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime,
    tolerance_seconds: int,
) -> None:
    """Raise SignatureError unless one v1 entry of webhook-signature is the HMAC of the
    message id, timestamp and body under `secret`, and the timestamp is within the tolerance
    of `now`. `headers` have lower-case names. Digests are compared in constant time."""
    if not secret:
        raise SignatureError("the store has no client secret to check signatures with")
    msg_id = (headers.get(ID_HEADER) or "").strip()
    stamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    given = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not msg_id:
        raise SignatureError("webhook-id is missing")
    if len(msg_id) > MAX_ID_LENGTH:
        raise SignatureError("webhook-id is too long")
    if not stamp:
        raise SignatureError("webhook-timestamp is missing")
    if not given:
        raise SignatureError("webhook-signature is missing")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > MAX_TIMESTAMP_DIGITS:
        raise SignatureError("webhook-timestamp is not a Unix time")
    age = now.timestamp() - int(stamp)
    if age > tolerance_seconds:
        raise SignatureError(f"webhook-timestamp is {age:.0f} s old, over the tolerance")
    if -age > tolerance_seconds:
        raise SignatureError("webhook-timestamp is in the future, over the tolerance")
    expected = _digest(secret, msg_id, stamp, body)
    for entry in given.split():
        version, _sep, value = entry.partition(",")
        if version != VERSION:
            continue
        try:
            decoded = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            continue
        if len(decoded) == DIGEST_BYTES and hmac.compare_digest(decoded, expected):
            return
    raise SignatureError("no webhook-signature entry matches the body")


def custom_header_check(*, headers: Mapping[str, str], name: str, value: str) -> None:
    """Raise SignatureError unless header `name` carries `value` (constant-time compare)."""
    given = headers.get(name.strip().lower())
    if given is None:
        raise SignatureError(f"the custom header {name} is missing")
    if not hmac.compare_digest(given.encode("utf-8"), value.encode("utf-8")):
        raise SignatureError(f"the custom header {name} has the wrong value")
