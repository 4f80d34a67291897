"""Workspace API keys: create, revoke, authenticate.

A key reads "ck_<prefix>_<secret>". The prefix (8 characters, stored in clear) finds the row;
only a SHA-256 of the whole key is stored, and it is compared in constant time, so a leaked
database does not leak usable keys and a wrong secret takes as long to refuse as a right one
takes to accept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from circolo.core.audit import audit_record
from circolo.core.models import ApiKey, Workspace

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

SCOPES: dict[str, StrOrPromise] = {
    "members:read": _("Read members and their identities"),
    "members:write": _("Create and update members and add identities"),
    "activities:read": _("Read activities and the activity kinds"),
    "activities:write": _("Record activities, one at a time or in batches"),
    "community:read": _("Read the community's spaces and threads, as a member or a visitor"),
    "community:write": _("Write threads and replies as a member"),
}

KEY_PREFIX = "ck"
PREFIX_LENGTH = 8
# 32 random bytes give 43 url-safe characters: far beyond guessing range.
SECRET_BYTES = 32
# last_used_at is a hint for people managing keys, not an access log: writing it on every
# request would turn every read into a write, so it moves at most once a minute.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
NAME_MAX_LENGTH = 120

# The prefix alphabet has no "_" so that "ck_<prefix>_<secret>" splits unambiguously.
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# Compared against when no row matches, so that unknown prefixes cost the same as known ones.
_DUMMY_HASH = hashlib.sha256(b"circolo-no-such-key").hexdigest()


class ApiKeyError(ValueError):
    """Invalid input to an API key service; `errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in errors.items()))
        self.errors = errors


def key_hash(raw: str) -> str:
    """The stored form of a raw key."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _split(raw: str) -> tuple[str, str] | None:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_LENGTH or len(secret) < 32:
        return None
    return prefix, secret


def _validate(*, name: str, scopes: Sequence[str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = gettext("Give the key a name.")
    elif len(name) > NAME_MAX_LENGTH:
        errors["name"] = gettext("Use at most %(limit)d characters.") % {"limit": NAME_MAX_LENGTH}
    if not scopes:
        errors["scopes"] = gettext("Choose at least one scope.")
    else:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            errors["scopes"] = gettext("Unknown scope: %(scopes)s.") % {
                "scopes": ", ".join(unknown)
            }
    return errors


def apikey_create(
    *, workspace: Workspace, name: str, scopes: Sequence[str], created_by: Any
) -> tuple[ApiKey, str]:
    """Create a key for the workspace; returns the row and the raw key, which is shown only once.

    Raises ApiKeyError for an empty name or unknown scopes. Audited as "apikey.create".
    """
    errors = _validate(name=name, scopes=scopes)
    if errors:
        raise ApiKeyError(errors)
    ordered_scopes = [scope for scope in SCOPES if scope in set(scopes)]
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    # A prefix collision is a one-in-trillions event; retry rather than fail the request.
    for _attempt in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _i in range(PREFIX_LENGTH))
        raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    workspace=workspace,
                    name=name.strip(),
                    prefix=prefix,
                    key_hash=key_hash(raw),
                    scopes=ordered_scopes,
                    created_by=user,
                )
                audit_record(
                    workspace=workspace,
                    actor=created_by,
                    action="apikey.create",
                    target=api_key,
                    data={"name": api_key.name, "prefix": prefix, "scopes": ordered_scopes},
                )
        except IntegrityError:
            continue
        return api_key, raw
    raise RuntimeError("could not find a free API key prefix")


def apikey_revoke(*, api_key: ApiKey, actor: Any) -> None:
    """Revoke the key at once (it fails authentication from now on); revoking twice is a no-op.

    Audited as "apikey.revoke".
    """
    with transaction.atomic():
        now = timezone.now()
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if not updated:
            return
        api_key.revoked_at = now
        audit_record(
            workspace=api_key.workspace,
            actor=actor,
            action="apikey.revoke",
            target=api_key,
            data={"name": api_key.name, "prefix": api_key.prefix},
        )


def apikey_authenticate(raw: str) -> ApiKey | None:
    """The live key matching `raw` (workspace preloaded), or None for malformed, unknown or
    revoked keys. Marks the key as used, at most once per LAST_USED_RESOLUTION."""
    parts = _split(raw.strip())
    if parts is None:
        return None
    prefix, _secret = parts
    api_key = ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
    expected = api_key.key_hash if api_key is not None else _DUMMY_HASH
    if not hmac.compare_digest(expected, key_hash(raw.strip())) or api_key is None:
        return None
    if api_key.revoked_at is not None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional so that concurrent requests in the same minute do not all write.
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def apikey_has_scope(*, api_key: ApiKey, scope: str) -> bool:
    """Whether the key was granted `scope`."""
    return scope in (api_key.scopes or [])


def workspace_api_keys(*, workspace: Workspace, include_revoked: bool = False) -> QuerySet[ApiKey]:
    """The workspace's keys, newest first (for the settings page)."""
    keys = ApiKey.objects.filter(workspace=workspace).select_related("created_by")
    if not include_revoked:
        keys = keys.filter(revoked_at__isnull=True)
    return keys.order_by("-created_at", "-id")
