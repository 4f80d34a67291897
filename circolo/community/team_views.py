"""The team's tools: thread actions on the thread page, and the content calendar."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view

from .markdown import POST_MAX_CHARS
from .models import ScheduledThread, Space, Thread
from .models.forum import ContentKind
from .services import CommunityError, member_for_user
from .team import (
    PROMOTION_SHARE_MAX,
    content_calendar,
    scheduled_thread_cancel,
    scheduled_thread_create,
    thread_manage,
)
from .views import _thread, _viewer, _workspace

CALENDAR_WEEKS = 6


@require_POST
def thread_manage_view(request: HttpRequest, slug: str, thread_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        raise Http404
    thread = _thread(workspace, thread_id, viewer)
    try:
        thread_manage(thread=thread, actor=viewer, action=request.POST.get("action", ""))
    except CommunityError as error:
        return HttpResponse(error.message, status=400)
    return redirect("community:thread", slug=slug, thread_id=thread.pk)


class ScheduleForm(forms.Form):
    space = forms.TypedChoiceField(label=_("Space"), coerce=int)
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Text"), widget=forms.Textarea(attrs={"rows": 6}), max_length=POST_MAX_CHARS
    )
    publish_at = forms.DateTimeField(
        label=_("Publish at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("In the workspace's time zone."),
    )
    content_kind = forms.ChoiceField(label=_("Content"), choices=ContentKind.choices)
    kind = forms.ChoiceField(label=_("Kind"), choices=Thread.Kind.choices)
    pinned = forms.BooleanField(label=_("Pinned"), required=False)
    announcement = forms.BooleanField(label=_("Announcement"), required=False)

    def __init__(self, *args: object, spaces: list[Space], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        space_field = self.fields["space"]
        assert isinstance(space_field, forms.TypedChoiceField)
        space_field.choices = [(space.pk, space.name) for space in spaces]


@workspace_view(Perm.MANAGE_COMMUNITY)
def calendar_view(request: WorkspaceRequest) -> HttpResponse:
    """Planned and published team threads per week, with the promotion share per week."""
    workspace = request.workspace
    spaces = list(Space.objects.filter(workspace=workspace, archived=False))
    author = member_for_user(workspace=workspace, user=request.user)
    here = reverse("community_staff:calendar", args=[workspace.slug])
    form = ScheduleForm(request.POST or None, spaces=spaces)
    status = 200
    if request.method == "POST" and request.POST.get("cancel"):
        planned = ScheduledThread.objects.filter(
            workspace=workspace, pk=request.POST.get("cancel", "0")
        ).first()
        if planned is None:
            raise Http404
        try:
            scheduled_thread_cancel(planned=planned, actor=author)
        except CommunityError as error:
            return HttpResponse(error.message, status=400)
        messages.success(request, _("The planned thread is cancelled."))
        return redirect(here)
    if request.method == "POST":
        if form.is_valid():
            space = next(space for space in spaces if space.pk == form.cleaned_data["space"])
            try:
                scheduled_thread_create(
                    space=space,
                    author=author,
                    title=form.cleaned_data["title"],
                    body=form.cleaned_data["body"],
                    publish_at=form.cleaned_data["publish_at"],
                    content_kind=form.cleaned_data["content_kind"],
                    kind=form.cleaned_data["kind"],
                    pinned=form.cleaned_data["pinned"],
                    announcement=form.cleaned_data["announcement"],
                )
            except CommunityError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, _("The thread is scheduled."))
                return redirect(here)
        status = 400
    start = parse_date(request.GET.get("start", "")) or timezone.localdate()
    weeks = content_calendar(workspace_id=workspace.pk, start=start, weeks=CALENDAR_WEEKS)
    return render(
        request,
        "community/staff_calendar.html",
        {
            "workspace": workspace,
            "weeks": weeks,
            "form": form,
            "limit_percent": round(PROMOTION_SHARE_MAX * 100),
            "earlier": (weeks[0].starts - dt.timedelta(weeks=CALENDAR_WEEKS)).isoformat(),
            "later": (weeks[0].starts + dt.timedelta(weeks=CALENDAR_WEEKS)).isoformat(),
            "has_spaces": bool(spaces),
        },
        status=status,
    )
