"""Forms of the member pages: list filters (lenient: bad values fall back to defaults) and tags."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from circolo.activity.scores import LEVELS, level_label
from circolo.core.currencies import exponent

SORT_FIELDS: dict[str, Any] = {
    "name": _("Name"),
    "love": _("Love"),
    "last_active": _("Last active"),
    "first_seen": _("First seen"),
}
# Keys accepted by people.selectors.member_list, "-" for descending.
SORT_KEYS = frozenset([*SORT_FIELDS, *(f"-{key}" for key in SORT_FIELDS)])
DEFAULT_SORT = "-love"
# The direction a column sorts in on its first click: biggest/newest first except for names.
FIRST_CLICK = {
    "name": "name",
    "love": "-love",
    "last_active": "-last_active",
    "first_seen": "-first_seen",
}

ACTIVE_NEVER = "never"
ACTIVE_CHOICES = [
    ("", _("Any time")),
    ("7", _("Last 7 days")),
    ("30", _("Last 30 days")),
    ("90", _("Last 90 days")),
    (ACTIVE_NEVER, _("Never active")),
]


# Dates outside these years cannot be real orders, and would overflow time zone arithmetic.
DATE_YEARS = range(1900, 9000)
SPEND_MAX_DIGITS = 15
ORDERS_MAX = 1_000_000


def to_minor_units(amount: Decimal, currency: str, *, round_up: bool) -> int:
    """An amount in major units as minor units of `currency`, rounded towards the inside of
    the range it bounds (up for a minimum, down for a maximum)."""
    scaled = amount.scaleb(exponent(currency))
    return int(math.ceil(scaled) if round_up else math.floor(scaled))


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the active time zone (the workspace's on workspace pages)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@dataclass(frozen=True)
class MemberFilters:
    """The cleaned filters of the member list; the same object drives the page and the export."""

    q: str = ""
    tag: str = ""
    level: str = ""
    active: str = ""
    pending: bool = False
    sort: str = DEFAULT_SORT
    # Purchases: net spend in the workspace currency (major units), orders, product, dates.
    min_spend: Decimal | None = None
    max_spend: Decimal | None = None
    min_orders: int | None = None
    product: str = ""
    last_order_after: dt.date | None = None
    last_order_before: dt.date | None = None

    @property
    def active_within_days(self) -> int | None:
        return int(self.active) if self.active.isdigit() else None

    @property
    def never_active(self) -> bool:
        return self.active == ACTIVE_NEVER

    @property
    def by_purchases(self) -> bool:
        return any(
            value not in (None, "")
            for value in (
                self.min_spend,
                self.max_spend,
                self.min_orders,
                self.product,
                self.last_order_after,
                self.last_order_before,
            )
        )

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.q or self.tag or self.level or self.active or self.pending or self.by_purchases
        )

    def purchase_bounds(self, currency: str) -> dict[str, Any]:
        """Keyword arguments of people.selectors.members_by_purchases for these filters."""
        return {
            "currency": currency,
            "min_spend_minor": to_minor_units(self.min_spend, currency, round_up=True)
            if self.min_spend is not None
            else None,
            "max_spend_minor": to_minor_units(self.max_spend, currency, round_up=False)
            if self.max_spend is not None
            else None,
            "min_orders": self.min_orders,
            "product": self.product,
            "last_order_after": _day_start(self.last_order_after)
            if self.last_order_after is not None
            else None,
            # Inclusive of the day given: before the start of the next one.
            "last_order_before": _day_start(self.last_order_before + dt.timedelta(days=1))
            if self.last_order_before is not None
            else None,
        }

    def as_query(self, **changes: Any) -> str:
        """The query string for these filters with some values changed (defaults left out)."""
        values = {
            "q": self.q,
            "tag": self.tag,
            "level": self.level,
            "active": self.active,
            "pending": "1" if self.pending else "",
            "sort": "" if self.sort == DEFAULT_SORT else self.sort,
            "min_spend": _text(self.min_spend),
            "max_spend": _text(self.max_spend),
            "min_orders": _text(self.min_orders),
            "product": self.product,
            "last_order_after": _text(self.last_order_after),
            "last_order_before": _text(self.last_order_before),
        }
        values.update({key: str(value) for key, value in changes.items()})
        query = QueryDict(mutable=True)
        for key, value in values.items():
            if value:
                query[key] = value
        return query.urlencode()


def _text(value: Decimal | int | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Plain notation ("1000", not "1E+3"), so the address reads like what was typed.
        return format(value, "f")
    return str(value)


class MemberFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": _("Name, email or handle")}),
    )
    tag = forms.ChoiceField(label=_("Tag"), required=False)
    level = forms.ChoiceField(label=_("Level"), required=False)
    active = forms.ChoiceField(label=_("Last active"), required=False, choices=ACTIVE_CHOICES)
    pending = forms.BooleanField(label=_("Pending merge suggestion"), required=False)
    sort = forms.ChoiceField(
        required=False, choices=[(key, key) for key in sorted(SORT_KEYS)], widget=forms.HiddenInput
    )
    min_spend = forms.DecimalField(
        label=_("Net spend at least"),
        required=False,
        min_value=0,
        max_digits=SPEND_MAX_DIGITS,
        decimal_places=4,
    )
    max_spend = forms.DecimalField(
        label=_("Net spend at most"),
        required=False,
        min_value=0,
        max_digits=SPEND_MAX_DIGITS,
        decimal_places=4,
    )
    min_orders = forms.IntegerField(
        label=_("Orders at least"), required=False, min_value=1, max_value=ORDERS_MAX
    )
    product = forms.CharField(
        label=_("Bought product"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": _("Title or SKU")}),
    )
    last_order_after = forms.DateField(
        label=_("Last order on or after"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    last_order_before = forms.DateField(
        label=_("Last order on or before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, data: QueryDict, *, tags: list[str]) -> None:
        super().__init__(data)
        tag_field = self.fields["tag"]
        level_field = self.fields["level"]
        assert isinstance(tag_field, forms.ChoiceField)
        assert isinstance(level_field, forms.ChoiceField)
        tag_field.choices = [("", _("All tags")), *((tag, tag) for tag in tags)]
        level_field.choices = [("", _("All levels")), *((lvl, level_label(lvl)) for lvl in LEVELS)]

    def filters(self) -> MemberFilters:
        """Each field that does not validate is dropped, so a bad link still shows a list."""
        self.is_valid()
        data = self.cleaned_data
        return MemberFilters(
            q=(data.get("q") or "").strip(),
            tag=data.get("tag") or "",
            level=data.get("level") or "",
            active=data.get("active") or "",
            pending=bool(data.get("pending")),
            sort=data.get("sort") or DEFAULT_SORT,
            min_spend=_normal(data.get("min_spend")),
            max_spend=_normal(data.get("max_spend")),
            min_orders=data.get("min_orders"),
            product=" ".join((data.get("product") or "").split()),
            last_order_after=_plausible(data.get("last_order_after")),
            last_order_before=_plausible(data.get("last_order_before")),
        )


def _normal(value: Decimal | None) -> Decimal | None:
    """Trailing zeros dropped ("10.50" → 10.5), so equal amounts give equal filters."""
    if value is None or not value.is_finite():
        return None
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def _plausible(value: dt.date | None) -> dt.date | None:
    return value if value is not None and value.year in DATE_YEARS else None


class TagForm(forms.Form):
    tag = forms.CharField(label=_("Tag"), max_length=64, strip=True)

    def clean_tag(self) -> str:
        tag = " ".join(self.cleaned_data["tag"].split())
        if not tag:
            raise forms.ValidationError(_("Enter a tag."))
        return tag


class MemberEditForm(forms.Form):
    """A member's own details and consent; the service validates and audits the change."""

    display_name = forms.CharField(label=_("Display name"), max_length=200, required=False)
    city = forms.CharField(label=_("City"), max_length=120, required=False)
    country = forms.CharField(
        label=_("Country"), max_length=2, required=False, help_text=_("Two letters, e.g. IT.")
    )
    languages = forms.CharField(
        label=_("Languages"),
        max_length=200,
        required=False,
        help_text=_("Language codes separated by commas, e.g. it, en."),
    )
    consent_email = forms.BooleanField(label=_("Agrees to marketing email"), required=False)
    consent_profiling = forms.BooleanField(
        label=_("Agrees to personalised suggestions"), required=False
    )

    def clean_languages(self) -> list[str]:
        raw: str = self.cleaned_data["languages"]
        return [part.strip() for part in raw.split(",") if part.strip()]
