"""Privacy pages for staff: a member's export and erasure, and the workspace's requests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from circolo.activity.models import Activity
from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.people.models import DataRequest, Identity, Member, MemberTag
from circolo.people.privacy import (
    REASON_MAX_LENGTH,
    REFERENCE_MAX_LENGTH,
    PrivacyError,
    data_request_erase,
    data_request_export,
    data_request_export_read,
    data_requests,
)

REQUESTS_PAGE = 50
# Merged members point at their survivor, which may have been merged again since.
MERGE_CHAIN_MAX = 20


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=REASON_MAX_LENGTH,
        help_text=gettext_lazy(
            "Kept in the audit log, e.g. “Erasure request by email, ticket 1234”. "
            "Names and addresses of the member are removed from it."
        ),
    )
    external_reference = forms.CharField(
        label=gettext_lazy("Reference"),
        max_length=REFERENCE_MAX_LENGTH,
        required=False,
        help_text=gettext_lazy("Optional: your ticket or case number."),
    )
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand that the erasure cannot be undone."),
        error_messages={"required": gettext_lazy("Tick the box to confirm the erasure.")},
    )


class _Merged(Exception):
    def __init__(self, survivor_id: int) -> None:
        super().__init__(survivor_id)
        self.survivor_id = survivor_id


def _member(request: WorkspaceRequest, member_id: int) -> Member:
    """The workspace's live member; _Merged for a merged one (its survivor's id); 404 else."""
    member = Member.objects.filter(workspace=request.workspace, pk=member_id).first()
    if member is None:
        raise Http404(_("No such member."))
    current = member
    for _hop in range(MERGE_CHAIN_MAX):
        if current.merged_into_id is None:
            break
        following = Member.objects.filter(
            workspace=request.workspace, pk=current.merged_into_id
        ).first()
        if following is None:
            raise Http404(_("No such member."))
        current = following
    else:
        raise Http404(_("No such member."))
    if current.pk != member.pk:
        raise _Merged(current.pk)
    return member


def _privacy_url(request: WorkspaceRequest, member_id: int) -> str:
    return reverse(
        "people:member_privacy", kwargs={"slug": request.workspace.slug, "member_id": member_id}
    )


def _to_survivor(request: WorkspaceRequest, merged: _Merged) -> HttpResponse:
    messages.info(request, _("That member was merged into this one: requests are made here."))
    return redirect(_privacy_url(request, merged.survivor_id))


@dataclass(frozen=True)
class RequestRow:
    request: DataRequest
    outcome: str


def _outcome(req: DataRequest) -> str:
    """One line saying how a request ended, from its summary (counts and flags only)."""
    summary = req.summary or {}
    if req.status == DataRequest.Status.PENDING:
        return _("In progress.")
    if req.status == DataRequest.Status.FAILED:
        return _("Failed: the server log has the details. Make the request again.")
    if summary.get("shop"):
        return _(
            "Store data erased — members: %(members)d, orders: %(orders)d, "
            "identities: %(identities)d."
        ) % {
            "members": summary.get("members", 0),
            "orders": summary.get("orders", 0),
            "identities": summary.get("identities", 0),
        }
    if summary.get("nothing_held"):
        return _("Nothing was held about this person.")
    if req.kind == DataRequest.Kind.EXPORT:
        if not getattr(req, "has_export", True):
            return _("The export was removed when the member was erased.")
        return _("Export — identities: %(identities)d, activities: %(activities)d.") % {
            "identities": summary.get("identities", 0),
            "activities": summary.get("activities", 0),
        }
    if summary.get("again") and not any(
        isinstance(value, int) and not isinstance(value, bool) and value
        for value in summary.values()
    ):
        return _("Already erased: nothing more was held.")
    return _(
        "Erased — identities: %(identities)d, activities stripped: %(activities)d, "
        "orders scrubbed: %(orders)d."
    ) % {
        "identities": summary.get("identities", 0),
        "activities": summary.get("activities", 0),
        "orders": summary.get("orders", 0),
    }


def _rows(requests: Iterable[DataRequest]) -> list[RequestRow]:
    return [RequestRow(request=req, outcome=_outcome(req)) for req in requests]


def _page(
    request: WorkspaceRequest, member: Member, form: EraseForm | None = None
) -> dict[str, Any]:
    workspace = request.workspace
    return {
        "member": member,
        "identities": list(
            Identity.objects.filter(workspace=workspace, member=member).order_by(
                "kind", "channel", "value"
            )
        ),
        "tag_count": MemberTag.objects.filter(workspace=workspace, member=member).count(),
        "activity_count": Activity.objects.filter(workspace=workspace, member=member).count(),
        "rows": _rows(data_requests(workspace=workspace, member=member)[:REQUESTS_PAGE]),
        "form": form or EraseForm(),
    }


@workspace_view(Perm.PRIVACY_REQUESTS)
@require_GET
def member_privacy(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    try:
        member = _member(request, member_id)
    except _Merged as merged:
        return _to_survivor(request, merged)
    return render(request, "people/privacy_member.html", _page(request, member))


@workspace_view(Perm.PRIVACY_REQUESTS)
@require_POST
def member_privacy_export(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    """Make the export now and send the browser on to its download."""
    try:
        member = _member(request, member_id)
    except _Merged as merged:
        return _to_survivor(request, merged)
    try:
        data_request = data_request_export(member=member, actor=request.user)
    except PrivacyError as error:
        messages.error(request, error.message)
        return redirect(_privacy_url(request, member.pk))
    return redirect(
        "people:data_request_download", slug=request.workspace.slug, request_id=data_request.pk
    )


@workspace_view(Perm.PRIVACY_REQUESTS)
@require_http_methods(["GET", "POST"])
def member_erase_view(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    """GET: the confirm step; POST: erase when confirmed with a reason."""
    try:
        member = _member(request, member_id)
    except _Merged as merged:
        return _to_survivor(request, merged)
    if request.method == "GET":
        return render(request, "people/privacy_erase.html", _page(request, member))
    form = EraseForm(request.POST)
    if form.is_valid():
        try:
            data_request_erase(
                member=member,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                external_reference=form.cleaned_data["external_reference"],
            )
        except PrivacyError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(
                request,
                _(
                    "The member's personal data was erased. Activity counts and order totals "
                    "are kept without anything that identifies them."
                ),
            )
            return redirect(_privacy_url(request, member.pk))
    response = render(request, "people/privacy_erase.html", _page(request, member, form))
    response.status_code = 400
    return response


@workspace_view(Perm.PRIVACY_REQUESTS)
@require_GET
def data_request_list(request: WorkspaceRequest) -> HttpResponse:
    paginator = Paginator(data_requests(workspace=request.workspace), REQUESTS_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "people/privacy_requests.html",
        {"page": page, "rows": _rows(page.object_list)},
    )


@workspace_view(Perm.PRIVACY_REQUESTS)
@require_GET
def data_request_download(request: WorkspaceRequest, request_id: int) -> HttpResponse:
    data_request = (
        DataRequest.objects.filter(workspace=request.workspace, pk=request_id)
        .select_related("workspace")
        .first()
    )
    if data_request is None:
        raise Http404(_("No such request."))
    try:
        export = data_request_export_read(data_request=data_request, actor=request.user)
    except PrivacyError as error:
        raise Http404(error.message) from None
    response = HttpResponse(
        json.dumps(export, ensure_ascii=False, indent=2), content_type="application/json"
    )
    name = f"member-{data_request.member_id or 'none'}-export-{data_request.pk}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
