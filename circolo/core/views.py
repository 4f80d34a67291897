"""Workspace pages: the list and landing page, creation, settings, team, invitations, audit log.

Every form posts to its own URL and works without JavaScript (redirect back with a message);
with htmx the same URLs answer with the changed table row. htmx 2 does not swap 4xx
responses, so a rejected htmx edit answers 200 with the row showing the error.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from circolo.activity.kinds import KINDS, WEIGHT_MAX, WEIGHT_MIN, weights_for
from circolo.activity.services import kind_weight_set
from circolo.core.apikeys import SCOPES, apikey_create, apikey_revoke, workspace_api_keys
from circolo.core.forms import (
    ApiKeyForm,
    InvitationForm,
    KindWeightForm,
    RoleForm,
    WorkspaceCreateForm,
    WorkspaceSettingsForm,
)
from circolo.core.models import ApiKey, AuditLog, Invitation, Role, WorkspaceRole
from circolo.core.permissions import ROLE_PERMISSIONS, Perm, can_grant
from circolo.core.services import (
    WorkspaceError,
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_problem,
    invitation_revoke,
    role_remove,
    role_set,
    user_has_verified_email,
    workspace_create,
    workspace_update,
)
from circolo.core.web import WorkspaceRequest, workspace_view

AUDIT_PAGE_SIZE = 50

# Readable names for the audit actions written by Circolo's services; other actions show
# their code, which is still meaningful ("member.merged").
AUDIT_ACTIONS = {
    "workspace.created": gettext_lazy("Workspace created"),
    "workspace.updated": gettext_lazy("Settings changed"),
    "invitation.created": gettext_lazy("Invitation sent"),
    "invitation.accepted": gettext_lazy("Invitation accepted"),
    "invitation.revoked": gettext_lazy("Invitation withdrawn"),
    "role.added": gettext_lazy("Added to the team"),
    "role.changed": gettext_lazy("Role changed"),
    "role.removed": gettext_lazy("Removed from the team"),
    "activity.kind_weight_set": gettext_lazy("Activity weight changed"),
    "apikey.create": gettext_lazy("API key created"),
    "apikey.revoke": gettext_lazy("API key revoked"),
}


def _error_text(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return " ".join(str(message) for message in errors.values())
    return str(exc)


def _add_service_errors(form: Any, exc: WorkspaceError) -> None:
    for field, message in exc.errors.items():
        form.add_error(field if field in form.fields else None, message)


def _grantable(role: str) -> list[str]:
    return [value for value in Role.values if can_grant(granter_role=role, role=value)]


def _back(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect after a POST; htmx requests get a client-side redirect so the page reloads."""
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def _settings_url(request: WorkspaceRequest, section: str = "") -> str:
    url = reverse("core:workspace_settings", args=[request.workspace.slug])
    return f"{url}#{section}" if section else url


# --- landing, workspace list and creation ---------------------------------------------------


def workspace_list(request: HttpRequest) -> HttpResponse:
    """A landing page for visitors; the signed-in user's workspaces with their role."""
    if not request.user.is_authenticated:
        return render(request, "core/landing.html")
    memberships = (
        WorkspaceRole.objects.filter(user=request.user)
        .select_related("workspace")
        .order_by("workspace__name", "workspace__slug")
    )
    rows = [
        {
            "workspace": membership.workspace,
            "role_label": Role(membership.role).label,
            "can_view": Perm.VIEW_DASHBOARD in ROLE_PERMISSIONS[membership.role],
            "can_configure": Perm.MANAGE_SETTINGS in ROLE_PERMISSIONS[membership.role],
        }
        for membership in memberships
    ]
    return render(request, "core/workspace_list.html", {"rows": rows})


@login_required
def workspace_create_view(request: HttpRequest) -> HttpResponse:
    """Create a workspace; the signed-in user becomes its owner."""
    form = WorkspaceCreateForm(
        request.POST or None,
        initial={"default_language": request.LANGUAGE_CODE, "currency": "EUR", "time_zone": "UTC"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            workspace = workspace_create(owner=request.user, **form.cleaned_data)
        except WorkspaceError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, _("Workspace %(name)s created.") % {"name": workspace.name})
            return redirect("core:workspace_settings", slug=workspace.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "core/workspace_create.html", {"form": form}, status=status)


# --- settings page ----------------------------------------------------------------------------


def _team_rows(request: WorkspaceRequest) -> list[dict[str, Any]]:
    actor_role = request.workspace_role
    grantable = _grantable(actor_role)
    # The team: community members (role "member") are many and listed with the members.
    memberships = (
        WorkspaceRole.objects.filter(workspace=request.workspace)
        .exclude(role=Role.MEMBER)
        .select_related("user")
        .order_by("user__email")
    )
    rank = {value: index for index, value in enumerate(Role.values)}
    rows = []
    for membership in sorted(memberships, key=lambda m: (rank[m.role], m.user.email)):
        manageable = can_grant(granter_role=actor_role, role=membership.role)
        rows.append(
            {
                "membership": membership,
                "role_label": Role(membership.role).label,
                "is_self": membership.user_id == request.user.pk,
                "can_change": manageable,
                "choices": [(value, Role(value).label) for value in grantable],
            }
        )
    return rows


def _weight_rows(request: WorkspaceRequest) -> list[dict[str, Any]]:
    weights = weights_for(workspace=request.workspace)
    return [
        {
            "key": key,
            "label": kind.label,
            "default": kind.default_weight,
            "weight": weights.get(key, kind.default_weight),
        }
        for key, kind in KINDS.items()
    ]


def _settings_context(request: WorkspaceRequest, **overrides: Any) -> dict[str, Any]:
    workspace = request.workspace
    perms = ROLE_PERMISSIONS[request.workspace_role]
    context: dict[str, Any] = {
        "settings_form": WorkspaceSettingsForm(
            initial={
                "name": workspace.name,
                "default_language": workspace.default_language,
                "currency": workspace.currency,
                "time_zone": workspace.time_zone,
            }
        ),
        "can_manage_team": Perm.MANAGE_TEAM in perms,
        "can_manage_keys": Perm.MANAGE_API_KEYS in perms,
        "weight_rows": _weight_rows(request),
        "weight_min": WEIGHT_MIN,
        "weight_max": WEIGHT_MAX,
        "now": timezone.now(),
    }
    if context["can_manage_team"]:
        context["team_rows"] = _team_rows(request)
        context["invitations"] = list(
            Invitation.objects.filter(
                workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True
            )
            .select_related("invited_by")
            .order_by("-created_at")
        )
        context["invitation_form"] = InvitationForm(grantable=_grantable(request.workspace_role))
    if context["can_manage_keys"]:
        context["api_keys"] = list(workspace_api_keys(workspace=workspace, include_revoked=True))
        context["apikey_form"] = ApiKeyForm(scopes=SCOPES)
    context.update(overrides)
    return context


def _render_settings(
    request: WorkspaceRequest, status: int = 200, **overrides: Any
) -> HttpResponse:
    return render(
        request,
        "core/workspace_settings.html",
        _settings_context(request, **overrides),
        status=status,
    )


@workspace_view(Perm.MANAGE_SETTINGS)
def workspace_settings(request: WorkspaceRequest) -> HttpResponse:
    """General settings, team, invitations, activity weights and API keys of one workspace."""
    if request.method != "POST":
        return _render_settings(request)
    form = WorkspaceSettingsForm(request.POST)
    if form.is_valid():
        try:
            workspace_update(workspace=request.workspace, actor=request.user, **form.cleaned_data)
        except WorkspaceError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, _("Settings saved."))
            return redirect(_settings_url(request, "general"))
    return _render_settings(request, status=400, settings_form=form)


# --- team -------------------------------------------------------------------------------------


def _team_member(request: WorkspaceRequest, user_id: int) -> WorkspaceRole:
    membership = (
        WorkspaceRole.objects.filter(workspace=request.workspace, user_id=user_id)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise Http404("No such team member")
    return membership


@workspace_view(Perm.MANAGE_TEAM)
@require_POST
def role_update(request: WorkspaceRequest, user_id: int) -> HttpResponse:
    """Change a team member's role."""
    membership = _team_member(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return _back(request, _settings_url(request, "team"))
    try:
        role_set(
            workspace=request.workspace,
            user=membership.user,
            role=form.cleaned_data["role"],
            actor=request.user,
        )
    except WorkspaceError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            _("%(email)s is now %(role)s.")
            % {"email": membership.user.email, "role": Role(form.cleaned_data["role"]).label},
        )
    if membership.user_id == request.user.pk:
        own_role = (
            WorkspaceRole.objects.filter(workspace=request.workspace, user=membership.user)
            .values_list("role", flat=True)
            .first()
        )
        if Perm.MANAGE_TEAM in ROLE_PERMISSIONS[own_role or Role.MEMBER]:
            return _back(request, _settings_url(request, "team"))
        # Someone who just gave up their own team rights can no longer see this page.
        return _back(request, reverse("core:workspace_list"))
    return _back(request, _settings_url(request, "team"))


@workspace_view(Perm.MANAGE_TEAM)
@require_POST
def role_remove_view(request: WorkspaceRequest, user_id: int) -> HttpResponse:
    """Take someone off the team (or leave it yourself)."""
    membership = _team_member(request, user_id)
    try:
        role_remove(workspace=request.workspace, user=membership.user, actor=request.user)
    except WorkspaceError as exc:
        messages.error(request, _error_text(exc))
        return _back(request, _settings_url(request, "team"))
    if membership.user_id == request.user.pk:
        messages.success(request, _("You left %(name)s.") % {"name": request.workspace.name})
        return _back(request, reverse("core:workspace_list"))
    messages.success(
        request, _("%(email)s was removed from the team.") % {"email": membership.user.email}
    )
    return _back(request, _settings_url(request, "team"))


# --- invitations ------------------------------------------------------------------------------


@workspace_view(Perm.MANAGE_TEAM)
@require_POST
def invitation_create_view(request: WorkspaceRequest) -> HttpResponse:
    """Invite someone by email to a role no higher than the inviter's."""
    form = InvitationForm(request.POST, grantable=_grantable(request.workspace_role))
    if form.is_valid():
        try:
            invitation, _token = invitation_create(
                workspace=request.workspace,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except WorkspaceError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s. The link works for seven days.")
                % {"email": invitation.email},
            )
            return redirect(_settings_url(request, "invitations"))
    return _render_settings(request, status=400, invitation_form=form)


@workspace_view(Perm.MANAGE_TEAM)
@require_POST
def invitation_revoke_view(request: WorkspaceRequest, invitation_id: int) -> HttpResponse:
    """Withdraw a pending invitation."""
    invitation = Invitation.objects.filter(workspace=request.workspace, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    error = ""
    try:
        invitation_revoke(invitation=invitation, actor=request.user)
    except WorkspaceError as exc:
        error = _error_text(exc)
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request,
            "core/_invitation_row.html",
            {"invitation": invitation, "error": error, "now": timezone.now()},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request, _("Invitation to %(email)s withdrawn.") % {"email": invitation.email}
        )
    return redirect(_settings_url(request, "invitations"))


def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation and, on POST by the invited (verified) address, join the workspace."""
    invitation = invitation_find(token=token)
    problem = invitation_problem(invitation=invitation)
    context: dict[str, Any] = {"invitation": invitation, "problem": problem, "token": token}
    if invitation is None:
        return render(request, "core/invitation_accept.html", context, status=404)
    context["role_label"] = Role(invitation.role).label
    if problem:
        return render(request, "core/invitation_accept.html", context, status=410)
    if not request.user.is_authenticated:
        if request.method == "POST":
            return HttpResponseRedirect(f"{reverse('account_login')}?next={request.path}")
        context["next"] = request.path
        return render(request, "core/invitation_accept.html", context)
    context["email_matches"] = user_has_verified_email(user=request.user, email=invitation.email)
    if request.method == "POST":
        try:
            membership = invitation_accept(token=token, user=request.user)
        except WorkspaceError as exc:
            context["error"] = _error_text(exc)
            return render(request, "core/invitation_accept.html", context, status=400)
        workspace = membership.workspace
        messages.success(
            request,
            _("Welcome to %(name)s. Your role: %(role)s.")
            % {"name": workspace.name, "role": Role(membership.role).label},
        )
        if Perm.VIEW_DASHBOARD in ROLE_PERMISSIONS[membership.role]:
            return redirect("insights:home", slug=workspace.slug)
        return redirect("core:workspace_list")
    return render(request, "core/invitation_accept.html", context)


# --- activity weights -------------------------------------------------------------------------


@workspace_view(Perm.MANAGE_SETTINGS)
@require_POST
def kind_weight_update(request: WorkspaceRequest, kind: str) -> HttpResponse:
    """Save one activity kind's weight for the workspace."""
    if kind not in KINDS:
        raise Http404("No such activity kind")
    form = KindWeightForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            kind_weight_set(
                workspace=request.workspace,
                kind=kind,
                weight=form.cleaned_data["weight"],
                actor=request.user,
            )
        except ValueError as exc:
            error = _error_text(exc)
    else:
        error = _("Enter a whole number from %(min)d to %(max)d.") % {
            "min": WEIGHT_MIN,
            "max": WEIGHT_MAX,
        }
    if request.htmx:  # type: ignore[attr-defined]
        row = next(row for row in _weight_rows(request) if row["key"] == kind)
        if error:
            row["weight"] = request.POST.get("weight", "")
        return render(
            request,
            "core/_weight_row.html",
            {
                "row": row,
                "error": error,
                "saved": not error,
                "weight_min": WEIGHT_MIN,
                "weight_max": WEIGHT_MAX,
            },
        )
    if error:
        messages.error(request, f"{KINDS[kind].label}: {error}")
    else:
        messages.success(
            request,
            _("Weight of %(kind)s set to %(weight)d.")
            % {"kind": KINDS[kind].label, "weight": form.cleaned_data["weight"]},
        )
    return redirect(_settings_url(request, "weights"))


# --- API keys ---------------------------------------------------------------------------------


@workspace_view(Perm.MANAGE_API_KEYS)
@require_POST
def apikey_create_view(request: WorkspaceRequest) -> HttpResponse:
    """Create an API key and show its secret this once."""
    form = ApiKeyForm(request.POST, scopes=SCOPES)
    if form.is_valid():
        try:
            api_key, raw_key = apikey_create(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
            )
        except ValueError as exc:
            form.add_error(None, _error_text(exc))
        else:
            response = _render_settings(request, new_api_key=api_key, new_api_key_raw=raw_key)
            # The secret is in this page only: keep it out of every cache.
            response["Cache-Control"] = "no-store"
            return response
    return _render_settings(request, status=400, apikey_form=form)


@workspace_view(Perm.MANAGE_API_KEYS)
@require_POST
def apikey_revoke_view(request: WorkspaceRequest, key_id: int) -> HttpResponse:
    """Revoke an API key: requests with it are refused from now on."""
    api_key = ApiKey.objects.filter(workspace=request.workspace, pk=key_id).first()
    if api_key is None:
        raise Http404("No such API key")
    error = ""
    if api_key.revoked_at is not None:
        error = _("This key was already revoked.")
    else:
        try:
            apikey_revoke(api_key=api_key, actor=request.user)
        except ValueError as exc:
            error = _error_text(exc)
        api_key.refresh_from_db()
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "core/_apikey_row.html", {"key": api_key, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("API key %(name)s revoked.") % {"name": api_key.name})
    return redirect(_settings_url(request, "api-keys"))


# --- audit log --------------------------------------------------------------------------------


def _audit_summary(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for key, value in data.items():
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            parts.append(f"{key}: {value['from']} → {value['to']}")
        elif isinstance(value, list) and value:
            parts.append(f"{key}: {', '.join(str(item) for item in value)}")
        elif value not in (None, "", [], {}):
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


@workspace_view(Perm.MANAGE_SETTINGS)
def audit_log(request: WorkspaceRequest) -> HttpResponse:
    """Recent audit entries of the workspace, newest first, paginated."""
    entries = (
        AuditLog.objects.filter(workspace=request.workspace)
        .select_related("actor")
        .order_by("-created_at", "-id")
    )
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "entry": entry,
            "action_label": AUDIT_ACTIONS.get(entry.action, entry.action),
            "summary": _audit_summary(entry.data),
        }
        for entry in page.object_list
    ]
    return render(request, "core/audit_log.html", {"page": page, "rows": rows})
