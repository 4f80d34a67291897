"""Workspace-scoped views: one decorator resolves the workspace and checks the permission."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils import timezone

from circolo.core.models import Workspace
from circolo.core.permissions import Perm, require_perm


class WorkspaceRequest(HttpRequest):
    """A request inside a workspace: `workspace` and `workspace_role` are always set."""

    workspace: Workspace
    workspace_role: str


WorkspaceView = Callable[..., HttpResponseBase]


def workspace_view(perm: Perm) -> Callable[[WorkspaceView], Callable[..., HttpResponseBase]]:
    """Wrap a view taking (request, ...) under /w/<slug>/: outsiders get 404, weaker roles 403.

    The view's request carries the workspace, and times render in the workspace's time zone.
    """

    def decorator(view: WorkspaceView) -> Callable[..., HttpResponseBase]:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise Http404("No such workspace")
            role = require_perm(user=request.user, workspace=workspace, perm=perm)
            wreq = cast(WorkspaceRequest, request)
            wreq.workspace = workspace
            wreq.workspace_role = role
            try:
                timezone.activate(zoneinfo.ZoneInfo(workspace.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.activate(zoneinfo.ZoneInfo("UTC"))
            try:
                return view(wreq, *args, **kwargs)
            finally:
                timezone.deactivate()

        return wrapper

    return decorator
