"""The community API answers what a member (or a visitor) may read, never more, and writes
through the same services as the pages."""

from __future__ import annotations

from typing import Any

import pytest

from circolo.api.tests.conftest import ApiClient
from circolo.community import services as community
from circolo.community.models import Post, Thread
from circolo.community.services import space_create, thread_create
from circolo.community.tests.conftest import _no_posting_limits  # noqa: F401 (autouse)
from circolo.testing.factories import MemberFactory
from circolo.testing.people_factories import MemberTagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(workspace: Any) -> dict[str, Any]:
    public = space_create(workspace=workspace, actor=None, name="Domande")
    members = space_create(workspace=workspace, actor=None, name="Club", visibility="members")
    vip = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                       segment={"tags": ["vip"]})  # fmt: skip
    insider = MemberTagFactory(member=MemberFactory(workspace=workspace), tag="vip").member
    plain = MemberFactory(workspace=workspace)
    return {
        "insider": insider,
        "plain": plain,
        "public": thread_create(space=public, author=plain, title="Aperto", body="a"),
        "members": thread_create(space=members, author=plain, title="Soci", body="b"),
        "vip": thread_create(space=vip, author=insider, title="Segreto", body="c"),
    }


def titles(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["title"] for item in response.json()["items"]}


def test_reads_follow_the_member_rights(api: ApiClient, scene: dict[str, Any]) -> None:
    assert titles(api.get("/community/threads")) == {"Aperto"}
    plain = {"as_member": scene["plain"].pk}
    assert titles(api.get("/community/threads", plain)) == {"Aperto", "Soci"}
    insider = {"as_member": scene["insider"].pk}
    assert titles(api.get("/community/threads", insider)) == {"Aperto", "Soci", "Segreto"}
    spaces = {space["slug"] for space in api.get("/community/spaces").json()}
    assert spaces == {"domande"}
    secret = scene["vip"].pk
    assert api.get(f"/community/threads/{secret}").status_code == 404
    assert api.get(f"/community/threads/{secret}", plain).status_code == 404
    detail = api.get(f"/community/threads/{secret}", insider).json()
    assert detail["title"] == "Segreto" and detail["posts"][0]["body"] == "c"
    assert api.get("/community/threads", {"as_member": 999_999}).status_code == 400


def test_hidden_posts_are_left_out(api: ApiClient, scene: dict[str, Any]) -> None:
    thread = scene["public"]
    reply = community.reply_create(thread=thread, author=scene["insider"], body="spam")
    Post.objects.filter(pk=reply.pk).update(hidden_at=reply.created_at)
    posts = api.get(f"/community/threads/{thread.pk}").json()["posts"]
    assert [post["number"] for post in posts] == [1]


def test_outsider_key_sees_nothing(outsider_api: ApiClient, scene: dict[str, Any]) -> None:
    assert titles(outsider_api.get("/community/threads")) == set()
    assert outsider_api.get(f"/community/threads/{scene['public'].pk}").status_code == 404
    response = outsider_api.get("/community/threads", {"as_member": scene["insider"].pk})
    assert response.status_code == 400
    response = outsider_api.post(
        "/community/threads",
        {"member_id": scene["plain"].pk, "space": "domande", "title": "x", "body": "y"},
    )
    assert response.status_code == 400 and "member_id" in response.json()["errors"]
    response = outsider_api.post(
        f"/community/threads/{scene['public'].pk}/replies",
        {"member_id": scene["plain"].pk, "body": "y"},
    )
    assert response.status_code == 400
    assert Thread.objects.count() == 3


def test_write_threads_and_replies(api: ApiClient, scene: dict[str, Any]) -> None:
    body = {"member_id": scene["plain"].pk, "space": "domande", "title": "Nuovo", "body": "Ciao",
            "kind": "question", "tags": ["moka"]}  # fmt: skip
    response = api.post("/community/threads", body, headers={"Idempotency-Key": "t-1"})
    assert response.status_code == 201
    again = api.post("/community/threads", body, headers={"Idempotency-Key": "t-1"})
    assert again.json()["id"] == response.json()["id"]
    assert Thread.objects.filter(title="Nuovo").count() == 1
    thread_id = response.json()["id"]
    reply = api.post(
        f"/community/threads/{thread_id}/replies", {"member_id": scene["insider"].pk, "body": "Sì"}
    )
    assert reply.status_code == 201 and reply.json()["number"] == 2
    # Bad input names the field; a space the member may not read is not found.
    assert api.post("/community/threads", {**body, "space": "nope"}).json()["errors"] == {
        "space": "No such space."
    }
    response = api.post("/community/threads", {**body, "title": " "})
    assert response.status_code == 400 and "title" in response.json()["errors"]
    response = api.post("/community/threads", {**body, "space": "vip"})
    assert response.status_code == 404
    response = api.post("/community/threads", {**body, "surprise": 1})
    assert response.status_code == 400
    secret = scene["vip"].pk
    response = api.post(
        f"/community/threads/{secret}/replies", {"member_id": scene["plain"].pk, "body": "x"}
    )
    assert response.status_code == 404


@pytest.mark.limits
def test_rate_limit_answers_429_with_retry_after(api: ApiClient, workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Domande")
    thread = thread_create(space=space, author=MemberFactory(workspace=workspace), title="T",
                           body="b")  # fmt: skip
    who = {"member_id": MemberFactory(workspace=workspace).pk}
    url = f"/community/threads/{thread.pk}/replies"
    assert api.post(url, {**who, "body": "Prima risposta"}).status_code == 201
    response = api.post(url, {**who, "body": "Seconda risposta"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0 and "body" in response.json()["errors"]


def test_scopes_are_required(make_key: Any, scene: dict[str, Any]) -> None:
    reader = ApiClient(make_key(scopes=["community:read"]))
    assert reader.get("/community/threads").status_code == 200
    body = {"member_id": scene["plain"].pk, "space": "domande", "title": "x", "body": "y"}
    response = reader.post("/community/threads", body)
    assert response.status_code == 403 and "community:write" in response.json()["detail"]
    writer = ApiClient(make_key(scopes=["community:write"]))
    assert writer.get("/community/threads").status_code == 403
    assert ApiClient().get("/community/threads").status_code == 401
