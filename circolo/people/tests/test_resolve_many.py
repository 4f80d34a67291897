"""member_resolve_many gives what member_resolve gives for each item in turn: the same
members (by their identities and details), the same merge suggestions, the same answer per
item, whatever mix of new people, returning people and namesakes a batch holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from circolo.core.models import Workspace
from circolo.people.models import Identity, Member, MergeSuggestion
from circolo.people.normalise import IdentityError
from circolo.people.services import (
    IdentityIn,
    MemberAttrs,
    ResolveItem,
    member_resolve,
    member_resolve_many,
)

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)

EMAILS = ["ada@example.com", "ada@example.org", "bo@example.com", "cy@example.com"]
PHONES = ["+393331234567", "+34612345678", "+393339876543"]
IDS = ["c-1", "c-2", "c-3", "c-4"]
NAMES = ["", "Ada Rossi", "ada rossi", "Bo Li"]
CITIES = ["", "Milano", "Madrid"]

person = st.fixed_dictionaries(
    {
        "email": st.none() | st.sampled_from(EMAILS),
        "phone": st.none() | st.sampled_from(PHONES),
        "id": st.none() | st.sampled_from(IDS),
        "verified": st.booleans(),
        "name": st.sampled_from(NAMES),
        "city": st.sampled_from(CITIES),
        "languages": st.lists(st.sampled_from(["it", "es", "en"]), max_size=2, unique=True),
    }
).filter(lambda p: p["email"] or p["phone"] or p["id"])


def _item(spec: dict[str, Any], minute: int) -> ResolveItem:
    identities = []
    if spec["id"]:
        identities.append(
            IdentityIn(
                channel="shop:1", kind="customer_id", value=spec["id"], verified=spec["verified"]
            )
        )
    if spec["email"]:
        identities.append(IdentityIn(channel="shop:1", kind="email", value=spec["email"]))
    if spec["phone"]:
        identities.append(IdentityIn(channel="forum", kind="phone", value=spec["phone"]))
    return ResolveItem(
        identities=identities,
        attrs=MemberAttrs(
            display_name=spec["name"], city=spec["city"], languages=tuple(spec["languages"])
        ),
        seen_at=T0 + dt.timedelta(minutes=minute),
    )


def _who(member: Member) -> frozenset[tuple[str, str, str, bool]]:
    return frozenset(
        Identity.objects.filter(member=member).values_list("channel", "kind", "value", "verified")
    )


def _state(workspace: Workspace) -> dict[str, Any]:
    members = {
        _who(member): (
            member.display_name,
            member.name_key,
            member.city,
            member.country,
            tuple(member.languages),
            member.first_seen,
            member.last_seen,
        )
        for member in Member.objects.filter(workspace=workspace, merged_into__isnull=True)
    }
    suggestions = {
        (
            frozenset((_who(s.member_a), _who(s.member_b))),
            frozenset(reason["code"] for reason in s.reasons),
            s.score,
            s.status,
        )
        for s in MergeSuggestion.objects.filter(workspace=workspace)
    }
    return {"members": members, "suggestions": suggestions}


def _p(email=None, phone=None, id=None, name="", city=""):
    return {"email": email, "phone": phone, "id": id, "verified": False, "name": name,
            "city": city, "languages": []}  # fmt: skip


@given(
    before=st.lists(person, max_size=4),
    batch=st.lists(person, min_size=1, max_size=10),
)
# Found by hypothesis: a namesake pair seen from both sides (a returning record names the
# first member after the second was created) must count as one reason, not two.
@example(
    before=[],
    batch=[
        _p(phone="+393339876543"),
        _p(phone="+393339876543", name="Ada Rossi", city="Milano"),
        _p(id="c-1", name="ada rossi", city="Milano"),
        _p(email="ada@example.com", id="c-1"),
    ],
)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_many_equals_one_by_one(before: list[dict[str, Any]], batch: list[dict[str, Any]]) -> None:
    with transaction.atomic():
        one = Workspace.objects.create(name="One", slug="one-by-one")
        many = Workspace.objects.create(name="Many", slug="many-at-once")
        for workspace in (one, many):
            for minute, spec in enumerate(before):
                item = _item(spec, minute)
                member_resolve(
                    workspace=workspace,
                    identities=item.identities,
                    attrs=item.attrs,
                    seen_at=item.seen_at,
                )
        items = [_item(spec, 100 + minute) for minute, spec in enumerate(batch)]
        singly = [
            member_resolve(
                workspace=one, identities=item.identities, attrs=item.attrs, seen_at=item.seen_at
            )
            for item in items
        ]
        together = member_resolve_many(workspace=many, items=items)

        assert len(together) == len(items)
        assert [(_who(r.member), r.created) for r in together] == [
            (_who(r.member), r.created) for r in singly
        ]

        # The same suggestions come back, though not always on the same item: new people are
        # created first, so a namesake pair can be found from the other side.
        def returned(results: list[Any]) -> set[frozenset[Any]]:
            return {
                frozenset((_who(s.member_a), _who(s.member_b)))
                for r in results
                for s in r.suggestions
            }

        assert returned(together) == returned(singly)
        assert _state(many) == _state(one)
        transaction.set_rollback(True)


def test_new_people_are_created_in_a_few_statements(django_assert_max_num_queries: Any) -> None:
    workspace = Workspace.objects.create(name="Bulk", slug="bulk")
    items = [
        _item(
            {
                "email": f"p{n}@example.com",
                "phone": None,
                "id": f"c-{n}",
                "verified": True,
                "name": f"Person {n}",
                "city": "Milano",
                "languages": ["it"],
            },
            n,
        )
        for n in range(200)
    ]
    # member_resolve takes about a dozen statements per new person; here a handful per batch
    # (SQLite splits each bulk insert by its bound on parameters: four of each for 200).
    with django_assert_max_num_queries(20):
        resolved = member_resolve_many(workspace=workspace, items=items)
    assert all(r.created for r in resolved)
    assert Member.objects.filter(workspace=workspace).count() == 200
    assert Identity.objects.filter(workspace=workspace).count() == 400


def test_a_bad_item_raises_like_member_resolve_and_writes_nothing() -> None:
    workspace = Workspace.objects.create(name="Bad", slug="bad")
    good = ResolveItem(identities=[IdentityIn(channel="shop", kind="email", value="a@example.com")])
    bad = ResolveItem(identities=[IdentityIn(channel="shop", kind="email", value="not an email")])
    with pytest.raises(IdentityError):
        member_resolve_many(workspace=workspace, items=[good, bad])
    assert not Member.objects.filter(workspace=workspace).exists()
