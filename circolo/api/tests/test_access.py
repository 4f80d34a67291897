"""Every endpoint: a valid key, no key, a revoked key, a key without the scope, the X-Api-Key
header, and a key of another workspace."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.api.tests.conftest import ALL_SCOPES, ApiClient, Key
from circolo.core.apikeys import apikey_revoke
from circolo.people.models import Member
from circolo.testing.factories import ActivityFactory, IdentityFactory, MemberFactory

_counter = itertools.count()


def _activity_body(member_id: int) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "kind": "post",
        "channel": "forum",
        "occurred_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "source": "forum",
        "source_id": f"access-{next(_counter)}",
    }


# (method, path, scope, body(member_id) or None, success statuses)
ENDPOINTS: list[tuple[str, str, str, Callable[[int], Any] | None, set[int]]] = [
    ("GET", "/members", "members:read", None, {200}),
    ("GET", "/members/{id}", "members:read", None, {200}),
    (
        "POST",
        "/members",
        "members:write",
        lambda _id: {"identities": [{"channel": "shop", "kind": "email", "value": "n@x.test"}]},
        {200, 201},
    ),
    ("PATCH", "/members/{id}", "members:write", lambda _id: {"city": "Torino"}, {200}),
    ("GET", "/members/{id}/identities", "members:read", None, {200}),
    (
        "POST",
        "/members/{id}/identities",
        "members:write",
        lambda _id: {"channel": "shop", "kind": "customer_id", "value": f"c-{next(_counter)}"},
        {201},
    ),
    ("GET", "/activities", "activities:read", None, {200}),
    ("POST", "/activities", "activities:write", _activity_body, {201}),
    (
        "POST",
        "/activities/batch",
        "activities:write",
        lambda member_id: {"items": [_activity_body(member_id)]},
        {200},
    ),
    ("GET", "/kinds", "activities:read", None, {200}),
]
IDS = [f"{method} {path}" for method, path, *_ in ENDPOINTS]


@pytest.fixture
def member(workspace: Any) -> Member:
    member = MemberFactory(workspace=workspace, display_name="Giulia Rossi")
    IdentityFactory(member=member, value="giulia@example.com")
    ActivityFactory(member=member)
    return member


def _call(client: ApiClient, endpoint: tuple[Any, ...], member_id: int) -> Any:
    method, path, _scope, body, _ok = endpoint
    url = path.replace("{id}", str(member_id))
    if method == "GET":
        return client.get(url)
    return client.send(method, url, body(member_id))


def _assert_error_shape(response: Any) -> dict[str, Any]:
    data = response.json()
    assert set(data) == {"detail", "errors"}
    assert isinstance(data["detail"], str) and data["detail"]
    return data


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_valid_key(endpoint: tuple[Any, ...], api: ApiClient, member: Member) -> None:
    response = _call(api, endpoint, member.pk)
    assert response.status_code in endpoint[4], response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_x_api_key_header(endpoint: tuple[Any, ...], key: Key, member: Member) -> None:
    response = _call(ApiClient(key, header="x-api-key"), endpoint, member.pk)
    assert response.status_code in endpoint[4], response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_no_key(endpoint: tuple[Any, ...], member: Member) -> None:
    response = _call(ApiClient(None), endpoint, member.pk)
    assert response.status_code == 401
    _assert_error_shape(response)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_revoked_key(endpoint: tuple[Any, ...], key: Key, owner: Any, member: Member) -> None:
    apikey_revoke(api_key=key.row, actor=owner.user)
    response = _call(ApiClient(key), endpoint, member.pk)
    assert response.status_code == 401
    _assert_error_shape(response)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_malformed_and_unknown_keys(endpoint: tuple[Any, ...], key: Key, member: Member) -> None:
    tampered = Key(row=key.row, raw=key.raw[:-2] + ("AA" if not key.raw.endswith("AA") else "BB"))
    for raw in ("nonsense", "ck_short_x", tampered.raw):
        response = _call(ApiClient(Key(row=key.row, raw=raw)), endpoint, member.pk)
        assert response.status_code == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_key_without_scope(
    endpoint: tuple[Any, ...], make_key: Callable[..., Key], member: Member
) -> None:
    scope = endpoint[2]
    weaker = make_key(scopes=[s for s in ALL_SCOPES if s != scope])
    before = (Member.objects.count(), Activity.objects.count())
    response = _call(ApiClient(weaker), endpoint, member.pk)
    assert response.status_code == 403
    data = _assert_error_shape(response)
    assert scope in data["detail"]
    assert scope in data["errors"]["scope"]
    assert (Member.objects.count(), Activity.objects.count()) == before


MEMBER_PATHS = [e for e in ENDPOINTS if "{id}" in e[1]]


@pytest.mark.parametrize("endpoint", MEMBER_PATHS, ids=[f"{e[0]} {e[1]}" for e in MEMBER_PATHS])
def test_other_workspace_member_is_404(
    endpoint: tuple[Any, ...], outsider_api: ApiClient, member: Member
) -> None:
    city = member.city
    response = _call(outsider_api, endpoint, member.pk)
    assert response.status_code == 404
    _assert_error_shape(response)
    member.refresh_from_db()
    assert member.city == city
    assert member.identities.count() == 1


def test_other_workspace_lists_are_empty(outsider_api: ApiClient, member: Member) -> None:
    members = outsider_api.get("/members").json()
    assert members == {"items": [], "next_cursor": None}
    assert outsider_api.get("/members", {"q": "giulia"}).json()["items"] == []
    activities = outsider_api.get("/activities", {"member_id": member.pk}).json()
    assert activities == {"items": [], "next_cursor": None}
    assert outsider_api.get("/activities").json()["items"] == []


def test_other_workspace_cannot_record_for_our_member(
    outsider_api: ApiClient, member: Member
) -> None:
    before = Activity.objects.count()
    response = outsider_api.post("/activities", _activity_body(member.pk))
    assert response.status_code == 400
    assert "member_id" in response.json()["errors"]

    batch = outsider_api.post("/activities/batch", {"items": [_activity_body(member.pk)]})
    assert batch.status_code == 400
    result = batch.json()["results"][0]
    assert result["status"] == "rejected"
    assert "not found" in result["errors"]["member_id"]
    assert "id" not in result or result["id"] is None
    assert Activity.objects.count() == before


def test_other_workspace_identities_do_not_join_our_member(
    outsider_api: ApiClient, member: Member, other_workspace: Any
) -> None:
    response = outsider_api.post(
        "/members",
        {
            "identities": [
                {
                    "channel": "test",
                    "kind": "email",
                    "value": "giulia@example.com",
                    "verified": True,
                }
            ]
        },
    )
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "created"
    assert data["member"]["id"] != member.pk
    assert Member.objects.get(pk=data["member"]["id"]).workspace_id == other_workspace.pk
    assert data["merge_suggestions"] == []
