"""Referral and ambassador pages: the invitation landing works signed out (click, cookie,
claim, code), members see their link, share links and referrals, apply to be ambassadors;
the team reviews referrals and runs the ambassador program. Outsiders get 404, weaker roles
403, bad input a message."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from circolo.core.models import AuditLog
from circolo.loyalty.ambassadors import ambassador_apply, ambassador_decide
from circolo.loyalty.models import Ambassador, PoolCode, Program, Referral, ReferralClick, Reward
from circolo.loyalty.referrals import referral_claim, referral_code_for
from circolo.people.models import Member
from circolo.testing.factories import IdentityFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


@pytest.fixture
def gift(workspace: Any) -> Reward:
    reward = Reward.objects.create(
        workspace=workspace, name="10% off your first order", kind=Reward.Kind.PERCENT_OFF,
        percent=10, code_source=Reward.CodeSource.POOL,
    )  # fmt: skip
    PoolCode.objects.bulk_create(
        PoolCode(
            workspace=workspace, reward=reward, code=f"WELCOME{n}", uploaded_at=reward.created_at
        )
        for n in range(1, 10)
    )
    Program.objects.update_or_create(
        workspace=workspace, defaults={"referral_friend_reward": reward}
    )
    return reward


@pytest.fixture
def anna(workspace: Any) -> Member:
    member = MemberFactory(workspace=workspace, display_name="Anna Rossi")
    IdentityFactory(member=member, channel="community", value="anna.rossi@gmail.com")
    return member


def invite_url(workspace: Any, code: str) -> str:
    return f"/c/{workspace.slug}/rewards/invite/{code}/"


def member_of(persona: Any) -> Member:
    return Member.objects.get(workspace=persona.workspace, user=persona.user)


# --------------------------------------------------------------------------- landing


def test_signed_out_landing_claims_and_shows_the_code(workspace, anna, gift) -> None:
    client = Client()
    code = referral_code_for(member=anna)
    url = invite_url(workspace, code.code)
    page = client.get(url.lower(), REMOTE_ADDR="203.0.113.7")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Anna invites you" in text and "10% off your first order" in text
    assert 'id="claim-form"' in text
    cookie = page.cookies[f"circolo_ref_{workspace.pk}"]
    assert cookie["max-age"] == 30 * 86400 and cookie["httponly"]
    click = ReferralClick.objects.get()
    assert click.code == code and click.address_hash and "203.0.113.7" not in click.address_hash

    response = client.post(
        url, {"email": "Bea@Example.com", "name": "Bea"}, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 302 and response["Location"] == url
    referral = Referral.objects.get(workspace=workspace)
    assert referral.friend_email_key == "bea@example.com"
    shown = client.get(url).content.decode()
    assert referral.friend_redemption.code in shown and 'id="friend-code"' in shown
    # The visitor was remembered: the claim went to the link they clicked.
    assert referral.advocate_id == anna.pk


def test_last_click_wins_through_the_cookie(workspace, anna, gift) -> None:
    carlo = MemberFactory(workspace=workspace, display_name="Carlo Neri")
    client = Client()
    anna_url = invite_url(workspace, referral_code_for(member=anna).code)
    client.get(anna_url)
    client.get(invite_url(workspace, referral_code_for(member=carlo).code))
    client.post(anna_url, {"email": "bea@example.com"})
    assert Referral.objects.get(workspace=workspace).advocate_id == carlo.pk


def test_landing_errors(workspace, other_workspace, anna, gift) -> None:
    client = Client()
    assert client.get(invite_url(workspace, "NOPE-2222")).status_code == 404
    stranger = referral_code_for(member=MemberFactory(workspace=other_workspace))
    page = client.get(invite_url(workspace, stranger.code))
    assert page.status_code == 404 and "not valid any more" in page.content.decode()
    assert client.get(f"/c/nowhere/rewards/invite/{stranger.code}/").status_code == 404
    url = invite_url(workspace, referral_code_for(member=anna).code)
    for data, message in (
        ({"email": "not-an-email"}, "is not a valid email address"),
        ({"email": ""}, "This field is required"),
        ({"email": "bea@example.com", "name": "x" * 201}, "at most 200 characters"),
    ):
        response = client.post(url, data)
        assert response.status_code == 400, data
        assert message in response.content.decode(), data
    assert not Referral.objects.exists()
    client.post(url, {"email": "bea@example.com"})
    again = Client().post(url, {"email": "BEA@example.com"})
    assert again.status_code == 400 and "invited already" in again.content.decode()
    Program.objects.filter(workspace=workspace).update(enabled=False)
    closed = Client().get(url).content.decode()
    assert 'id="program-closed"' in closed and 'id="claim-form"' not in closed


def test_own_invitation(workspace, member_user, gift) -> None:
    member_user.client.get(f"/c/{workspace.slug}/rewards/referrals/")
    code = referral_code_for(member=member_of(member_user))
    url = invite_url(workspace, code.code)
    assert 'id="invite-own"' in member_user.client.get(url).content.decode()
    response = member_user.client.post(url, {"email": "someone@example.com"})
    assert response.status_code == 400 and "your own invitation" in response.content.decode()


# --------------------------------------------------------------------------- member pages


def test_referrals_page(workspace, member_user, gift, django_assert_max_num_queries) -> None:
    url = f"/c/{workspace.slug}/rewards/referrals/"
    assert Client().get(url).status_code == 302
    page = member_user.client.get(url)
    assert page.status_code == 200
    member = member_of(member_user)
    code = referral_code_for(member=member)
    link = f"http://testserver/c/{workspace.slug}/rewards/invite/{code.code}/"
    text = page.content.decode()
    assert code.code in text and link in text and 'data-empty="referrals"' in text
    assert f"https://www.facebook.com/sharer/sharer.php?u={quote(link, safe='')}" in text
    assert "https://wa.me/?text=" in text and quote(link, safe="") in text
    for key in ("whatsapp", "telegram", "x", "facebook", "email"):
        assert f'data-share="{key}"' in text
    assert '<script src="http' not in text  # no third-party script
    for n in range(3):
        referral_claim(
            workspace=workspace, code=code.code, email=f"friend{n}@example.com",
            name=f"Friend{n} X", visitor="", address="", via="link",
        )  # fmt: skip
    with django_assert_max_num_queries(20):
        text = member_user.client.get(url).content.decode()
    assert text.count('data-status="claimed"') == 3 and "Friend joined" in text
    assert "Friend0" in text and "friend0@example.com" not in text


def test_ambassador_page(workspace, member_user) -> None:
    url = f"/c/{workspace.slug}/rewards/ambassador/"
    assert Client().get(url).status_code == 302
    assert 'id="ambassador-form"' in member_user.client.get(url).content.decode()
    response = member_user.client.post(url, {"message": ""})
    assert response.status_code == 400 and "has-error" in response.content.decode()
    assert member_user.client.post(url, {"message": "I love it"}).status_code == 302
    assert 'id="ambassador-applied"' in member_user.client.get(url).content.decode()
    row = Ambassador.objects.get(workspace=workspace)
    ambassador_decide(ambassador=row, actor=None, approve=True, code="MEMBER10", perks="Samples")
    text = member_user.client.get(url).content.decode()
    assert "MEMBER10" in text and "Samples" in text and 'id="ambassador-impact"' in text


# --------------------------------------------------------------------------- staff: referrals


def staff_referrals(workspace: Any) -> str:
    return f"/w/{workspace.slug}/loyalty/referrals/"


def test_staff_review_queue(
    workspace, other_workspace, owner, anna, gift, django_assert_max_num_queries
) -> None:
    code = referral_code_for(member=anna)
    for n in range(5):
        referral_claim(
            workspace=workspace, code=code.code, email=f"f{n}@example.com", name="Anna Rossi",
            visitor="", address="", via="link",
        )  # fmt: skip
    with django_assert_max_num_queries(20):
        assert owner.client.get(staff_referrals(workspace)).status_code == 200
    flagged = referral_claim(
        workspace=workspace, code=code.code, email="annarossi@gmail.com", name="",
        visitor="", address="", via="link",
    )  # fmt: skip
    page = owner.client.get(staff_referrals(workspace))
    assert page.status_code == 200
    text = page.content.decode()
    assert f'id="referral-{flagged.pk}"' in text
    assert "The friend&#x27;s email reaches the advocate&#x27;s mailbox" in text
    response = owner.client.post(
        staff_referrals(workspace),
        {"referral": flagged.pk, "decision": "approve", "note": "A different person"},
    )
    assert response.status_code == 302
    flagged.refresh_from_db()
    assert (flagged.status, flagged.note) == (Referral.Status.CLAIMED, "A different person")
    assert AuditLog.objects.filter(workspace=workspace, action="loyalty.referral.approve").exists()
    again = owner.client.post(
        staff_referrals(workspace), {"referral": flagged.pk, "decision": "reject"}
    )
    assert again.status_code == 400 and "not waiting for review" in again.content.decode()
    bad = owner.client.post(staff_referrals(workspace), {"referral": flagged.pk})
    assert bad.status_code == 400
    elsewhere = referral_claim(
        workspace=other_workspace,
        code=referral_code_for(member=MemberFactory(workspace=other_workspace)).code,
        email="x@example.com", name="", visitor="", address="", via="link",
    )  # fmt: skip
    response = owner.client.post(
        staff_referrals(workspace), {"referral": elsewhere.pk, "decision": "reject"}
    )
    assert response.status_code == 404


def test_staff_referrals_permissions(workspace, analyst, member_user, outsider, anna) -> None:
    assert analyst.client.get(staff_referrals(workspace)).status_code == 200
    assert analyst.client.post(staff_referrals(workspace), {}).status_code == 403
    assert member_user.client.get(staff_referrals(workspace)).status_code == 403
    assert outsider.client.get(staff_referrals(workspace)).status_code == 404
    assert Client().get(staff_referrals(workspace)).status_code == 302


# --------------------------------------------------------------------------- staff: ambassadors


def staff_ambassadors(workspace: Any) -> str:
    return f"/w/{workspace.slug}/loyalty/ambassadors/"


def test_staff_runs_the_ambassador_program(workspace, owner, anna) -> None:
    from circolo.testing.factories import ActivityFactory

    bea = MemberFactory(workspace=workspace, display_name="Bea Bianchi")
    ActivityFactory(member=bea, kind="accepted_answer")
    row = ambassador_apply(member=anna, message="Pick me")
    page = owner.client.get(staff_ambassadors(workspace)).content.decode()
    assert f'id="ambassador-{row.pk}"' in page and "Pick me" in page
    assert f'data-member="{bea.pk}"' in page and "accepted answers" in page

    url = staff_ambassadors(workspace)
    bad = owner.client.post(url, {"action": "approve", "ambassador": row.pk, "code": "a b",
                                  "multiplier_percent": "100"})  # fmt: skip
    assert bad.status_code == 400 and "letters, digits" in bad.content.decode()
    ok = owner.client.post(url, {"action": "approve", "ambassador": row.pk, "code": "anna10",
                                 "perks": "Samples", "multiplier_percent": "150"})  # fmt: skip
    assert ok.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.code.code, row.multiplier_percent) == ("approved", "ANNA10", 150)
    page = owner.client.get(url).content.decode()
    assert "ANNA10" in page and 'data-friends="0"' in page

    assert (
        owner.client.post(url, {"action": "invite", "member": bea.pk, "message": "Hi"}).status_code
        == 302
    )
    invited = Ambassador.objects.get(member=bea)
    assert invited.status == Ambassador.Status.INVITED
    assert (
        owner.client.post(url, {"action": "decline", "ambassador": invited.pk}).status_code == 302
    )
    assert owner.client.post(url, {"action": "end", "ambassador": row.pk}).status_code == 302
    row.refresh_from_db()
    assert row.status == Ambassador.Status.ENDED
    assert owner.client.post(url, {"action": "end", "ambassador": row.pk}).status_code == 400
    assert owner.client.post(url, {"action": "dance"}).status_code == 400
    actions = set(
        AuditLog.objects.filter(
            workspace=workspace, action__startswith="loyalty.ambassador"
        ).values_list("action", flat=True)
    )
    assert actions == {
        "loyalty.ambassador.approve", "loyalty.ambassador.invite",
        "loyalty.ambassador.decline", "loyalty.ambassador.end",
    }  # fmt: skip


def test_staff_ambassadors_outsiders_and_roles(
    workspace, other_workspace, owner, analyst, outsider, anna
) -> None:
    url = staff_ambassadors(workspace)
    stranger = MemberFactory(workspace=other_workspace)
    other_row = ambassador_apply(member=stranger, message="hello")
    assert owner.client.post(url, {"action": "invite", "member": stranger.pk}).status_code == 404
    assert (
        owner.client.post(url, {"action": "decline", "ambassador": other_row.pk}).status_code == 404
    )
    assert analyst.client.get(url).status_code == 200
    assert analyst.client.post(url, {"action": "invite", "member": anna.pk}).status_code == 403
    assert outsider.client.get(url).status_code == 404
    assert not Ambassador.objects.filter(workspace=workspace).exists()
