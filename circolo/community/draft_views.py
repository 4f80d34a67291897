"""Saving a draft from the post forms: by htmx as the member types, or with the form's
"Save draft" button when scripts are off."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .drafts import draft_save
from .models import Space
from .services import CommunityError
from .views import _space, _thread, _viewer, _workspace


@require_POST
def draft_view(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        raise Http404
    kind, _sep, raw_id = request.POST.get("draft_key", "").partition(":")
    if not raw_id.isdigit() or kind not in ("space", "thread"):
        return HttpResponse(_("Unknown draft."), status=400)
    if kind == "space":
        space = Space.objects.filter(workspace=workspace, pk=int(raw_id)).first()
        if space is None:
            raise Http404
        place = _space(workspace, space.slug, viewer)
        back = reverse("community:thread_new", args=[slug, place.slug])
    else:
        thread = _thread(workspace, int(raw_id), viewer)
        back = reverse("community:thread", args=[slug, thread.pk]) + "#reply-title"
    try:
        draft_save(
            member=viewer,
            key=f"{kind}:{raw_id}",
            title=request.POST.get("title", ""),
            body=request.POST.get("body", ""),
        )
    except CommunityError as error:
        return HttpResponse(error.message, status=400)
    if request.headers.get("HX-Request"):
        return HttpResponse(
            format_html(
                "{} {}",
                _("Draft saved at"),
                time_format(timezone.localtime(), "TIME_FORMAT"),
            )
        )
    messages.success(request, _("Your draft is saved: it will be here when you come back."))
    return redirect(back)
