"""Following threads, spaces and members, and bookmarks: the services, the buttons and the
bookmarks page; nobody follows or bookmarks what they may not read (404, never a leak)."""

from __future__ import annotations

from typing import Any

import pytest

from circolo.community.follows import (
    bookmark_add,
    bookmark_remove,
    follow_add,
    follow_remove,
    is_following,
    member_bookmarks,
)
from circolo.community.models import Bookmark, Follow
from circolo.community.profiles import profile_ensure, profile_update
from circolo.community.services import (
    CommunityError,
    NotFound,
    member_for_user,
    post_moderate,
    reply_create,
    space_create,
    thread_create,
)
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    return {
        "public": space_create(workspace=workspace, actor=None, name="Domande"),
        "vip": space_create(
            workspace=workspace, actor=None, name="VIP", visibility="segment",
            segment={"tags": ["vip"]},
        ),
    }  # fmt: skip


def test_follow_and_unfollow_each_kind_of_target(workspace, spaces) -> None:
    me, other = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    thread = thread_create(space=spaces["public"], author=other, title="t", body="b")
    assert follow_add(member=me, thread=thread) is True
    assert follow_add(member=me, thread=thread) is False  # twice changes nothing
    assert follow_add(member=me, space=spaces["public"]) is True
    assert follow_add(member=me, followed=other) is True
    assert is_following(me, thread=thread) and is_following(me, followed=other)
    assert Follow.objects.filter(member=me).count() == 3
    assert follow_remove(member=me, space=spaces["public"]) is True
    assert follow_remove(member=me, space=spaces["public"]) is False
    assert not is_following(me, space=spaces["public"])
    assert not is_following(None, thread=thread)


def test_nobody_follows_what_they_cannot_read_or_themselves(
    workspace, other_workspace, spaces
) -> None:
    me = MemberFactory(workspace=workspace)
    insider = MemberFactory(workspace=workspace)
    from circolo.people.models import MemberTag

    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    secret = thread_create(space=spaces["vip"], author=insider, title="s", body="b")
    with pytest.raises(NotFound):
        follow_add(member=me, space=spaces["vip"])
    with pytest.raises(NotFound):
        follow_add(member=me, thread=secret)
    with pytest.raises(NotFound):
        bookmark_add(member=me, post=secret.posts.get())
    stranger = MemberFactory(workspace=other_workspace)
    with pytest.raises(NotFound):
        follow_add(member=stranger, followed=me)
    with pytest.raises(CommunityError) as error:
        follow_add(member=me, followed=me)
    assert error.value.field == "member"
    assert not Follow.objects.exists() and not Bookmark.objects.exists()


def test_bookmarks_list_only_what_is_still_readable(workspace, spaces, moderator) -> None:
    me, other = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    thread = thread_create(space=spaces["public"], author=other, title="t", body="b")
    kept = reply_create(thread=thread, author=other, body="utile")
    gone = reply_create(thread=thread, author=other, body="sparirà")
    assert bookmark_add(member=me, post=kept) and bookmark_add(member=me, post=gone)
    assert bookmark_add(member=me, post=kept) is False
    staff = member_for_user(workspace=workspace, user=moderator.user)
    post_moderate(post=gone, moderator=staff, action="hide")
    assert [b.post for b in member_bookmarks(me)] == [kept]
    spaces["public"].visibility = "segment"
    spaces["public"].segment = {"tags": ["vip"]}
    spaces["public"].save()
    assert list(member_bookmarks(me)) == []
    assert bookmark_remove(member=me, post=kept) is True


def test_buttons_and_bookmarks_page(workspace, spaces, member_user, client) -> None:
    me = member_for_user(workspace=workspace, user=member_user.user)
    author = MemberFactory(workspace=workspace)
    profile_update(member=profile_ensure(author).member, handle="giulia")
    thread = thread_create(space=spaces["public"], author=author, title="La moka", body="b")
    post = thread.posts.get()
    c, base = member_user.client, f"/c/{workspace.slug}"

    page = c.get(f"{base}/t/{thread.pk}/").content.decode()
    assert "Follow this thread" in page and "Bookmark" in page
    assert c.post(f"{base}/t/{thread.pk}/follow/", {"action": "follow"}).status_code == 302
    assert "Following: stop" in c.get(f"{base}/t/{thread.pk}/").content.decode()
    assert c.post(f"{base}/s/domande/follow/", {"action": "follow"}).status_code == 302
    assert "Following: stop" in c.get(f"{base}/s/domande/").content.decode()
    assert c.post(f"{base}/u/Giulia/follow/", {"action": "follow"}).status_code == 302
    assert is_following(me, followed=author)
    assert c.post(f"{base}/u/giulia/follow/", {"action": "unfollow"}).status_code == 302
    assert not is_following(me, followed=author)

    empty = c.get(f"{base}/bookmarks/").content.decode()
    assert 'data-empty="bookmarks"' in empty
    response = c.post(f"{base}/p/{post.pk}/bookmark/", {"action": "add"})
    assert response.status_code == 302 and response["Location"].endswith("#post-1")
    assert "Bookmarked" in c.get(f"{base}/t/{thread.pk}/").content.decode()
    listed = c.get(f"{base}/bookmarks/").content.decode()
    assert "La moka" in listed and f'data-bookmark="{post.pk}"' in listed
    # Back to a page on this site only.
    back = c.post(
        f"{base}/p/{post.pk}/bookmark/", {"action": "remove", "next": "https://evil.example/"}
    )
    assert back["Location"].startswith(f"{base}/t/{thread.pk}/")
    assert not Bookmark.objects.exists()

    # Bad input: 400 with the reason.
    bad = c.post(f"{base}/t/{thread.pk}/follow/", {"action": "maybe"})
    assert bad.status_code == 400 and "follow" in bad.content.decode()
    me_handle = profile_ensure(me).handle
    assert c.post(f"{base}/u/{me_handle}/follow/", {"action": "follow"}).status_code == 400
    assert c.post(f"{base}/u/nobody/follow/", {"action": "follow"}).status_code == 404
    # Signed out: to the sign-in page.
    assert "/accounts/login/" in client.post(f"{base}/t/{thread.pk}/follow/")["Location"]
    assert "/accounts/login/" in client.get(f"{base}/bookmarks/")["Location"]


def test_private_space_and_other_workspace_give_404(
    workspace, spaces, member_user, outsider
) -> None:
    insider = MemberFactory(workspace=workspace)
    from circolo.people.models import MemberTag

    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    secret = thread_create(space=spaces["vip"], author=insider, title="Segreto", body="shh")
    base = f"/c/{workspace.slug}"
    c = member_user.client
    assert c.post(f"{base}/s/vip/follow/", {"action": "follow"}).status_code == 404
    assert c.post(f"{base}/t/{secret.pk}/follow/", {"action": "follow"}).status_code == 404
    post = secret.posts.get()
    assert c.post(f"{base}/p/{post.pk}/bookmark/", {"action": "add"}).status_code == 404
    public = thread_create(space=spaces["public"], author=insider, title="t", body="b")
    o = outsider.client
    assert o.post(f"{base}/t/{public.pk}/follow/", {"action": "follow"}).status_code in (302, 200)
    # The outsider joined this community as a plain member by signing in; they still get 404
    # for the private space, and nothing of another workspace's ids works here.
    assert o.post(f"{base}/s/vip/follow/", {"action": "follow"}).status_code == 404
    assert o.post(f"/c/elsewhere/t/{public.pk}/follow/", {"action": "follow"}).status_code == 404
    assert o.post(f"/c/elsewhere/p/{post.pk}/bookmark/", {"action": "add"}).status_code == 404
    assert not Follow.objects.filter(space=spaces["vip"]).exists()
    assert not Bookmark.objects.exists()
