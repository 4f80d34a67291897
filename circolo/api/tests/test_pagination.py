"""Cursor pagination walks every row exactly once, in the documented order."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import MemberScore
from circolo.api.members import ORDERINGS
from circolo.api.pagination import Ordering, cursor_encode
from circolo.api.tests.conftest import ApiClient
from circolo.people.selectors import member_list
from circolo.testing.factories import ActivityFactory, MemberFactory


def _walk(api: ApiClient, path: str, params: dict[str, Any], limit: int) -> list[int]:
    seen: list[int] = []
    cursor: str | None = None
    for _page in range(1000):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get(path, query)
        assert response.status_code == 200, response.content
        data = response.json()
        assert len(data["items"]) <= limit
        seen.extend(item["id"] for item in data["items"])
        cursor = data["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


@pytest.fixture
def members(workspace: Any) -> list[int]:
    rng = random.Random(7)
    now = timezone.now()
    names = ["Ada", "ada", "Bruno", "Chiara", "", "Émile", "Zoë", "李明", "Ada"]
    ids = []
    for i in range(31):
        member = MemberFactory(
            workspace=workspace,
            display_name=rng.choice(names),
            # Ties and missing values on every sort key.
            first_seen=None if i % 7 == 0 else now - dt.timedelta(days=rng.randint(0, 3)),
        )
        if i % 4:
            MemberScore.objects.create(
                member=member,
                workspace=workspace,
                growth=float(rng.choice([0, 1, 1, 2.5, 10])),
                activity_count=1,
                last_active=None if i % 5 == 0 else now - dt.timedelta(days=rng.randint(0, 2)),
            )
        ids.append(member.pk)
    MemberFactory(workspace=workspace, merged_into_id=ids[0])
    return ids


@pytest.mark.parametrize("sort", sorted(ORDERINGS))
def test_members_walk_every_row_once(
    api: ApiClient, workspace: Any, members: list[int], sort: str
) -> None:
    seen = _walk(api, "/members", {"sort": sort}, limit=4)
    assert len(seen) == len(set(seen)) == len(members)
    assert set(seen) == set(members)
    # The same order as the selector's own sort.
    expected = list(member_list(workspace=workspace, sort=sort).values_list("pk", flat=True))
    assert seen == expected


def test_members_walk_with_filter(api: ApiClient, workspace: Any, members: list[int]) -> None:
    seen = _walk(api, "/members", {"q": "ada", "sort": "name"}, limit=2)
    expected = list(
        member_list(workspace=workspace, q="ada", sort="name").values_list("pk", flat=True)
    )
    assert seen == expected and expected


def test_activities_walk_every_row_once(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    base = timezone.now() - dt.timedelta(days=1)
    rows = [
        ActivityFactory(member=member, occurred_at=base - dt.timedelta(minutes=i // 3))
        for i in range(37)
    ]
    seen = _walk(api, "/activities", {}, limit=5)
    expected = [a.pk for a in sorted(rows, key=lambda a: (a.occurred_at, a.pk), reverse=True)]
    assert seen == expected


def test_cursor_is_stable_while_rows_arrive(api: ApiClient, workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    base = timezone.now() - dt.timedelta(days=1)
    old = [
        ActivityFactory(member=member, occurred_at=base - dt.timedelta(minutes=i)) for i in range(6)
    ]
    page = api.get("/activities", {"limit": 3}).json()
    ActivityFactory(member=member, occurred_at=timezone.now())  # newer than every page
    rest = api.get("/activities", {"limit": 10, "cursor": page["next_cursor"]}).json()
    walked = [item["id"] for item in page["items"] + rest["items"]]
    assert walked == [a.pk for a in old]


def test_cursor_of_another_sort_is_rejected(
    api: ApiClient, workspace: Any, members: list[int]
) -> None:
    cursor = api.get("/members", {"sort": "name", "limit": 2}).json()["next_cursor"]
    response = api.get("/members", {"sort": "-love", "cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


@pytest.mark.parametrize(
    "cursor",
    ["%%%", "bm9wZQ", cursor_encode(ordering=Ordering("x", "f", "text", False), value="a", pk=1)],
)
def test_damaged_cursors(api: ApiClient, cursor: str) -> None:
    response = api.get("/activities", {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]
