"""How Saleor signs webhook deliveries, and the headers that travel with them.

"Payload Signature" (https://docs.saleor.io/developer/extending/webhooks/payload-signature):
Saleor-Signature is a JWS made with RS256 over the raw body with the payload detached
("<protected header>..<signature>", RFC 7797 with "b64": false and "crit": ["b64"]); the
public keys are served as a JWKS at <Saleor origin>/.well-known/jwks.json and the protected
header names the key by its "kid". A webhook created with a secretKey (deprecated since Saleor
3.5) is signed instead with the hex HMAC-SHA256 of the body under that key. The other headers
(Saleor-Event, Saleor-Domain, Saleor-Api-Url, and their deprecated X-Saleor- twins) are listed
in "Asynchronous Events" (https://docs.saleor.io/developer/extending/webhooks/asynchronous-events).

Saleor signs no time, so freshness cannot be checked from the signature: a signature is
"stale" when the key that made it is no longer in the shop's JWKS. Keys are fetched only from
the store's own API address (never from a header), cached, and refreshed when a delivery names
an unknown key, at most once per REFRESH_WINDOW_SECONDS so a flood of made-up key ids cannot
make us hammer the shop. Replays of a genuine delivery are harmless: deliveries are
deduplicated and every write is idempotent.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from django.core.cache import cache
from jwt.algorithms import RSAAlgorithm

from circolo.commerce.connectors.base import SignatureError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "saleor-signature"
EVENT_HEADER = "saleor-event"
DOMAIN_HEADER = "saleor-domain"
API_URL_HEADER = "saleor-api-url"
LEGACY_SIGNATURE_HEADER = "x-saleor-signature"
LEGACY_EVENT_HEADER = "x-saleor-event"
LEGACY_DOMAIN_HEADER = "x-saleor-domain"

ALGORITHM = "RS256"
JWKS_PATH = "/.well-known/jwks.json"
# Keys younger than this are used without asking the shop again.
JWKS_FRESH_SECONDS = 15 * 60
# How long a fetched key set is kept at all (used when the shop cannot be reached).
JWKS_KEEP_SECONDS = 24 * 3600
# At most one fetch of a shop's keys per window, whatever the deliveries claim.
REFRESH_WINDOW_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 5.0
# Bounds on what we read: a JWS header of Saleor's is ~150 bytes, its key set one key or two.
SIGNATURE_MAX_LENGTH = 4096
KID_MAX_LENGTH = 200
JWKS_MAX_KEYS = 20
HMAC_HEX_LENGTH = 64
JWK_PUBLIC_MEMBERS = ("kty", "kid", "n", "e", "alg", "use")


# --------------------------------------------------------------------------- addresses


def normalise_api_url(value: str) -> str:
    """An API address compared as Saleor sends it: lower-case scheme and host, a path that
    ends in a slash ("https://shop.example/graphql/")."""
    parts = urlsplit(value.strip())
    path = parts.path if parts.path.endswith("/") else f"{parts.path}/"
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def shop_domain(api_url: str, external_id: str = "") -> str:
    """The Saleor-Domain this store's deliveries carry: the store's shop id when given, else
    the host (and port) of its API address, which is what Saleor derives both from."""
    if external_id.strip():
        return external_id.strip().lower().removeprefix("https://").removeprefix("http://")
    return urlsplit(api_url.strip()).netloc.lower()


def jwks_url(api_url: str) -> str:
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SignatureError("the store has no valid API address to fetch the shop's keys from")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{JWKS_PATH}"


def origin_check(*, api_url: str, external_id: str, headers: Mapping[str, str]) -> None:
    """Raise SignatureError unless the delivery says it comes from this store's shop.

    The headers are not signed: this catches another shop's deliveries posted to this
    store's address. Authentication is the signature, checked against this store's keys.
    """
    given_api = headers.get(API_URL_HEADER)
    given_domain = headers.get(DOMAIN_HEADER) or headers.get(LEGACY_DOMAIN_HEADER)
    if not given_api and not given_domain:
        raise SignatureError("Saleor-Domain and Saleor-Api-Url are missing")
    if given_api and normalise_api_url(given_api) != normalise_api_url(api_url):
        raise SignatureError(f"Saleor-Api-Url “{given_api[:200]}” is not this store's API")
    expected_domain = shop_domain(api_url, external_id)
    if given_domain and given_domain.strip().lower() != expected_domain:
        raise SignatureError(f"Saleor-Domain “{given_domain[:200]}” is not this store's shop")


# --------------------------------------------------------------------------- HMAC (legacy)


def hmac_signature(secret: str, body: bytes) -> str:
    """The Saleor-Signature of a webhook that has a secretKey: hex HMAC-SHA256 of the body."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def hmac_check(*, secret: str, header: str | None, body: bytes) -> None:
    given = (header or "").strip().lower()
    if not given:
        raise SignatureError("Saleor-Signature is missing")
    if len(given) != HMAC_HEX_LENGTH:
        raise SignatureError("Saleor-Signature is not a hex HMAC-SHA256")
    expected = hmac_signature(secret, body)
    if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
        raise SignatureError("Saleor-Signature does not match the body")


# --------------------------------------------------------------------------- JWS


def jws_check(*, api_url: str, header: str | None, body: bytes, now: dt.datetime) -> None:
    """Raise SignatureError unless `header` is a detached RS256 JWS of `body` made with a key
    the shop at `api_url` publishes now."""
    token = (header or "").strip()
    if not token:
        raise SignatureError("Saleor-Signature is missing")
    if len(token) > SIGNATURE_MAX_LENGTH:
        raise SignatureError("Saleor-Signature is too long")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or parts[1] or not parts[2]:
        raise SignatureError("Saleor-Signature is not a JWS with a detached payload")
    try:
        protected = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SignatureError("Saleor-Signature has an unreadable header") from None
    if protected.get("alg") != ALGORITHM:
        raise SignatureError(f"Saleor-Signature uses {str(protected.get('alg'))[:20]}, not RS256")
    if protected.get("b64") is not False:
        raise SignatureError("Saleor-Signature does not detach the payload (b64 is not false)")
    kid = protected.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > KID_MAX_LENGTH:
        raise SignatureError("Saleor-Signature names no key (kid)")
    jwk = signing_key(api_url=api_url, kid=kid, now=now)
    if jwk is None:
        raise SignatureError(
            f"Saleor-Signature was made with key “{kid[:60]}”, which the shop does not publish "
            "(rotated out, or forged)"
        )
    try:
        key = _public_key(json.dumps(jwk, sort_keys=True))
        jwt.api_jws.decode_complete(token, key=key, algorithms=[ALGORITHM], detached_payload=body)
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        raise SignatureError("Saleor-Signature does not match the body") from None


@functools.lru_cache(maxsize=64)
def _public_key(jwk_json: str) -> Any:
    # Parsing a JWK costs more than verifying with it; key sets change rarely.
    return RSAAlgorithm.from_jwk(jwk_json)


def _cache_key(url: str) -> str:
    return f"commerce:saleor:jwks:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def signing_key(*, api_url: str, kid: str, now: dt.datetime) -> dict[str, Any] | None:
    """The JWK with id `kid` of the shop at `api_url`, or None when the shop does not publish
    it. The cached key set is refetched when it is old or lacks `kid`, within the window."""
    url = jwks_url(api_url)
    key = _cache_key(url)
    stamp = now.timestamp()
    entry = cache.get(key)
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("keys"), dict)
        and isinstance(entry.get("fetched_at"), float | int)
    ):
        entry = None
    keys: dict[str, Any] = entry["keys"] if entry else {}
    fresh = entry is not None and stamp - float(entry["fetched_at"]) < JWKS_FRESH_SECONDS
    if kid in keys and fresh:
        return dict(keys[kid])
    window = int(stamp // REFRESH_WINDOW_SECONDS)
    if cache.add(f"{key}:refresh:{window}", 1, timeout=REFRESH_WINDOW_SECONDS * 2):
        fetched = fetch_jwks(url)
        if fetched is not None:
            keys = fetched
            cache.set(key, {"fetched_at": stamp, "keys": keys}, timeout=JWKS_KEEP_SECONDS)
        elif entry is None:
            raise SignatureError("the shop's signing keys could not be fetched")
    elif entry is None:
        raise SignatureError("the shop's signing keys are not available yet; try again")
    found = keys.get(kid)
    return dict(found) if isinstance(found, dict) else None


def fetch_jwks(url: str) -> dict[str, dict[str, Any]] | None:
    """The shop's RSA signing keys by kid, or None when they cannot be fetched or read."""
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as error:
        logger.warning("fetching %s failed: %s", url, error)
        return None
    if response.status_code != 200:
        logger.warning("fetching %s failed: HTTP %s", url, response.status_code)
        return None
    try:
        data = response.json()
    except ValueError:
        logger.warning("fetching %s: the answer is not JSON", url)
        return None
    items = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(items, list):
        logger.warning("fetching %s: the answer has no key list", url)
        return None
    keys: dict[str, dict[str, Any]] = {}
    for item in items[:JWKS_MAX_KEYS]:
        if (
            isinstance(item, dict)
            and item.get("kty") == "RSA"
            and isinstance(item.get("kid"), str)
            and item.get("use", "sig") == "sig"
        ):
            # Only the public members: a key set is never a source of private keys.
            keys[item["kid"]] = {k: item[k] for k in JWK_PUBLIC_MEMBERS if k in item}
    return keys
