"""The team's safety pages: watched words, and one member's trust level and sanctions.

Both need Perm.MODERATE_COMMUNITY: outsiders get 404, weaker roles 403 (workspace_view).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.people.models import Member

from .models import CommunityProfile, Sanction, WatchedWord
from .profiles import profile_ensure
from .safety import sanction_create, sanction_lift, watched_word_add, watched_word_remove
from .services import CommunityError
from .trust import limits_for, trust_lock, trust_progress, trust_unlock

SANCTIONS_SHOWN = 50


class WatchedWordForm(forms.Form):
    word = forms.CharField(
        label=_("Word or phrase"),
        max_length=100,
        help_text=_("Case and accents do not matter; * matches any letters (spam* matches "
                    "spammer). Words in Chinese or Japanese match inside longer text."),
    )  # fmt: skip
    action = forms.ChoiceField(label=_("What happens"), choices=WatchedWord.Action.choices)


class SanctionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Sanction"), choices=Sanction.Kind.choices)
    days = forms.IntegerField(label=_("For how many days"), min_value=1, max_value=3650, initial=7)
    reason = forms.CharField(
        label=_("Reason (the member is shown it)"), max_length=500, widget=forms.Textarea
    )


class TrustLockForm(forms.Form):
    level = forms.TypedChoiceField(
        label=_("Trust level"), choices=CommunityProfile.TrustLevel.choices, coerce=int
    )


def _error(form: forms.Form, error: CommunityError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@workspace_view(Perm.MODERATE_COMMUNITY)
def watched_words(request: WorkspaceRequest) -> HttpResponse:
    """The watched words and what each does, with a form to add one; also who is silenced
    or suspended right now."""
    form = WatchedWordForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                watched_word_add(
                    workspace=request.workspace,
                    actor=request.user,
                    word=form.cleaned_data["word"],
                    action=form.cleaned_data["action"],
                )
            except CommunityError as error:
                _error(form, error)
            else:
                return redirect("community_staff:watched_words", slug=request.workspace.slug)
        status = 400
    now = timezone.now()
    sanctions = (
        Sanction.objects.filter(
            workspace=request.workspace,
            lifted_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        )
        .select_related("member")
        .order_by("ends_at")[:SANCTIONS_SHOWN]
    )
    return render(
        request,
        "community/staff_watched_words.html",
        {
            "workspace": request.workspace,
            "words": list(WatchedWord.objects.filter(workspace=request.workspace)),
            "sanctions": list(sanctions),
            "form": form,
        },
        status=status,
    )


@require_POST
@workspace_view(Perm.MODERATE_COMMUNITY)
def watched_word_delete(request: WorkspaceRequest, word_id: int) -> HttpResponse:
    try:
        watched_word_remove(workspace=request.workspace, actor=request.user, word_id=word_id)
    except CommunityError as error:
        raise Http404 from error
    return redirect("community_staff:watched_words", slug=request.workspace.slug)


@workspace_view(Perm.MODERATE_COMMUNITY)
def member_safety(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    """One member's standing: trust level with the progress on each level's rules, the lock,
    and their sanctions, with the forms to change them."""
    member = Member.objects.filter(
        workspace=request.workspace, pk=member_id, merged_into__isnull=True
    ).first()
    if member is None:
        raise Http404
    profile = profile_ensure(member)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    sanction_form = SanctionForm(request.POST if action == "sanction" else None)
    lock_form = TrustLockForm(
        request.POST if action == "lock" else None, initial={"level": profile.trust_level}
    )
    here = reverse("community_staff:member_safety", args=[request.workspace.slug, member.pk])
    status = 200
    if request.method == "POST":
        common: dict[str, Any] = {"actor": request.user, "workspace_id": request.workspace.pk}
        try:
            if action == "sanction":
                if sanction_form.is_valid():
                    sanction_create(member=member, **sanction_form.cleaned_data, **common)
                    return redirect(here)
            elif action == "lift":
                sanction = Sanction.objects.filter(
                    workspace=request.workspace,
                    member=member,
                    pk=request.POST.get("sanction", "0") or 0,
                ).first()
                if sanction is None:
                    raise Http404
                sanction_lift(sanction=sanction, **common)
                return redirect(here)
            elif action == "lock":
                if lock_form.is_valid():
                    trust_lock(member=member, level=lock_form.cleaned_data["level"], **common)
                    return redirect(here)
            elif action == "unlock":
                trust_unlock(member=member, **common)
                return redirect(here)
            else:
                return HttpResponse(_("action: choose what to do."), status=400)
        except CommunityError as error:
            if action == "sanction":
                _error(sanction_form, error)
            elif action == "lock":
                _error(lock_form, error)
            else:
                return HttpResponse(error.message, status=400)
        status = 400
    now = timezone.now()
    sanctions = list(
        Sanction.objects.filter(workspace=request.workspace, member=member)
        .select_related("created_by")
        .order_by("-starts_at")[:SANCTIONS_SHOWN]
    )
    active = {s for s in sanctions if s.lifted_at is None and s.starts_at <= now < s.ends_at}
    progress = trust_progress(member, now=now)
    return render(
        request,
        "community/staff_member.html",
        {
            "workspace": request.workspace,
            "member": member,
            "profile": profile,
            "limits": limits_for(profile.trust_level),
            "levels": [
                (CommunityProfile.TrustLevel(level).label, rules)
                for level, rules in progress.items()
            ],
            "sanctions": [
                {"sanction": sanction, "active": sanction in active} for sanction in sanctions
            ],
            "sanction_form": sanction_form,
            "lock_form": lock_form,
        },
        status=status,
    )
