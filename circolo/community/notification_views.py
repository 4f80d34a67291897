"""The member's own pages: notifications (list, open, mark read, mail settings), one-click
unsubscribe from mail (no sign-in: the link is signed), bookmarks, and the follow and
bookmark buttons. Anything the viewer may not read is a 404, as everywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from circolo.people.models import Member

from .follows import (
    bookmark_add,
    bookmark_remove,
    follow_add,
    follow_remove,
    member_bookmarks,
)
from .models import CommunityProfile, Notification, Post
from .notifications import (
    email_preferences_set,
    email_unsubscribe,
    notification_target,
    notification_text,
    notifications_read,
    notifications_visible,
    unsubscribe_label,
    unsubscribe_read,
)
from .profiles import profile_ensure
from .services import CommunityError, NotFound
from .views import _space, _thread, _viewer, _workspace

NOTIFICATIONS_PER_PAGE = 30
BOOKMARKS_PER_PAGE = 30


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    """Back where the button was (a `next` on this site), else to `fallback`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


# --------------------------------------------------------------------------- notifications


@dataclass
class NotificationRow:
    pk: int
    text: str
    kind: str
    created_at: datetime
    unread: bool


def notifications_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return redirect_to_login(request.get_full_path())
    found = notifications_visible(viewer).select_related(
        "actor", "thread", "thread__space", "post", "event"
    )
    page = Paginator(found, NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        NotificationRow(
            pk=n.pk,
            text=notification_text(n),
            kind=n.kind,
            created_at=n.created_at,
            unread=n.read_at is None,
        )
        for n in page.object_list
    ]
    return render(
        request,
        "community/notifications.html",
        {
            "community": workspace,
            "viewer": viewer,
            "page": page,
            "rows": rows,
            "any_unread": any(row.unread for row in rows) or page.has_other_pages(),
        },
    )


def notification_open(request: HttpRequest, slug: str, notification_id: int) -> HttpResponse:
    """Follow a notification's link: it is marked read and leads to what it is about."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return redirect_to_login(request.get_full_path())
    notification = (
        notifications_visible(viewer)
        .select_related("thread", "post", "event")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None:
        raise Http404
    notifications_read(member=viewer, ids=[notification.pk])
    return redirect(notification_target(notification, workspace.slug))


@require_POST
def notifications_read_all(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return redirect_to_login(reverse("community:notifications", args=[slug]))
    notifications_read(member=viewer)
    return redirect("community:notifications", slug=slug)


class NotificationSettingsForm(forms.Form):
    email_kinds = forms.MultipleChoiceField(
        label=gettext_lazy("Mail me about"),
        choices=Notification.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    digest = forms.ChoiceField(
        label=gettext_lazy("Digest of popular threads"),
        choices=CommunityProfile.Digest.choices,
    )


def notification_settings(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return redirect_to_login(request.get_full_path())
    profile = profile_ensure(viewer)
    initial = {
        "email_kinds": [k for k in Notification.Kind.values if k not in profile.email_muted],
        "digest": profile.digest,
    }
    form = NotificationSettingsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            wanted = set(form.cleaned_data["email_kinds"])
            email_preferences_set(
                member=viewer,
                muted=[k for k in Notification.Kind.values if k not in wanted],
                digest=form.cleaned_data["digest"],
            )
            messages.success(request, _("Your mail settings are saved."))
            return redirect("community:notification_settings", slug=slug)
        status = 400
    return render(
        request,
        "community/notification_settings.html",
        {"community": workspace, "viewer": viewer, "form": form},
        status=status,
    )


@csrf_exempt  # the signed token is the credential; mail providers POST without a session
def unsubscribe(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """One-click unsubscribe (RFC 8058): GET asks to confirm, POST turns the mail off."""
    workspace = _workspace(slug)
    context: dict[str, object] = {"community": workspace}
    try:
        member_id, kind = unsubscribe_read(token)
    except (signing.BadSignature, ValueError):
        context["invalid"] = True
        return render(request, "community/unsubscribe.html", context, status=400)
    member = Member.objects.filter(workspace=workspace, pk=member_id).first()
    if member is None:
        raise Http404
    context["label"] = unsubscribe_label(kind)
    if request.method == "POST":
        email_unsubscribe(member=member, kind=kind)
        context["done"] = True
    elif request.method != "GET":
        return HttpResponse(status=405)
    return render(request, "community/unsubscribe.html", context)


# --------------------------------------------------------------------------- bookmarks


def bookmarks_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return redirect_to_login(request.get_full_path())
    page = Paginator(member_bookmarks(viewer), BOOKMARKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "community/bookmarks.html",
        {"community": workspace, "viewer": viewer, "page": page},
    )


# --------------------------------------------------------------------------- buttons


def _action(request: HttpRequest) -> bool | None:
    """True for "follow"/"add", False for "unfollow"/"remove", None for anything else."""
    action = request.POST.get("action", "")
    if action in ("follow", "add"):
        return True
    if action in ("unfollow", "remove"):
        return False
    return None


def _refused(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _do(act: Callable[[], object], back: Callable[[], HttpResponse]) -> HttpResponse:
    """Run a follow or bookmark write: NotFound is a 404, any other refusal a 400."""
    try:
        act()
    except NotFound:
        raise Http404 from None
    except CommunityError as error:
        return _refused(error.message)
    return back()


@require_POST
def follow_thread(request: HttpRequest, slug: str, thread_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    here = reverse("community:thread", args=[slug, thread_id])
    if viewer is None:
        return redirect_to_login(here)
    thread = _thread(workspace, thread_id, viewer)
    on = _action(request)
    if on is None:
        return _refused(_("Choose to follow or to unfollow."))
    change = follow_add if on else follow_remove
    return _do(lambda: change(member=viewer, thread=thread), lambda: _back(request, here))


@require_POST
def follow_space(request: HttpRequest, slug: str, space_slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    here = reverse("community:space", args=[slug, space_slug])
    if viewer is None:
        return redirect_to_login(here)
    space = _space(workspace, space_slug, viewer)
    on = _action(request)
    if on is None:
        return _refused(_("Choose to follow or to unfollow."))
    change = follow_add if on else follow_remove
    return _do(lambda: change(member=viewer, space=space), lambda: _back(request, here))


@require_POST
def follow_member(request: HttpRequest, slug: str, handle: str) -> HttpResponse:
    """Follow or unfollow a member by handle (the profile page's button)."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    here = reverse("community:profile", args=[slug, handle])
    if viewer is None:
        return redirect_to_login(here)
    profile = (
        CommunityProfile.objects.filter(workspace=workspace, handle__iexact=handle)
        .select_related("member")
        .first()
    )
    if profile is None:
        raise Http404
    on = _action(request)
    if on is None:
        return _refused(_("Choose to follow or to unfollow."))
    change = follow_add if on else follow_remove
    return _do(lambda: change(member=viewer, followed=profile.member), lambda: _back(request, here))


@require_POST
def post_bookmark(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    post = Post.objects.filter(workspace=workspace, pk=post_id).first()
    if post is None:
        raise Http404
    here = f"{reverse('community:thread', args=[slug, post.thread_id])}#post-{post.number}"
    if viewer is None:
        return redirect_to_login(here)
    post.thread = _thread(workspace, post.thread_id, viewer)
    on = _action(request)
    if on is None:
        return _refused(_("Choose to add or to remove the bookmark."))
    if on:
        return _do(lambda: bookmark_add(member=viewer, post=post), lambda: _back(request, here))
    return _do(lambda: bookmark_remove(member=viewer, post=post), lambda: _back(request, here))
