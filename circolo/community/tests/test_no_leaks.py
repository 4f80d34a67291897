"""Issue 5, acceptance 2: a private space never leaks, by any path. One community with a
members-only space, a segment space and a sub-group of it, each holding a thread with the
same rare word; a visitor, a member outside the segment and another workspace's owner look
through every path: pages, search, notifications, the API and the feeds."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.api.tests.conftest import ApiClient, Key
from circolo.community.events import EventIn, event_create
from circolo.community.models import Notification
from circolo.community.notifications import post_fanout
from circolo.community.profiles import profile_ensure
from circolo.community.search import search_posts
from circolo.community.services import member_for_user, reply_create, space_create, thread_create
from circolo.core.apikeys import SCOPES, apikey_create
from circolo.testing.factories import MemberFactory, UserFactory
from circolo.testing.people_factories import MemberTagFactory

pytestmark = pytest.mark.django_db
WORD = "zibaldone"


@pytest.fixture
def scene(workspace: Any, owner: Any) -> dict[str, Any]:
    club = space_create(workspace=workspace, actor=None, name="Club", visibility="members")
    vip = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                       segment={"tags": ["vip"]})  # fmt: skip
    inner = space_create(workspace=workspace, actor=None, name="VIP Roma", parent=vip)
    insider = MemberTagFactory(member=MemberFactory(workspace=workspace, display_name="Vera"),
                               tag="vip").member  # fmt: skip
    user = UserFactory(email="plain@example.com")
    plain = member_for_user(workspace=workspace, user=user)
    handle = profile_ensure(plain).handle
    threads = {
        "club": thread_create(space=club, author=insider, title=f"Club {WORD}", body=WORD),
        "vip": thread_create(space=vip, author=insider, title=f"VIP {WORD}", body=WORD),
        "inner": thread_create(
            space=inner, author=insider, title=f"Roma {WORD}", body=f"{WORD} @{handle}"
        ),
    }
    host = member_for_user(workspace=workspace, user=owner.user)
    event = event_create(space=vip, host=host, data=EventIn(
        title=f"Serata {WORD}", starts_at=_soon(), ends_at=_soon(hours=2), timezone="UTC",
        url="https://meet.example.com/vip",
    ))  # fmt: skip
    client = Client()
    client.force_login(user)
    return {"threads": threads, "insider": insider, "plain": plain, "client": client,
            "event": event, "handle": profile_ensure(insider).handle, "vip": vip}  # fmt: skip


def _soon(hours: int = 0) -> Any:
    import datetime as dt

    from django.utils import timezone

    return timezone.now() + dt.timedelta(days=2, hours=hours)


def viewers(scene: dict[str, Any], outsider: Any) -> dict[str, Client]:
    return {"visitor": Client(), "plain member": scene["client"], "outsider": outsider.client}


SECRET = (f"VIP {WORD}", f"Roma {WORD}", f"Serata {WORD}")


def test_pages(workspace: Any, scene: dict[str, Any], outsider: Any) -> None:
    secret = [scene["threads"]["vip"], scene["threads"]["inner"]]
    slug = workspace.slug
    for who, client in viewers(scene, outsider).items():
        for thread in secret:
            assert client.get(f"/c/{slug}/t/{thread.pk}/").status_code == 404, who
        for space in ("vip", "vip-roma"):
            assert client.get(f"/c/{slug}/s/{space}/").status_code == 404, who
            assert client.get(f"/c/{slug}/s/{space}/new/").status_code in (302, 404), who
        event = scene["event"]
        assert client.get(f"/c/{slug}/events/{event.pk}/").status_code == 404, who
        assert client.get(f"/c/{slug}/events/{event.pk}/event.ics").status_code == 404, who
        for path in ("", "events/", f"u/{scene['handle']}/", "bookmarks/", "notifications/"):
            page = client.get(f"/c/{slug}/{path}").content.decode()
            assert not any(title in page for title in SECRET), (who, path)
            if who == "visitor":
                # Not even the members-only club. (Anyone signed in may join the community,
                # so another workspace's owner who opens it joins it as a plain member.)
                assert WORD not in page, (who, path)
    # The member who belongs sees them, so the checks above can fail.
    insider_user = UserFactory(email="vera@example.com")
    scene["insider"].user = insider_user
    scene["insider"].save()
    insider = Client()
    insider.force_login(insider_user)
    page = insider.get(f"/c/{slug}/").content.decode()
    assert all(title in page for title in SECRET[:2])
    assert insider.get(f"/c/{slug}/events/{scene['event'].pk}/event.ics").status_code == 200


def test_search(workspace: Any, scene: dict[str, Any], outsider: Any) -> None:
    for viewer in (None, scene["plain"]):
        found = search_posts(workspace_id=workspace.pk, viewer=viewer, query=WORD)
        titles = {result.thread_title for result in found.results}
        assert titles <= {f"Club {WORD}"} and (viewer is None) == (not titles)
    for who, client in viewers(scene, outsider).items():
        page = client.get(f"/c/{workspace.slug}/search/", {"q": WORD}).content.decode()
        assert f"VIP {WORD}" not in page and f"Roma {WORD}" not in page, who
    insider = search_posts(workspace_id=workspace.pk, viewer=scene["insider"], query=WORD)
    assert len(insider.results) == 4  # club, vip, inner and the event's thread


def test_notifications(workspace: Any, scene: dict[str, Any]) -> None:
    # The inner thread mentions the plain member, who may not read it: told nothing.
    post_fanout(post_id=scene["threads"]["inner"].posts.get(number=1).pk)
    assert not Notification.objects.filter(recipient=scene["plain"]).exists()
    # Following the secret space is refused as not found.
    client = scene["client"]
    assert (
        client.post(f"/c/{workspace.slug}/s/vip/follow/", {"action": "follow"}).status_code == 404
    )
    thread = scene["threads"]["vip"]
    assert client.post(f"/c/{workspace.slug}/t/{thread.pk}/follow/",
                       {"action": "follow"}).status_code == 404  # fmt: skip
    # A notification made while the space was open disappears once it is closed.
    scene["vip"].visibility = "public"
    scene["vip"].save()
    reply = reply_create(
        thread=thread, author=scene["insider"], body=f"@{profile_ensure(scene['plain']).handle}"
    )
    post_fanout(post_id=reply.pk)
    assert Notification.objects.filter(recipient=scene["plain"]).count() == 1
    scene["vip"].visibility = "segment"
    scene["vip"].save()
    page = client.get(f"/c/{workspace.slug}/notifications/").content.decode()
    assert WORD not in page and "VIP" not in page


def test_api(workspace: Any, other_workspace: Any, scene: dict[str, Any], owner: Any) -> None:
    row, raw = apikey_create(
        workspace=workspace, name="k", scopes=tuple(SCOPES), created_by=owner.user
    )
    api = ApiClient(Key(row=row, raw=raw))
    for params in ({}, {"as_member": scene["plain"].pk}):
        items = api.get("/community/threads", params).json()["items"]
        assert all("VIP" not in item["title"] and "Roma" not in item["title"] for item in items)
        for thread in (scene["threads"]["vip"], scene["threads"]["inner"]):
            assert api.get(f"/community/threads/{thread.pk}", params).status_code == 404
        slugs = {space["slug"] for space in api.get("/community/spaces", params).json()}
        assert not slugs & {"vip", "vip-roma"}
    other, other_raw = apikey_create(workspace=other_workspace, name="k", scopes=tuple(SCOPES),
                                     created_by=owner.user)  # fmt: skip
    outsider_api = ApiClient(Key(row=other, raw=other_raw))
    assert outsider_api.get("/community/threads").json()["items"] == []


def test_feeds(workspace: Any, scene: dict[str, Any], outsider: Any) -> None:
    insider = Client()
    for who, client in {**viewers(scene, outsider), "anyone": insider}.items():
        assert WORD not in client.get(f"/c/{workspace.slug}/feed/").content.decode(), who
        for space in ("club", "vip", "vip-roma"):
            assert client.get(f"/c/{workspace.slug}/s/{space}/feed/").status_code == 404, who
