"""Readers for the fields of a platform's JSON payload, shared by the connectors: each returns
the value in the shape the schema wants or raises PayloadError naming the field and why."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.utils.translation import gettext as _

from circolo.commerce.schema import PayloadError

ID_MAX_LENGTH = 100


def obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(field, _("Expected an object."))
    return value


def maybe_obj(value: Any, field: str) -> dict[str, Any] | None:
    return None if value is None else obj(value, field)


def as_list(value: Any, field: str) -> list[Any]:
    """A list; a missing one is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(field, _("Expected a list."))
    return value


def ident(value: Any, field: str, *, required: bool = True, zero_is_none: bool = False) -> str:
    """An id as text: JSON numbers and strings are both accepted (platforms send either).
    `zero_is_none`: 0 means "none" (WooCommerce's guest customer or missing variation)."""
    if isinstance(value, bool) or not (value is None or isinstance(value, str | int)):
        raise PayloadError(field, _("Expected an id."))
    text = "" if value is None else str(value).strip()
    if zero_is_none and (text == "0" or (isinstance(value, int) and value < 0)):
        text = ""
    if not text:
        if required:
            raise PayloadError(field, _("The id is missing."))
        return ""
    if len(text) > ID_MAX_LENGTH:
        raise PayloadError(field, _("The id is too long."))
    return text


def text(value: Any, field: str) -> str:
    """Text, stripped; numbers become their text, a missing value is ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise PayloadError(field, _("Expected text."))


def referring_code(landing_site: str) -> str:
    """The `ref` parameter of the landing page, as referral links carry it."""
    try:
        values = parse_qs(urlsplit(landing_site).query).get("ref") or []
    except ValueError:
        return ""
    return values[0].strip()[:100] if values else ""
