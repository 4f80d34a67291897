"""Members and identities endpoints: happy paths, bad input, query counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from circolo.activity.models import MemberScore
from circolo.activity.scores import LEVELS
from circolo.api.members import ORDERINGS, MemberFilters
from circolo.api.tests.conftest import ApiClient
from circolo.core.models import AuditLog
from circolo.people.models import Identity, Member, MemberTag
from circolo.people.selectors import SORT_KEYS
from circolo.testing.factories import IdentityFactory, MemberFactory


def _email(value: str, verified: bool = True) -> dict[str, Any]:
    return {"channel": "shop", "kind": "email", "value": value, "verified": verified}


def test_sort_and_level_choices_match_the_selectors() -> None:
    assert set(ORDERINGS) == SORT_KEYS
    level_choices = MemberFilters.model_json_schema()["properties"]["level"]["enum"]
    assert set(level_choices) == {"", *LEVELS}


def test_list_members_fields_and_filters(api: ApiClient, workspace: Any) -> None:
    giulia = MemberFactory(workspace=workspace, display_name="Giulia Rossi", city="Roma")
    IdentityFactory(member=giulia, value="giulia@example.com")
    MemberTag.objects.create(workspace=workspace, member=giulia, tag="vip")
    marco = MemberFactory(workspace=workspace, display_name="Marco Bianchi")
    MemberScore.objects.create(
        member=marco,
        workspace=workspace,
        growth=1e6,
        activity_count=3,
        last_active=timezone.now(),
    )
    merged = MemberFactory(workspace=workspace, display_name="Old Giulia", merged_into=giulia)

    data = api.get("/members").json()
    ids = [item["id"] for item in data["items"]]
    assert ids == [marco.pk, giulia.pk]  # -love: scored first, merged member hidden
    assert merged.pk not in ids
    first = data["items"][1]
    assert first["display_name"] == "Giulia Rossi"
    assert first["tags"] == ["vip"]
    assert first["level"] == "inactive" and first["love"] == 0
    assert data["items"][0]["level"] in LEVELS and data["items"][0]["love"] > 0

    assert [m["id"] for m in api.get("/members", {"q": "giulia@"}).json()["items"]] == [giulia.pk]
    assert [m["id"] for m in api.get("/members", {"tag": "VIP"}).json()["items"]] == [giulia.pk]
    assert [m["id"] for m in api.get("/members", {"level": "inactive"}).json()["items"]] == [
        giulia.pk
    ]
    active = api.get("/members", {"active_within_days": 7}).json()["items"]
    assert [m["id"] for m in active] == [marco.pk]
    by_name = api.get("/members", {"sort": "name"}).json()["items"]
    assert [m["id"] for m in by_name] == [giulia.pk, marco.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 500}, "limit"),
        ({"limit": 0}, "limit"),
        ({"sort": "shoe_size"}, "sort"),
        ({"level": "legend"}, "level"),
        ({"active_within_days": "soon"}, "active_within_days"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_list_members_bad_query(api: ApiClient, params: dict[str, Any], field: str) -> None:
    response = api.get("/members", params)
    assert response.status_code == 400
    data = response.json()
    assert set(data) == {"detail", "errors"}
    assert field in data["errors"], data


def test_get_member_detail(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace, display_name="Ana López", country="ES")
    IdentityFactory(member=member, value="ana@example.com")
    IdentityFactory(member=member, channel="shop", kind="customer_id", value="C-1")
    data = api.get(f"/members/{member.pk}").json()
    assert data["id"] == member.pk
    assert data["country"] == "ES"
    assert data["activity_count"] == 0
    assert [(i["kind"], i["value"]) for i in data["identities"]] == [
        ("email", "ana@example.com"),
        ("customer_id", "C-1"),
    ]


def test_get_missing_or_merged_member_is_404(api: ApiClient, workspace: Any) -> None:
    survivor = MemberFactory(workspace=workspace)
    merged = MemberFactory(workspace=workspace, merged_into=survivor)
    for member_id in (merged.pk, 999_999):
        response = api.get(f"/members/{member_id}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "errors": {}}


def test_create_then_match(api: ApiClient, workspace: Any) -> None:
    body = {
        "identities": [_email("  Mei.Wang@Example.COM ")],
        "display_name": "王梅",
        "city": "Shanghai",
        "country": "cn",
        "languages": ["zh-hans"],
    }
    created = api.post("/members", body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["status"] == "created"
    member = Member.objects.get(pk=data["member"]["id"])
    assert member.workspace_id == workspace.pk
    assert member.country == "CN"
    assert data["member"]["identities"][0]["value"] == "mei.wang@example.com"

    again = api.post("/members", {"identities": [_email("mei.wang@example.com")]})
    assert again.status_code == 200
    assert again.json()["status"] == "matched"
    assert again.json()["member"]["id"] == member.pk
    assert Member.objects.filter(workspace=workspace).count() == 1


def test_create_raises_merge_suggestions(api: ApiClient, workspace: Any) -> None:
    first = api.post("/members", {"identities": [_email("sam@example.com", verified=False)]}).json()
    second = api.post(
        "/members",
        {"identities": [{"channel": "forum", "kind": "email", "value": "sam@example.com"}]},
    )
    assert second.status_code == 201
    suggestions = second.json()["merge_suggestions"]
    assert len(suggestions) == 1
    assert first["member"]["id"] in (suggestions[0]["member_a_id"], suggestions[0]["member_b_id"])
    assert suggestions[0]["reasons"][0]["code"] == "same_email"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "identities"),
        ({"identities": []}, "identities"),
        ({"identities": [_email("not-an-email")]}, "identities.0.value"),
        (
            {
                "identities": [
                    _email("ok@example.com"),
                    {"channel": "sms", "kind": "phone", "value": "12345"},
                ]
            },
            "identities.1.value",
        ),
        (
            {"identities": [{"channel": "", "kind": "email", "value": "a@b.it"}]},
            "identities.0.channel",
        ),
        ({"identities": [{"channel": "x", "kind": "aura", "value": "blue"}]}, "identities.0.kind"),
        ({"identities": [{"channel": "x", "kind": "email"}]}, "identities.0.value"),
        ({"identities": [_email("a@b.it")], "country": "Italy"}, "country"),
        ({"identities": [_email("a@b.it")], "languages": ["english!"]}, "languages"),
        ({"identities": [_email("a@b.it")], "shoe_size": 42}, "shoe_size"),
        ({"identities": [_email("a@b.it") | {"colour": "red"}]}, "identities.0.colour"),
    ],
)
def test_create_bad_input(api: ApiClient, workspace: Any, body: dict[str, Any], field: str) -> None:
    response = api.post("/members", body)
    assert response.status_code == 400, response.content
    data = response.json()
    assert field in data["errors"], data
    assert data["detail"]
    assert not Member.objects.filter(workspace=workspace).exists()
    assert not Identity.objects.filter(workspace=workspace).exists()


def test_unknown_field_message(api: ApiClient) -> None:
    response = api.post("/members", {"identities": [_email("a@b.it")], "shoe_size": 42})
    assert response.json()["errors"]["shoe_size"] == "Unknown field."


def test_malformed_json_body(api: ApiClient) -> None:
    response = api.post("/members", "{not json")
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "errors"}


def test_update_member(api: ApiClient, workspace: Any, key: Any) -> None:
    member = MemberFactory(workspace=workspace, display_name="Jo", city="Milano")
    MemberTag.objects.create(workspace=workspace, member=member, tag="old")
    response = api.patch(
        f"/members/{member.pk}",
        {"display_name": "Jo March", "consent_email": True, "tags": ["VIP ", "beta"]},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["display_name"] == "Jo March"
    assert data["city"] == "Milano"  # not sent, not changed
    assert data["consent_email"] is True
    assert data["tags"] == ["beta", "vip"]
    member.refresh_from_db()
    assert member.display_name == "Jo March"
    actions = set(
        AuditLog.objects.filter(workspace=workspace, target_id=str(member.pk)).values_list(
            "action", flat=True
        )
    )
    assert {"member.update", "member.tag_add", "member.tag_remove"} <= actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"country": "Narnia"}, "country"),
        ({"languages": "en"}, "languages"),
        ({"consent_email": "maybe"}, "consent_email"),
        ({"tags": ["x" * 65]}, "tags"),
        ({"tags": None}, "tags"),
        ({"display_name": None}, "display_name"),
        ({"workspace_id": 2}, "workspace_id"),
    ],
)
def test_update_bad_input_changes_nothing(
    api: ApiClient, workspace: Any, body: dict[str, Any], field: str
) -> None:
    member = MemberFactory(workspace=workspace, display_name="Jo", country="IT")
    response = api.patch(f"/members/{member.pk}", {"display_name": "Changed", **body})
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    member.refresh_from_db()
    assert member.display_name == "Jo"
    assert member.country == "IT"


def test_identities_list_and_add(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    IdentityFactory(member=member, value="first@example.com")
    listed = api.get(f"/members/{member.pk}/identities").json()
    assert [i["value"] for i in listed] == ["first@example.com"]

    added = api.post(
        f"/members/{member.pk}/identities",
        {"channel": "whatsapp", "kind": "phone", "value": "+39 333 123 4567", "verified": True},
    )
    assert added.status_code == 201, added.content
    assert added.json()["value"] == "+393331234567"
    assert member.identities.count() == 2


def test_add_identity_bad_input(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    other = MemberFactory(workspace=workspace)
    IdentityFactory(member=other, channel="shop", value="taken@example.com")
    bad = api.post(
        f"/members/{member.pk}/identities", {"channel": "shop", "kind": "email", "value": "@@"}
    )
    assert bad.status_code == 400 and "value" in bad.json()["errors"]
    taken = api.post(
        f"/members/{member.pk}/identities",
        {"channel": "shop", "kind": "email", "value": "taken@example.com"},
    )
    assert taken.status_code == 400
    assert "another member" in taken.json()["errors"]["value"]
    assert member.identities.count() == 0


def _list_queries(api: ApiClient) -> int:
    api.get("/members")  # warm: the key's last_used_at write happens once a minute
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/members", {"limit": 200})
    assert response.status_code == 200
    return len(queries)


def test_member_list_query_count_does_not_grow(
    api: ApiClient, workspace: Any, django_assert_max_num_queries: Any
) -> None:
    def add(n: int) -> None:
        for i in range(n):
            member = MemberFactory(workspace=workspace)
            IdentityFactory(member=member)
            MemberTag.objects.create(workspace=workspace, member=member, tag=f"t{i % 3}")
            MemberScore.objects.create(
                member=member,
                workspace=workspace,
                growth=float(i),
                activity_count=1,
                last_active=timezone.now() - dt.timedelta(days=i),
            )

    add(3)
    small = _list_queries(api)
    add(40)
    large = _list_queries(api)
    assert small == large
    with django_assert_max_num_queries(3):  # key, members, tags
        api.get("/members", {"limit": 200, "sort": "last_active"})
