"""The community's background work: Celery tasks that take ids and are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task
def event_reminders_task() -> int:
    """Remind members going to events that start within 24 hours and within the hour; each
    reminder goes once, so running every few minutes (beat) or twice is safe."""
    from .events import event_reminders_send

    return event_reminders_send(now=timezone.now())


@shared_task
def trust_review_task() -> int:
    """The daily trust review of every community: promotion to TL3 and, after the grace
    period, demotion from it. Returns how many members changed; a second run the same day
    changes nothing more (same inputs, and a notification is keyed by level and day)."""
    from .models import CommunityProfile
    from .trust import trust_review_workspace

    workspace_ids = (
        CommunityProfile.objects.values_list("workspace_id", flat=True).distinct().order_by()
    )
    now = timezone.now()
    return sum(trust_review_workspace(workspace_id=pk, now=now) for pk in list(workspace_ids))


@shared_task
def post_fanout_task(post_id: int) -> int:
    """Tell the members a new (or newly approved, or edited) post concerns; keys make a
    second run a no-op, and a post hidden by then tells nobody."""
    from .notifications import post_fanout

    return post_fanout(post_id=post_id)


@shared_task
def notifications_mail_task() -> int:
    """Mail each member their pending notifications, at most one mail per ten minutes."""
    from .notifications import notifications_mail

    return notifications_mail(now=timezone.now())


@shared_task
def digests_task() -> int:
    """Send the daily and weekly digests that are due (each at most once per period)."""
    from .notifications import digests_send

    return digests_send(now=timezone.now())


@shared_task
def scheduled_threads_task() -> int:
    """Publish the team's planned threads whose time has come (each once, under a row lock)."""
    from .team import scheduled_publish_due

    return scheduled_publish_due(now=timezone.now())


@shared_task
def drafts_purge_task() -> int:
    """Drop drafts nobody touched for 90 days."""
    from .drafts import drafts_purge

    return drafts_purge(now=timezone.now())
