"""The team's community pages inside the workspace: the spaces, and creating one."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view

from .forms import SpaceForm
from .models import Space, Thread
from .services import CommunityError, space_create


@workspace_view(Perm.VIEW_MEMBERS)
def space_list(request: WorkspaceRequest) -> HttpResponse:
    spaces = list(Space.objects.filter(workspace=request.workspace).select_related("parent"))
    counts = dict(
        Thread.objects.filter(workspace=request.workspace)
        .values_list("space_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    can_manage = has_perm(
        user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY
    )
    form = None
    status = 200
    if can_manage:
        parents = [(s.pk, s.name) for s in spaces if s.parent_id is None]
        form = SpaceForm(request.POST or None, parents=parents)
        if request.method == "POST":
            if form.is_valid():
                parent = next((s for s in spaces if s.pk == form.cleaned_data["parent"]), None)
                try:
                    space = space_create(
                        workspace=request.workspace,
                        actor=request.user,
                        name=form.cleaned_data["name"],
                        slug=form.cleaned_data["slug"],
                        description=form.cleaned_data["description"],
                        guidelines=form.cleaned_data["guidelines"],
                        language=form.cleaned_data["language"],
                        visibility=form.cleaned_data["visibility"],
                        segment=form.segment(),
                        parent=parent,
                    )
                except CommunityError as error:
                    field = error.field if error.field in form.fields else None
                    if error.field == "segment":
                        field = "segment_tags"
                    form.add_error(field, error.message)
                else:
                    return redirect(
                        f"{reverse('community_staff:space_list', args=[request.workspace.slug])}"
                        f"#space-{space.pk}"
                    )
            status = 400
    elif request.method == "POST":
        return HttpResponse(status=403)
    return render(
        request,
        "community/staff_spaces.html",
        {
            "workspace": request.workspace,
            "spaces": [(space, counts.get(space.pk, 0)) for space in spaces],
            "form": form,
        },
        status=status,
    )
