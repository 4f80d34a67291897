"""Forms of the member pages: list filters (lenient: bad values fall back to defaults) and tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from circolo.activity.scores import LEVELS, level_label

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


@dataclass(frozen=True)
class MemberFilters:
    """The cleaned filters of the member list; the same object drives the page and the export."""

    q: str = ""
    tag: str = ""
    level: str = ""
    active: str = ""
    pending: bool = False
    sort: str = DEFAULT_SORT

    @property
    def active_within_days(self) -> int | None:
        return int(self.active) if self.active.isdigit() else None

    @property
    def never_active(self) -> bool:
        return self.active == ACTIVE_NEVER

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.tag or self.level or self.active or self.pending)

    def as_query(self, **changes: Any) -> str:
        """The query string for these filters with some values changed (defaults left out)."""
        values = {
            "q": self.q,
            "tag": self.tag,
            "level": self.level,
            "active": self.active,
            "pending": "1" if self.pending else "",
            "sort": "" if self.sort == DEFAULT_SORT else self.sort,
        }
        values.update({key: str(value) for key, value in changes.items()})
        query = QueryDict(mutable=True)
        for key, value in values.items():
            if value:
                query[key] = value
        return query.urlencode()


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
        )


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
