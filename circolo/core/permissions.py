"""Who may do what in a workspace: one table of role -> permissions, one check used everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.http import Http404

from circolo.core.models import Role, Workspace, WorkspaceRole


class Perm(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_MEMBERS = "view_members"
    EDIT_MEMBERS = "edit_members"
    MERGE_MEMBERS = "merge_members"
    EXPORT_MEMBERS = "export_members"
    RECORD_ACTIVITY = "record_activity"
    MANAGE_SETTINGS = "manage_settings"
    MANAGE_TEAM = "manage_team"
    MANAGE_API_KEYS = "manage_api_keys"
    VIEW_STORES = "view_stores"
    MANAGE_STORES = "manage_stores"
    PRIVACY_REQUESTS = "privacy_requests"
    MANAGE_COMMUNITY = "manage_community"
    MODERATE_COMMUNITY = "moderate_community"
    DELETE_WORKSPACE = "delete_workspace"


_STAFF_READ = {Perm.VIEW_DASHBOARD, Perm.VIEW_MEMBERS, Perm.VIEW_STORES}
ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.MANAGER: frozenset(set(Perm) - {Perm.DELETE_WORKSPACE}),
    Role.MODERATOR: frozenset(
        _STAFF_READ
        | {
            Perm.EDIT_MEMBERS,
            Perm.MERGE_MEMBERS,
            Perm.RECORD_ACTIVITY,
            Perm.MODERATE_COMMUNITY,
        }
    ),
    Role.ANALYST: frozenset(_STAFF_READ | {Perm.EXPORT_MEMBERS}),
    Role.MEMBER: frozenset(),
}

# Roles a user may hand out: nobody grants more than they hold.
ROLE_RANK = {Role.MEMBER: 0, Role.ANALYST: 1, Role.MODERATOR: 1, Role.MANAGER: 2, Role.OWNER: 3}


def role_of(*, user: Any, workspace: Workspace) -> str | None:
    """The user's role in the workspace, or None for outsiders and anonymous users."""
    if not getattr(user, "is_authenticated", False):
        return None
    cache: dict[int, str | None] = user.__dict__.setdefault("_circolo_roles", {})
    if workspace.pk not in cache:
        cache[workspace.pk] = (
            WorkspaceRole.objects.filter(workspace=workspace, user=user)
            .values_list("role", flat=True)
            .first()
        )
    return cache[workspace.pk]


def has_perm(*, user: Any, workspace: Workspace, perm: Perm) -> bool:
    role = role_of(user=user, workspace=workspace)
    return role is not None and perm in ROLE_PERMISSIONS[role]


def require_perm(*, user: Any, workspace: Workspace, perm: Perm) -> str:
    """Raise 404 for outsiders (nothing to see there) and PermissionDenied for weaker roles."""
    from django.core.exceptions import PermissionDenied

    role = role_of(user=user, workspace=workspace)
    if role is None:
        raise Http404("No such workspace")
    if perm not in ROLE_PERMISSIONS[role]:
        raise PermissionDenied(perm.value)
    return role


def can_grant(*, granter_role: str, role: str) -> bool:
    return ROLE_RANK[Role(granter_role)] >= ROLE_RANK[Role(role)]
