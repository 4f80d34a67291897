"""Drafts: what a member started writing and has not posted, kept per place so that
closing the page loses nothing. One draft per member and place; posting discards it."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from circolo.people.models import Member

from .models import Draft, Space, Thread
from .services import body_length_check

# Drafts older than this are dropped by the daily clean-up.
DRAFT_DAYS = 90


def draft_key(place: Space | Thread) -> str:
    """The place a draft belongs to: a new thread in a space, or a reply to a thread."""
    return f"space:{place.pk}" if isinstance(place, Space) else f"thread:{place.pk}"


def draft_save(
    *, member: Member, key: str, title: str = "", body: str = "", now: dt.datetime | None = None
) -> Draft | None:
    """Keep the member's unsent text for `key` (replacing the earlier draft); an empty text
    discards it. Returns the draft, or None when there is nothing to keep."""
    title = str(title)[:200]
    body = str(body)
    body_length_check(body)
    if not title.strip() and not body.strip():
        draft_discard(member=member, key=key)
        return None
    draft, _created = Draft.objects.update_or_create(
        member=member,
        key=key,
        defaults={
            "workspace_id": member.workspace_id,
            "title": title,
            "body": body,
            "updated_at": now or timezone.now(),
        },
    )
    return draft


def draft_for(*, member: Member | None, key: str) -> Draft | None:
    if member is None:
        return None
    return Draft.objects.filter(member=member, key=key).first()


def draft_discard(*, member: Member, key: str) -> None:
    Draft.objects.filter(member=member, key=key).delete()


def drafts_purge(*, now: dt.datetime | None = None) -> int:
    """Drop drafts nobody touched for DRAFT_DAYS; returns how many went."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=DRAFT_DAYS)
    deleted, _counts = Draft.objects.filter(updated_at__lt=cutoff).delete()
    return deleted
