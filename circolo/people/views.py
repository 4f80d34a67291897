"""Member pages: the filterable list with its CSV export, and the profile with merges and tags."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from circolo.activity.kinds import kind_label
from circolo.activity.models import Activity
from circolo.activity.scores import level_label, level_of, love_now
from circolo.activity.selectors import member_score, member_timeline
from circolo.core.models import Workspace
from circolo.core.permissions import ROLE_PERMISSIONS, Perm
from circolo.core.web import WorkspaceRequest, workspace_view
from circolo.people.forms import (
    FIRST_CLICK,
    SORT_FIELDS,
    MemberEditForm,
    MemberFilterForm,
    MemberFilters,
    TagForm,
)
from circolo.people.models import Identity, IdentityKind, Member, MemberTag, MergeSuggestion
from circolo.people.selectors import (
    member_csv_rows,
    member_get,
    member_list,
    members_by_purchases,
    merge_history,
    pending_suggestions,
    workspace_tags,
)
from circolo.people.services import (
    MemberError,
    MergeError,
    member_tag_add,
    member_tag_remove,
    member_update,
    merge_suggestion_accept,
    merge_suggestion_reject,
    merge_undo,
)

PAGE_SIZE = 50
TIMELINE_PAGE = 50
# Properties shown with each timeline entry, and how much of each value.
TIMELINE_PROPERTIES = 4
PROPERTY_CHARS = 80
# Merged members point at their survivor, which may have been merged again since.
MERGE_CHAIN_MAX = 20


def _can(request: WorkspaceRequest, perm: Perm) -> bool:
    return perm in ROLE_PERMISSIONS[request.workspace_role]


def _is_partial(request: WorkspaceRequest) -> bool:
    """An htmx request that swaps part of the page (not htmx restoring a page from history)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not getattr(htmx, "history_restore_request", False)


# --------------------------------------------------------------------------- member list


def _filters(request: WorkspaceRequest) -> tuple[MemberFilterForm, MemberFilters]:
    form = MemberFilterForm(request.GET, tags=workspace_tags(workspace=request.workspace))
    return form, form.filters()


def _filtered(workspace: Workspace, filters: MemberFilters) -> QuerySet[Member]:
    """The member list as filtered on the page; the export streams exactly this queryset."""
    members = member_list(
        workspace=workspace,
        q=filters.q,
        tag=filters.tag,
        level=filters.level,
        active_within_days=filters.active_within_days,
        sort=filters.sort,
    )
    if filters.never_active:
        members = members.filter(score__last_active__isnull=True)
    if filters.pending:
        pending = pending_suggestions(workspace=workspace)
        members = members.filter(
            Q(pk__in=pending.values("member_a_id")) | Q(pk__in=pending.values("member_b_id"))
        )
    if filters.by_purchases:
        members = members_by_purchases(
            members, workspace=workspace, **filters.purchase_bounds(workspace.currency)
        )
    return members


@dataclass(frozen=True)
class MemberRow:
    member: Member
    love: float
    level: str
    level_label: str
    email: str
    handle: str
    tags: list[str]
    pending_merge: bool


@dataclass(frozen=True)
class SortHeader:
    key: str
    label: str
    query: str
    direction: str  # "ascending", "descending" or "" (aria-sort)


def _rows(workspace: Workspace, members: list[Member]) -> list[MemberRow]:
    ids = [member.pk for member in members]
    pending_ids: set[int] = set()
    if ids:
        for a_id, b_id in (
            pending_suggestions(workspace=workspace)
            .filter(Q(member_a_id__in=ids) | Q(member_b_id__in=ids))
            .values_list("member_a_id", "member_b_id")
        ):
            pending_ids.update((a_id, b_id))
    now = timezone.now()
    rows = []
    for member in members:
        growth = getattr(member, "love_growth", None)
        love = love_now(growth, now) if growth is not None else 0.0
        level = level_of(love)
        identities: list[Identity] = getattr(member, "page_identities", [])
        email = next((i.value for i in identities if i.kind == IdentityKind.EMAIL), "")
        handle = next((i.value for i in identities if i.kind == IdentityKind.HANDLE), "")
        tags: list[MemberTag] = getattr(member, "page_tags", [])
        rows.append(
            MemberRow(
                member=member,
                love=love,
                level=level,
                level_label=level_label(level),
                email=email,
                handle=handle,
                tags=[tag.tag for tag in tags],
                pending_merge=member.pk in pending_ids,
            )
        )
    return rows


def _sort_headers(filters: MemberFilters) -> dict[str, SortHeader]:
    headers = {}
    for key, label in SORT_FIELDS.items():
        if filters.sort == key:
            direction, next_sort = "ascending", f"-{key}"
        elif filters.sort == f"-{key}":
            direction, next_sort = "descending", key
        else:
            direction, next_sort = "", FIRST_CLICK[key]
        headers[key] = SortHeader(
            key=key, label=str(label), query=filters.as_query(sort=next_sort), direction=direction
        )
    return headers


@workspace_view(Perm.VIEW_MEMBERS)
def member_list_view(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form, filters = _filters(request)
    members = _filtered(workspace, filters).prefetch_related(
        Prefetch(
            "identities",
            queryset=Identity.objects.filter(
                workspace=workspace, kind__in=[IdentityKind.EMAIL, IdentityKind.HANDLE]
            ).order_by("-verified", "pk"),
            to_attr="page_identities",
        ),
        Prefetch(
            "tags",
            queryset=MemberTag.objects.filter(workspace=workspace).order_by("tag"),
            to_attr="page_tags",
        ),
    )
    paginator = Paginator(members, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": _rows(workspace, list(page.object_list)),
        "headers": _sort_headers(filters),
        "page_query": filters.as_query(),
        "can_export": _can(request, Perm.EXPORT_MEMBERS),
        "has_any_member": filters.is_filtered or paginator.count > 0,
    }
    if _is_partial(request):
        response = render(request, "people/_member_results.html", context)
    else:
        response = render(request, "people/member_list.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


class _Echo:
    """A file-like object that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterator[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # A byte order mark tells spreadsheet apps the file is UTF-8 (names in any script).
    yield "\ufeff"
    for row in rows:
        yield writer.writerow(row)


@workspace_view(Perm.EXPORT_MEMBERS)
def member_export(request: WorkspaceRequest) -> StreamingHttpResponse:
    workspace = request.workspace
    _form, filters = _filters(request)
    rows = member_csv_rows(workspace=workspace, queryset=_filtered(workspace, filters))
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="members-{workspace.slug}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- member profile


def _survivor_id(workspace: Workspace, member_id: int) -> int | None:
    """Where a merged member's address leads: the live member at the end of its merge chain."""
    current = member_id
    for _hop in range(MERGE_CHAIN_MAX):
        row = (
            Member.objects.filter(workspace=workspace, pk=current)
            .values_list("merged_into_id")
            .first()
        )
        if row is None:
            return None
        merged_into = row[0]
        if merged_into is None:
            return current if current != member_id else None
        current = merged_into
    return None


class MergedMember(Exception):
    """The member asked for was merged: its address now shows the survivor."""

    def __init__(self, survivor_id: int) -> None:
        super().__init__(survivor_id)
        self.survivor_id = survivor_id


def _member(request: WorkspaceRequest, member_id: int) -> Member:
    """The workspace's live member; MergedMember for a merged one; 404 for anything else."""
    try:
        return member_get(workspace=request.workspace, member_id=member_id)
    except Member.DoesNotExist:
        survivor = _survivor_id(request.workspace, member_id)
        if survivor is None:
            raise Http404(_("No such member.")) from None
        raise MergedMember(survivor) from None


def _merged_redirect(request: WorkspaceRequest, merged: MergedMember) -> HttpResponse:
    messages.info(
        request,
        _("That member was merged into this one, so their profile now shows here."),
    )
    return redirect(
        "people:member_detail", slug=request.workspace.slug, member_id=merged.survivor_id
    )


def _detail_url(request: WorkspaceRequest, member: Member, anchor: str = "") -> str:
    url = reverse(
        "people:member_detail", kwargs={"slug": request.workspace.slug, "member_id": member.pk}
    )
    return f"{url}#{anchor}" if anchor else url


@dataclass(frozen=True)
class TimelineItem:
    activity: Activity
    kind_label: str
    properties: list[tuple[str, str]]


@dataclass(frozen=True)
class SuggestionView:
    suggestion: MergeSuggestion
    other: Member
    score_percent: int
    reasons: list[tuple[str, str]]
    other_identities: list[Identity]


def _shown_properties(properties: dict[str, Any]) -> list[tuple[str, str]]:
    """The first few plain values of an activity's properties, shortened for one line."""
    shown: list[tuple[str, str]] = []
    for key, value in properties.items():
        if len(shown) == TIMELINE_PROPERTIES:
            break
        if isinstance(value, bool | int | float | str) and str(value).strip():
            text = str(value)
            if len(text) > PROPERTY_CHARS:
                text = text[: PROPERTY_CHARS - 1] + "…"
            shown.append((str(key), text))
    return shown


def _timeline(
    workspace: Workspace, member: Member, before_id: int | None
) -> tuple[list[TimelineItem], int | None]:
    """One page of the member's activities and the cursor of the next page (None at the end)."""
    activities = member_timeline(
        workspace=workspace, member=member, before_id=before_id, limit=TIMELINE_PAGE + 1
    )
    more = len(activities) > TIMELINE_PAGE
    activities = activities[:TIMELINE_PAGE]
    items = [
        TimelineItem(
            activity=activity,
            kind_label=kind_label(activity.kind),
            properties=_shown_properties(activity.properties or {}),
        )
        for activity in activities
    ]
    return items, (activities[-1].pk if more and activities else None)


def _before(request: WorkspaceRequest) -> int | None:
    raw = request.GET.get("before", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _suggestions(workspace: Workspace, member: Member) -> list[SuggestionView]:
    suggestions = list(pending_suggestions(workspace=workspace, member=member))
    others = {s.member_b if s.member_a_id == member.pk else s.member_a for s in suggestions}
    identities: dict[int, list[Identity]] = {}
    if others:
        for identity in Identity.objects.filter(
            workspace=workspace, member_id__in=[other.pk for other in others]
        ).order_by("kind", "value"):
            identities.setdefault(identity.member_id, []).append(identity)
    views = []
    for suggestion in suggestions:
        other = suggestion.member_b if suggestion.member_a_id == member.pk else suggestion.member_a
        views.append(
            SuggestionView(
                suggestion=suggestion,
                other=other,
                score_percent=round(suggestion.score * 100),
                reasons=suggestion.reason_labels(),
                other_identities=identities.get(other.pk, []),
            )
        )
    return views


@workspace_view(Perm.VIEW_MEMBERS)
def member_detail(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    workspace = request.workspace
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    items, next_before = _timeline(workspace, member, _before(request))
    if _is_partial(request) and "before" in request.GET:
        response = render(
            request,
            "people/_timeline_items.html",
            {"member": member, "items": items, "next_before": next_before},
        )
        patch_vary_headers(response, ("HX-Request",))
        return response
    score = member_score(member=member)
    context = {
        "member": member,
        "identities": list(
            Identity.objects.filter(workspace=workspace, member=member).order_by(
                "kind", "channel", "value"
            )
        ),
        "score": score,
        "level_label": level_label(score.level),
        "tags": list(
            MemberTag.objects.filter(workspace=workspace, member=member)
            .order_by("tag")
            .values_list("tag", flat=True)
        ),
        "items": items,
        "next_before": next_before,
        "from_start": "before" not in request.GET,
        "suggestions": _suggestions(workspace, member),
        "can_privacy": _can(request, Perm.PRIVACY_REQUESTS),
        "history": list(merge_history(workspace=workspace, member=member)),
        "tag_form": TagForm(),
        "edit_form": MemberEditForm(
            initial={
                "display_name": member.display_name,
                "city": member.city,
                "country": member.country,
                "languages": ", ".join(member.languages),
                "consent_email": member.consent_email,
                "consent_profiling": member.consent_profiling,
            }
        ),
        "can_edit": _can(request, Perm.EDIT_MEMBERS),
        "can_merge": _can(request, Perm.MERGE_MEMBERS),
        "time_zone": timezone.get_current_timezone_name(),
    }
    response = render(request, "people/member_detail.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --------------------------------------------------------------------------- profile actions


def _profile_form_post(
    request: WorkspaceRequest,
    member_id: int,
    *,
    form: forms.Form,
    section: str,
    apply: Callable[[Member, dict[str, Any]], object],
    success: str,
    labelled: bool = False,
) -> HttpResponse:
    """The POST flow of the profile's small forms: a merged member redirects to the survivor;
    form and service errors become messages; every outcome returns to the profile section."""
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if labelled and field in form.fields else None
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else str(error))
    else:
        try:
            apply(member, form.cleaned_data)
        except MemberError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, success)
    return redirect(_detail_url(request, member, section))


@workspace_view(Perm.EDIT_MEMBERS)
@require_POST
def member_tag_add_view(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    return _profile_form_post(
        request,
        member_id,
        form=TagForm(request.POST),
        section="tags",
        apply=lambda member, data: member_tag_add(
            member=member, tag=data["tag"], actor=request.user
        ),
        success=_("Tag added."),
    )


@workspace_view(Perm.EDIT_MEMBERS)
@require_POST
def member_edit_view(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    return _profile_form_post(
        request,
        member_id,
        form=MemberEditForm(request.POST),
        section="details",
        apply=lambda member, data: member_update(member=member, actor=request.user, **data),
        success=_("Details saved."),
        labelled=True,
    )


@workspace_view(Perm.EDIT_MEMBERS)
@require_POST
def member_tag_remove_view(request: WorkspaceRequest, member_id: int) -> HttpResponse:
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    form = TagForm(request.POST)
    removed = False
    if form.is_valid():
        try:
            removed = member_tag_remove(
                member=member, tag=form.cleaned_data["tag"], actor=request.user
            )
        except MemberError as error:
            messages.error(request, error.message)
            return redirect(_detail_url(request, member, "tags"))
    if removed:
        messages.success(request, _("Tag removed."))
    else:
        messages.warning(request, _("The member did not have that tag."))
    return redirect(_detail_url(request, member, "tags"))


def _suggestion_for(
    request: WorkspaceRequest, member: Member, suggestion_id: int
) -> MergeSuggestion:
    """The workspace's suggestion about `member` (any status); 404 for anything else."""
    suggestion = (
        MergeSuggestion.objects.filter(workspace=request.workspace, pk=suggestion_id)
        .filter(Q(member_a=member) | Q(member_b=member))
        .select_related("member_a", "member_b")
        .first()
    )
    if suggestion is None:
        raise Http404(_("No such merge suggestion."))
    return suggestion


@workspace_view(Perm.MERGE_MEMBERS)
@require_POST
def suggestion_accept(
    request: WorkspaceRequest, member_id: int, suggestion_id: int
) -> HttpResponse:
    """Accepting on a profile keeps that member: the other one is merged into it."""
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    suggestion = _suggestion_for(request, member, suggestion_id)
    other = suggestion.member_b if suggestion.member_a_id == member.pk else suggestion.member_a
    try:
        merge_suggestion_accept(suggestion=suggestion, actor=request.user, survivor=member)
    except MergeError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _(
                "%(merged)s was merged into %(survivor)s: identities, activities and tags now "
                "belong here. You can undo this in the merge history."
            )
            % {"merged": other, "survivor": member},
        )
    return redirect(_detail_url(request, member))


@workspace_view(Perm.MERGE_MEMBERS)
@require_POST
def suggestion_reject(
    request: WorkspaceRequest, member_id: int, suggestion_id: int
) -> HttpResponse:
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    suggestion = _suggestion_for(request, member, suggestion_id)
    try:
        merge_suggestion_reject(suggestion=suggestion, actor=request.user)
    except MergeError as error:
        messages.error(request, error.message)
    else:
        other = suggestion.member_b if suggestion.member_a_id == member.pk else suggestion.member_a
        messages.success(
            request,
            _("Suggestion rejected: %(member)s and %(other)s stay separate members.")
            % {"member": member, "other": other},
        )
    return redirect(_detail_url(request, member, "merges"))


@workspace_view(Perm.MERGE_MEMBERS)
@require_POST
def merge_undo_view(request: WorkspaceRequest, member_id: int, record_id: int) -> HttpResponse:
    try:
        member = _member(request, member_id)
    except MergedMember as merged:
        return _merged_redirect(request, merged)
    record = merge_history(workspace=request.workspace, member=member).filter(pk=record_id).first()
    if record is None:
        raise Http404(_("No such merge."))
    try:
        merge_undo(record=record, actor=request.user)
    except MergeError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Merge undone: %(merged)s is a separate member again.") % {"merged": record.merged},
        )
    return redirect(_detail_url(request, member, "history"))
