"""Badges: the defaults once per workspace, automatic awards from activities and referrals
(once each), the month's top contributors (once per month), grants and revocations by the
team (audited), and badges beside names on thread pages and profiles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from circolo.activity.models import MemberDailyRollup
from circolo.activity.services import activity_record
from circolo.community.models import Notification
from circolo.community.profiles import profile_ensure, profile_update
from circolo.community.services import space_create, thread_create
from circolo.core.models import AuditLog
from circolo.loyalty.badges import (
    DEFAULT_SLUGS,
    BadgeError,
    BadgeIn,
    badge_create,
    badge_grant,
    badge_revoke,
    badge_update,
    badges_activity_check,
    badges_ensure_defaults,
    badges_for_members,
    badges_referrals_check,
    member_badges,
    member_find,
    top_contributors_award,
    translated_names,
)
from circolo.loyalty.models import Badge, MemberBadge, Referral, ReferralCode
from circolo.loyalty.tasks import previous_month, top_contributors_task
from circolo.people.models import Member
from circolo.testing.factories import IdentityFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
_sources = iter(range(10**6))


def act(workspace: Any, member: Member, kind: str, **properties: Any) -> None:
    activity_record(
        workspace=workspace, member=member, kind=kind, channel="community",
        occurred_at=NOW - dt.timedelta(hours=1), source="test",
        source_id=f"{kind}:{next(_sources)}", properties=properties,
    )  # fmt: skip


def held(member: Member) -> list[str]:
    return sorted(MemberBadge.objects.filter(member=member).values_list("badge__slug", flat=True))


def badge(workspace: Any, slug: str) -> Badge:
    badges_ensure_defaults(workspace_id=workspace.pk)
    return Badge.objects.get(workspace=workspace, slug=slug)


def badge_news(member: Member) -> list[str]:
    return [
        data["badge"]
        for data in Notification.objects.filter(recipient=member, kind="rewards")
        .order_by("pk")
        .values_list("data", flat=True)
        if data.get("what") == "badge"
    ]


# --------------------------------------------------------------------------- defaults


def test_default_badges_are_created_once_with_their_rules(workspace, other_workspace) -> None:
    assert badges_ensure_defaults(workspace_id=workspace.pk) == 7
    assert badges_ensure_defaults(workspace_id=workspace.pk) == 0
    rows = {b.slug: b for b in Badge.objects.filter(workspace=workspace)}
    assert set(rows) == DEFAULT_SLUGS
    assert (rows["helpful-10"].rule, rows["helpful-10"].threshold) == ("accepted_answers", 10)
    assert (rows["event-regular"].rule, rows["event-regular"].threshold) == ("event_regular", 3)
    assert (rows["referrer"].rule, rows["referrer"].threshold) == ("referrals", 3)
    assert rows["ambassador"].rule == "manual"
    assert rows["top-contributor"].rule == "top_contributor"
    assert rows["first-answer"].name == "First answer"
    assert not Badge.objects.filter(workspace=other_workspace).exists()
    # Names are filled in every language that translates them.
    assert translated_names("Accepted answers") == {
        "it": "Risposte accettate", "es": "Respuestas aceptadas", "zh-hans": "被采纳的回答",
    }  # fmt: skip


# --------------------------------------------------------------------------- activities


def test_activity_badges_are_awarded_once_when_reached(
    workspace, django_capture_on_commit_callbacks
) -> None:
    helper, reviewer, fan, idle = (MemberFactory(workspace=workspace) for _ in range(4))
    with django_capture_on_commit_callbacks(execute=True):
        act(workspace, helper, "accepted_answer")
        act(workspace, reviewer, "review", verified=False)
        act(workspace, fan, "event_attendance")
        act(workspace, fan, "event_attendance")
        act(workspace, idle, "post")
    assert held(helper) == ["first-answer"]
    assert held(reviewer) == [] and held(fan) == [] and held(idle) == []
    assert badge_news(helper) == ["First answer"]

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(9):
            act(workspace, helper, "accepted_answer")
        act(workspace, reviewer, "review", verified=True)
        act(workspace, fan, "event_attendance")
    assert held(helper) == ["first-answer", "helpful-10"]
    assert held(reviewer) == ["verified-reviewer"]
    assert held(fan) == ["event-regular"]
    assert badge_news(helper) == ["First answer", "Helpful"]

    # Again and again: nothing new, nobody told twice.
    with django_capture_on_commit_callbacks(execute=True):
        act(workspace, helper, "accepted_answer")
    ids = [helper.pk, reviewer.pk, fan.pk]
    assert badges_activity_check(workspace_id=workspace.pk, member_ids=ids) == 0
    assert MemberBadge.objects.count() == 4
    assert Notification.objects.filter(kind="rewards", data__what="badge").count() == 4


def test_disabled_badges_and_thresholds_set_by_the_team(workspace, owner) -> None:
    regular = badge(workspace, "event-regular")
    badge_update(
        workspace=workspace, actor=owner.user, badge=regular,
        data=BadgeIn(name="Regular", symbol="R", threshold=1),
    )  # fmt: skip
    first = badge(workspace, "first-answer")
    first.enabled = False
    first.save()
    member = MemberFactory(workspace=workspace)
    act(workspace, member, "event_attendance")
    act(workspace, member, "accepted_answer")
    assert badges_activity_check(workspace_id=workspace.pk, member_ids=[member.pk]) == 1
    assert held(member) == ["event-regular"]


def test_referrer_badge_counts_rewarded_referrals(workspace) -> None:
    advocate, other = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    code = ReferralCode.objects.create(
        workspace=workspace, member=advocate, code="ADA", created_at=NOW
    )

    def refer(n: int, status: str, who: Member = advocate) -> None:
        Referral.objects.create(
            workspace=workspace, advocate=who, code=code, via="link",
            friend_email=f"f{n}@example.com", friend_email_key=f"f{n}@example.com",
            status=status, claimed_at=NOW,
        )  # fmt: skip

    refer(1, Referral.Status.REWARDED)
    refer(2, Referral.Status.REWARDED)
    refer(3, Referral.Status.REVIEW)
    refer(4, Referral.Status.REWARDED, who=other)
    ids = [advocate.pk, other.pk]
    assert badges_referrals_check(workspace_id=workspace.pk, member_ids=ids) == 0
    refer(5, Referral.Status.REWARDED)
    assert badges_referrals_check(workspace_id=workspace.pk, member_ids=ids) == 1
    assert badges_referrals_check(workspace_id=workspace.pk, member_ids=ids) == 0
    assert held(advocate) == ["referrer"] and held(other) == []
    assert badge_news(advocate) == ["Referrer"]


# --------------------------------------------------------------------------- monthly


def test_top_contributors_once_per_month(workspace, other_workspace) -> None:
    members = [MemberFactory(workspace=workspace) for _ in range(5)]
    stranger = MemberFactory(workspace=other_workspace)
    october = dt.date(2025, 10, 1)
    weights = [50, 10, 40, 30, 0]
    for member, weight in zip(members, weights, strict=True):
        for day in (3, 20):
            MemberDailyRollup.objects.create(
                workspace=workspace, member=member, day=october.replace(day=day), count=1,
                weight_sum=weight,
            )  # fmt: skip
    MemberDailyRollup.objects.create(
        workspace=other_workspace, member=stranger, day=october, count=1, weight_sum=999
    )
    # September and November do not count for October.
    MemberDailyRollup.objects.create(
        workspace=workspace, member=members[1], day=dt.date(2025, 11, 1), count=1, weight_sum=500
    )
    assert top_contributors_award(workspace_id=workspace.pk, month=dt.date(2025, 10, 17)) == 3
    top = MemberBadge.objects.filter(badge__slug="top-contributor", period="2025-10")
    assert {row.member_id for row in top} == {members[0].pk, members[2].pk, members[3].pk}
    # Later activity in October changes nothing: the month was awarded.
    MemberDailyRollup.objects.create(
        workspace=workspace, member=members[4], day=october.replace(day=30), count=1,
        weight_sum=1000,
    )  # fmt: skip
    assert top_contributors_award(workspace_id=workspace.pk, month=october) == 0
    assert top.count() == 3
    assert top_contributors_award(workspace_id=workspace.pk, month=dt.date(2025, 11, 1)) == 1
    assert held(members[1]) == ["top-contributor"]
    assert badge_news(members[0]) == ["Top contributor"]
    assert not MemberBadge.objects.filter(member=stranger).exists()


def test_monthly_task_awards_the_previous_month(workspace) -> None:
    assert previous_month(dt.date(2026, 1, 15)) == dt.date(2025, 12, 1)
    assert previous_month(dt.date(2026, 3, 1)) == dt.date(2026, 2, 1)
    member = MemberFactory(workspace=workspace)
    last_month = previous_month(timezone.now().date())
    MemberDailyRollup.objects.create(
        workspace=workspace, member=member, day=last_month, count=1, weight_sum=5
    )
    assert top_contributors_task.apply().get() == 1
    assert top_contributors_task.apply().get() == 0
    assert MemberBadge.objects.get(member=member).period == last_month.strftime("%Y-%m")


# --------------------------------------------------------------------------- staff


def test_grant_and_revoke_are_audited_and_told(workspace, other_workspace, owner) -> None:
    ambassador = badge(workspace, "ambassador")
    member = MemberFactory(workspace=workspace)
    holding = badge_grant(badge=ambassador, member=member, actor=owner.user, note="Grazie!")
    assert holding.granted_by == owner.user and holding.note == "Grazie!" and holding.period == ""
    assert badge_news(member) == ["Ambassador"]
    with pytest.raises(BadgeError) as error:
        badge_grant(badge=ambassador, member=member, actor=owner.user)
    assert "member" in error.value.errors
    with pytest.raises(BadgeError):
        badge_grant(badge=ambassador, member=MemberFactory(workspace=other_workspace), actor=None)
    with pytest.raises(BadgeError) as error:
        badge_grant(badge=badge(workspace, "top-contributor"), member=member, actor=owner.user)
    assert "badge" in error.value.errors

    assert badge_revoke(badge=ambassador, member=member, actor=owner.user, note="oops") == 1
    assert held(member) == []
    with pytest.raises(BadgeError):
        badge_revoke(badge=ambassador, member=member, actor=owner.user)
    audit = list(
        AuditLog.objects.filter(workspace=workspace).order_by("pk").values_list("action", "data")
    )
    assert audit == [
        ("loyalty.badge_granted", {"member": member.pk, "badge": "ambassador", "note": "Grazie!"}),
        ("loyalty.badge_revoked", {"member": member.pk, "badge": "ambassador", "note": "oops"}),
    ]
    # A second grant after a revocation tells the member nothing new (same key).
    badge_grant(badge=ambassador, member=member, actor=owner.user)
    assert badge_news(member) == ["Ambassador"]


def test_badge_create_and_update_validate(workspace, owner) -> None:
    made = badge_create(
        workspace=workspace, actor=owner.user,
        data=BadgeIn(
            name="Barista", symbol="☕", description="Knows coffee", names={"it": "Barista"}
        ),
    )  # fmt: skip
    assert (made.slug, made.rule, made.symbol) == ("barista", "manual", "☕")
    again = badge_create(
        workspace=workspace, actor=owner.user, data=BadgeIn(name="Barista!", symbol="B")
    )
    assert again.slug == "barista-2"
    bad = [
        (BadgeIn(name="", symbol="x"), "name"),
        (BadgeIn(name="barista", symbol="x"), "name"),
        (BadgeIn(name="N", symbol=""), "symbol"),
        (BadgeIn(name="N", symbol="123456789"), "symbol"),
        (BadgeIn(name="N", symbol="x", description="d" * 201), "description"),
        (BadgeIn(name="N", symbol="x", names={"de": "N"}), "name_de"),
    ]
    for data, field in bad:
        with pytest.raises(BadgeError) as error:
            badge_create(workspace=workspace, actor=owner.user, data=data)
        assert field in error.value.errors, data
    helpful = badge(workspace, "helpful-10")
    with pytest.raises(BadgeError) as error:
        badge_update(
            workspace=workspace, actor=owner.user, badge=helpful,
            data=BadgeIn(name="Helpful", symbol="H", threshold=0),
        )  # fmt: skip
    assert "threshold" in error.value.errors
    actions = AuditLog.objects.filter(workspace=workspace).values_list("action", flat=True)
    assert sorted(actions) == ["loyalty.badge_created", "loyalty.badge_created"]


def test_member_find_by_number_or_email(workspace, other_workspace) -> None:
    member = MemberFactory(workspace=workspace)
    IdentityFactory(member=member, value="ada@example.com")
    user = UserFactory(email="Bruno@Example.com")
    bruno = MemberFactory(workspace=workspace, user=user)
    stranger = MemberFactory(workspace=other_workspace)
    assert member_find(workspace=workspace, text=f" {member.pk} ") == member
    assert member_find(workspace=workspace, text="ADA@example.com") == member
    assert member_find(workspace=workspace, text="bruno@example.com") == bruno
    assert member_find(workspace=workspace, text=str(stranger.pk)) is None
    assert member_find(workspace=workspace, text="nobody") is None


# --------------------------------------------------------------------------- reading


def test_badges_for_members_in_one_query(workspace, owner, django_assert_num_queries) -> None:
    badges_ensure_defaults(workspace_id=workspace.pk)
    ambassador = Badge.objects.get(workspace=workspace, slug="ambassador")
    ambassador.names = {"it": "Ambasciatore"}
    ambassador.save()
    top = Badge.objects.get(workspace=workspace, slug="top-contributor")
    off = Badge.objects.get(workspace=workspace, slug="referrer")
    off.enabled = False
    off.save()
    one, two, none = (MemberFactory(workspace=workspace) for _ in range(3))
    for member, holding, period in [
        (one, ambassador, ""), (one, top, "2025-09"), (one, top, "2025-10"), (one, off, ""),
        (two, top, "2025-10"),
    ]:  # fmt: skip
        MemberBadge.objects.create(
            workspace=workspace, member=member, badge=holding, period=period, awarded_at=NOW
        )
    with django_assert_num_queries(1):
        found = badges_for_members(
            workspace_id=workspace.pk, member_ids=[one.pk, two.pk, none.pk], language="it"
        )
    assert set(found) == {one.pk, two.pk}
    assert [(b.slug, b.name, b.period) for b in found[one.pk]] == [
        ("ambassador", "Ambasciatore", ""),
        ("top-contributor", "Top contributor", "2025-10"),
    ]
    # The profile lists every month of a monthly badge.
    with django_assert_num_queries(1):
        listed = member_badges(member=one, language="en")
    assert [(b.name, b.period) for b in listed] == [
        ("Ambassador", ""), ("Top contributor", "2025-09"), ("Top contributor", "2025-10"),
    ]  # fmt: skip


def test_badges_show_on_thread_pages_and_profiles(workspace, owner) -> None:
    author = MemberFactory(workspace=workspace, display_name="Ada")
    profile_ensure(author)
    profile_update(member=author, handle="ada")
    badge_grant(badge=badge(workspace, "ambassador"), member=author, actor=owner.user)
    space = space_create(workspace=workspace, actor=None, name="Domande")
    thread = thread_create(space=space, author=author, title="Moka?", body="Quanto caffè?")
    visitor = Client()
    page = visitor.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert 'data-badge="ambassador"' in page and "Ambassador" in page
    profile = visitor.get(f"/c/{workspace.slug}/u/ada/")
    assert profile.status_code == 200
    assert 'id="profile-badges"' in profile.content.decode()
    assert 'data-badge="ambassador"' in profile.content.decode()
