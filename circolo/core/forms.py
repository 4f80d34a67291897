"""Forms of the workspace pages: they parse input; the rules live in core.services."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Role


@lru_cache(maxsize=1)
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    default_language = forms.ChoiceField(label=_("Default language"), choices=settings.LANGUAGES)
    currency = forms.CharField(
        label=_("Currency"),
        help_text=_("ISO 4217 code, such as EUR, USD or CNY."),
        # No max_length on the field: core.services explains what a currency code looks like.
        widget=forms.TextInput(attrs={"size": 4, "maxlength": 3, "autocapitalize": "characters"}),
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)


class WorkspaceCreateForm(WorkspaceSettingsForm):
    slug = forms.CharField(
        label=_("Address"),
        max_length=60,
        help_text=_("Used in links: /w/<address>/. Lower-case letters, digits and hyphens."),
    )

    field_order = ["name", "slug", "default_language", "currency", "time_zone"]


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)

    def __init__(self, *args: Any, grantable: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Offer only the roles the inviter may grant; anything else posted is still refused
        # by invitation_create with a message that says why.
        allowed = set(grantable)
        role_field = self.fields["role"]
        assert isinstance(role_field, forms.ChoiceField)
        role_field.widget.choices = [(v, label) for v, label in Role.choices if v in allowed]
        if Role.MODERATOR in allowed and not self.is_bound:
            self.initial.setdefault("role", Role.MODERATOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class KindWeightForm(forms.Form):
    weight = forms.IntegerField(label=_("Weight"))


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), widget=forms.CheckboxSelectMultiple, required=True
    )

    def __init__(self, *args: Any, scopes: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scopes_field = self.fields["scopes"]
        assert isinstance(scopes_field, forms.MultipleChoiceField)
        scopes_field.choices = [(key, f"{key} — {label}") for key, label in scopes.items()]
