"""Following threads, spaces and members, and bookmarking posts: the writes, and the reads
the pages need (is the viewer following this? which of these posts did they bookmark?).

Following is a personal setting, not a contribution: it records no activity. Nobody follows
or bookmarks what they may not read (NotFound, so a private space does not leak).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from circolo.people.models import Member

from .models import Bookmark, Follow, Post, Space, Thread
from .selectors import member_is_staff, readable_spaces, space_readable
from .services import CommunityError, NotFound


def _thread_check(member: Member, thread: Thread) -> None:
    if member.workspace_id != thread.workspace_id or not space_readable(thread.space, member):
        raise NotFound()
    if thread.hidden_at is not None and not member_is_staff(member):
        raise NotFound()


def _space_check(member: Member, space: Space) -> None:
    if member.workspace_id != space.workspace_id or not space_readable(space, member):
        raise NotFound()


def _member_check(member: Member, followed: Member) -> None:
    if (
        followed.workspace_id != member.workspace_id
        or followed.merged_into_id is not None
        or followed.erased_at is not None
    ):
        raise NotFound()
    if followed.pk == member.pk:
        raise CommunityError("member", _("You cannot follow yourself."))


def _target(
    member: Member, thread: Thread | None, space: Space | None, followed: Member | None
) -> dict[str, Any]:
    given = [target for target in (thread, space, followed) if target is not None]
    if len(given) != 1:
        raise CommunityError("target", _("Follow one thread, space or member at a time."))
    if member.merged_into_id is not None or member.erased_at is not None:
        raise NotFound()
    if thread is not None:
        _thread_check(member, thread)
        return {"thread": thread}
    if space is not None:
        _space_check(member, space)
        return {"space": space}
    assert followed is not None
    _member_check(member, followed)
    return {"followed": followed}


def follow_add(
    *,
    member: Member,
    thread: Thread | None = None,
    space: Space | None = None,
    followed: Member | None = None,
) -> bool:
    """Follow one thread, space or member (exactly one); True when new."""
    target = _target(member, thread, space, followed)
    try:
        with transaction.atomic():
            _follow, created = Follow.objects.get_or_create(
                workspace_id=member.workspace_id, member=member, **target
            )
    except IntegrityError:
        return False  # followed meanwhile
    return created


def follow_remove(
    *,
    member: Member,
    thread: Thread | None = None,
    space: Space | None = None,
    followed: Member | None = None,
) -> bool:
    """Stop following one thread, space or member; True when they were following."""
    target = _target(member, thread, space, followed)
    deleted, _counts = Follow.objects.filter(member=member, **target).delete()
    return deleted > 0


def thread_autofollow(*, member: Member, thread: Thread) -> None:
    """The member follows a thread they write in (no checks: they just wrote there)."""
    try:
        with transaction.atomic():
            Follow.objects.get_or_create(
                workspace_id=thread.workspace_id, member=member, thread=thread
            )
    except IntegrityError:
        pass  # followed meanwhile: the same outcome


def is_following(
    member: Member | None,
    *,
    thread: Thread | None = None,
    space: Space | None = None,
    followed: Member | None = None,
) -> bool:
    """Does the member follow this thread, space or member? One query (none for visitors)."""
    if member is None:
        return False
    if thread is not None:
        return Follow.objects.filter(member=member, thread=thread).exists()
    if space is not None:
        return Follow.objects.filter(member=member, space=space).exists()
    if followed is not None:
        return Follow.objects.filter(member=member, followed=followed).exists()
    return False


def bookmark_add(*, member: Member, post: Post) -> bool:
    """Bookmark a post the member may read; True when new."""
    _thread_check(member, post.thread)
    if post.hidden_at is not None and not member_is_staff(member):
        raise NotFound()
    try:
        with transaction.atomic():
            _bookmark, created = Bookmark.objects.get_or_create(
                workspace_id=member.workspace_id, member=member, post=post
            )
    except IntegrityError:
        return False
    return created


def bookmark_remove(*, member: Member, post: Post) -> bool:
    """Take a bookmark away; True when there was one. Always allowed for one's own."""
    if member.workspace_id != post.workspace_id:
        raise NotFound()
    deleted, _counts = Bookmark.objects.filter(member=member, post=post).delete()
    return deleted > 0


def bookmarked_post_ids(member: Member | None, post_ids: Iterable[int]) -> set[int]:
    """Which of these posts the member bookmarked. One query (none for visitors)."""
    ids = list(post_ids)
    if member is None or not ids:
        return set()
    return set(
        Bookmark.objects.filter(member=member, post_id__in=ids).values_list("post_id", flat=True)
    )


def member_bookmarks(member: Member) -> QuerySet[Bookmark]:
    """The member's bookmarks of posts they may still read, newest first."""
    spaces = readable_spaces(member.workspace_id, member)
    found = Bookmark.objects.filter(
        member=member, workspace_id=member.workspace_id, post__thread__space__in=spaces
    )
    if not member_is_staff(member):
        found = found.filter(post__hidden_at__isnull=True, post__thread__hidden_at__isnull=True)
    return found.select_related(
        "post", "post__thread", "post__thread__space", "post__author"
    ).order_by("-created_at", "-pk")
