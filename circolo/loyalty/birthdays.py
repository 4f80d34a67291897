"""Birthday points: a member tells their birthday (day and month, no year) and gets the
"birthday" rule's points on that day, once a year.

A birthday can be changed once a year and pays only if it was given at least 30 days
before, so nobody moves it to today to collect the points again.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.core.models import Workspace
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.models import RewardsProfile
from circolo.loyalty.rules import rules_in_force
from circolo.people.models import Member

CHANGE_EVERY = dt.timedelta(days=365)
NOTICE = dt.timedelta(days=30)


class BirthdayError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def birthday_set(
    *, member: Member, month: int, day: int, now: dt.datetime | None = None
) -> RewardsProfile:
    """Keep the member's birthday (BirthdayError for an impossible date, or a change within a
    year of the last one)."""
    now = now or timezone.now()
    if not 1 <= month <= 12:
        raise BirthdayError("month", _("Choose a month."))
    # 29 February is a real birthday: any leap year tells whether the day exists.
    if not 1 <= day <= calendar.monthrange(2024, month)[1]:
        raise BirthdayError("day", _("That month has no such day."))
    with transaction.atomic():
        profile, _created = RewardsProfile.objects.select_for_update().get_or_create(
            member=member, defaults={"workspace_id": member.workspace_id}
        )
        if (profile.birthday_month, profile.birthday_day) == (month, day):
            return profile
        if profile.birthday_set_at is not None and now - profile.birthday_set_at < CHANGE_EVERY:
            raise BirthdayError(
                "day",
                _("You can change your birthday once a year; next time from %(date)s.")
                % {"date": (profile.birthday_set_at + CHANGE_EVERY).date().isoformat()},
            )
        profile.birthday_month, profile.birthday_day = month, day
        profile.birthday_set_at = now
        profile.save()
    return profile


def birthdays_award(*, now: dt.datetime | None = None) -> int:
    """Pay the birthday rule to members whose birthday it is today (in their workspace's
    time zone); safe to run many times a day. Returns how many were paid."""
    now = now or timezone.now()
    paid = 0
    for workspace in Workspace.objects.all().only("pk", "time_zone"):
        rule = rules_in_force(workspace_id=workspace.pk)["birthday"]
        if not rule["enabled"] or int(rule["points"]) <= 0:
            continue
        today = now.astimezone(zoneinfo.ZoneInfo(workspace.time_zone or "UTC")).date()
        days = [today.day]
        # Born on 29 February: celebrated on the 28th in other years.
        if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
            days.append(29)
        members = RewardsProfile.objects.filter(
            workspace=workspace,
            birthday_month=today.month,
            birthday_day__in=days,
            birthday_set_at__lte=now - NOTICE,
            member__merged_into__isnull=True,
            member__erased_at__isnull=True,
        ).values_list("member_id", flat=True)
        for member_id in members:
            posted = bonus_award(
                workspace_id=workspace.pk,
                member_id=member_id,
                rule="birthday",
                key=f"birthday:{member_id}:{today.year}",
                points=int(rule["points"]),
                details={"year": today.year},
            )
            paid += posted is not None
    return paid
