"""Flags hide a post after a threshold (or at once when a moderator flags) until a
moderator decides; decisions are audited; flags are seen by moderators only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.community.models import Flag, Post
from circolo.community.services import (
    FLAGS_TO_HIDE,
    CommunityError,
    member_for_user,
    post_flag,
    post_moderate,
    space_create,
    thread_create,
)
from circolo.core.models import AuditLog
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


@pytest.fixture
def post(workspace: Any) -> Post:
    space = space_create(workspace=workspace, actor=None, name="Chiacchiere")
    author = MemberFactory(workspace=workspace)
    return thread_create(space=space, author=author, title="Offerta!!!", body="buy now").posts.get()


def test_enough_flags_hide_the_post_until_a_moderator_decides(workspace, post, moderator):
    flaggers = [MemberFactory(workspace=workspace) for _ in range(FLAGS_TO_HIDE)]
    for flagger in flaggers[:-1]:
        post_flag(post=post, member=flagger, reason="spam")
        post_flag(post=post, member=flagger, reason="spam")  # twice counts once
    post.refresh_from_db()
    assert post.hidden_at is None
    post_flag(post=post, member=flaggers[-1], reason="offensive", note="insults")
    post.refresh_from_db()
    assert post.hidden_at is not None and post.hidden_reason == "flagged"

    mod = member_for_user(workspace=workspace, user=moderator.user)
    post_moderate(post=post, moderator=mod, action="show", reason="Not spam, a real offer")
    post.refresh_from_db()
    assert post.hidden_at is None
    assert set(Flag.objects.values_list("outcome", flat=True)) == {"dismissed"}
    entry = AuditLog.objects.get(action="post.show")
    assert entry.data["reason"] == "Not spam, a real offer"


def test_a_moderators_flag_hides_at_once_and_rules_hold(workspace, post, moderator) -> None:
    with pytest.raises(CommunityError, match="own post"):
        post_flag(post=post, member=post.author, reason="spam")
    with pytest.raises(CommunityError, match="Choose why"):
        post_flag(post=post, member=MemberFactory(workspace=workspace), reason="bored")
    plain = MemberFactory(workspace=workspace)
    with pytest.raises(CommunityError, match="Only a moderator"):
        post_moderate(post=post, moderator=plain, action="hide")
    mod = member_for_user(workspace=workspace, user=moderator.user)
    post_flag(post=post, member=mod, reason="spam")
    post.refresh_from_db()
    assert post.hidden_at is not None


def test_moderator_hides_a_flagged_post_from_the_queue_page(workspace, post, moderator, client):
    reporter = Client()
    reporter.force_login(UserFactory(email="reporter@example.com"))
    url = f"/c/{workspace.slug}/t/{post.thread_id}/"
    assert "Send the flag" in reporter.get(url).content.decode()
    response = reporter.post(
        f"/c/{workspace.slug}/p/{post.pk}/flag/", {"reason": "spam", "note": "ads"}
    )
    assert response.status_code == 302

    queue = f"/w/{workspace.slug}/community/moderation/"
    page = moderator.client.get(queue).content.decode()
    assert "Offerta!!!" in page and "ads" in page
    response = moderator.client.post(
        queue, {"post": post.pk, "action": "hide", "reason": "Advertising"}
    )
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.hidden_at is not None and post.hidden_reason == "Advertising"
    # Hidden for everyone but the team; nobody else sees the flags.
    assert "buy now" not in client.get(url).content.decode()
    assert "buy now" not in reporter.get(url).content.decode()
    assert "buy now" in moderator.client.get(url).content.decode()
    assert reporter.get(queue).status_code == 403  # a community member, not the team
    assert AuditLog.objects.filter(action="post.hide").count() == 1


def test_outsiders_never_reach_the_queue(outsider, workspace) -> None:
    assert outsider.client.get(f"/w/{workspace.slug}/community/moderation/").status_code == 404
