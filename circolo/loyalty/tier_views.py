"""The team's tier and badge pages, under /w/<slug>/loyalty/tiers/ and /loyalty/badges/.

Anyone who may see members sees them; changing anything needs MANAGE_COMMUNITY (403
otherwise). A tier or badge of another workspace is a 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.commerce.money import format_money
from circolo.core.currencies import exponent
from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty.badges import (
    THRESHOLD_RULES,
    BadgeError,
    BadgeIn,
    badge_create,
    badge_grant,
    badge_holders,
    badge_revoke,
    badge_update,
    badges_overview,
    member_find,
)
from circolo.loyalty.models import Badge, Program, Tier
from circolo.loyalty.rules import program_get
from circolo.loyalty.tiers import (
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
    NAME_LANGUAGES,
    NAME_MAX,
    TierError,
    TierIn,
    tier_create,
    tier_delete,
    tier_update,
    tiers_overview,
)

LANGUAGE_LABELS = {
    "it": gettext_lazy("Name in Italian"),
    "es": gettext_lazy("Name in Spanish"),
    "zh-hans": gettext_lazy("Name in Simplified Chinese"),
}


def _name_field(language: str) -> str:
    return f"name_{language.replace('-', '_')}"


def _add_names(form: forms.Form) -> None:
    for language in NAME_LANGUAGES:
        form.fields[_name_field(language)] = forms.CharField(
            label=LANGUAGE_LABELS[language], max_length=NAME_MAX, required=False
        )


def _names(form: forms.Form) -> dict[str, str]:
    return {language: form.cleaned_data[_name_field(language)] for language in NAME_LANGUAGES}


def _names_initial(names: dict[str, str]) -> dict[str, str]:
    return {_name_field(language): names.get(language, "") for language in NAME_LANGUAGES}


def _errors_to_form(form: forms.Form, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        form.add_error(name if name in form.fields else None, message)


def _can_manage(request: WorkspaceRequest) -> bool:
    return has_perm(user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY)


# --------------------------------------------------------------------------- tiers


class TierForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=NAME_MAX)
    threshold = forms.DecimalField(label=gettext_lazy("Threshold"), min_value=0)
    multiplier_percent = forms.IntegerField(
        label=gettext_lazy("Earn multiplier (%)"),
        min_value=MULTIPLIER_MIN,
        max_value=MULTIPLIER_MAX,
        initial=100,
        help_text=gettext_lazy("100 = points as earned; 150 = half as many again on orders."),
    )
    early_access = forms.BooleanField(label=gettext_lazy("Early access to drops"), required=False)
    free_shipping = forms.BooleanField(label=gettext_lazy("Free shipping code"), required=False)
    perks = forms.CharField(
        label=gettext_lazy("Other perks"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, program: Program, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.spend = program.tier_basis == Program.TierBasis.SPEND
        # Made here: the places allowed (and their validator) depend on the currency.
        if self.spend:
            places = exponent(currency)
            help_text = _(
                "Net spend in the last 12 months, in %(currency)s, that reaches this tier."
            ) % {"currency": currency}
        else:
            places = 0
            help_text = _("Points earned in the last 12 months that reach this tier.")
        self.fields["threshold"] = forms.DecimalField(
            label=gettext_lazy("Threshold"),
            min_value=0,
            max_digits=18,
            decimal_places=places,
            help_text=help_text,
        )
        self.order_fields(["name", "threshold"])
        _add_names(self)

    def threshold_stored(self) -> int:
        """The threshold as stored: minor units of the currency, or points."""
        value: Decimal = self.cleaned_data["threshold"]
        if self.spend:
            return int(value.scaleb(exponent(self.currency)))
        return int(value)

    def tier_in(self) -> TierIn:
        data = self.cleaned_data
        return TierIn(
            name=data["name"],
            threshold=self.threshold_stored(),
            multiplier_percent=data["multiplier_percent"],
            names=_names(self),
            early_access=data["early_access"],
            free_shipping=data["free_shipping"],
            perks=data["perks"],
        )


def _threshold_text(program: Program, currency: str, threshold: int) -> str:
    if program.tier_basis == Program.TierBasis.SPEND:
        return format_money(threshold, currency)
    return _("%(n)s points") % {"n": f"{threshold:,}"}


def _tier_form(request: WorkspaceRequest, program: Program, tier: Tier | None) -> TierForm:
    currency = request.workspace.currency
    initial: dict[str, Any] | None = None
    if tier is not None:
        threshold: Decimal | int = tier.threshold
        if program.tier_basis == Program.TierBasis.SPEND:
            threshold = Decimal(tier.threshold).scaleb(-exponent(currency))
        initial = {
            "name": tier.name,
            "threshold": threshold,
            "multiplier_percent": tier.multiplier_percent,
            "early_access": tier.early_access,
            "free_shipping": tier.free_shipping,
            "perks": tier.perks,
            **_names_initial(tier.names),
        }
    data = request.POST if request.method == "POST" else None
    return TierForm(data, initial=initial, program=program, currency=currency)


@workspace_view(Perm.VIEW_MEMBERS)
def tier_list(request: WorkspaceRequest) -> HttpResponse:
    """The tiers with their members, and (for managers) a form to add one."""
    workspace = request.workspace
    program = program_get(workspace_id=workspace.pk)
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    form = _tier_form(request, program, None) if can_manage else None
    status = 200
    if form is not None and request.method == "POST":
        if form.is_valid():
            try:
                tier = tier_create(workspace=workspace, actor=request.user, data=form.tier_in())
            except TierError as error:
                _errors_to_form(form, error.errors)
            else:
                messages.success(request, _("The tier “%(name)s” is added.") % {"name": tier.name})
                return redirect(
                    f"{reverse('loyalty_staff:tiers', args=[workspace.slug])}#tier-{tier.pk}"
                )
        status = 400
    rows = [
        {
            "tier": row.tier,
            "members": row.members,
            "threshold": _threshold_text(program, workspace.currency, row.tier.threshold),
        }
        for row in tiers_overview(workspace=workspace)
    ]
    return render(
        request,
        "loyalty/staff_tiers.html",
        {
            "workspace": workspace,
            "program": program,
            "rows": rows,
            "form": form,
            "can_manage": can_manage,
        },
        status=status,
    )


def _tier_of(request: WorkspaceRequest, tier_id: int) -> Tier:
    tier = Tier.objects.filter(workspace=request.workspace, pk=tier_id).first()
    if tier is None:
        raise Http404
    return tier


@workspace_view(Perm.MANAGE_COMMUNITY)
def tier_edit(request: WorkspaceRequest, tier_id: int) -> HttpResponse:
    """Change a tier, or (action=delete) remove it."""
    workspace = request.workspace
    tier = _tier_of(request, tier_id)
    program = program_get(workspace_id=workspace.pk)
    back = reverse("loyalty_staff:tiers", args=[workspace.slug])
    if request.method == "POST" and request.POST.get("action") == "delete":
        tier_delete(workspace=workspace, actor=request.user, tier=tier)
        messages.success(request, _("The tier “%(name)s” is removed.") % {"name": tier.name})
        return redirect(back)
    form = _tier_form(request, program, tier)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tier_update(workspace=workspace, actor=request.user, tier=tier, data=form.tier_in())
            except TierError as error:
                _errors_to_form(form, error.errors)
            else:
                messages.success(request, _("The tier “%(name)s” is saved.") % {"name": tier.name})
                return redirect(f"{back}#tier-{tier.pk}")
        status = 400
    return render(
        request,
        "loyalty/staff_tiers.html",
        {"workspace": workspace, "program": program, "edit": tier, "form": form},
        status=status,
    )


# --------------------------------------------------------------------------- badges


class BadgeForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=NAME_MAX)
    symbol = forms.CharField(
        label=gettext_lazy("Symbol"),
        max_length=8,
        initial="★",
        help_text=gettext_lazy("An emoji or a letter, shown beside the member's name."),
    )
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    enabled = forms.BooleanField(
        label=gettext_lazy("Awarded and shown"), required=False, initial=True
    )

    def __init__(self, *args: Any, badge: Badge | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if badge is not None and badge.rule in THRESHOLD_RULES:
            self.fields["threshold"] = forms.IntegerField(
                label=gettext_lazy("How many"), min_value=1, max_value=10_000
            )
        _add_names(self)

    def badge_in(self) -> BadgeIn:
        data = self.cleaned_data
        return BadgeIn(
            name=data["name"],
            symbol=data["symbol"],
            description=data["description"],
            names=_names(self),
            threshold=data.get("threshold") or 1,
            enabled=data["enabled"],
        )


class GrantForm(forms.Form):
    badge = forms.TypedChoiceField(label=gettext_lazy("Badge"), coerce=int)
    member = forms.CharField(
        label=gettext_lazy("Member"),
        max_length=320,
        help_text=gettext_lazy("The member's number or email address."),
    )
    action = forms.ChoiceField(
        label=gettext_lazy("Action"),
        choices=[
            ("grant", gettext_lazy("Give the badge")),
            ("revoke", gettext_lazy("Take it back")),
        ],
        initial="grant",
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=200, required=False)

    def __init__(self, *args: Any, badges: list[Badge], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        badge_field = self.fields["badge"]
        assert isinstance(badge_field, forms.TypedChoiceField)
        badge_field.choices = [(badge.pk, f"{badge.symbol} {badge.name}") for badge in badges]


def _grant(request: WorkspaceRequest, form: GrantForm, badges: list[Badge]) -> bool:
    """Give or take back a badge as the form says; errors go on the form."""
    badge = next((b for b in badges if b.pk == form.cleaned_data["badge"]), None)
    member = member_find(workspace=request.workspace, text=form.cleaned_data["member"])
    if badge is None:
        form.add_error("badge", _("No such badge."))
        return False
    if member is None:
        form.add_error("member", _("No member with this number or email address."))
        return False
    note = form.cleaned_data["note"]
    try:
        if form.cleaned_data["action"] == "revoke":
            badge_revoke(badge=badge, member=member, actor=request.user, note=note)
            done = _("The badge “%(name)s” is taken back.")
            messages.success(request, done % {"name": badge.name})
        else:
            badge_grant(badge=badge, member=member, actor=request.user, note=note)
            done = _("The badge “%(name)s” is given.")
            messages.success(request, done % {"name": badge.name})
    except BadgeError as error:
        _errors_to_form(form, error.errors)
        return False
    return True


@workspace_view(Perm.VIEW_MEMBERS)
def badge_list(request: WorkspaceRequest) -> HttpResponse:
    """The badges with their holders; managers add a badge, give one or take it back."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    if request.method == "POST" and not can_manage:
        return HttpResponse(status=403)
    rows = badges_overview(workspace=workspace)
    badges = [row.badge for row in rows]
    grantable = [b for b in badges if b.rule != Badge.Rule.TOP_CONTRIBUTOR]
    action = request.POST.get("form") if request.method == "POST" else None
    create_form = grant_form = None
    if can_manage:
        create_form = BadgeForm(request.POST if action == "create" else None)
        grant_form = GrantForm(request.POST if action == "grant" else None, badges=grantable)
    status = 200
    back = reverse("loyalty_staff:badges", args=[workspace.slug])
    if can_manage and action == "create":
        assert create_form is not None
        if create_form.is_valid():
            try:
                badge = badge_create(
                    workspace=workspace, actor=request.user, data=create_form.badge_in()
                )
            except BadgeError as error:
                _errors_to_form(create_form, error.errors)
            else:
                done = _("The badge “%(name)s” is added.")
                messages.success(request, done % {"name": badge.name})
                return redirect(f"{back}#badge-{badge.pk}")
        status = 400
    elif can_manage and action == "grant":
        assert grant_form is not None
        if grant_form.is_valid() and _grant(request, grant_form, grantable):
            return redirect(back)
        status = 400
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "loyalty/staff_badges.html",
        {
            "workspace": workspace,
            "rows": rows,
            "create_form": create_form,
            "grant_form": grant_form,
            "can_manage": can_manage,
        },
        status=status,
    )


@workspace_view(Perm.MANAGE_COMMUNITY)
def badge_edit(request: WorkspaceRequest, badge_id: int) -> HttpResponse:
    """Change a badge (name, symbol, whether it is awarded, how many it needs) and see its
    latest holders."""
    workspace = request.workspace
    badge = Badge.objects.filter(workspace=workspace, pk=badge_id).first()
    if badge is None:
        raise Http404
    initial = {
        "name": badge.name,
        "symbol": badge.symbol,
        "description": badge.description,
        "enabled": badge.enabled,
        "threshold": badge.threshold,
        **_names_initial(badge.names),
    }
    form = BadgeForm(
        request.POST if request.method == "POST" else None, initial=initial, badge=badge
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                badge_update(
                    workspace=workspace, actor=request.user, badge=badge, data=form.badge_in()
                )
            except BadgeError as error:
                _errors_to_form(form, error.errors)
            else:
                done = _("The badge “%(name)s” is saved.")
                messages.success(request, done % {"name": badge.name})
                return redirect(
                    f"{reverse('loyalty_staff:badges', args=[workspace.slug])}#badge-{badge.pk}"
                )
        status = 400
    return render(
        request,
        "loyalty/staff_badges.html",
        {
            "workspace": workspace,
            "edit": badge,
            "form": form,
            "holders": badge_holders(badge=badge),
        },
        status=status,
    )
