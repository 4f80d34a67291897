"""Atom feeds answer as a visitor would see the community, whoever asks."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client

from circolo.community.models import Post, Thread
from circolo.community.services import space_create, thread_create
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def entries(response: Any) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(response.content)  # noqa: S314 (our own output)
    return [entry.findtext(f"{ATOM}title") or "" for entry in root.iter(f"{ATOM}entry")]


def test_feeds_show_public_threads_only(workspace: Any, other_workspace: Any) -> None:
    public = space_create(workspace=workspace, actor=None, name="Domande")
    club = space_create(workspace=workspace, actor=None, name="Club", visibility="members")
    author = MemberFactory(workspace=workspace)
    thread_create(space=public, author=author, title="Moka & <caffè>", body="**Ciao** <b>x</b>")
    thread_create(space=club, author=author, title="Solo soci", body="segreto")
    hidden = thread_create(space=public, author=author, title="Nascosto", body="x")
    Thread.objects.filter(pk=hidden.pk).update(hidden_at=hidden.created_at)
    elsewhere = space_create(workspace=other_workspace, actor=None, name="Altrove")
    thread_create(space=elsewhere, author=MemberFactory(workspace=other_workspace),
                  title="Altro negozio", body="x")  # fmt: skip
    signed_in = Client()
    signed_in.force_login(UserFactory(email="socio@example.com"))
    for client in (Client(), signed_in):
        assert entries(client.get(f"/c/{workspace.slug}/feed/")) == ["Moka & <caffè>"]
        assert client.get(f"/c/{workspace.slug}/s/{club.slug}/feed/").status_code == 404
    body = Client().get(f"/c/{workspace.slug}/s/{public.slug}/feed/").content.decode()
    # The author's "<b>" is text: escaped for HTML, then for XML.
    assert "Ciao &amp;lt;b&amp;gt;x&amp;lt;/b&amp;gt;" in body
    assert Client().get("/c/nowhere/feed/").status_code == 404


def test_feed_query_count_is_flat(workspace: Any, django_assert_max_num_queries: Any) -> None:
    public = space_create(workspace=workspace, actor=None, name="Domande")
    for n in range(12):
        thread_create(space=public, author=MemberFactory(workspace=workspace), title=f"T{n}",
                      body="x")  # fmt: skip
    assert Post.objects.count() == 12
    with django_assert_max_num_queries(8):
        assert len(entries(Client().get(f"/c/{workspace.slug}/feed/"))) == 12
