"""Joining the community: its own sign-in page (email or a social account) and the welcome
that greets a new member."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from .models import Thread
from .selectors import readable_threads
from .views import _viewer, _workspace

WELCOME_TAG = "welcome"


def welcome_thread(workspace_id: int, viewer: object) -> Thread | None:
    """The newest thread the team tagged "welcome" that this member may read."""
    candidates = (
        readable_threads(workspace_id, viewer)  # type: ignore[arg-type]
        .filter(tags__icontains=f'"{WELCOME_TAG}"')
        .order_by("-pinned", "-created_at")[:10]
    )
    return next((thread for thread in candidates if WELCOME_TAG in thread.tags), None)


def _next(request: HttpRequest) -> str:
    """The ?next= address if it is on this site, else ""."""
    after = request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        after, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return after if after and safe else ""


def join_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The community's sign-in page: email and password, or any configured social account;
    new accounts come back to the welcome step."""
    workspace = _workspace(slug)
    if request.user.is_authenticated:
        return redirect("community:welcome", slug=slug)
    welcome = reverse("community:welcome", args=[slug])
    after = _next(request)
    if after:
        welcome = f"{welcome}?next={after}"
    return render(request, "community/join.html", {"community": workspace, "next": welcome})


def welcome_view(request: HttpRequest, slug: str) -> HttpResponse:
    """After signing in through the community: join it, then land on the welcome thread the
    first time (or go back to where the member was heading)."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    viewer = _viewer(request, workspace)
    after = _next(request)
    if after:
        return redirect(after)
    thread = welcome_thread(workspace.pk, viewer)
    messages.success(request, _("Welcome to the %(name)s community!") % {"name": workspace.name})
    if thread is not None:
        return redirect("community:thread", slug=slug, thread_id=thread.pk)
    return redirect("community:home", slug=slug)
