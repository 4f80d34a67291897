"""Ambassadors: members apply or are invited, the team approves them (a personal code that
brings friends, perks, a multiplier, the badge) or declines, ends a membership, finds members
worth inviting and sees what each ambassador brought."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import MemberDailyRollup
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.models import Notification
from circolo.core.models import AuditLog
from circolo.loyalty.ambassadors import (
    AmbassadorError,
    ambassador_apply,
    ambassador_decide,
    ambassador_end,
    ambassador_impact,
    ambassador_invite,
    ambassador_suggestions,
    ambassadors_list,
)
from circolo.loyalty.badges import badges_ensure_defaults
from circolo.loyalty.models import Ambassador, MemberBadge, Referral, ReferralCode
from circolo.loyalty.orders import members_multipliers
from circolo.loyalty.referrals import referral_code_for
from circolo.people.models import Member
from circolo.testing.commerce import make_store
from circolo.testing.factories import ActivityFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
DAY = dt.timedelta(days=1)


@pytest.fixture
def staff() -> Any:
    return UserFactory()


@pytest.fixture
def anna(workspace: Any) -> Member:
    return MemberFactory(workspace=workspace, display_name="Anna Rossi")


def told(member: Member) -> list[str]:
    return list(
        Notification.objects.filter(recipient=member, kind="rewards")
        .order_by("pk")
        .values_list("data__what", flat=True)
    )


# --------------------------------------------------------------------------- applying


def test_apply_then_approve(workspace, anna, staff) -> None:
    badges_ensure_defaults(workspace_id=workspace.pk)
    row = ambassador_apply(member=anna, message="  I love the shop  ")
    assert (row.status, row.message) == (Ambassador.Status.APPLIED, "I love the shop")
    with pytest.raises(AmbassadorError, match="applied already"):
        ambassador_apply(member=anna, message="again")
    row = ambassador_decide(
        ambassador=row, actor=staff, approve=True, perks="Early samples", multiplier_percent=150,
        code=" anna10 ",
    )  # fmt: skip
    assert (row.status, row.perks, row.multiplier_percent) == (
        Ambassador.Status.APPROVED, "Early samples", 150,
    )  # fmt: skip
    assert (row.code.code, row.code.personal, row.code.member_id) == ("ANNA10", True, anna.pk)
    assert told(anna) == ["ambassador", "badge"]
    assert MemberBadge.objects.filter(member=anna, badge__slug="ambassador").exists()
    assert members_multipliers(workspace_id=workspace.pk, member_ids=[anna.pk]) == {anna.pk: 150}
    assert AuditLog.objects.filter(
        workspace=workspace, action="loyalty.ambassador.approve"
    ).exists()
    with pytest.raises(AmbassadorError, match="already"):
        ambassador_apply(member=anna, message="more")
    # Changing an approved ambassador's code turns the old one off, without a new welcome.
    row = ambassador_decide(
        ambassador=row, actor=staff, approve=True, perks="", multiplier_percent=100, code="ANNA-VIP"
    )
    assert row.code.code == "ANNA-VIP"
    assert not ReferralCode.objects.get(workspace=workspace, code="ANNA10").active
    assert told(anna) == ["ambassador", "badge"]
    assert AuditLog.objects.filter(action="loyalty.ambassador.update").count() == 1


def test_apply_errors(workspace, anna) -> None:
    for message, field in (("", "message"), ("   ", "message"), ("x" * 2001, "message")):
        with pytest.raises(AmbassadorError) as error:
            ambassador_apply(member=anna, message=message)
        assert error.value.field == field
    gone = MemberFactory(workspace=workspace, merged_into=anna)
    with pytest.raises(AmbassadorError) as error:
        ambassador_apply(member=gone, message="hello")
    assert error.value.field == "member"
    assert not Ambassador.objects.exists()


def test_approve_errors(workspace, anna, staff) -> None:
    row = ambassador_apply(member=anna, message="Pick me")
    taken = referral_code_for(member=MemberFactory(workspace=workspace, display_name="Bea"))
    cases = [
        ({"code": "a b"}, "code"),
        ({"code": "ab"}, "code"),
        ({"code": "-ANNA"}, "code"),
        ({"code": taken.code.lower()}, "code"),
        ({"code": "ANNA10", "multiplier_percent": 99}, "multiplier_percent"),
        ({"code": "ANNA10", "multiplier_percent": 501}, "multiplier_percent"),
        ({"code": "ANNA10", "perks": "x" * 2001}, "perks"),
    ]
    for kwargs, field in cases:
        with pytest.raises(AmbassadorError) as error:
            ambassador_decide(ambassador=row, actor=staff, approve=True, **kwargs)
        assert error.value.field == field, kwargs
    row.refresh_from_db()
    assert row.status == Ambassador.Status.APPLIED
    assert not ReferralCode.objects.filter(personal=True).exists()


def test_invite_accept_decline_and_end(workspace, other_workspace, anna, staff) -> None:
    badges_ensure_defaults(workspace_id=workspace.pk)
    row = ambassador_invite(workspace=workspace, member=anna, actor=staff, message="Join us!")
    assert row.status == Ambassador.Status.INVITED and told(anna) == ["ambassador_invited"]
    with pytest.raises(AmbassadorError):
        ambassador_invite(workspace=other_workspace, member=anna, actor=staff, message="")
    row = ambassador_apply(member=anna, message="Yes please")
    assert row.status == Ambassador.Status.APPLIED
    with pytest.raises(AmbassadorError, match="decide"):
        ambassador_invite(workspace=workspace, member=anna, actor=staff, message="")
    row = ambassador_decide(ambassador=row, actor=staff, approve=False)
    assert row.status == Ambassador.Status.DECLINED
    with pytest.raises(AmbassadorError):
        ambassador_end(ambassador=row, actor=staff)
    # Declined members may apply again; approved, then ended.
    row = ambassador_apply(member=anna, message="Once more")
    row = ambassador_decide(ambassador=row, actor=staff, approve=True, code="ANNA")
    with pytest.raises(AmbassadorError, match="End"):
        ambassador_decide(ambassador=row, actor=staff, approve=False)
    row = ambassador_end(ambassador=row, actor=staff)
    assert row.status == Ambassador.Status.ENDED
    assert not ReferralCode.objects.get(pk=row.code_id).active
    assert not MemberBadge.objects.filter(member=anna, badge__slug="ambassador").exists()
    assert members_multipliers(workspace_id=workspace.pk, member_ids=[anna.pk]) == {anna.pk: 100}
    actions = list(
        AuditLog.objects.filter(workspace=workspace, action__startswith="loyalty.ambassador")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "loyalty.ambassador.invite", "loyalty.ambassador.decline",
        "loyalty.ambassador.approve", "loyalty.ambassador.end",
    ]  # fmt: skip
    # Coming back: the code is theirs again.
    row = ambassador_apply(member=anna, message="Back")
    row = ambassador_decide(ambassador=row, actor=staff, approve=True, code="anna")
    assert ReferralCode.objects.get(pk=row.code_id).active
    assert MemberBadge.objects.filter(member=anna, badge__slug="ambassador").exists()


def test_lists_waiting_first(workspace, anna, staff) -> None:
    bea = MemberFactory(workspace=workspace)
    approved = ambassador_decide(
        ambassador=ambassador_apply(member=bea, message="hi"), actor=staff, approve=True,
        code="BEA1",
    )  # fmt: skip
    waiting = ambassador_apply(member=anna, message="me")
    assert [row.pk for row in ambassadors_list(workspace=workspace)] == [waiting.pk, approved.pk]


# --------------------------------------------------------------------------- suggestions


def test_suggestions_with_reasons(workspace, anna, staff) -> None:
    bea, carlo, dario, ugo = (MemberFactory(workspace=workspace) for _ in range(4))
    today = NOW.date()
    MemberDailyRollup.objects.bulk_create(
        [
            MemberDailyRollup(workspace=workspace, member=anna, day=today, count=5, weight_sum=90),
            MemberDailyRollup(workspace=workspace, member=bea, day=today, count=1, weight_sum=10),
            # Older than 90 days: not counted.
            MemberDailyRollup(
                workspace=workspace, member=ugo, day=today - 120 * DAY, count=9, weight_sum=999
            ),
        ]
    )
    for n in range(3):
        ActivityFactory(member=carlo, kind="accepted_answer", source_id=f"aa-{n}")
    code = referral_code_for(member=dario)
    for n in range(2):
        Referral.objects.create(
            workspace=workspace, advocate=dario, code=code, via="link",
            friend_email=f"f{n}@example.com", friend_email_key=f"f{n}@example.com",
            status=Referral.Status.REWARDED, claimed_at=NOW,
        )  # fmt: skip
    ActivityFactory(member=anna, kind="accepted_answer", source_id="aa-anna")
    suggestions = ambassador_suggestions(workspace=workspace)
    by_member = {s.member.pk: s for s in suggestions}
    assert suggestions[0].member == anna and len(anna_reasons := by_member[anna.pk].reasons) == 2
    assert "90" in anna_reasons[0]
    assert by_member[carlo.pk].answers == 3 and by_member[dario.pk].referrals == 2
    assert by_member[bea.pk].weight == 10 and ugo.pk not in by_member
    ambassador_invite(workspace=workspace, member=anna, actor=staff, message="")
    assert anna.pk not in {s.member.pk for s in ambassador_suggestions(workspace=workspace)}
    assert len(ambassador_suggestions(workspace=workspace, limit=2)) == 2


# --------------------------------------------------------------------------- impact


def test_personal_code_brings_friends_and_impact_counts(
    workspace, anna, staff, django_capture_on_commit_callbacks
) -> None:
    store = make_store(workspace, external_id="bottega.myshopify.com")
    row = ambassador_decide(
        ambassador=ambassador_apply(member=anna, message="hi"), actor=staff, approve=True,
        code="ANNA10", multiplier_percent=200,
    )  # fmt: skip

    def order(ext: str, email: str, total: int, codes: tuple[str, ...] = ()) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            order_upsert(
                store=store,
                order=OrderIn(
                    external_id=ext, currency="EUR", placed_at=NOW - DAY, paid_at=NOW - DAY,
                    updated_at=NOW - DAY, status="paid", total_minor=total,
                    customer=CustomerIn(email=email), discount_codes=codes,
                    lines=(LineIn(external_id=f"{ext}-1", quantity=1, unit_price_minor=total),),
                ),
            )  # fmt: skip

    order("1", "bea@example.com", 4_000, ("anna10",))
    order("2", "bea@example.com", 6_000)
    order("3", "carlo@example.com", 1_000)
    referral = Referral.objects.get(workspace=workspace)
    assert (referral.advocate_id, referral.code_id, referral.status) == (
        anna.pk, row.code_id, Referral.Status.ORDERED,
    )  # fmt: skip
    for kind, n in (("accepted_answer", 2), ("post", 3), ("reply", 4)):
        for i in range(n):
            ActivityFactory(member=anna, kind=kind, source_id=f"{kind}-{i}")
    ActivityFactory(member=anna, kind="post", source_id="old", occurred_at=NOW - 400 * DAY)
    impact = ambassador_impact(ambassador=row)
    assert (impact.friends, impact.orders, impact.revenue) == (1, 2, {"EUR": 10_000})
    assert (impact.answers, impact.posts, impact.replies, impact.content) == (2, 3, 4, 7)
