"""Disputes on both sides: a member asks about one of their movements
(/c/<slug>/rewards/history/<id>/dispute/) and reads the answers (/rewards/disputes/); the
team answers open disputes (/w/<slug>/loyalty/disputes/, MANAGE_COMMUNITY to answer)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from circolo.community.services import member_for_user
from circolo.core.models import Workspace
from circolo.core.permissions import Perm, has_perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty import ledger
from circolo.loyalty.disputes import (
    DisputeError,
    dispute_open,
    dispute_resolve,
    disputes_answered,
    disputes_open,
    member_disputes,
)
from circolo.loyalty.forms import DisputeAnswerForm, DisputeForm
from circolo.loyalty.history import movement_text
from circolo.loyalty.models import Dispute, Movement

MEMBER_DISPUTES = 100
OPEN_PAGE = 100


def _workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise Http404
    return workspace


# --------------------------------------------------------------------------- member side


def dispute_new(request: HttpRequest, slug: str, movement_id: int) -> HttpResponse:
    """Ask the team about one movement of the signed-in member's history."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    member = member_for_user(workspace=workspace, user=request.user)
    movement = Movement.objects.filter(workspace=workspace, member=member, pk=movement_id).first()
    if movement is None:
        raise Http404
    open_dispute = Dispute.objects.filter(movement=movement, status=Dispute.Status.OPEN).first()
    form = DisputeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                dispute_open(member=member, movement=movement, message=form.cleaned_data["message"])
            except DisputeError as error:
                form.add_error("message" if error.field == "message" else None, error.message)
            else:
                messages.success(
                    request, _("Your question is with the team. The answer comes here.")
                )
                return redirect("loyalty:disputes", workspace.slug)
        status = 400
    return render(
        request,
        "loyalty/dispute_form.html",
        {
            "community": workspace,
            "member": member,
            "movement": movement,
            "text": movement_text(movement),
            "open_dispute": open_dispute,
            "form": form,
        },
        status=status,
    )


def dispute_list(request: HttpRequest, slug: str) -> HttpResponse:
    """The signed-in member's questions about their points, with the team's answers."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    member = member_for_user(workspace=workspace, user=request.user)
    rows = [
        {"dispute": dispute, "text": movement_text(dispute.movement)}
        for dispute in member_disputes(member=member)[:MEMBER_DISPUTES]
    ]
    return render(
        request,
        "loyalty/disputes.html",
        {"community": workspace, "member": member, "rows": rows},
    )


# --------------------------------------------------------------------------- team side


def _can_answer(request: WorkspaceRequest) -> bool:
    return has_perm(user=request.user, workspace=request.workspace, perm=Perm.MANAGE_COMMUNITY)


def _staff_page(
    request: WorkspaceRequest,
    *,
    failed: tuple[int, DisputeAnswerForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = request.workspace
    disputes = list(disputes_open(workspace=workspace)[:OPEN_PAGE])
    balances = ledger.members_balances(
        workspace_id=workspace.pk, member_ids=sorted({d.member_id for d in disputes})
    )
    rows = [
        {
            "dispute": dispute,
            "text": movement_text(dispute.movement),
            "balance": balances[dispute.member_id],
            "form": failed[1]
            if failed is not None and failed[0] == dispute.pk
            else DisputeAnswerForm(prefix=f"d{dispute.pk}"),
        }
        for dispute in disputes
    ]
    answered = [
        {"dispute": dispute, "text": movement_text(dispute.movement)}
        for dispute in disputes_answered(workspace=workspace)
    ]
    return render(
        request,
        "loyalty/staff_disputes.html",
        {
            "rows": rows,
            "answered": answered,
            "can_answer": _can_answer(request),
        },
        status=status,
    )


@workspace_view(Perm.VIEW_MEMBERS)
def staff_disputes(request: WorkspaceRequest) -> HttpResponse:
    """Open disputes, oldest first, with the movement explained and the member's balance;
    the latest answers below."""
    return _staff_page(request)


@workspace_view(Perm.VIEW_MEMBERS)
def staff_dispute_resolve(request: WorkspaceRequest, dispute_id: int) -> HttpResponse:
    """Accept (with points) or reject one open dispute, with an answer (POST)."""
    if request.method != "POST":
        return redirect("loyalty_staff:disputes", request.workspace.slug)
    if not _can_answer(request):
        return HttpResponse(status=403)
    dispute = Dispute.objects.filter(workspace=request.workspace, pk=dispute_id).first()
    if dispute is None:
        raise Http404
    form = DisputeAnswerForm(request.POST, prefix=f"d{dispute.pk}")
    if form.is_valid():
        data = form.cleaned_data
        try:
            dispute_resolve(
                dispute=dispute,
                actor=request.user,
                accept=data["decision"] == "accept",
                resolution=data["resolution"],
                points=data["points"] or 0,
            )
        except DisputeError as error:
            if error.field == "dispute":
                # Answered meanwhile (another tab, a colleague): nothing left to show it on.
                messages.error(request, error.message)
                return redirect("loyalty_staff:disputes", request.workspace.slug)
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, _("The answer is sent to the member."))
            return redirect("loyalty_staff:disputes", request.workspace.slug)
    return _staff_page(request, failed=(dispute.pk, form), status=400)
