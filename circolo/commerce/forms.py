"""Forms of the store pages. They parse input; commerce.services checks and saves it.

The setup form is built from the connector's SetupGuide. Secret fields are password inputs
that never render a value back: on an existing store, a blank secret keeps the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from circolo.commerce.connectors.base import SetupField, SetupGuide
from circolo.commerce.models import Store, SyncRun

# Form field names of the guide's settings, kept apart from the store's own fields.
GUIDE_PREFIX = "setting_"
TARGET_MAX_LENGTH = {"api_url": 300, "external_id": 200, "webhook_secret": 500}
CREDENTIAL_MAX_LENGTH = 2000


@dataclass(frozen=True)
class SettingRow:
    """A guide setting as the edit page shows it: secrets only say whether they are set."""

    setup: SetupField
    field: forms.BoundField
    is_set: bool


def _guide_field(setup: SetupField, *, required: bool) -> forms.Field:
    max_length = TARGET_MAX_LENGTH.get(setup.target, CREDENTIAL_MAX_LENGTH)
    common: dict[str, Any] = {
        "label": setup.label,
        "help_text": setup.help_text,
        "required": required,
        "max_length": max_length,
    }
    if setup.secret:
        return forms.CharField(
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            strip=True,
            **common,
        )
    if setup.target == "api_url":
        return forms.URLField(assume_scheme="https", **common)
    return forms.CharField(strip=True, **common)


class StoreSetupForm(forms.Form):
    """Name, currency and the connector's settings of a new or existing store."""

    name = forms.CharField(label=_("Store name"), max_length=120)
    currency = forms.CharField(
        label=_("Currency"),
        help_text=_("The store's currency: ISO 4217 code, such as EUR, USD or CNY."),
        max_length=3,
        widget=forms.TextInput(attrs={"size": 4, "autocapitalize": "characters"}),
    )

    def __init__(
        self,
        *args: Any,
        guide: SetupGuide | None = None,
        store: Store | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.guide = guide
        self.store = store
        self.setups: dict[str, SetupField] = {}
        for setup in guide.fields if guide is not None else ():
            name = f"{GUIDE_PREFIX}{setup.name}"
            # An existing store keeps a secret left blank, so a secret is never required there.
            required = setup.required and not (store is not None and setup.secret)
            self.fields[name] = _guide_field(setup, required=required)
            self.setups[name] = setup
        if store is not None and not self.is_bound:
            self.initial.update({"name": store.name, "currency": store.currency})
            credentials = store.credentials
            for name, setup in self.setups.items():
                if setup.secret:
                    continue
                if setup.target == "credentials":
                    self.initial[name] = credentials.get(setup.name, "")
                elif setup.target in ("api_url", "external_id"):
                    self.initial[name] = getattr(store, setup.target)

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()

    def setting_rows(self) -> list[SettingRow]:
        """Each guide setting with whether the store already has a value for it."""
        credentials = self.store.credentials if self.store is not None else {}
        rows = []
        for name, setup in self.setups.items():
            if self.store is None:
                is_set = False
            elif setup.target == "credentials":
                is_set = bool(credentials.get(setup.name))
            elif setup.target == "webhook_secret":
                is_set = bool(self.store.webhook_secret_sealed)
            else:
                is_set = bool(getattr(self.store, setup.target))
            rows.append(SettingRow(setup=setup, field=self[name], is_set=is_set))
        return rows

    def store_values(self) -> dict[str, Any]:
        """Keyword arguments for store_create / store_update from the cleaned data.

        Secrets left blank on an existing store are left out, so the stored ones stay.
        """
        data = self.cleaned_data
        values: dict[str, Any] = {"name": data["name"], "currency": data["currency"]}
        stored = self.store.credentials if self.store is not None else {}
        credentials = dict(stored)
        for name, setup in self.setups.items():
            value = data.get(name) or ""
            if setup.secret and not value and self.store is not None:
                continue
            if setup.target == "credentials":
                if value:
                    credentials[setup.name] = value
                else:
                    credentials.pop(setup.name, None)
            else:
                values[setup.target] = value
        # Re-sealing unchanged credentials would only add noise to the audit log.
        if self.store is None or credentials != stored:
            values["credentials"] = credentials
        return values


class SecretRotateForm(forms.Form):
    """A new webhook secret: typed in (copied from the platform) or generated here."""

    secret = forms.CharField(
        label=_("New webhook secret"),
        required=False,
        max_length=TARGET_MAX_LENGTH["webhook_secret"],
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    generate = forms.BooleanField(
        label=_("Generate a strong secret for me (shown once, to paste into the platform)"),
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("secret") and not data.get("generate"):
            self.add_error("secret", _("Enter the new secret, or tick “Generate”."))
        elif data.get("secret") and data.get("generate"):
            self.add_error("generate", _("Either enter a secret or generate one, not both."))
        return data


STATUS_ACTIONS = {
    "pause": Store.Status.PAUSED,
    "resume": Store.Status.ACTIVE,
    "disconnect": Store.Status.DISCONNECTED,
    "reconnect": Store.Status.ACTIVE,
}


class StoreStatusForm(forms.Form):
    action = forms.ChoiceField(choices=[(key, key) for key in STATUS_ACTIONS])


class StoreSyncForm(forms.Form):
    mode = forms.ChoiceField(choices=SyncRun.Mode.choices)
