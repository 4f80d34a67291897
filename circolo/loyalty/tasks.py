"""The loyalty program's background work: Celery tasks that take ids and are safe to run twice."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone


@shared_task
def tiers_recalculate_task(workspace_id: int | None = None) -> int:
    """Measure members and move them between tiers, in one workspace or (None, the daily
    beat) in every workspace with tiers. Returns how many members changed tier; a second run
    changes nothing more (same measures, upgrade notifications keyed by tier and day)."""
    from .models import Tier
    from .tiers import tiers_recalculate

    if workspace_id is not None:
        return tiers_recalculate(workspace_id=workspace_id)
    workspace_ids = Tier.objects.values_list("workspace_id", flat=True).distinct().order_by()
    now = timezone.now()
    return sum(tiers_recalculate(workspace_id=pk, now=now) for pk in list(workspace_ids))


def previous_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


@shared_task
def top_contributors_task(workspace_id: int | None = None) -> int:
    """Award last month's top contributor badges (one workspace, or every one); run daily,
    a month is awarded once. Returns how many badges were awarded now."""
    from circolo.core.models import Workspace

    from .badges import top_contributors_award

    now = timezone.now()
    month = previous_month(now.date())
    if workspace_id is not None:
        ids = [workspace_id]
    else:
        ids = list(Workspace.objects.values_list("pk", flat=True).order_by("pk"))
    return sum(top_contributors_award(workspace_id=pk, month=month, now=now) for pk in ids)


@shared_task
def order_points_approve_task() -> int:
    """Approve order points whose return window closed (batches until none is due)."""
    from .orders import earnings_approve_due

    decided = 0
    while done := earnings_approve_due():
        decided += done
    return decided


@shared_task
def points_expiry_task() -> int:
    """Warn members whose points expire in 30 and 7 days, then expire the due ones."""
    from .expiry import expiry_warnings_send, points_expire

    expiry_warnings_send()
    return points_expire()


@shared_task
def birthdays_task() -> int:
    """Birthday points for members whose birthday it is today in their workspace's zone
    (runs hourly, so every time zone's day is covered; pays once a year)."""
    from .birthdays import birthdays_award

    return birthdays_award()


@shared_task
def redemptions_retry_task() -> int:
    """Finish redemptions whose code the store could not make yet."""
    from .rewards import redemptions_retry

    return redemptions_retry()


@shared_task
def referrals_pay_task() -> int:
    """Pay advocates whose friend's first order passed its return window."""
    from .referrals import referrals_pay_due

    paid = 0
    while done := referrals_pay_due():
        paid += done
    return paid
