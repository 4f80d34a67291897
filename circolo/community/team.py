"""The brand team's tools: pinning, announcements and closing threads; threads written now
and published later; and the content calendar that keeps promotion near 20% of what the
team posts (the 80/20 rule: four value posts for each promotional one)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.core.audit import audit_record
from circolo.people.models import Member

from .models import ScheduledThread, Space, Thread
from .models.forum import ContentKind
from .selectors import member_is_staff, member_moderates
from .services import CommunityError, NotFound, _body, _tags, thread_create

logger = logging.getLogger(__name__)

# Above this share of promotional posts in a week the calendar warns.
PROMOTION_SHARE_MAX = 0.20
THREAD_ACTIONS = ("pin", "unpin", "announce", "unannounce", "close", "open")


def thread_manage(*, thread: Thread, actor: Member, action: str) -> Thread:
    """Pin, announce or close a thread (or undo it): staff and the space's moderators;
    announcing is for staff only. Audited."""
    if actor.workspace_id != thread.workspace_id:
        raise NotFound()
    if action not in THREAD_ACTIONS:
        raise CommunityError("action", _("Choose what to do with the thread."))
    if not member_moderates(actor, thread.space):
        raise CommunityError("action", _("Only a moderator can do this."))
    if action in ("announce", "unannounce") and not member_is_staff(actor):
        raise CommunityError("action", _("Only the team can make announcements."))
    fields = {
        "pin": ("pinned", True),
        "unpin": ("pinned", False),
        "announce": ("announcement", True),
        "unannounce": ("announcement", False),
        "close": ("closed", True),
        "open": ("closed", False),
    }
    name, value = fields[action]
    with transaction.atomic():
        Thread.objects.filter(pk=thread.pk).update(**{name: value})
        setattr(thread, name, value)
        audit_record(
            workspace=thread.space.workspace,
            actor=actor.user,
            action=f"thread.{action}",
            target=thread,
            data={"title": thread.title[:200]},
        )
    return thread


# --------------------------------------------------------------------------- scheduled threads


def scheduled_thread_create(
    *,
    space: Space,
    author: Member,
    title: str,
    body: str,
    publish_at: dt.datetime,
    content_kind: str = ContentKind.VALUE,
    kind: str = Thread.Kind.DISCUSSION,
    tags: Sequence[str] = (),
    pinned: bool = False,
    announcement: bool = False,
    now: dt.datetime | None = None,
) -> ScheduledThread:
    """Plan a team thread for `publish_at` (in the future); only the team plans threads."""
    if author.workspace_id != space.workspace_id:
        raise NotFound()
    if not member_is_staff(author):
        raise CommunityError("author", _("Only the team can schedule threads."))
    title = " ".join(str(title).split())
    if not title or len(title) > 200:
        raise CommunityError("title", _("Give the thread a title of at most 200 characters."))
    if content_kind not in ContentKind.values:
        raise CommunityError("content_kind", _("Choose value or promotion."))
    if kind not in Thread.Kind.values:
        raise CommunityError("kind", _("Choose a discussion or a question."))
    if timezone.is_naive(publish_at):
        raise CommunityError("publish_at", _("Give the publishing time with its time zone."))
    if publish_at <= (now or timezone.now()):
        raise CommunityError("publish_at", _("Choose a time in the future."))
    planned = ScheduledThread.objects.create(
        workspace_id=space.workspace_id,
        space=space,
        author=author,
        title=title,
        body=_body(body),
        kind=kind,
        tags=_tags(tags),
        content_kind=content_kind,
        pinned=pinned,
        announcement=announcement,
        publish_at=publish_at,
    )
    audit_record(
        workspace=space.workspace,
        actor=author.user,
        action="thread.schedule",
        target=planned,
        data={"title": title, "publish_at": publish_at.isoformat()},
    )
    return planned


def scheduled_thread_cancel(*, planned: ScheduledThread, actor: Member) -> None:
    """Drop a planned thread that is not published yet (the team only). Audited."""
    if actor.workspace_id != planned.workspace_id:
        raise NotFound()
    if not member_is_staff(actor):
        raise CommunityError("author", _("Only the team can schedule threads."))
    if planned.published_thread_id is not None:
        raise CommunityError("publish_at", _("This thread is already published."))
    audit_record(
        workspace=planned.space.workspace,
        actor=actor.user,
        action="thread.unschedule",
        target=planned,
        data={"title": planned.title},
    )
    planned.delete()


def scheduled_publish_due(*, now: dt.datetime | None = None) -> int:
    """Publish every planned thread whose time has come; safe to run twice (each is taken
    under a row lock and marked with its thread). Returns how many were published."""
    moment = now or timezone.now()
    due = list(
        ScheduledThread.objects.filter(
            publish_at__lte=moment, published_thread__isnull=True, error=""
        ).values_list("pk", flat=True)
    )
    published = 0
    for pk in due:
        with transaction.atomic():
            planned = (
                ScheduledThread.objects.select_for_update(of=("self",))
                .filter(pk=pk, published_thread__isnull=True, error="")
                .select_related("space", "author")
                .first()
            )
            if planned is None:
                continue
            try:
                with transaction.atomic():
                    thread = thread_create(
                        space=planned.space,
                        author=planned.author,
                        title=planned.title,
                        body=planned.body,
                        kind=planned.kind,
                        tags=planned.tags,
                        content_kind=planned.content_kind,
                        now=planned.publish_at,
                    )
                    Thread.objects.filter(pk=thread.pk).update(
                        pinned=planned.pinned, announcement=planned.announcement
                    )
            except CommunityError as error:
                # The author left the team or the space was archived: shown on the calendar.
                planned.error = error.message[:300]
                planned.save(update_fields=["error"])
                logger.warning("scheduled thread %s not published: %s", pk, error.message)
                continue
            planned.published_thread = thread
            planned.save(update_fields=["published_thread"])
            published += 1
    return published


# --------------------------------------------------------------------------- content calendar


@dataclass
class CalendarWeek:
    starts: dt.date
    items: list[dict[str, Any]] = field(default_factory=list)
    value: int = 0
    promotion: int = 0

    @property
    def promotion_share(self) -> float:
        total = self.value + self.promotion
        return self.promotion / total if total else 0.0

    @property
    def promotion_percent(self) -> int:
        return round(self.promotion_share * 100)

    @property
    def too_promotional(self) -> bool:
        return self.promotion_share > PROMOTION_SHARE_MAX


def content_calendar(*, workspace_id: int, start: dt.date, weeks: int = 6) -> list[CalendarWeek]:
    """The team's threads per week (Monday first) from `start`'s week: published ones with a
    content kind and planned ones, each week with its value/promotion counts. Two queries."""
    first = start - dt.timedelta(days=start.weekday())
    begin = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    end = begin + dt.timedelta(weeks=weeks)
    calendar = [CalendarWeek(starts=first + dt.timedelta(weeks=n)) for n in range(weeks)]

    def add(when: dt.datetime, item: dict[str, Any]) -> None:
        week = calendar[(when.date() - first).days // 7]
        week.items.append(item)
        if item["content_kind"] == ContentKind.PROMOTION:
            week.promotion += 1
        else:
            week.value += 1

    published = (
        Thread.objects.filter(workspace_id=workspace_id, created_at__gte=begin, created_at__lt=end)
        .exclude(content_kind="")
        .select_related("space")
        .order_by("created_at")
    )
    for thread in published:
        add(
            thread.created_at,
            {
                "when": thread.created_at,
                "title": thread.title,
                "space": thread.space.name,
                "content_kind": thread.content_kind,
                "thread": thread,
                "planned": None,
            },
        )
    planned_rows = (
        ScheduledThread.objects.filter(
            workspace_id=workspace_id,
            publish_at__gte=begin,
            publish_at__lt=end,
            published_thread__isnull=True,
        )
        .select_related("space")
        .order_by("publish_at")
    )
    for planned in planned_rows:
        add(
            planned.publish_at,
            {
                "when": planned.publish_at,
                "title": planned.title,
                "space": planned.space.name,
                "content_kind": planned.content_kind,
                "thread": None,
                "planned": planned,
            },
        )
    for week in calendar:
        week.items.sort(key=lambda item: item["when"])
    return calendar
