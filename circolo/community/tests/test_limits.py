"""Posting limits for members who are not on the team: a pause between posts and caps per
rolling day, refused with 429 and when to retry; the team is not limited."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from django.test import Client

from circolo.community import trust
from circolo.community.models import Post
from circolo.community.services import RateLimited, reply_create, space_create, thread_create
from circolo.core.models import Role
from circolo.testing.factories import MemberFactory, UserFactory, WorkspaceRoleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.limits]
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Chat")


def test_a_pause_between_posts_then_a_daily_cap(workspace, space, monkeypatch) -> None:
    member = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=member, title="Hi", body="x", now=T0)
    with pytest.raises(RateLimited) as error:
        reply_create(thread=thread, author=member, body="again", now=T0 + dt.timedelta(seconds=5))
    new_member = trust.LIMITS[trust.Level.NEW]
    assert error.value.retry_after == new_member.post_interval_seconds - 5
    assert "try again in 1 minute" in error.value.message
    monkeypatch.setitem(trust.LIMITS, trust.Level.NEW, replace(new_member, posts_per_day=3))
    for n in range(1, 3):
        reply_create(thread=thread, author=member, body=f"r{n}", now=T0 + dt.timedelta(hours=n))
    with pytest.raises(RateLimited) as error:
        reply_create(thread=thread, author=member, body="r3", now=T0 + dt.timedelta(hours=3))
    # The first post of the window leaves it 24 hours after it was written.
    assert error.value.retry_after == 21 * 3600 + 1
    reply_create(
        thread=thread, author=member, body="next day", now=T0 + dt.timedelta(days=1, seconds=1)
    )
    assert Post.objects.filter(author=member).count() == 4


def test_the_team_is_not_limited(workspace, space) -> None:
    user = UserFactory()
    WorkspaceRoleFactory(workspace=workspace, user=user, role=Role.MODERATOR)
    staff = MemberFactory(workspace=workspace, user=user)
    thread = thread_create(space=space, author=staff, title="News", body="x", now=T0)
    for n in range(5):
        reply_create(thread=thread, author=staff, body=f"r{n}", now=T0)
    assert Post.objects.filter(author=staff).count() == 6


def test_the_page_answers_429_with_retry_after(workspace, space) -> None:
    client = Client()
    client.force_login(UserFactory(email="fast@example.com"))
    url = f"/c/{workspace.slug}/s/{space.slug}/new/"
    first = client.post(url, {"kind": "discussion", "title": "One", "body": "x"})
    assert first.status_code == 302
    second = client.post(url, {"kind": "discussion", "title": "Two", "body": "y"})
    assert second.status_code == 429
    assert 0 < int(second["Retry-After"]) <= trust.LIMITS[0].post_interval_seconds
    assert "try again in" in second.content.decode()
    thread_url = first["Location"]
    reply = client.post(f"{thread_url}reply/", {"body": "quick"})
    assert reply.status_code == 429 and "Retry-After" in reply
    assert Post.objects.count() == 1
