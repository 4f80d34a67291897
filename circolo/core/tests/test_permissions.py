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


@pytest.mark.django_db
def test_audit_traces_api_key_actors(workspace) -> None:
    from circolo.core.apikeys import apikey_create
    from circolo.core.audit import audit_record

    key, _raw = apikey_create(
        workspace=workspace, name="shop sync", scopes=["members:read"], created_by=None
    )
    entry = audit_record(workspace=workspace, actor=key, action="member.update", data={"x": 1})
    assert entry.actor is None
    assert entry.data == {"x": 1, "api_key": key.prefix}


@pytest.mark.django_db
def test_idempotency_purge_task_deletes_only_old_records(workspace) -> None:
    import datetime as dt

    from django.utils import timezone

    from circolo.core.models import IdempotencyRecord
    from circolo.core.tasks import idempotency_purge_task

    old = IdempotencyRecord.objects.create(
        workspace=workspace, key="a", method="POST", path="/x", request_hash="h"
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(days=2)
    )
    IdempotencyRecord.objects.create(
        workspace=workspace, key="b", method="POST", path="/x", request_hash="h"
    )
    assert idempotency_purge_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]
