"""The team's community pages inside the workspace: the spaces, and creating one."""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view

from .forms import SpaceForm
from .models import Flag, Post, Space, Thread
from .services import (
    CommunityError,
    member_for_user,
    post_approve,
    post_moderate,
    post_reject,
    space_create,
)


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


@workspace_view(Perm.MODERATE_COMMUNITY)
def moderation_queue(request: WorkspaceRequest) -> HttpResponse:
    """Posts waiting for a decision (open flags) and posts hidden, with their flags."""
    if request.method == "POST":
        post = Post.objects.filter(
            workspace=request.workspace, pk=request.POST.get("post", "0") or 0
        ).first()
        if post is None:
            return HttpResponse(status=404)
        moderator = member_for_user(workspace=request.workspace, user=request.user)
        action = request.POST.get("action", "")
        try:
            if action == "approve":
                post_approve(post=post, moderator=moderator)
            elif action == "reject":
                post_reject(post=post, moderator=moderator, reason=request.POST.get("reason", ""))
            else:
                post_moderate(
                    post=post,
                    moderator=moderator,
                    action=action,
                    reason=request.POST.get("reason", ""),
                )
        except CommunityError as error:
            return HttpResponse(error.message, status=400)
        return redirect(reverse("community_staff:moderation", args=[request.workspace.slug]))
    flagged = Flag.objects.filter(workspace=request.workspace, outcome=Flag.Outcome.OPEN).values(
        "post_id"
    )
    posts = list(
        Post.objects.filter(workspace=request.workspace)
        .filter(Q(pk__in=flagged) | Q(hidden_at__isnull=False))
        .select_related("author", "thread", "thread__space")
        .order_by("-hidden_at", "-created_at")[:100]
    )
    flags: dict[int, list[Flag]] = {}
    for flag in Flag.objects.filter(post__in=posts).select_related("member").order_by("pk"):
        flags.setdefault(flag.post_id, []).append(flag)
    return render(
        request,
        "community/moderation.html",
        {
            "workspace": request.workspace,
            "rows": [{"post": post, "flags": flags.get(post.pk, [])} for post in posts],
        },
    )
