from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from circolo.core.models import Role
from circolo.core.permissions import ROLE_PERMISSIONS, Perm, can_grant, has_perm, require_perm


def test_owner_holds_every_permission() -> None:
    assert ROLE_PERMISSIONS[Role.OWNER] == frozenset(Perm)


def test_member_role_holds_no_staff_permission() -> None:
    assert ROLE_PERMISSIONS[Role.MEMBER] == frozenset()


@pytest.mark.django_db
def test_outsider_gets_404_and_weaker_role_gets_403(owner, analyst, outsider) -> None:
    ws = owner.workspace
    with pytest.raises(Http404):
        require_perm(user=outsider.user, workspace=ws, perm=Perm.VIEW_MEMBERS)
    with pytest.raises(PermissionDenied):
        require_perm(user=analyst.user, workspace=ws, perm=Perm.MANAGE_TEAM)
    assert has_perm(user=analyst.user, workspace=ws, perm=Perm.EXPORT_MEMBERS)
    assert require_perm(user=owner.user, workspace=ws, perm=Perm.MANAGE_TEAM) == Role.OWNER


def test_nobody_grants_more_than_they_hold() -> None:
    assert can_grant(granter_role=Role.MANAGER, role=Role.MODERATOR)
    assert not can_grant(granter_role=Role.MANAGER, role=Role.OWNER)
    assert can_grant(granter_role=Role.OWNER, role=Role.OWNER)
