"""Normal forms of what we store about people, so that one person's data matches itself.

Every identity is stored normalised: emails trimmed and lower case, phones in E.164, social
handles without the leading "@" and lower case, ids trimmed. Member fields and tags are cleaned
here too. Bad values raise an InputError subclass whose message names the rule in the user's
language and whose `field` names the input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

# Identity.value's column width.
VALUE_MAX_LENGTH = 320
# Characters read as word breaks in names ("Jean-Luc" is "Jean Luc").
_NAME_BREAKS = frozenset("-_./,;")


TAG_MAX_LENGTH = 64
DISPLAY_NAME_MAX_LENGTH = 200
CITY_MAX_LENGTH = 120
LANGUAGES_MAX = 20
# "en", "it", "zh-hans", "pt-br": a BCP 47-like tag, lower case.
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class InputError(ValueError):
    """Bad input about a person: `field` names the input, `message` says why (translated)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class IdentityError(InputError):
    """A value that cannot be an identity. `index` is its position in a list, when known."""

    def __init__(self, field: str, message: str, index: int | None = None) -> None:
        super().__init__(field, message)
        self.index = index


class MemberError(InputError):
    """A member field or tag that cannot be stored."""


def normalise_email(raw: str) -> str:
    """Trimmed, lower-case email address; IdentityError when it is not a valid address."""
    value = raw.strip().lower()
    if not value:
        raise IdentityError("email", _("Enter an email address."))
    if len(value) > VALUE_MAX_LENGTH:
        raise IdentityError(
            "email",
            _("An email address has at most %(limit)d characters.") % {"limit": VALUE_MAX_LENGTH},
        )
    try:
        validate_email(value)
    except ValidationError:
        raise IdentityError(
            "email", _("“%(value)s” is not a valid email address.") % {"value": value}
        ) from None
    return value


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The phone number in E.164 ("+393331234567").

    Without `default_region` (an ISO country code such as "IT") the number must start with
    "+" and its country code; IdentityError when it cannot be a real number.
    """
    value = raw.strip()
    if not value:
        raise IdentityError("phone", _("Enter a phone number."))
    region = default_region.strip().upper() if default_region else None
    if region is None and not value.startswith("+"):
        raise IdentityError(
            "phone",
            _("Write the phone number with its country code, starting with + (e.g. +39 …)."),
        )
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise IdentityError(
            "phone", _("“%(value)s” is not a phone number.") % {"value": value}
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise IdentityError(
            "phone", _("“%(value)s” is not a valid phone number.") % {"value": value}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_handle(raw: str, field: str = "handle") -> str:
    """A social handle without the leading "@", lower case, without spaces."""
    value = raw.strip().lstrip("@").strip().lower()
    if not value:
        raise IdentityError(field, _("Enter a handle."))
    if any(char.isspace() for char in value):
        raise IdentityError(field, _("A handle cannot contain spaces."))
    return _bounded(value, field)


def normalise_id(raw: str, field: str = "customer_id") -> str:
    """An id from another system, trimmed (its case is kept: ids may be case-sensitive)."""
    value = raw.strip()
    if not value:
        raise IdentityError(field, _("Enter an id."))
    return _bounded(value, field)


def normalise_identity(kind: str, value: str, default_region: str | None = None) -> str:
    """The normal form of `value` for an identity of `kind` (an IdentityKind value)."""
    if not isinstance(value, str):
        raise IdentityError("value", _("The identity value must be text."))
    if kind == "email":
        return normalise_email(value)
    if kind == "phone":
        return normalise_phone(value, default_region)
    if kind in ("social", "handle"):
        return normalise_handle(value, kind)
    if kind in ("customer_id", "external_id"):
        return normalise_id(value, kind)
    raise IdentityError("kind", _("“%(kind)s” is not a kind of identity.") % {"kind": kind})


def name_key(name: str) -> str:
    """A name folded for matching: no case, accents or punctuation, single spaces.

    "  José   GARCÍA-Núñez " and "jose garcia nunez" have the same key.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    chars: list[str] = []
    for char in decomposed:
        if unicodedata.category(char).startswith("M"):
            continue
        if char.isalnum():
            chars.append(char)
        elif char.isspace() or char in _NAME_BREAKS:
            chars.append(" ")
    return " ".join("".join(chars).casefold().split())[:200]


def normalise_tag(raw: str) -> str:
    """A tag trimmed, with single spaces, lower case, at most 64 characters."""
    tag = " ".join(raw.split()).lower()
    if not tag:
        raise MemberError("tag", _("Enter a tag."))
    if len(tag) > TAG_MAX_LENGTH:
        raise MemberError(
            "tag", _("A tag has at most %(limit)d characters.") % {"limit": TAG_MAX_LENGTH}
        )
    return tag


def clean_text(raw: object, field: str, limit: int) -> str:
    """Free text (a name, a city) with single spaces and at most `limit` characters."""
    if not isinstance(raw, str):
        raise MemberError(field, _("Enter text."))
    text = " ".join(raw.split())
    if len(text) > limit:
        raise MemberError(field, _("At most %(limit)d characters.") % {"limit": limit})
    return text


def clean_country(raw: object) -> str:
    """An ISO 3166 two-letter country code in upper case, or "" for none."""
    if not isinstance(raw, str):
        raise MemberError("country", _("Enter a two-letter country code."))
    country = raw.strip().upper()
    if country and not _COUNTRY_RE.match(country):
        raise MemberError(
            "country",
            _("“%(value)s” is not a two-letter country code such as IT.") % {"value": raw},
        )
    return country


def clean_languages(raw: Iterable[object]) -> list[str]:
    """Language codes ("en", "zh-hans") in lower case, without repeats, in the given order."""
    if isinstance(raw, str | bytes):
        raise MemberError("languages", _("Give a list of language codes."))
    languages: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise MemberError("languages", _("Give a list of language codes."))
        code = item.strip().lower().replace("_", "-")
        if not _LANGUAGE_RE.match(code):
            raise MemberError(
                "languages",
                _("“%(value)s” is not a language code such as en or zh-hans.") % {"value": item},
            )
        if code not in languages:
            languages.append(code)
    if len(languages) > LANGUAGES_MAX:
        raise MemberError("languages", _("At most %(limit)d languages.") % {"limit": LANGUAGES_MAX})
    return languages


def _bounded(value: str, field: str) -> str:
    if len(value) > VALUE_MAX_LENGTH:
        raise IdentityError(field, _("At most %(limit)d characters.") % {"limit": VALUE_MAX_LENGTH})
    return value
