"""Recording and listing activities, the kind registry, bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.activity.services import kind_weight_set
from circolo.api.tests.conftest import ApiClient
from circolo.people.models import Identity, Member
from circolo.testing.factories import ActivityFactory, MemberFactory


def _iso(delta: dt.timedelta = dt.timedelta(hours=-1)) -> str:
    return (timezone.now() + delta).isoformat()


def _body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "review",
        "channel": "shop",
        "occurred_at": _iso(),
        "source": "shopify",
        "source_id": "r-1",
        "properties": {"rating": 5, "text": "Ottimo!"},
    }
    body.update(over)
    return body


@pytest.fixture
def member(workspace: Any) -> Member:
    return MemberFactory(workspace=workspace)


def test_record_then_duplicate(api: ApiClient, member: Member) -> None:
    first = api.post("/activities", _body(member_id=member.pk))
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["status"] == "created" and data["member_id"] == member.pk
    row = Activity.objects.get(pk=data["id"])
    assert (row.kind, row.weight, row.properties["rating"]) == ("review", 8, 5)

    again = api.post("/activities", _body(member_id=member.pk, kind="post"))
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": row.pk, "member_id": member.pk}
    assert Activity.objects.count() == 1


def test_record_by_identities_resolves_the_member(api: ApiClient, workspace: Any) -> None:
    who = [{"channel": "shop", "kind": "email", "value": "Luca@Example.com", "verified": True}]
    one = api.post("/activities", _body(identities=who, source_id="o-1", kind="order"))
    two = api.post("/activities", _body(identities=who, source_id="o-2", kind="order"))
    assert one.status_code == two.status_code == 201
    assert one.json()["member_id"] == two.json()["member_id"]
    member = Member.objects.get(pk=one.json()["member_id"])
    assert member.workspace_id == workspace.pk
    assert member.identities.get().value == "luca@example.com"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"kind": "teleport"}, "kind"),
        ({"occurred_at": _iso(dt.timedelta(hours=25))}, "occurred_at"),
        ({"occurred_at": "2025-03-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"properties": {"blob": "x" * (16 * 1024)}}, "properties"),
        ({"properties": ["not", "an", "object"]}, "properties"),
        ({"source": ""}, "source"),
        ({"source": "s" * 41}, "source"),
        ({"source_id": "i" * 201}, "source_id"),
        ({"channel": " "}, "channel"),
        ({"kind": None}, "kind"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_record_bad_input(api: ApiClient, member: Member, over: dict[str, Any], field: str) -> None:
    response = api.post("/activities", _body(member_id=member.pk, **over))
    assert response.status_code == 400, response.content
    data = response.json()
    assert set(data) == {"detail", "errors"}
    assert field in data["errors"], data
    assert not Activity.objects.exists()


def test_missing_fields_are_named(api: ApiClient, member: Member) -> None:
    response = api.post("/activities", {"member_id": member.pk})
    assert response.status_code == 400
    errors = response.json()["errors"]
    for field in ("kind", "channel", "occurred_at", "source", "source_id"):
        assert errors[field] == "This field is required."


@pytest.mark.parametrize(
    ("who", "field"),
    [
        ({}, "member_id"),
        (
            {"member_id": 1, "identities": [{"channel": "s", "kind": "email", "value": "a@b.it"}]},
            "member_id",
        ),
        ({"identities": []}, "identities"),
        (
            {"identities": [{"channel": "s", "kind": "email", "value": "nope"}]},
            "identities.0.value",
        ),
        (
            {"identities": [{"channel": "sms", "kind": "phone", "value": "333"}]},
            "identities.0.value",
        ),
        ({"identities": [{"channel": "s", "kind": "email"}]}, "identities.0.value"),
        ({"member_id": 987_654}, "member_id"),
    ],
)
def test_record_bad_who(api: ApiClient, workspace: Any, who: dict[str, Any], field: str) -> None:
    response = api.post("/activities", _body(**who))
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Activity.objects.exists()
    assert not Member.objects.filter(workspace=workspace).exists()


def test_identities_with_invalid_activity_create_no_member(api: ApiClient, workspace: Any) -> None:
    who = [{"channel": "shop", "kind": "email", "value": "new@example.com"}]
    response = api.post("/activities", _body(identities=who, kind="teleport"))
    assert response.status_code == 400
    assert "kind" in response.json()["errors"]
    assert not Member.objects.filter(workspace=workspace).exists()
    assert not Identity.objects.filter(workspace=workspace).exists()


def test_merged_member_is_not_found(api: ApiClient, workspace: Any, member: Member) -> None:
    gone = MemberFactory(workspace=workspace, merged_into=member)
    response = api.post("/activities", _body(member_id=gone.pk))
    assert response.status_code == 400
    assert "member_id" in response.json()["errors"]


def test_list_filters(api: ApiClient, workspace: Any, member: Member) -> None:
    other = MemberFactory(workspace=workspace)
    now = timezone.now()
    a = ActivityFactory(
        member=member,
        kind="post",
        channel="forum",
        source="forum",
        occurred_at=now - dt.timedelta(days=3),
    )
    b = ActivityFactory(
        member=member,
        kind="order",
        channel="shop",
        source="shopify",
        occurred_at=now - dt.timedelta(days=2),
    )
    c = ActivityFactory(
        member=other,
        kind="post",
        channel="shop",
        source="shopify",
        occurred_at=now - dt.timedelta(days=1),
    )

    def ids(**params: Any) -> list[int]:
        response = api.get("/activities", params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(member_id=member.pk) == [b.pk, a.pk]
    assert ids(kind="post") == [c.pk, a.pk]
    assert ids(channel="shop") == [c.pk, b.pk]
    assert ids(source="forum") == [a.pk]
    assert ids(since=(now - dt.timedelta(days=2)).isoformat()) == [c.pk, b.pk]
    assert ids(until=(now - dt.timedelta(days=2)).isoformat()) == [a.pk]
    item = api.get("/activities", {"kind": "order"}).json()["items"][0]
    assert set(item) == {
        "id",
        "member_id",
        "kind",
        "channel",
        "occurred_at",
        "weight",
        "properties",
        "source",
        "source_id",
        "created_at",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-01-01T00:00:00"}, "since"),
        ({"until": "tomorrow"}, "until"),
        ({"member_id": "me"}, "member_id"),
        ({"limit": 201}, "limit"),
    ],
)
def test_list_bad_query(api: ApiClient, params: dict[str, Any], field: str) -> None:
    response = api.get("/activities", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_kinds_show_workspace_weights(api: ApiClient, workspace: Any, owner: Any) -> None:
    kind_weight_set(workspace=workspace, kind="review", weight=20, actor=owner.user)
    kinds = {k["key"]: k for k in api.get("/kinds").json()}
    assert kinds["review"]["default_weight"] == 8
    assert kinds["review"]["weight"] == 20
    assert kinds["post"]["weight"] == 5
    assert kinds["post"]["label"] == "Post"


def test_kinds_are_translated(api: ApiClient) -> None:
    response = api.get("/kinds", headers={"Accept-Language": "it"})
    assert response.status_code == 200
    assert response["Content-Language"] == "it"


def _list_queries(api: ApiClient) -> int:
    api.get("/activities")
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/activities", {"limit": 200}).status_code == 200
    return len(queries)


def test_activity_list_query_count_does_not_grow(
    api: ApiClient, member: Member, django_assert_max_num_queries: Any
) -> None:
    ActivityFactory.create_batch(3, member=member)
    small = _list_queries(api)
    ActivityFactory.create_batch(60, member=member)
    large = _list_queries(api)
    assert small == large
    with django_assert_max_num_queries(2):  # key, activities
        api.get("/activities", {"limit": 200, "kind": "post"})
