"""Pages of community events and poll voting.

Public, on the brand's site (/c/<workspace>/...): the events list, an event with its RSVP
buttons, the event's .ics file, and voting in a thread's poll. An event or poll in a space
the viewer may not read is a 404, like everything else in the community.

The team's (/w/<workspace>/community/events/...): the list with the new-event form, editing,
cancelling, and the RSVP list with check-in buttons.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from circolo.core.models import Workspace
from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.people.models import Member

from .events import (
    EventIn,
    event_attendees,
    event_can_check_in,
    event_can_manage,
    event_cancel,
    event_cards,
    event_create,
    event_for_viewer,
    event_local_times,
    event_manageable_spaces,
    event_update,
    events_split,
    rsvp_check_in,
    rsvp_set,
)
from .forms import EventForm
from .ics import event_ics
from .models import Event, Poll, Rsvp
from .polls import poll_close, poll_vote
from .selectors import member_is_staff
from .services import CommunityError, member_for_user
from .views import _thread, _thread_context, _viewer, _workspace

# --------------------------------------------------------------------------- public pages


@require_GET
def events_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    upcoming, past = events_split(workspace=workspace, viewer=viewer)
    return render(
        request,
        "community/events.html",
        {"community": workspace, "upcoming": upcoming, "past": past, "viewer": viewer},
    )


def _event(workspace: Workspace, event_id: int, viewer: Member | None) -> Event:
    event = event_for_viewer(workspace=workspace, event_id=event_id, viewer=viewer)
    if event is None:
        raise Http404
    return event


def _sees_link(event: Event, viewer: Member | None, rsvp: Rsvp | None, staff: bool) -> bool:
    """The join link of an online event: for members going, and for the team."""
    going = rsvp is not None and rsvp.status == Rsvp.Status.GOING
    return event.format == Event.Format.ONLINE and (going or staff)


def _event_page(
    request: HttpRequest,
    workspace: Workspace,
    event: Event,
    viewer: Member | None,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    card = event_cards([event], viewer)[0]
    staff = member_is_staff(viewer) or event_can_manage(member=viewer, space=event.space)
    now = timezone.now()
    starts, ends = event_local_times(event)
    thread = event.thread
    if thread is not None and thread.hidden_at is not None and not staff:
        thread = None
    return render(
        request,
        "community/event.html",
        {
            "community": workspace,
            "event": event,
            "card": card,
            "viewer": viewer,
            "starts": starts,
            "ends": ends,
            "thread": thread,
            "show_link": _sees_link(event, viewer, card.mine, staff),
            "open": event.cancelled_at is None and now < event.starts_at,
            "past": event.ends_at < now,
            "error": error,
        },
        status=status,
    )


@require_GET
def event_detail(request: HttpRequest, slug: str, event_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    return _event_page(request, workspace, _event(workspace, event_id, viewer), viewer)


@require_POST
def event_rsvp(request: HttpRequest, slug: str, event_id: int) -> HttpResponse:
    """Answer going ("yes") or not going ("no")."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("community:event", args=[slug, event_id]))
    viewer = member_for_user(workspace=workspace, user=request.user)
    event = _event(workspace, event_id, viewer)
    answer = request.POST.get("going", "")
    if answer not in ("yes", "no"):
        return _event_page(
            request, workspace, event, viewer, error=_("Choose going or not going."), status=400
        )
    try:
        rsvp = rsvp_set(event=event, member=viewer, going=answer == "yes")
    except CommunityError as error:
        return _event_page(request, workspace, event, viewer, error=error.message, status=400)
    if rsvp.status == Rsvp.Status.GOING:
        messages.success(request, _("You are going: see you there."))
    elif rsvp.status == Rsvp.Status.WAITLIST:
        messages.info(
            request,
            _("The event is full: you are on the waitlist and will be told if a place frees up."),
        )
    else:
        messages.info(request, _("You are not going."))
    return redirect("community:event", slug=slug, event_id=event.pk)


@require_GET
def event_ics_view(request: HttpRequest, slug: str, event_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    event = _event(workspace, event_id, viewer)
    rsvp = Rsvp.objects.filter(event=event, member=viewer).first() if viewer else None
    staff = member_is_staff(viewer) or event_can_manage(member=viewer, space=event.space)
    body = event_ics(
        event=event,
        workspace_slug=workspace.slug,
        page_url=request.build_absolute_uri(reverse("community:event", args=[slug, event.pk])),
        join_link=_sees_link(event, viewer, rsvp, staff),
        now=timezone.now(),
    )
    response = HttpResponse(body.encode("utf-8"), content_type="text/calendar; charset=utf-8")
    name = slugify(event.title) or f"event-{event.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.ics"'
    return response


# --------------------------------------------------------------------------- polls


def _poll_action(
    request: HttpRequest, slug: str, poll_id: int, act: Callable[[Poll, Member], None]
) -> HttpResponse:
    """A signed-in member's action on a poll in a thread they may read: back to the poll,
    or the thread page again with the reason (400)."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        poll_thread = Poll.objects.filter(workspace=workspace, pk=poll_id).values_list(
            "thread_id", flat=True
        )
        thread_id = poll_thread.first()
        if thread_id is None:
            raise Http404
        return redirect_to_login(reverse("community:thread", args=[slug, thread_id]))
    viewer = member_for_user(workspace=workspace, user=request.user)
    poll = Poll.objects.filter(workspace=workspace, pk=poll_id).first()
    if poll is None:
        raise Http404
    thread = _thread(workspace, poll.thread_id, viewer)
    poll.thread = thread
    try:
        act(poll, viewer)
    except CommunityError as error:
        context = _thread_context(request, workspace, thread, viewer)
        context["poll_error"] = error.message
        return render(request, "community/thread.html", context, status=400)
    return redirect(f"{reverse('community:thread', args=[slug, thread.pk])}#poll")


@require_POST
def poll_vote_view(request: HttpRequest, slug: str, poll_id: int) -> HttpResponse:
    def vote(poll: Poll, member: Member) -> None:
        poll_vote(poll=poll, member=member, option_ids=request.POST.getlist("option"))
        messages.success(request, _("Your vote is counted."))

    return _poll_action(request, slug, poll_id, vote)


@require_POST
def poll_close_view(request: HttpRequest, slug: str, poll_id: int) -> HttpResponse:
    def close(poll: Poll, member: Member) -> None:
        poll_close(poll=poll, actor=member)

    return _poll_action(request, slug, poll_id, close)


# --------------------------------------------------------------------------- the team's pages


def _staff_event(request: WorkspaceRequest, event_id: int) -> Event:
    event = (
        Event.objects.filter(workspace=request.workspace, pk=event_id)
        .select_related("space", "thread")
        .first()
    )
    if event is None:
        raise Http404
    return event


def _event_in(form: EventForm) -> EventIn:
    data = form.cleaned_data
    return EventIn(
        title=data["title"],
        description=data["description"],
        format=data["format"],
        location=data["location"],
        url=data["url"],
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        timezone=data["timezone"],
        capacity=data["capacity"],
    )


def _form_error(form: EventForm, error: CommunityError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@workspace_view(Perm.MODERATE_COMMUNITY)
def staff_event_list(request: WorkspaceRequest) -> HttpResponse:
    """All the workspace's events with their answers; the new-event form for whoever may
    create events in at least one space."""
    actor = member_for_user(workspace=request.workspace, user=request.user)
    spaces = event_manageable_spaces(member=actor, workspace=request.workspace)
    form = None
    status = 200
    if spaces:
        form = EventForm(
            request.POST or None,
            spaces=[(space.pk, space.name) for space in spaces],
            initial={"timezone": request.workspace.time_zone},
        )
        if request.method == "POST":
            if form.is_valid():
                space = next(s for s in spaces if s.pk == form.cleaned_data["space"])
                try:
                    event = event_create(space=space, host=actor, data=_event_in(form))
                except CommunityError as error:
                    _form_error(form, error)
                else:
                    messages.success(request, _("The event is published."))
                    return redirect(
                        "community_staff:event_detail",
                        slug=request.workspace.slug,
                        event_id=event.pk,
                    )
            status = 400
    elif request.method == "POST":
        return HttpResponse(status=403)
    now = timezone.now()
    events = list(
        Event.objects.filter(workspace=request.workspace)
        .select_related("space")
        .order_by("-starts_at", "-pk")[:200]
    )
    cards = event_cards(events, None)
    return render(
        request,
        "community/staff_events.html",
        {
            "workspace": request.workspace,
            "upcoming": [card for card in reversed(cards) if card.event.ends_at >= now],
            "past": [card for card in cards if card.event.ends_at < now],
            "form": form,
        },
        status=status,
    )


def _staff_event_page(
    request: WorkspaceRequest, event: Event, actor: Member, *, error: str = "", status: int = 200
) -> HttpResponse:
    rows = event_attendees(event)
    starts, ends = event_local_times(event)
    return render(
        request,
        "community/staff_event.html",
        {
            "workspace": request.workspace,
            "event": event,
            "card": event_cards([event], None)[0],
            "rows": rows,
            "checked_in": sum(1 for rsvp in rows if rsvp.checked_in_at is not None),
            "starts": starts,
            "ends": ends,
            "can_manage": event_can_manage(member=actor, space=event.space),
            "can_check_in": event_can_check_in(member=actor, event=event),
            "error": error,
        },
        status=status,
    )


@workspace_view(Perm.MODERATE_COMMUNITY)
def staff_event_detail(request: WorkspaceRequest, event_id: int) -> HttpResponse:
    """The event's answers: going, waiting in order, not going; check-in buttons."""
    event = _staff_event(request, event_id)
    actor = member_for_user(workspace=request.workspace, user=request.user)
    return _staff_event_page(request, event, actor)


@workspace_view(Perm.MODERATE_COMMUNITY)
def staff_event_edit(request: WorkspaceRequest, event_id: int) -> HttpResponse:
    event = _staff_event(request, event_id)
    actor = member_for_user(workspace=request.workspace, user=request.user)
    if not event_can_manage(member=actor, space=event.space):
        return HttpResponse(_("Only the team or the space's moderators edit events."), status=403)
    starts, ends = event_local_times(event)
    form = EventForm(
        request.POST or None,
        spaces=[(event.space.pk, event.space.name)],
        initial={
            "space": event.space.pk,
            "title": event.title,
            "description": event.description,
            "format": event.format,
            "location": event.location,
            "url": event.url,
            "starts_at": starts.replace(tzinfo=None),
            "ends_at": ends.replace(tzinfo=None),
            "timezone": event.timezone,
            "capacity": event.capacity,
        },
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                event_update(event=event, actor=actor, data=_event_in(form))
            except CommunityError as error:
                _form_error(form, error)
            else:
                messages.success(request, _("The event is updated."))
                return redirect(
                    "community_staff:event_detail", slug=request.workspace.slug, event_id=event.pk
                )
        status = 400
    return render(
        request,
        "community/staff_event_edit.html",
        {"workspace": request.workspace, "event": event, "form": form},
        status=status,
    )


@require_POST
@workspace_view(Perm.MODERATE_COMMUNITY)
def staff_event_cancel(request: WorkspaceRequest, event_id: int) -> HttpResponse:
    event = _staff_event(request, event_id)
    actor = member_for_user(workspace=request.workspace, user=request.user)
    try:
        event_cancel(event=event, actor=actor)
    except CommunityError as error:
        return _staff_event_page(request, event, actor, error=error.message, status=403)
    messages.success(request, _("The event is cancelled: members going or waiting are told."))
    return redirect("community_staff:event_detail", slug=request.workspace.slug, event_id=event.pk)


@require_POST
@workspace_view(Perm.MODERATE_COMMUNITY)
def staff_event_check_in(request: WorkspaceRequest, event_id: int) -> HttpResponse:
    """Check a member in (or undo a mistaken check-in: "undo" set)."""
    event = _staff_event(request, event_id)
    raw = request.POST.get("rsvp", "")
    rsvp = (
        Rsvp.objects.filter(event=event, pk=int(raw)).select_related("member").first()
        if raw.isdigit()
        else None
    )
    actor = member_for_user(workspace=request.workspace, user=request.user)
    if rsvp is None:
        return _staff_event_page(
            request, event, actor, error=_("Choose a member who answered this event."), status=400
        )
    rsvp.event = event
    try:
        rsvp_check_in(rsvp=rsvp, actor=actor, undo=bool(request.POST.get("undo")))
    except CommunityError as error:
        return _staff_event_page(request, event, actor, error=error.message, status=400)
    url = reverse("community_staff:event_detail", args=[request.workspace.slug, event.pk])
    return redirect(f"{url}#rsvp-{rsvp.pk}")
