"""Members' referral and ambassador pages, under /c/<slug>/rewards/.

The invitation landing (invite/<code>/) works signed out: it records the click, remembers
the visitor for the referral window in a signed cookie (the last click wins) and lets the
friend claim their welcome reward with an email. The other pages are the signed-in member's.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.community.services import member_for_user
from circolo.core.models import Workspace
from circolo.loyalty.ambassadors import (
    AmbassadorError,
    ambassador_apply,
    ambassador_impact,
    ambassador_of,
)
from circolo.loyalty.models import Ambassador, Referral, ReferralCode
from circolo.loyalty.referrals import (
    ReferralError,
    code_usable,
    member_referrals,
    referral_claim,
    referral_click,
    referral_code_find,
    referral_code_for,
)
from circolo.loyalty.rules import program_get
from circolo.people.models import Member

COOKIE_SALT = "circolo.loyalty.referral"
SESSION_CLAIMED = "loyalty_referral_claimed"


def _workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise Http404
    return workspace


def _cookie_name(workspace: Workspace) -> str:
    return f"circolo_ref_{workspace.pk}"


def client_address(request: HttpRequest) -> str:
    """The visitor's network address: behind the proxy the settings trust, the address the
    proxy saw (the last one it added to X-Forwarded-For); else the socket's."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:100]
    return str(request.META.get("REMOTE_ADDR", ""))[:100]


def _visitor(request: HttpRequest, workspace: Workspace) -> str:
    """The visitor id in the referral cookie, or a new one."""
    value = request.get_signed_cookie(_cookie_name(workspace), default="", salt=COOKIE_SALT)
    visitor = str(value or "").split(":", 1)[0]
    return visitor if 8 <= len(visitor) <= 40 else secrets.token_urlsafe(16)


def _remember(response: HttpResponseBase, workspace: Workspace, visitor: str, code: str) -> None:
    days = program_get(workspace_id=workspace.pk).referral_window_days
    response.set_signed_cookie(
        _cookie_name(workspace),
        f"{visitor}:{code}",
        salt=COOKIE_SALT,
        max_age=days * 86400,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


class ClaimForm(forms.Form):
    email = forms.CharField(label=gettext_lazy("Your email"), max_length=320)
    name = forms.CharField(label=gettext_lazy("Your name"), max_length=200, required=False)


def _first_name(member: Member) -> str:
    return (member.display_name or "").split(" ")[0] or _("A friend")


def invite(request: HttpRequest, slug: str, code: str) -> HttpResponse:
    """A referral link's landing page: the offer and the claim form; after claiming, the code."""
    workspace = _workspace(slug)
    program = program_get(workspace_id=workspace.pk)
    found = referral_code_find(workspace=workspace, code=code)
    context: dict[str, Any] = {"community": workspace, "program": program}
    if found is None or not code_usable(found):
        context["invalid"] = True
        return render(request, "loyalty/invite.html", context, status=404)
    viewer = (
        member_for_user(workspace=workspace, user=request.user)
        if (request.user.is_authenticated)
        else None
    )
    visitor = _visitor(request, workspace)
    address = client_address(request)
    status = 200
    if request.method == "POST":
        form = ClaimForm(request.POST)
        if form.is_valid():
            try:
                referral = referral_claim(
                    workspace=workspace,
                    code=found.code,
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                    visitor=visitor,
                    address=address,
                    via=Referral.Via.LINK,
                    viewer=viewer,
                )
            except ReferralError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                request.session[SESSION_CLAIMED] = referral.pk
                done = redirect(reverse("loyalty:invite", args=[workspace.slug, found.code]))
                _remember(done, workspace, visitor, found.code)
                return done
        status = 400
    else:
        referral_click(code=found, visitor=visitor, address=address)
        form = ClaimForm()
    claimed = _claimed(request, workspace)
    context.update(
        {
            "viewer": viewer,
            "code": found,
            "advocate_name": _first_name(found.member),
            "reward": program.referral_friend_reward,
            "form": form,
            "claimed": claimed,
            "own": viewer is not None and viewer.pk == found.member_id,
        }
    )
    response = render(request, "loyalty/invite.html", context, status=status)
    _remember(response, workspace, visitor, found.code)
    return response


def _claimed(request: HttpRequest, workspace: Workspace) -> Referral | None:
    """The referral this browser claimed (kept in its session), if any."""
    pk = request.session.get(SESSION_CLAIMED)
    if not isinstance(pk, int):
        return None
    return (
        Referral.objects.filter(workspace=workspace, pk=pk)
        .select_related("friend_redemption")
        .first()
    )


# --------------------------------------------------------------------------- the member's


def share_links(*, link: str, text: str, subject: str) -> list[dict[str, str]]:
    """Plain share links (no third-party script): the network and its URL."""
    both = quote(f"{text} {link}", safe="")
    url = quote(link, safe="")
    return [
        {"name": "WhatsApp", "key": "whatsapp", "url": f"https://wa.me/?text={both}"},
        {
            "name": "Telegram",
            "key": "telegram",
            "url": f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(text, safe='')}",
        },
        {
            "name": "X",
            "key": "x",
            "url": f"https://x.com/intent/tweet?text={quote(text, safe='')}&url={url}",
        },
        {
            "name": "Facebook",
            "key": "facebook",
            "url": f"https://www.facebook.com/sharer/sharer.php?u={quote(link, safe='')}",
        },
        {
            "name": _("Email"),
            "key": "email",
            "url": f"mailto:?subject={quote(subject, safe='')}&body={both}",
        },
    ]


def referral_card(
    *, member: Member, request: HttpRequest, code: ReferralCode | None = None
) -> dict[str, Any]:
    """What the referral card (loyalty/_referral_card.html) shows: the member's link and code,
    the share links and what the friend gets. Pass it as `referral`."""
    code = code or referral_code_for(member=member)
    workspace = member.workspace
    link = request.build_absolute_uri(reverse("loyalty:invite", args=[workspace.slug, code.code]))
    program = program_get(workspace_id=workspace.pk)
    text = _("Join me at %(name)s: here is a welcome gift for your first order.") % {
        "name": workspace.name
    }
    subject = _("A gift from me at %(name)s") % {"name": workspace.name}
    return {
        "code": code.code,
        "link": link,
        "share": share_links(link=link, text=text, subject=subject),
        "reward": program.referral_friend_reward,
        "points": program.referral_advocate_points,
        "window_days": program.return_window_days,
    }


def _signed_in_member(request: HttpRequest, workspace: Workspace) -> Member | None:
    if not request.user.is_authenticated:
        return None
    return member_for_user(workspace=workspace, user=request.user)


def _friend_label(referral: Referral) -> str:
    """How the advocate sees their friend: a first name, else a masked email."""
    if referral.friend is not None and referral.friend.display_name:
        return referral.friend.display_name.split(" ")[0]
    local, _at, domain = referral.friend_email.partition("@")
    if not domain:
        return _("A friend")
    return f"{local[:2]}…@{domain}"


def referrals_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The member's link, code and share buttons, and their referrals in plain words."""
    workspace = _workspace(slug)
    member = _signed_in_member(request, workspace)
    if member is None:
        return redirect_to_login(request.get_full_path())
    mine = member_referrals(member=member)
    rows = [
        {
            "friend": _friend_label(referral),
            "status": referral.status,
            "status_label": referral.get_status_display(),
            "claimed_at": referral.claimed_at,
        }
        for referral in mine.referrals
    ]
    return render(
        request,
        "loyalty/referrals.html",
        {
            "community": workspace,
            "viewer": member,
            "referral": referral_card(member=member, request=request),
            "mine": mine,
            "rows": rows,
        },
    )


class ApplyForm(forms.Form):
    message = forms.CharField(
        label=gettext_lazy("Why would you like to be an ambassador?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


def ambassador_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Apply to the ambassador program, see where the application stands, or (approved) the
    personal code, perks and impact."""
    workspace = _workspace(slug)
    member = _signed_in_member(request, workspace)
    if member is None:
        return redirect_to_login(request.get_full_path())
    row = ambassador_of(member=member)
    status = 200
    form = ApplyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                ambassador_apply(member=member, message=form.cleaned_data["message"])
            except AmbassadorError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, _("Thank you! The team will read your application."))
                return redirect(reverse("loyalty:ambassador", args=[workspace.slug]))
        status = 400
    can_apply = row is None or row.status in (
        Ambassador.Status.INVITED,
        Ambassador.Status.DECLINED,
        Ambassador.Status.ENDED,
    )
    approved = row is not None and row.status == Ambassador.Status.APPROVED
    return render(
        request,
        "loyalty/ambassador.html",
        {
            "community": workspace,
            "viewer": member,
            "ambassador": row,
            "form": form if can_apply else None,
            "approved": approved,
            "impact": ambassador_impact(ambassador=row) if approved and row else None,
            "personal": (
                referral_card(member=member, request=request, code=row.code)
                if approved and row is not None and row.code is not None and row.code.active
                else None
            ),
        },
        status=status,
    )
