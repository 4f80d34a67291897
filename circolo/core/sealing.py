"""Encryption at rest for secrets we must read back (store credentials, webhook secrets).

Fernet (AES-128-CBC + HMAC-SHA256) keyed from CIRCOLO_SECRET_KEYS, or from SECRET_KEY when
that is unset. Several comma-separated keys allow rotation: the first seals, all unseal.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SealError(ValueError):
    """A sealed value that none of the configured keys opens (wrong or rotated-out key)."""


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.sha256(b"circolo-sealing:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@cache
def _box(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets])


def _current() -> MultiFernet:
    configured = tuple(settings.CIRCOLO_SECRET_KEYS) or (settings.SECRET_KEY,)
    return _box(configured)


def seal(text: str) -> str:
    """The encrypted form of `text` (empty stays empty, so blank fields stay blank)."""
    if not text:
        return ""
    return _current().encrypt(text.encode()).decode()


def unseal(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise SealError(
            "cannot decrypt: the key that sealed this value is not configured"
        ) from error


def seal_json(value: dict[str, Any]) -> str:
    return seal(json.dumps(value, sort_keys=True)) if value else ""


def unseal_json(token: str) -> dict[str, Any]:
    text = unseal(token)
    return dict(json.loads(text)) if text else {}
