"""The team's loyalty pages: the program at a glance and its books."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.loyalty.finance import finance_months, finance_summary
from circolo.loyalty.ledger import Verification, ledger_verify
from circolo.loyalty.models import Dispute, Referral
from circolo.loyalty.rules import program_get


@workspace_view(Perm.VIEW_MEMBERS)
def program_home(request: WorkspaceRequest) -> HttpResponse:
    """The program's dashboard: members with points, points outstanding and pending, what
    waits for the team (disputes, referrals to review), and every loyalty page."""
    workspace = request.workspace
    return render(
        request,
        "loyalty/staff_home.html",
        {
            "program": program_get(workspace_id=workspace.pk),
            "summary": finance_summary(workspace_id=workspace.pk),
            "open_disputes": Dispute.objects.filter(
                workspace=workspace, status=Dispute.Status.OPEN
            ).count(),
            "referrals_review": Referral.objects.filter(
                workspace=workspace, status=Referral.Status.REVIEW
            ).count(),
        },
    )


@workspace_view(Perm.VIEW_MEMBERS)
def finance(request: WorkspaceRequest) -> HttpResponse:
    """Points outstanding, pending, issued, redeemed and expired with their value, the last
    12 months, and (POST) a full check of the ledger."""
    workspace = request.workspace
    verification: Verification | None = None
    if request.method == "POST":
        if request.POST.get("action") != "verify":
            return HttpResponse(status=400)
        verification = ledger_verify(workspace_id=workspace.pk)
    return render(
        request,
        "loyalty/staff_finance.html",
        {
            "summary": finance_summary(workspace_id=workspace.pk),
            "months": finance_months(workspace_id=workspace.pk),
            "verification": verification,
        },
    )
