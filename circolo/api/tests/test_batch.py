"""POST /activities/batch: per-item results, partial acceptance, limits, identity grouping,
and a property-based test of the counts and the rows written."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.activity.models import Activity
from circolo.api import activities as activities_api
from circolo.api.tests.conftest import ApiClient
from circolo.people.models import Member
from circolo.testing.factories import ActivityFactory, MemberFactory

HOUR = dt.timedelta(hours=1)


def _item(member_id: int | None = None, **over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "post",
        "channel": "forum",
        "occurred_at": (timezone.now() - HOUR).isoformat(),
        "source": "forum",
        "source_id": "p-1",
    }
    if member_id is not None:
        item["member_id"] = member_id
    item.update(over)
    return item


@pytest.fixture
def member(workspace: Any) -> Member:
    return MemberFactory(workspace=workspace)


def test_partial_acceptance_keeps_valid_items(
    api: ApiClient, workspace: Any, member: Member
) -> None:
    existing = ActivityFactory(member=member, source="forum", source_id="old")
    items = [
        _item(member.pk, source_id="a"),
        _item(member.pk, source_id="b", kind="teleport"),
        _item(member.pk, source_id="old"),
        _item(member.pk, source_id="a"),
        _item(member.pk, source_id="c", occurred_at=(timezone.now() + 30 * HOUR).isoformat()),
        _item(member.pk, source_id="d", properties={"x": "y" * 20_000}),
        "not an object",
        _item(member.pk, source_id="e", surprise=True),
        _item(identities=[{"channel": "x", "kind": "email", "value": "bad"}], source_id="f"),
        _item(source_id="g"),
        _item(
            identities=[{"channel": "x", "kind": "email", "value": "ok@example.com"}],
            source_id="h",
            kind="order",
        ),
    ]
    response = api.post("/activities/batch", {"items": items})
    assert response.status_code == 200, response.content
    data = response.json()
    statuses = [r["status"] for r in data["results"]]
    assert statuses == [
        "created",
        "rejected",
        "duplicate",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "created",
    ]
    assert [r["index"] for r in data["results"]] == list(range(len(items)))
    assert (data["created"], data["duplicates"], data["rejected"]) == (2, 2, 7)
    results = data["results"]
    assert results[2]["id"] == existing.pk
    assert results[3]["id"] == results[0]["id"]
    assert "kind" in results[1]["errors"]
    assert "occurred_at" in results[4]["errors"]
    assert "properties" in results[5]["errors"]
    assert "item" in results[6]["errors"]
    assert results[7]["errors"] == {"surprise": "Unknown field."}
    assert "identities.0.value" in results[8]["errors"]
    assert "member_id" in results[9]["errors"]
    # Nothing of the rejected items was written: no rows, no member for the bad email.
    stored = set(Activity.objects.filter(workspace=workspace).values_list("source_id", flat=True))
    assert stored == {"old", "a", "h"}
    assert Member.objects.filter(workspace=workspace).count() == 2


def test_all_rejected_is_400_with_item_errors(api: ApiClient, member: Member) -> None:
    response = api.post(
        "/activities/batch",
        {"items": [_item(member.pk, kind="teleport"), _item(member.pk, source="")]},
    )
    assert response.status_code == 400
    data = response.json()
    assert data["detail"]
    assert "items.0.kind" in data["errors"] and "items.1.source" in data["errors"]
    assert (data["created"], data["duplicates"], data["rejected"]) == (0, 0, 2)
    assert not Activity.objects.exists()


def test_empty_batch(api: ApiClient) -> None:
    response = api.post("/activities/batch", {"items": []})
    assert response.status_code == 400
    assert "items" in response.json()["errors"]


def test_over_the_limit_names_the_limit(api: ApiClient, member: Member, settings: Any) -> None:
    settings.CIRCOLO_API_BATCH_LIMIT = 3
    items = [_item(member.pk, source_id=str(i)) for i in range(4)]
    response = api.post("/activities/batch", {"items": items})
    assert response.status_code == 400
    data = response.json()
    assert "3" in data["detail"] and "3" in data["errors"]["items"]
    assert not Activity.objects.exists()
    assert api.post("/activities/batch", {"items": items[:3]}).status_code == 200


def test_a_full_batch_of_ten_thousand(api: ApiClient, workspace: Any, member: Member) -> None:
    when = (timezone.now() - HOUR).isoformat()
    items = [_item(member.pk, source_id=f"n{i}", occurred_at=when) for i in range(10_000)]
    response = api.post("/activities/batch", {"items": items})
    assert response.status_code == 200
    assert response.json()["created"] == 10_000
    assert Activity.objects.filter(workspace=workspace).count() == 10_000
    over = api.post("/activities/batch", {"items": [*items, _item(member.pk, source_id="x")]})
    assert over.status_code == 400
    assert "10000" in over.json()["errors"]["items"]


def test_repeated_people_resolve_once(
    api: ApiClient, workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    real = activities_api.people.member_resolve

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs["identities"])
        return real(**kwargs)

    monkeypatch.setattr(activities_api.people, "member_resolve", spy)
    anna = [{"channel": "shop", "kind": "email", "value": "anna@example.com"}]
    anna_upper = [{"channel": "Shop", "kind": "email", "value": " ANNA@example.com"}]
    bo = [{"channel": "shop", "kind": "customer_id", "value": "B-1"}]
    items = [
        _item(identities=anna, source_id="1"),
        _item(identities=bo, source_id="2"),
        _item(identities=anna_upper, source_id="3"),
        _item(identities=anna, source_id="4"),
        _item(identities=bo, source_id="5"),
    ]
    data = api.post("/activities/batch", {"items": items}).json()
    assert data["created"] == 5
    assert len(calls) == 2
    members = [r["member_id"] for r in data["results"]]
    assert members[0] == members[2] == members[3]
    assert members[1] == members[4] != members[0]
    assert Member.objects.filter(workspace=workspace).count() == 2


def test_merged_member_reference_is_rejected(
    api: ApiClient, workspace: Any, member: Member
) -> None:
    gone = MemberFactory(workspace=workspace, merged_into=member)
    data = api.post("/activities/batch", {"items": [_item(gone.pk)]}).json()
    assert data["results"][0]["status"] == "rejected"
    assert "member_id" in data["results"][0]["errors"]


# --------------------------------------------------------------------------- property-based

_examples = itertools.count()
_KEYS = st.sampled_from([f"k{i}" for i in range(6)])
_EMAILS = st.sampled_from(["ada@example.com", "bea@example.com", "cy@example.com"])


@st.composite
def _batch_entry(draw: Any) -> tuple[str, dict[str, Any], str | None]:
    """(expectation, item, source_id): expectation is "valid" or "invalid"."""
    source_id = draw(_KEYS)
    who = draw(st.sampled_from(["member_a", "member_b", "email"]))
    shape = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "valid",
                "unknown_kind",
                "future",
                "bad_email",
                "no_member",
                "unknown_field",
                "missing_kind",
                "too_big",
            ]
        )
    )
    item: dict[str, Any] = {
        "kind": draw(st.sampled_from(["post", "reply", "order", "vote"])),
        "channel": "forum",
        "occurred_at": "{when}",
        "source": "{source}",
        "source_id": source_id,
        "who": who,
        "email": draw(_EMAILS),
    }
    if shape == "unknown_kind":
        item["kind"] = "teleport"
    elif shape == "future":
        item["occurred_at"] = "{future}"
    elif shape == "bad_email":
        item["who"], item["email"] = "email", "not-an-email"
    elif shape == "no_member":
        item["who"] = "nobody"
    elif shape == "unknown_field":
        item["mood"] = "happy"
    elif shape == "missing_kind":
        del item["kind"]
    elif shape == "too_big":
        item["properties"] = {"blob": "z" * (17 * 1024)}
    return ("valid" if shape == "valid" else "invalid", item, source_id)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=st.lists(_batch_entry(), min_size=1, max_size=25))
def test_batch_counts_and_rows_property(
    api: ApiClient, workspace: Any, other_workspace: Any, entries: list[Any]
) -> None:
    members = {
        "member_a": MemberFactory(workspace=workspace).pk,
        "member_b": MemberFactory(workspace=workspace).pk,
        "nobody": MemberFactory(workspace=other_workspace).pk,
    }
    # A fresh source per example: rows of earlier examples never collide with this one.
    source = f"hyp{next(_examples)}"
    now = timezone.now()
    items = []
    for _expect, template, _key in entries:
        item = {k: v for k, v in template.items() if k not in ("who", "email")}
        if "occurred_at" in item:
            item["occurred_at"] = (
                (now + 30 * HOUR) if item["occurred_at"] == "{future}" else (now - HOUR)
            ).isoformat()
        item["source"] = source
        if template["who"] == "email":
            item["identities"] = [{"channel": "shop", "kind": "email", "value": template["email"]}]
        else:
            item["member_id"] = members[template["who"]]
        items.append(item)

    response = api.post("/activities/batch", {"items": items})
    data = response.json()

    expected: list[str] = []
    seen: set[str] = set()
    for expect, _template, key in entries:
        if expect == "invalid":
            expected.append("rejected")
        elif key in seen:
            expected.append("duplicate")
        else:
            seen.add(key)
            expected.append("created")
    assert [r["status"] for r in data["results"]] == expected
    assert data["created"] + data["duplicates"] + data["rejected"] == len(items)
    assert data["created"] == len(seen)
    assert response.status_code == (200 if seen else 400)
    rows = Activity.objects.filter(workspace=workspace, source=source)
    assert rows.count() == len(seen)
    assert set(rows.values_list("source_id", flat=True)) == seen
    assert not rows.values("source_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    ids_by_key: dict[str, int] = {}
    for (expect, _template, key), result in zip(entries, data["results"], strict=True):
        if expect == "valid":
            assert ids_by_key.setdefault(key, result["id"]) == result["id"]
    assert not Activity.objects.filter(workspace=other_workspace).exists()
