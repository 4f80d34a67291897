"""Disputes: a member asks about one of their own movements, the team accepts (with a
correction movement that keeps the ledger exact) or rejects, the member is told and reads
the answer; the pages on both sides."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.community.models import Notification
from circolo.core.models import AuditLog
from circolo.loyalty import ledger
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.disputes import DisputeError, dispute_open, dispute_resolve
from circolo.loyalty.models import Dispute, Movement, Reason
from circolo.people.models import Member
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


def earned(member: Member, points: int = 100, key: str = "") -> Movement:
    key = key or f"bonus:{member.pk}:{points}"
    bonus_award(workspace_id=member.workspace_id, member_id=member.pk, rule="bonus", key=key,
                points=points)  # fmt: skip
    return Movement.objects.get(workspace_id=member.workspace_id, key=key)


def balance(member: Member) -> int:
    return ledger.member_balance(member_id=member.pk).points


# --------------------------------------------------------------------------- services


def test_open_only_about_own_movements_with_a_message_once(workspace, other_workspace) -> None:
    ana, bea = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    theirs = earned(bea)
    elsewhere = earned(MemberFactory(workspace=other_workspace))
    mine = earned(ana)
    for movement in (theirs, elsewhere, 987654):
        with pytest.raises(DisputeError) as caught:
            dispute_open(member=ana, movement=movement, message="Where are my points?")
        assert caught.value.field == "movement" and "no such movement" in caught.value.message
    with pytest.raises(DisputeError) as caught:
        dispute_open(member=ana, movement=mine, message="   ")
    assert caught.value.field == "message"
    dispute = dispute_open(member=ana, movement=mine.pk, message="  I bought two, not one. ")
    assert (dispute.status, dispute.message, dispute.workspace_id) == (
        "open", "I bought two, not one.", workspace.pk
    )  # fmt: skip
    with pytest.raises(DisputeError) as caught:
        dispute_open(member=ana, movement=mine, message="Again")
    assert "already open" in caught.value.message
    # Once answered, the member may ask again.
    dispute_resolve(dispute=dispute, actor=None, accept=False, resolution="One it was.")
    assert dispute_open(member=ana, movement=mine, message="Really two").status == "open"


def test_accept_with_points_posts_a_correction(workspace, owner) -> None:
    ana = MemberFactory(workspace=workspace)
    movement = earned(ana, 100)
    dispute = dispute_open(member=ana, movement=movement, message="It was 150.")
    resolved = dispute_resolve(dispute=dispute, actor=owner.user, accept=True,
                               resolution="Right, sorry.", points=50)  # fmt: skip
    assert resolved.status == Dispute.Status.ACCEPTED and resolved.resolved_by == owner.user
    correction = resolved.correction
    assert correction is not None
    assert (correction.reason, correction.key, correction.points) == (
        Reason.DISPUTE, f"dispute:{dispute.pk}", 50
    )  # fmt: skip
    assert correction.reverses_id == movement.pk and correction.actor_id == owner.user.pk
    assert correction.details == {"dispute": dispute.pk, "points": 50}
    assert balance(ana) == 150
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok
    told = Notification.objects.get(recipient=ana, kind="rewards")
    assert told.data == {"what": "dispute", "status": "accepted"}
    log = AuditLog.objects.get(workspace=workspace, action="loyalty.dispute.accept")
    assert log.actor == owner.user and log.data["points"] == 50
    # Answering twice changes nothing.
    with pytest.raises(DisputeError) as caught:
        dispute_resolve(dispute=dispute, actor=owner.user, accept=True, resolution="x", points=50)
    assert caught.value.field == "dispute"
    assert balance(ana) == 150


def test_accept_taking_points_and_without_points(workspace) -> None:
    ana = MemberFactory(workspace=workspace)
    movement = earned(ana, 100)
    taken = dispute_resolve(
        dispute=dispute_open(member=ana, movement=movement, message="Too many?"),
        actor=None, accept=True, resolution="Yes, 30 too many.", points=-30,
    )  # fmt: skip
    assert taken.correction is not None and taken.correction.points == 30
    assert balance(ana) == 70
    plain = dispute_resolve(
        dispute=dispute_open(member=ana, movement=movement, message="And now?"),
        actor=None, accept=True, resolution="All good now.",
    )  # fmt: skip
    assert plain.status == "accepted" and plain.correction is None
    assert balance(ana) == 70
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok


def test_reject_and_bad_answers(workspace) -> None:
    ana = MemberFactory(workspace=workspace)
    dispute = dispute_open(member=ana, movement=earned(ana), message="Missing points")
    for kwargs, field in (
        ({"accept": True, "resolution": " "}, "resolution"),
        ({"accept": False, "resolution": "No", "points": 10}, "points"),
        ({"accept": True, "resolution": "Yes", "points": 10**9}, "points"),
    ):
        with pytest.raises(DisputeError) as caught:
            dispute_resolve(dispute=dispute, actor=None, **kwargs)
        assert caught.value.field == field
    dispute.refresh_from_db()
    assert dispute.status == "open"
    rejected = dispute_resolve(dispute=dispute, actor=None, accept=False,
                               resolution="The order was refunded.")  # fmt: skip
    assert rejected.status == "rejected" and rejected.correction is None
    assert Notification.objects.get(recipient=ana).data["status"] == "rejected"
    assert not Movement.objects.filter(reason=Reason.DISPUTE).exists()


# --------------------------------------------------------------------------- member pages


def member_client(workspace: Any) -> tuple[Client, Member]:
    from circolo.community.services import member_for_user

    user = UserFactory(email="ana@example.com")
    client = Client()
    client.force_login(user)
    return client, member_for_user(workspace=workspace, user=user)


def test_member_opens_a_dispute_and_reads_the_answer(workspace) -> None:
    client, ana = member_client(workspace)
    movement = earned(ana, 80)
    page = f"/c/{workspace.slug}/rewards/history/{movement.pk}/dispute/"
    response = client.get(page)
    assert response.status_code == 200 and 'id="dispute-form"' in response.content.decode()
    response = client.post(page, {"message": ""})
    assert response.status_code == 400 and 'class="field has-error"' in response.content.decode()
    response = client.post(page, {"message": "I had 100 on the receipt"})
    assert response.status_code == 302
    assert response["Location"] == f"/c/{workspace.slug}/rewards/disputes/"
    assert 'data-dispute="open"' in client.get(page).content.decode()
    dispute = Dispute.objects.get(member=ana)
    dispute_resolve(dispute=dispute, actor=None, accept=True, resolution="Fixed.", points=20)
    text = client.get(f"/c/{workspace.slug}/rewards/disputes/").content.decode()
    assert 'data-status="accepted"' in text and "Fixed." in text and 'data-correction="20"' in text


def test_member_pages_other_peoples_movements_and_signed_out(workspace, other_workspace) -> None:
    client, ana = member_client(workspace)
    bea_movement = earned(MemberFactory(workspace=workspace))
    assert client.get(
        f"/c/{workspace.slug}/rewards/history/{bea_movement.pk}/dispute/"
    ).status_code == 404  # fmt: skip
    assert client.post(
        f"/c/{workspace.slug}/rewards/history/{bea_movement.pk}/dispute/", {"message": "mine!"}
    ).status_code == 404  # fmt: skip
    mine = earned(ana)
    # The same movement id under another workspace's address is not found.
    assert client.get(
        f"/c/{other_workspace.slug}/rewards/history/{mine.pk}/dispute/"
    ).status_code == 404  # fmt: skip
    assert client.get("/c/nowhere/rewards/disputes/").status_code == 404
    empty = client.get(f"/c/{workspace.slug}/rewards/disputes/").content.decode()
    assert 'data-empty="disputes"' in empty
    anonymous = Client()
    assert anonymous.get(f"/c/{workspace.slug}/rewards/disputes/").status_code == 302
    assert not Dispute.objects.exists()


def test_dispute_link_include(workspace) -> None:
    from django.template.loader import render_to_string

    _client, ana = member_client(workspace)
    movement = earned(ana)
    html = render_to_string("loyalty/_dispute_link.html",
                            {"movement": movement, "community": workspace})  # fmt: skip
    assert f'href="/c/{workspace.slug}/rewards/history/{movement.pk}/dispute/"' in html


# --------------------------------------------------------------------------- team pages


def test_team_answers_on_the_page(workspace, owner, analyst, outsider, other_workspace) -> None:
    ana = MemberFactory(workspace=workspace, display_name="Ana")
    dispute = dispute_open(member=ana, movement=earned(ana, 120), message="Where is my bonus?")
    page = f"/w/{workspace.slug}/loyalty/disputes/"
    text = owner.client.get(page).content.decode()
    assert "Where is my bonus?" in text and 'data-balance="120"' in text
    assert f'action="{page}{dispute.pk}/"' in text
    assert 'class="stack dispute-answer"' not in analyst.client.get(page).content.decode()

    answer = f"{page}{dispute.pk}/"
    prefix = f"d{dispute.pk}"
    assert analyst.client.post(answer, {f"{prefix}-decision": "reject"}).status_code == 403
    assert outsider.client.post(answer, {f"{prefix}-decision": "reject"}).status_code == 404
    response = owner.client.post(answer, {f"{prefix}-decision": "accept", f"{prefix}-points": "5",
                                          f"{prefix}-resolution": ""})  # fmt: skip
    assert response.status_code == 400
    assert 'class="field has-error"' in response.content.decode()
    response = owner.client.post(answer, {f"{prefix}-decision": "reject", f"{prefix}-points": "5",
                                          f"{prefix}-resolution": "No"})  # fmt: skip
    assert response.status_code == 400
    assert "Points are given only when you accept." in response.content.decode()
    response = owner.client.post(answer, {f"{prefix}-decision": "accept", f"{prefix}-points": "30",
                                          f"{prefix}-resolution": "Added."})  # fmt: skip
    assert response.status_code == 302
    assert balance(ana) == 150
    text = owner.client.get(page).content.decode()
    assert 'data-empty="disputes"' in text and 'data-status="accepted"' in text
    # A second answer finds it answered.
    again = {f"{prefix}-decision": "accept", f"{prefix}-points": "30",
             f"{prefix}-resolution": "Again"}  # fmt: skip
    response = owner.client.post(answer, again, follow=True)
    assert "answered already" in response.content.decode()
    assert balance(ana) == 150
    # Another workspace's dispute is not found; a GET goes back to the list.
    bea = MemberFactory(workspace=other_workspace)
    theirs = dispute_open(member=bea, movement=earned(bea), message="?")
    assert owner.client.post(f"{page}{theirs.pk}/", {}).status_code == 404
    assert owner.client.get(answer).status_code == 302
