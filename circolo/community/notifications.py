"""Telling members what happened: the one way to create a notification."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from circolo.people.models import Member

from .models import Event, Notification, Post, Thread
from .selectors import space_readable


def notify(
    *,
    recipient: Member,
    kind: str,
    key: str,
    actor: Member | None = None,
    thread: Thread | None = None,
    post: Post | None = None,
    event: Event | None = None,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Notification | None:
    """Tell `recipient` about something, once per (recipient, key). Nothing is created for
    the actor themselves, for a merged or erased member, or about a thread in a space the
    recipient may not read. Returns the new notification, or None."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    if actor is not None and actor.pk == recipient.pk:
        return None
    if recipient.merged_into_id is not None or recipient.erased_at is not None:
        return None
    if thread is None and post is not None:
        thread = post.thread
    if thread is None and event is not None:
        thread = event.thread
    space = thread.space if thread is not None else (event.space if event is not None else None)
    if space is not None and not space_readable(space, recipient):
        return None
    try:
        with transaction.atomic():
            return Notification.objects.create(
                workspace_id=recipient.workspace_id,
                recipient=recipient,
                kind=kind,
                key=key[:80],
                actor=actor,
                thread=thread,
                post=post,
                event=event,
                data=data or {},
                created_at=now or timezone.now(),
            )
    except IntegrityError:
        return None  # told already
