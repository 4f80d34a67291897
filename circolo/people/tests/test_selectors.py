from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import MemberScore
from circolo.activity.scores import decay_factor
from circolo.people.models import Member, MergeSuggestion
from circolo.people.selectors import (
    CSV_HEADER,
    member_csv_rows,
    member_get,
    member_list,
    merge_history,
    pending_suggestions,
    workspace_tags,
)
from circolo.people.services import member_merge, merge_undo
from circolo.testing.factories import IdentityFactory, MemberFactory
from circolo.testing.people_factories import MemberTagFactory, MergeSuggestionFactory

pytestmark = pytest.mark.django_db


def scored(member: Member, love: float, last_active: dt.datetime | None = None) -> Member:
    MemberScore.objects.create(
        member=member,
        workspace=member.workspace,
        growth=love / decay_factor(),
        activity_count=1,
        last_active=last_active or timezone.now(),
    )
    return member


def ids(queryset: Any) -> list[int]:
    return [member.pk for member in queryset]


# --------------------------------------------------------------------------- member_get


def test_member_get_returns_live_members_of_the_workspace(workspace, other_workspace) -> None:
    mine = MemberFactory(workspace=workspace)
    theirs = MemberFactory(workspace=other_workspace)
    merged = MemberFactory(workspace=workspace, merged_into=mine)
    assert member_get(workspace=workspace, member_id=mine.pk) == mine
    with pytest.raises(Member.DoesNotExist):
        member_get(workspace=workspace, member_id=theirs.pk)
    with pytest.raises(Member.DoesNotExist):
        member_get(workspace=other_workspace, member_id=mine.pk)
    with pytest.raises(Member.DoesNotExist):
        member_get(workspace=workspace, member_id=merged.pk)


# --------------------------------------------------------------------------- member_list


def test_member_list_searches_names_and_identities(workspace, other_workspace) -> None:
    anna = MemberFactory(workspace=workspace, display_name="Anna Rossi")
    jose = MemberFactory(workspace=workspace, display_name="José García")
    li = MemberFactory(workspace=workspace, display_name="李伟")
    IdentityFactory(member=li, value="liwei@example.cn")
    IdentityFactory(member=anna, channel="instagram", kind="social", value="annar")
    outsider = MemberFactory(workspace=other_workspace, display_name="Anna Rossi")
    IdentityFactory(member=outsider, value="anna@elsewhere.test")

    assert ids(member_list(workspace=workspace, q="anna", sort="name")) == [anna.pk]
    assert ids(member_list(workspace=workspace, q="garcia")) == [jose.pk]  # accents folded
    assert ids(member_list(workspace=workspace, q="  LIWEI@example ")) == [li.pk]
    assert ids(member_list(workspace=workspace, q="李")) == [li.pk]
    assert ids(member_list(workspace=workspace, q="ANNAR")) == [anna.pk]
    assert ids(member_list(workspace=workspace, q="elsewhere")) == []


def test_member_list_excludes_merged_and_other_workspaces(workspace, other_workspace) -> None:
    live = MemberFactory(workspace=workspace)
    MemberFactory(workspace=workspace, merged_into=live)
    MemberFactory(workspace=other_workspace)
    assert ids(member_list(workspace=workspace)) == [live.pk]


def test_member_list_filters_by_tag(workspace) -> None:
    vip = MemberFactory(workspace=workspace)
    MemberTagFactory(member=vip, tag="vip")
    MemberTagFactory(member=vip, tag="reviewer")
    MemberFactory(workspace=workspace)
    assert ids(member_list(workspace=workspace, tag=" VIP ")) == [vip.pk]
    assert ids(member_list(workspace=workspace, tag="nobody")) == []


def test_member_list_sorts_by_love_with_unscored_last(workspace) -> None:
    low = scored(MemberFactory(workspace=workspace), 2.0)
    high = scored(MemberFactory(workspace=workspace), 300.0)
    middle = scored(MemberFactory(workspace=workspace), 20.0)
    unscored = MemberFactory(workspace=workspace)

    members = list(member_list(workspace=workspace))
    assert ids(members) == [high.pk, middle.pk, low.pk, unscored.pk]
    assert members[0].love_growth == pytest.approx(300.0 / decay_factor())
    assert members[-1].love_growth is None and members[-1].last_active is None
    assert ids(member_list(workspace=workspace, sort="love")) == [
        low.pk,
        middle.pk,
        high.pk,
        unscored.pk,
    ]


def test_member_list_sorts_by_name_activity_and_first_seen(workspace) -> None:
    now = timezone.now()
    bea = scored(
        MemberFactory(
            workspace=workspace, display_name="bea", first_seen=now - dt.timedelta(days=3)
        ),
        1.0,
        now - dt.timedelta(days=1),
    )
    ada = scored(
        MemberFactory(
            workspace=workspace, display_name="Ada", first_seen=now - dt.timedelta(days=1)
        ),
        1.0,
        now - dt.timedelta(days=5),
    )
    cleo = MemberFactory(
        workspace=workspace, display_name="Cléo", first_seen=now - dt.timedelta(days=2)
    )

    assert ids(member_list(workspace=workspace, sort="name")) == [ada.pk, bea.pk, cleo.pk]
    assert ids(member_list(workspace=workspace, sort="-name")) == [cleo.pk, bea.pk, ada.pk]
    assert ids(member_list(workspace=workspace, sort="-last_active")) == [bea.pk, ada.pk, cleo.pk]
    assert ids(member_list(workspace=workspace, sort="last_active")) == [ada.pk, bea.pk, cleo.pk]
    assert ids(member_list(workspace=workspace, sort="first_seen")) == [bea.pk, cleo.pk, ada.pk]
    assert ids(member_list(workspace=workspace, sort="-first_seen")) == [ada.pk, cleo.pk, bea.pk]
    with pytest.raises(ValueError):
        member_list(workspace=workspace, sort="password")


def test_member_list_filters_by_level_and_recent_activity(workspace) -> None:
    now = timezone.now()
    casual = scored(MemberFactory(workspace=workspace), 5.0, now - dt.timedelta(days=40))
    core = scored(MemberFactory(workspace=workspace), 60.0, now - dt.timedelta(days=2))
    champion = scored(MemberFactory(workspace=workspace), 250.0, now - dt.timedelta(hours=3))
    faded = scored(MemberFactory(workspace=workspace), 0.5, now - dt.timedelta(days=300))
    unscored = MemberFactory(workspace=workspace)

    assert set(ids(member_list(workspace=workspace, level="inactive"))) == {faded.pk, unscored.pk}
    assert ids(member_list(workspace=workspace, level="casual")) == [casual.pk]
    assert ids(member_list(workspace=workspace, level="regular")) == []
    assert ids(member_list(workspace=workspace, level="core")) == [core.pk]
    assert ids(member_list(workspace=workspace, level="champion")) == [champion.pk]
    assert ids(member_list(workspace=workspace, active_within_days=7)) == [champion.pk, core.pk]
    assert ids(member_list(workspace=workspace, active_within_days=90, level="casual")) == [
        casual.pk
    ]
    with pytest.raises(ValueError):
        member_list(workspace=workspace, level="legend")


def test_member_list_query_count_does_not_grow(workspace, django_assert_num_queries) -> None:
    for index in range(30):
        member = scored(MemberFactory(workspace=workspace), float(index))
        MemberTagFactory(member=member, tag="vip")
        IdentityFactory(member=member)
    with django_assert_num_queries(1):
        members = list(
            member_list(workspace=workspace, q="example", tag="vip", level="", sort="-love")
        )
    assert len(members) == 30
    assert [m.love_growth for m in members] == sorted(
        (m.love_growth for m in members), reverse=True
    )


# --------------------------------------------------------------------------- CSV


def test_csv_rows(workspace, other_workspace) -> None:
    seen = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    anna = MemberFactory(
        workspace=workspace,
        display_name='=HYPERLINK("x")',
        city="Milano",
        country="IT",
        languages=["it", "en"],
        first_seen=seen,
        last_seen=seen,
    )
    scored(anna, 12.3456, seen)
    IdentityFactory(member=anna, value="b@example.com")
    IdentityFactory(member=anna, channel="shop", value="a@example.com")
    IdentityFactory(member=anna, channel="sms", kind="phone", value="+393331234567")
    IdentityFactory(member=anna, channel="forum", kind="handle", value="annar")
    MemberTagFactory(member=anna, tag="vip")
    MemberTagFactory(member=anna, tag="reviewer")
    quiet = MemberFactory(
        workspace=workspace, display_name="Quiet", first_seen=None, last_seen=None
    )
    theirs = MemberFactory(workspace=other_workspace)

    rows = list(
        member_csv_rows(
            workspace=workspace,
            queryset=Member.objects.filter(pk__in=[anna.pk, quiet.pk, theirs.pk]).order_by("pk"),
        )
    )
    assert rows[0] == CSV_HEADER
    assert rows[1] == [
        str(anna.pk),
        '\'=HYPERLINK("x")',
        "a@example.com b@example.com",
        "+393331234567",
        "Milano",
        "IT",
        "it en",
        "reviewer, vip",
        "regular",
        "12.35",
        "2025-01-02T03:04:05+00:00",
        "2025-01-02T03:04:05+00:00",
        "2025-01-02T03:04:05+00:00",
    ]
    assert rows[2] == [
        str(quiet.pk),
        "Quiet",
        "",
        "",
        "",
        "",
        "",
        "",
        "inactive",
        "0.00",
        "",
        "",
        "",
    ]
    # The other workspace's member is not exported even if the queryset includes it.
    assert len(rows) == 3


def test_csv_query_count_is_constant_per_chunk(workspace, django_assert_max_num_queries) -> None:
    for index in range(60):
        member = scored(MemberFactory(workspace=workspace), float(index))
        IdentityFactory(member=member)
        IdentityFactory(member=member, channel="sms", kind="phone", value=f"+3933312340{index:02d}")
        MemberTagFactory(member=member, tag="vip")
        MemberTagFactory(member=member, tag=f"t{index}")
    # One query for the members and one per prefetch, for a chunk of up to 2,000 members.
    with django_assert_max_num_queries(3):
        rows = list(member_csv_rows(workspace=workspace, queryset=member_list(workspace=workspace)))
    assert len(rows) == 61
    assert all(row[2] and row[3] and "vip" in row[7] for row in rows[1:])


# ------------------------------------------------------------------ suggestions, merges, tags


def test_pending_suggestions(workspace, other_workspace, owner, django_assert_num_queries) -> None:
    a, b, c, d = (MemberFactory(workspace=workspace) for _ in range(4))
    strong = MergeSuggestionFactory(member_a=a, member_b=b, score=0.9)
    weak = MergeSuggestionFactory(member_a=a, member_b=c, score=0.5)
    MergeSuggestionFactory(member_a=b, member_b=c, status=MergeSuggestion.Status.REJECTED)
    gone = MemberFactory(workspace=workspace, merged_into=d)
    MergeSuggestionFactory(member_a=c, member_b=gone)
    MergeSuggestionFactory(member_a__workspace=other_workspace)

    with django_assert_num_queries(1):
        found = list(pending_suggestions(workspace=workspace))
        assert [s.member_b.pk for s in found] == [b.pk, c.pk]
    assert found == [strong, weak]
    assert list(pending_suggestions(workspace=workspace, member=c)) == [weak]
    assert list(pending_suggestions(workspace=other_workspace, member=a)) == []


def test_merge_history(workspace, owner) -> None:
    a, b, c = (MemberFactory(workspace=workspace) for _ in range(3))
    first = member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user)
    merge_undo(record=first, actor=owner.user)
    second = member_merge(workspace=workspace, survivor=c, merged=a, actor=owner.user)
    assert list(merge_history(workspace=workspace, member=a)) == [second, first]
    assert list(merge_history(workspace=workspace, member=b)) == [first]
    assert list(merge_history(workspace=workspace, member=c)) == [second]


def test_workspace_tags(workspace, other_workspace) -> None:
    live = MemberFactory(workspace=workspace)
    MemberTagFactory(member=live, tag="vip")
    MemberTagFactory(member=MemberFactory(workspace=workspace), tag="ambassador")
    MemberTagFactory(member=MemberFactory(workspace=workspace), tag="vip")
    MemberTagFactory(member=MemberFactory(workspace=workspace, merged_into=live), tag="old")
    MemberTagFactory(member=MemberFactory(workspace=other_workspace), tag="secret")
    assert workspace_tags(workspace=workspace) == ["ambassador", "vip"]
