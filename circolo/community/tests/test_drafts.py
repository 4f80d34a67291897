"""Drafts: kept per member and place, restored in the form, discarded by posting."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.community.drafts import draft_save, drafts_purge
from circolo.community.models import Draft, Post
from circolo.community.services import CommunityError, space_create, thread_create
from circolo.testing.factories import MemberFactory, UserFactory
from circolo.testing.people_factories import MemberTagFactory

pytestmark = pytest.mark.django_db


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(UserFactory(email=email))
    return client


def test_save_replace_and_discard(workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    draft_save(member=member, key="space:1", title="Titolo", body="Prima")
    draft_save(member=member, key="space:1", title="Titolo", body="Seconda")
    assert Draft.objects.get(member=member, key="space:1").body == "Seconda"
    assert draft_save(member=member, key="space:1", title=" ", body="") is None
    assert not Draft.objects.exists()
    with pytest.raises(CommunityError, match="at most"):
        draft_save(member=member, key="space:1", body="x" * 20_001)


def test_old_drafts_are_purged(workspace: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    member = MemberFactory(workspace=workspace)
    draft_save(
        member=member, key="space:1", body="vecchio", now=timezone.now() - dt.timedelta(days=91)
    )
    draft_save(member=member, key="space:2", body="nuovo")
    assert drafts_purge() == 1
    assert list(Draft.objects.values_list("key", flat=True)) == ["space:2"]


def test_new_thread_draft_round_trip(workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Domande")
    client = signed_in("giulia@example.com")
    url = f"/c/{workspace.slug}/s/{space.slug}/new/"
    response = client.post(
        f"/c/{workspace.slug}/drafts/",
        {"draft_key": f"space:{space.pk}", "title": "Macinatura", "body": "Quanto fine?"},
    )
    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url).content.decode()
    assert 'value="Macinatura"' in page and "Quanto fine?" in page
    # htmx autosave answers with a status line.
    response = client.post(
        f"/c/{workspace.slug}/drafts/",
        {"draft_key": f"space:{space.pk}", "title": "Macinatura", "body": "Quanto fine? 2"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Draft saved" in response.content.decode()
    client.post(url, {"kind": "question", "title": "Macinatura", "body": "Quanto fine?"})
    assert not Draft.objects.exists()


def test_reply_draft_round_trip_and_privacy(workspace: Any, other_workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Domande")
    club = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                        segment={"tags": ["vip"]})  # fmt: skip
    thread = thread_create(
        space=space, author=MemberFactory(workspace=workspace), title="Moka", body="Ciao"
    )
    insider = MemberTagFactory(member=MemberFactory(workspace=workspace), tag="vip").member
    secret = thread_create(space=club, author=insider, title="Segreto", body="Ciao")
    client = signed_in("luca@example.com")
    client.post(
        f"/c/{workspace.slug}/drafts/", {"draft_key": f"thread:{thread.pk}", "body": "Bozza"}
    )
    assert "Bozza</textarea>" in client.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    client.post(f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "Bozza finita"})
    assert Post.objects.filter(thread=thread, number=2).exists()
    assert not Draft.objects.exists()
    # A thread the member may not read, another workspace's thread, a bad key, signed out.
    for key in (f"thread:{secret.pk}", f"space:{club.pk}"):
        response = client.post(f"/c/{workspace.slug}/drafts/", {"draft_key": key, "body": "x"})
        assert response.status_code == 404
    assert (
        client.post(
            f"/c/{other_workspace.slug}/drafts/", {"draft_key": f"thread:{thread.pk}", "body": "x"}
        ).status_code
        == 404
    )
    assert (
        client.post(f"/c/{workspace.slug}/drafts/", {"draft_key": "nope", "body": "x"}).status_code
        == 400
    )
    assert (
        Client()
        .post(f"/c/{workspace.slug}/drafts/", {"draft_key": f"thread:{thread.pk}", "body": "x"})
        .status_code
        == 404
    )
    assert not Draft.objects.exists()


def test_the_purge_task_runs(workspace: Any) -> None:
    from circolo.community.tasks import drafts_purge_task

    member = MemberFactory(workspace=workspace)
    draft_save(member=member, key="space:1", body="x")
    assert drafts_purge_task.apply().get() == 0 and Draft.objects.count() == 1
