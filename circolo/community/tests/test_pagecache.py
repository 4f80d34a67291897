"""Visitors share a thread page's posts from the cache; any change to them shows at once,
and signed-in members never get the shared copy."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from circolo.community.services import (
    member_for_user,
    post_edit,
    post_moderate,
    reaction_add,
    reply_create,
    space_create,
    thread_create,
)
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache(settings: Any) -> Any:
    settings.CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS = 30
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def thread(workspace: Any) -> Any:
    space = space_create(workspace=workspace, actor=None, name="Domande")
    thread = thread_create(
        space=space, author=MemberFactory(workspace=workspace), title="Moka", body="Prima"
    )
    for n in range(5):
        reply_create(thread=thread, author=MemberFactory(workspace=workspace), body=f"Risposta {n}")
    return thread


def visit(url: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = Client().get(url)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_second_visit_reads_the_cache(thread: Any, workspace: Any) -> None:
    url = f"/c/{workspace.slug}/t/{thread.pk}/"
    first, cold = visit(url)
    second, warm = visit(url)
    assert "Risposta 4" in first and "Risposta 4" in second
    assert warm < cold
    # The rest of the page is still the visitor's own: a fresh CSRF cookie, the join link.
    response = Client().get(url)
    assert "csrftoken" in response.cookies and "Sign in to reply." in response.content.decode()


def test_changes_show_at_once(
    thread: Any, workspace: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    url = f"/c/{workspace.slug}/t/{thread.pk}/"
    visit(url)
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_create(thread=thread, author=MemberFactory(workspace=workspace), body="Nuova")
    assert "Nuova" in visit(url)[0]
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(post=reply, editor=reply.author, body="Corretta")
    page = visit(url)[0]
    assert "Corretta" in page and "Nuova" not in page
    with django_capture_on_commit_callbacks(execute=True):
        reaction_add(post=reply, member=MemberFactory(workspace=workspace), emoji="heart")
    assert "❤️ 1" in visit(url)[0]
    moderator = member_for_user(workspace=workspace, user=owner.user)
    with django_capture_on_commit_callbacks(execute=True):
        post_moderate(post=reply, moderator=moderator, action="hide", reason="spam")
    assert "Corretta" not in visit(url)[0]


def test_signed_in_members_are_not_served_the_shared_copy(thread: Any, workspace: Any) -> None:
    url = f"/c/{workspace.slug}/t/{thread.pk}/"
    visit(url)
    client = Client()
    client.force_login(UserFactory(email="giulia@example.com"))
    page = client.get(url).content.decode()
    assert "Flag" in page and "Quote" in page


def test_cache_off(thread: Any, workspace: Any, settings: Any) -> None:
    settings.CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS = 0
    url = f"/c/{workspace.slug}/t/{thread.pk}/"
    assert visit(url)[1] == visit(url)[1]
