"""Forms of the team's loyalty pages (rules, settings, rewards, disputes) and the member's
dispute form. They parse input; the services in rules, program_settings, rewards and
disputes decide what is valid and say why."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.commerce.models import Product, Store
from circolo.community.models import Event
from circolo.core.currencies import exponent
from circolo.core.models import Workspace
from circolo.loyalty.disputes import MESSAGE_MAX, RESOLUTION_MAX
from circolo.loyalty.models import Program, Reward, Tier
from circolo.loyalty.program_settings import BOUNDS, ProgramIn
from circolo.loyalty.rewards import RewardIn
from circolo.loyalty.rules import (
    ACTION_RULES,
    MAX_PER,
    MAX_POINTS,
    ORDER,
)

# Uploaded code lists: plain text or CSV (the first column), one code a line.
CODES_FILE_MAX = 2 * 1024 * 1024
CODES_FILE_TYPES = (".txt", ".csv")


def to_minor(value: Decimal, currency: str) -> int | None:
    """A decimal amount in major units as minor units, None when it has more decimals than
    the currency."""
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


# --------------------------------------------------------------------------- rules


def rule_field(key: str, setting: str) -> str:
    """The form field of one rule's setting: the name rules.RulesError uses for it."""
    return f"{key}.{setting}"


def limit_setting(key: str) -> str:
    """The second number of a rule: "per" (currency units) for orders, else the daily cap."""
    return "per" if key == ORDER else "daily_cap"


class RulesForm(forms.Form):
    """Every rule's switch, points and per / daily cap, as "<rule>.<setting>" fields."""

    def __init__(self, *args: Any, rules: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.update(
            {
                rule_field(key, name): value
                for key, settings in rules.items()
                for name, value in settings.items()
            }
        )
        for key in (ORDER, *ACTION_RULES):
            self.fields[rule_field(key, "enabled")] = forms.BooleanField(
                label=gettext_lazy("On"), required=False
            )
            self.fields[rule_field(key, "points")] = forms.IntegerField(
                label=gettext_lazy("Points"), min_value=0, max_value=MAX_POINTS
            )
            limit = limit_setting(key)
            self.fields[rule_field(key, limit)] = forms.IntegerField(
                label=(
                    gettext_lazy("Per (currency units)")
                    if limit == "per"
                    else gettext_lazy("At most a day (0: no limit)")
                ),
                min_value=1 if limit == "per" else 0,
                max_value=MAX_PER if limit == "per" else MAX_POINTS,
            )
            for name in ("enabled", "points", limit):
                # The row's heading names the rule for screen readers.
                self.fields[rule_field(key, name)].widget.attrs["aria-describedby"] = f"rule-{key}"

    def raw(self) -> dict[str, dict[str, Any]]:
        """The rules as rules.rules_clean takes them."""
        data = self.cleaned_data
        raw: dict[str, dict[str, Any]] = {}
        for key in (ORDER, *ACTION_RULES):
            limit = limit_setting(key)
            raw[key] = {
                "enabled": bool(data[rule_field(key, "enabled")]),
                "points": data[rule_field(key, "points")],
                limit: data[rule_field(key, limit)],
            }
        return raw


class PublishForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "I have looked at the simulation: members earn by these rules from now on."
        ),
        error_messages={"required": gettext_lazy("Confirm that you want to publish.")},
    )


# --------------------------------------------------------------------------- settings


class ProgramForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("Program open to members"), required=False)
    value_per_100 = forms.DecimalField(
        label=gettext_lazy("Value of 100 points"),
        min_value=0,
        max_digits=14,
        help_text=gettext_lazy("What 100 points cost the shop, for the finance page."),
    )
    return_window_days = forms.IntegerField(
        label=gettext_lazy("Return window (days)"),
        help_text=gettext_lazy("Points from an order wait this long before members can use them."),
    )
    expiry_months = forms.IntegerField(
        label=gettext_lazy("Points expire after (months without activity)"),
        help_text=gettext_lazy("0: points never expire."),
    )
    tier_basis = forms.ChoiceField(
        label=gettext_lazy("Tiers by"), choices=Program.TierBasis.choices
    )
    tier_keep_months = forms.IntegerField(label=gettext_lazy("Keep a tier for (months)"))
    referral_window_days = forms.IntegerField(label=gettext_lazy("Referral window (days)"))
    referral_advocate_points = forms.IntegerField(
        label=gettext_lazy("Points for the member who invites")
    )
    referral_friend_reward = forms.ModelChoiceField(
        label=gettext_lazy("Reward for the invited friend"),
        queryset=Reward.objects.none(),
        required=False,
        empty_label=gettext_lazy("(none)"),
    )
    referral_claims_per_address = forms.IntegerField(
        label=gettext_lazy("Referral claims per network address in 7 days"),
        help_text=gettext_lazy("More claims than this go to the review queue."),
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = workspace.currency
        self.fields["referral_friend_reward"].queryset = Reward.objects.filter(  # type: ignore[attr-defined]
            workspace=workspace
        ).order_by("name", "pk")
        self.fields["value_per_100"].decimal_places = exponent(workspace.currency)  # type: ignore[attr-defined]
        self.fields["value_per_100"].label = _("Value of 100 points (%(currency)s)") % {
            "currency": workspace.currency
        }
        for name, (low, high) in BOUNDS.items():
            if name in self.fields:
                field = self.fields[name]
                field.validators += [MinValueValidator(low), MaxValueValidator(high)]
                field.widget.attrs.update({"min": low, "max": high})

    @staticmethod
    def initial_for(program: Program, currency: str) -> dict[str, Any]:
        return {
            "enabled": program.enabled,
            "value_per_100": from_minor(program.value_per_100_minor, currency),
            "return_window_days": program.return_window_days,
            "expiry_months": program.expiry_months,
            "tier_basis": program.tier_basis,
            "tier_keep_months": program.tier_keep_months,
            "referral_window_days": program.referral_window_days,
            "referral_advocate_points": program.referral_advocate_points,
            "referral_friend_reward": program.referral_friend_reward_id,
            "referral_claims_per_address": program.referral_claims_per_address,
        }

    def clean_value_per_100(self) -> int:
        value: Decimal = self.cleaned_data["value_per_100"]
        minor = to_minor(value, self.currency)
        if minor is None:
            raise forms.ValidationError(_("Too many decimals for %(currency)s.") % {
                "currency": self.currency
            })  # fmt: skip
        return minor

    def program_in(self) -> ProgramIn:
        data = self.cleaned_data
        reward = data["referral_friend_reward"]
        return ProgramIn(
            enabled=data["enabled"],
            value_per_100_minor=data["value_per_100"],
            return_window_days=data["return_window_days"],
            expiry_months=data["expiry_months"],
            tier_basis=data["tier_basis"],
            tier_keep_months=data["tier_keep_months"],
            referral_window_days=data["referral_window_days"],
            referral_advocate_points=data["referral_advocate_points"],
            referral_claims_per_address=data["referral_claims_per_address"],
            referral_friend_reward_id=reward.pk if reward is not None else None,
        )


# --------------------------------------------------------------------------- rewards


class RewardForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    kind = forms.ChoiceField(label=gettext_lazy("What it is"), choices=Reward.Kind.choices)
    cost_points = forms.IntegerField(
        label=gettext_lazy("Cost in points"),
        min_value=0,
        help_text=gettext_lazy("0: never bought with points (e.g. the invited friend's reward)."),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount off"), min_value=0, max_digits=14, required=False
    )
    percent = forms.IntegerField(
        label=gettext_lazy("Percentage off"), min_value=0, max_value=100, required=False
    )
    currency = forms.CharField(
        label=gettext_lazy("Currency"),
        max_length=3,
        required=False,
        help_text=gettext_lazy("Empty: the workspace's currency."),
    )
    min_order = forms.DecimalField(
        label=gettext_lazy("Minimum order"), min_value=0, max_digits=14, required=False
    )
    code_source = forms.ChoiceField(label=gettext_lazy("Codes"), choices=Reward.CodeSource.choices)
    store = forms.ModelChoiceField(
        label=gettext_lazy("Store that makes the codes"),
        queryset=Store.objects.none(),
        required=False,
    )
    product = forms.CharField(
        label=gettext_lazy("Product"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("Its number or its exact title (free product, early access)."),
    )
    event = forms.ModelChoiceField(
        label=gettext_lazy("Event"), queryset=Event.objects.none(), required=False
    )
    tier = forms.ModelChoiceField(
        label=gettext_lazy("Tier needed"),
        queryset=Tier.objects.none(),
        required=False,
        empty_label=gettext_lazy("(any member)"),
    )
    valid_days = forms.IntegerField(
        label=gettext_lazy("Code valid for (days)"),
        initial=90,
        help_text=gettext_lazy("0: no end."),
    )
    stock = forms.IntegerField(
        label=gettext_lazy("How many can be redeemed"),
        required=False,
        help_text=gettext_lazy("Empty: no limit."),
    )
    enabled = forms.BooleanField(label=gettext_lazy("Available"), required=False, initial=True)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["store"].queryset = Store.objects.filter(workspace=workspace).order_by(  # type: ignore[attr-defined]
            "name", "pk"
        )
        # Not sliced: a choice is checked with .get() on this queryset.
        self.fields["event"].queryset = Event.objects.filter(  # type: ignore[attr-defined]
            workspace=workspace, cancelled_at__isnull=True
        ).order_by("-starts_at")
        self.fields["tier"].queryset = Tier.objects.filter(workspace=workspace)  # type: ignore[attr-defined]

    @staticmethod
    def initial_for(reward: Reward) -> dict[str, Any]:
        currency = reward.currency
        return {
            "name": reward.name,
            "description": reward.description,
            "kind": reward.kind,
            "cost_points": reward.cost_points,
            "amount": from_minor(reward.amount_minor, currency) if reward.amount_minor else None,
            "percent": reward.percent or None,
            "currency": currency,
            "min_order": (
                from_minor(reward.min_order_minor, currency) if reward.min_order_minor else None
            ),
            "code_source": reward.code_source,
            "store": reward.store_id,
            "product": str(reward.product_id or ""),
            "event": reward.event_id,
            "tier": reward.tier_id,
            "valid_days": reward.valid_days,
            "stock": reward.stock,
            "enabled": reward.enabled,
        }

    def clean_currency(self) -> str:
        value = (self.cleaned_data.get("currency") or "").strip().upper()
        if value and (len(value) != 3 or not value.isalpha()):
            raise forms.ValidationError(_("Give a three-letter currency code, e.g. EUR."))
        return value or self.workspace.currency

    def clean_product(self) -> Product | None:
        text = (self.cleaned_data.get("product") or "").strip()
        if not text:
            return None
        products = Product.objects.filter(workspace=self.workspace)
        if text.isdigit():
            found = products.filter(pk=int(text)).first()
            if found is not None:
                return found
        matches = list(products.filter(title__iexact=text)[:2])
        if len(matches) > 1:
            raise forms.ValidationError(
                _("Several products have this title: give the product's number.")
            )
        if not matches:
            raise forms.ValidationError(_("No product of yours has this number or title."))
        return matches[0]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        currency = data.get("currency") or self.workspace.currency
        for name in ("amount", "min_order"):
            value = data.get(name)
            if value is None:
                data[f"{name}_minor"] = 0
                continue
            minor = to_minor(value, currency)
            if minor is None:
                self.add_error(
                    name, _("Too many decimals for %(currency)s.") % {"currency": currency}
                )
            data[f"{name}_minor"] = minor or 0
        return data

    def reward_in(self) -> RewardIn:
        data = self.cleaned_data
        store, product, event, tier = data["store"], data["product"], data["event"], data["tier"]
        return RewardIn(
            name=data["name"],
            kind=data["kind"],
            cost_points=data["cost_points"],
            description=data["description"],
            amount_minor=data["amount_minor"],
            percent=data["percent"] or 0,
            currency=data["currency"],
            min_order_minor=data["min_order_minor"],
            code_source=data["code_source"],
            store_id=store.pk if store is not None else None,
            product_id=product.pk if product is not None else None,
            event_id=event.pk if event is not None else None,
            tier_id=tier.pk if tier is not None else None,
            valid_days=data["valid_days"],
            stock=data["stock"],
            enabled=data["enabled"],
        )


class PoolCodesForm(forms.Form):
    codes = forms.CharField(
        label=gettext_lazy("Codes, one a line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    file = forms.FileField(
        label=gettext_lazy("Or a file (.txt or .csv, one code a line)"), required=False
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is None:
            return None
        if not upload.name.lower().endswith(CODES_FILE_TYPES):
            raise forms.ValidationError(_("Upload a .txt or .csv file."))
        if upload.size > CODES_FILE_MAX:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not (data.get("codes") or "").strip() and not data.get("file"):
            raise forms.ValidationError(_("Paste some codes or choose a file."))
        return data

    def code_lines(self) -> list[str]:
        """The codes given, in order: the textarea's lines, then the file's."""
        lines = (self.cleaned_data.get("codes") or "").splitlines()
        upload = self.cleaned_data.get("file")
        if upload is not None:
            text = upload.read().decode("utf-8-sig", errors="replace")
            if upload.name.lower().endswith(".csv"):
                lines.extend(row[0] for row in csv.reader(io.StringIO(text)) if row)
            else:
                lines.extend(text.splitlines())
        return lines


# --------------------------------------------------------------------------- disputes


class DisputeForm(forms.Form):
    message = forms.CharField(
        label=gettext_lazy("What is wrong?"),
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("The team reads it and answers here."),
    )


class DisputeAnswerForm(forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("Decision"),
        choices=(
            ("accept", gettext_lazy("Accept")),
            ("reject", gettext_lazy("Reject")),
        ),
        widget=forms.RadioSelect,
    )
    points = forms.IntegerField(
        label=gettext_lazy("Points to give (negative: to take)"),
        required=False,
        min_value=-MAX_POINTS,
        max_value=MAX_POINTS,
        help_text=gettext_lazy("Only when you accept; 0 or empty: no correction."),
    )
    resolution = forms.CharField(
        label=gettext_lazy("Answer to the member"),
        max_length=RESOLUTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
