"""The team's referral and ambassador pages, under /w/<slug>/loyalty/referrals/ and
/loyalty/ambassadors/.

Anyone who may see members sees them; deciding (approve, reject, invite, end) needs
MANAGE_COMMUNITY (403 otherwise). A referral, ambassador or member of another workspace is a
404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.commerce.money import format_money
from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty.ambassadors import (
    MESSAGE_MAX,
    PERKS_MAX,
    AmbassadorError,
    Impact,
    ambassador_decide,
    ambassador_end,
    ambassador_invite,
    ambassador_suggestions,
    ambassadors_impact,
    ambassadors_list,
)
from circolo.loyalty.models import Ambassador, Referral
from circolo.loyalty.referrals import (
    NOTE_MAX,
    ReferralError,
    flag_lines,
    referral_queue,
    referral_review_decide,
    referral_stats,
    referrals_recent,
)
from circolo.loyalty.tiers import MULTIPLIER_MAX, MULTIPLIER_MIN
from circolo.people.models import Member


def _can_manage(request: WorkspaceRequest) -> bool:
    return has_perm(user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY)


# --------------------------------------------------------------------------- referrals


class DecideForm(forms.Form):
    referral = forms.IntegerField(min_value=1)
    decision = forms.ChoiceField(
        choices=[("approve", gettext_lazy("Approve")), ("reject", gettext_lazy("Reject"))]
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=NOTE_MAX, required=False)


@workspace_view(Perm.VIEW_MEMBERS)
def referral_list(request: WorkspaceRequest) -> HttpResponse:
    """The review queue (flags in plain words) with approve/reject, the latest referrals and
    the program's figures."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    status = 200
    if request.method == "POST":
        if not can_manage:
            return HttpResponse(status=403)
        form = DecideForm(request.POST)
        if form.is_valid():
            referral = Referral.objects.filter(
                workspace=workspace, pk=form.cleaned_data["referral"]
            ).first()
            if referral is None:
                raise Http404
            approve = form.cleaned_data["decision"] == "approve"
            try:
                referral_review_decide(
                    referral=referral,
                    actor=request.user,
                    approve=approve,
                    note=form.cleaned_data["note"],
                )
            except ReferralError as error:
                messages.error(request, error.message)
            else:
                messages.success(
                    request,
                    _("The referral is approved.") if approve else _("The referral is rejected."),
                )
                return redirect(reverse("loyalty_staff:referrals", args=[workspace.slug]))
        else:
            messages.error(request, _("Choose a referral and approve or reject it."))
        status = 400
    queue = [
        {"referral": referral, "flags": flag_lines(referral.flags)}
        for referral in referral_queue(workspace=workspace)
    ]
    return render(
        request,
        "loyalty/staff_referrals.html",
        {
            "workspace": workspace,
            "queue": queue,
            "recent": referrals_recent(workspace=workspace),
            "stats": referral_stats(workspace=workspace),
            "can_manage": can_manage,
            "note_max": NOTE_MAX,
        },
        status=status,
    )


# --------------------------------------------------------------------------- ambassadors


class InviteForm(forms.Form):
    member = forms.IntegerField(min_value=1)
    message = forms.CharField(max_length=MESSAGE_MAX, required=False)


class ApproveForm(forms.Form):
    ambassador = forms.IntegerField(min_value=1)
    code = forms.CharField(label=gettext_lazy("Personal code"), max_length=40)
    perks = forms.CharField(label=gettext_lazy("Perks"), max_length=PERKS_MAX, required=False)
    multiplier_percent = forms.IntegerField(
        label=gettext_lazy("Earn multiplier (%)"),
        min_value=MULTIPLIER_MIN,
        max_value=MULTIPLIER_MAX,
        initial=100,
    )


class PickForm(forms.Form):
    ambassador = forms.IntegerField(min_value=1)


def _ambassador(request: WorkspaceRequest, pk: int) -> Ambassador:
    row = Ambassador.objects.filter(workspace=request.workspace, pk=pk).first()
    if row is None:
        raise Http404
    return row


def _form_error(form: forms.Form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return _("Check the form.")


def _ambassador_action(request: WorkspaceRequest) -> str | None:
    """Do what the posted form asks; returns the success message, or None after telling the
    user what was wrong (messages)."""
    action = request.POST.get("action", "")
    workspace = request.workspace
    try:
        if action == "invite":
            invite = InviteForm(request.POST)
            if not invite.is_valid():
                messages.error(request, _form_error(invite))
                return None
            member = Member.objects.filter(
                workspace=workspace, pk=invite.cleaned_data["member"]
            ).first()
            if member is None:
                raise Http404
            ambassador_invite(
                workspace=workspace,
                member=member,
                actor=request.user,
                message=invite.cleaned_data["message"],
            )
            return _("The invitation is sent.")
        if action == "approve":
            approve = ApproveForm(request.POST)
            if not approve.is_valid():
                messages.error(request, _form_error(approve))
                return None
            data = approve.cleaned_data
            ambassador_decide(
                ambassador=_ambassador(request, data["ambassador"]),
                actor=request.user,
                approve=True,
                perks=data["perks"],
                multiplier_percent=data["multiplier_percent"],
                code=data["code"],
            )
            return _("The ambassador is saved.")
        if action in ("decline", "end"):
            pick = PickForm(request.POST)
            if not pick.is_valid():
                messages.error(request, _form_error(pick))
                return None
            row = _ambassador(request, pick.cleaned_data["ambassador"])
            if action == "decline":
                ambassador_decide(ambassador=row, actor=request.user, approve=False)
                return _("The application is declined.")
            ambassador_end(ambassador=row, actor=request.user)
            return _("The membership is ended.")
    except AmbassadorError as error:
        messages.error(request, error.message)
        return None
    messages.error(request, _("Choose what to do."))
    return None


def _money(impact: Impact) -> list[str]:
    return [format_money(amount, currency) for currency, amount in sorted(impact.revenue.items())]


@workspace_view(Perm.VIEW_MEMBERS)
def ambassador_list(request: WorkspaceRequest) -> HttpResponse:
    """Applications and invitations to decide, suggestions to invite, and the ambassadors
    with what they brought in the last 12 months."""
    workspace = request.workspace
    can_manage = _can_manage(request)
    status = 200
    if request.method == "POST":
        if not can_manage:
            return HttpResponse(status=403)
        done = _ambassador_action(request)
        if done is not None:
            messages.success(request, done)
            return redirect(reverse("loyalty_staff:ambassadors", args=[workspace.slug]))
        status = 400
    rows = ambassadors_list(workspace=workspace)
    impact = ambassadors_impact(
        workspace_id=workspace.pk,
        ambassadors=[row for row in rows if row.status == Ambassador.Status.APPROVED],
    )
    entries: list[dict[str, Any]] = [
        {
            "row": row,
            "impact": impact.get(row.pk),
            "revenue": _money(impact[row.pk]) if row.pk in impact else [],
        }
        for row in rows
    ]
    return render(
        request,
        "loyalty/staff_ambassadors.html",
        {
            "workspace": workspace,
            "waiting": [
                e
                for e in entries
                if e["row"].status in (Ambassador.Status.APPLIED, Ambassador.Status.INVITED)
            ],
            "approved": [e for e in entries if e["row"].status == Ambassador.Status.APPROVED],
            "past": [
                e
                for e in entries
                if e["row"].status in (Ambassador.Status.DECLINED, Ambassador.Status.ENDED)
            ],
            "suggestions": ambassador_suggestions(workspace=workspace) if can_manage else [],
            "can_manage": can_manage,
            "multiplier_min": MULTIPLIER_MIN,
            "multiplier_max": MULTIPLIER_MAX,
        },
        status=status,
    )
