"""Who may read what in the community. Every page, feed, search and API answer about threads
goes through these, so a space a member may not read never shows anywhere (404, not 403)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from circolo.commerce.selectors import member_bought_skus, members_owning_skus
from circolo.core.models import Role, WorkspaceRole
from circolo.people.models import Member, MemberTag

from .models import Space, Thread

STAFF_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.MODERATOR})


def member_is_staff(member: Member | None) -> bool:
    """The member is on the brand's team (owner, manager or moderator of the workspace)."""
    if member is None or member.user_id is None:
        return False
    return WorkspaceRole.objects.filter(
        workspace_id=member.workspace_id, user_id=member.user_id, role__in=STAFF_ROLES
    ).exists()


def member_moderates(member: Member | None, space: Space, *, staff: bool | None = None) -> bool:
    """The member moderates the space: on the brand's team, or one of its moderators.
    `staff`: member_is_staff(member) when the caller knows it already."""
    if member is None:
        return False
    if staff if staff is not None else member_is_staff(member):
        return True
    return space.moderators.filter(pk=member.pk).exists()


def _matches_segment(space: Space, member: Member) -> bool:
    rule = space.segment or {}
    tags = [str(tag) for tag in rule.get("tags", [])]
    if tags and MemberTag.objects.filter(member=member, tag__in=tags).exists():
        return True
    skus = [str(sku) for sku in rule.get("skus", [])]
    return bool(skus) and bool(member_bought_skus(member=member, skus=skus))


def space_readable(space: Space, member: Member | None, *, staff: bool | None = None) -> bool:
    """May this member (None: a visitor who is not signed in) read the space?"""
    if member is not None and member.workspace_id != space.workspace_id:
        return False
    if space.archived and not (staff if staff is not None else member_is_staff(member)):
        return False
    chain: list[Space] = []
    current: Space | None = space
    while current is not None and len(chain) < 5:
        chain.append(current)
        current = current.parent
    for each in chain:
        if each.visibility == Space.Visibility.PUBLIC:
            continue
        if member is None or member.merged_into_id is not None or member.erased_at is not None:
            return False
        if each.visibility == Space.Visibility.MEMBERS:
            continue
        is_staff = staff if staff is not None else member_is_staff(member)
        moderator = each.moderators.filter(pk=member.pk).exists()
        if not (is_staff or moderator or _matches_segment(each, member)):
            return False
    return True


def readable_spaces(workspace_id: int, member: Member | None) -> list[Space]:
    """The workspace's spaces this member may read, in display order."""
    staff = member_is_staff(member)
    spaces = Space.objects.filter(workspace_id=workspace_id).select_related("parent")
    return [space for space in spaces if space_readable(space, member, staff=staff)]


def readable_threads(workspace_id: int, member: Member | None) -> QuerySet[Thread]:
    """Threads in spaces the member may read; hidden threads only for staff."""
    spaces = readable_spaces(workspace_id, member)
    threads = Thread.objects.filter(workspace_id=workspace_id, space__in=spaces)
    if not member_is_staff(member):
        threads = threads.filter(hidden_at__isnull=True)
    return threads


def verified_owners(thread: Thread, member_ids: Iterable[int]) -> set[int]:
    """Which of these members bought (and kept) a product the thread is about. One query."""
    if not thread.skus:
        return set()
    return members_owning_skus(
        workspace_id=thread.workspace_id, member_ids=member_ids, skus=thread.skus
    )
