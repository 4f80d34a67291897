"""core.apikeys: format, hashing, scopes, revocation, last_used_at throttling, audit."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from django.utils import timezone

from circolo.core.apikeys import (
    SCOPES,
    ApiKeyError,
    apikey_authenticate,
    apikey_create,
    apikey_revoke,
    workspace_api_keys,
)
from circolo.core.models import ApiKey, AuditLog


def test_create_format_and_storage(owner: Any, workspace: Any) -> None:
    row, raw = apikey_create(
        workspace=workspace,
        name=" Shopify sync ",
        scopes=["activities:write"],
        created_by=owner.user,
    )
    marker, prefix, secret = raw.split("_", 2)
    assert marker == "ck" and prefix == row.prefix and len(prefix) == 8
    assert len(secret) >= 32
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (row.key_hash, row.prefix)
    assert row.name == "Shopify sync" and row.scopes == ["activities:write"]
    entry = AuditLog.objects.get(workspace=workspace, action="apikey.create")
    assert entry.actor == owner.user and entry.data["prefix"] == prefix
    assert secret not in str(entry.data)


def test_keys_are_unique(owner: Any, workspace: Any) -> None:
    raws = {
        apikey_create(
            workspace=workspace, name=f"k{i}", scopes=["members:read"], created_by=owner.user
        )[1]
        for i in range(20)
    }
    assert len(raws) == 20


@pytest.mark.parametrize(
    ("name", "scopes", "field"),
    [
        ("", ["members:read"], "name"),
        ("x" * 121, ["members:read"], "name"),
        ("ok", [], "scopes"),
        ("ok", ["members:read", "admin:all"], "scopes"),
    ],
)
def test_create_bad_input(
    owner: Any, workspace: Any, name: str, scopes: list[str], field: str
) -> None:
    with pytest.raises(ApiKeyError) as raised:
        apikey_create(workspace=workspace, name=name, scopes=scopes, created_by=owner.user)
    assert field in raised.value.errors
    assert not ApiKey.objects.exists()


def test_scopes_are_ordered_and_deduplicated(owner: Any, workspace: Any) -> None:
    row, _raw = apikey_create(
        workspace=workspace, name="k", scopes=list(reversed(SCOPES)) * 2, created_by=owner.user
    )
    assert row.scopes == list(SCOPES)


def test_authenticate(owner: Any, workspace: Any) -> None:
    row, raw = apikey_create(
        workspace=workspace, name="k", scopes=["members:read"], created_by=owner.user
    )
    found = apikey_authenticate(raw)
    assert found is not None and found.pk == row.pk and found.workspace == workspace
    prefix = raw.split("_")[1]
    for wrong in (
        "",
        "ck",
        raw[:-1],
        raw + "x",
        f"ck_{prefix}_" + "A" * 43,
        raw.replace("ck_", "cx_"),
        f"ck_zzzzzzzz_{raw.split('_', 2)[2]}",
    ):
        assert apikey_authenticate(wrong) is None, wrong


def test_revoked_key_fails_and_revoke_is_audited_once(owner: Any, workspace: Any) -> None:
    row, raw = apikey_create(
        workspace=workspace, name="k", scopes=["members:read"], created_by=owner.user
    )
    apikey_revoke(api_key=row, actor=owner.user)
    apikey_revoke(api_key=row, actor=owner.user)
    assert row.revoked_at is not None
    assert apikey_authenticate(raw) is None
    assert AuditLog.objects.filter(action="apikey.revoke").count() == 1
    assert list(workspace_api_keys(workspace=workspace)) == []
    assert list(workspace_api_keys(workspace=workspace, include_revoked=True)) == [row]


def test_last_used_is_written_at_most_once_a_minute(
    owner: Any, workspace: Any, django_assert_num_queries: Any
) -> None:
    row, raw = apikey_create(
        workspace=workspace, name="k", scopes=["members:read"], created_by=owner.user
    )
    with django_assert_num_queries(2):  # lookup + first use
        apikey_authenticate(raw)
    with django_assert_num_queries(1):  # lookup only
        apikey_authenticate(raw)
    row.refresh_from_db()
    first_use = row.last_used_at
    assert first_use is not None
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=first_use - dt.timedelta(minutes=2))
    with django_assert_num_queries(2):
        apikey_authenticate(raw)
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_at > first_use - dt.timedelta(minutes=1)
    assert row.last_used_at <= timezone.now()
