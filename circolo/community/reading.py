"""What members read: how far into each thread, on which days, and for how long.

The thread page records what it showed (a ThreadView up to the highest post number on the
page, and today's MemberVisit); while the page stays visible it pings the time spent
reading, which is capped so it cannot be inflated. The member's CommunityProfile keeps the
running totals that community.trust reads, and each record runs the cheap trust check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.people.models import Member

from .models import CommunityProfile, MemberVisit, Thread, ThreadView
from .profiles import profile_ensure
from .services import CommunityError, NotFound
from .trust import trust_check

# One ping credits at most this much reading time (the page pings every 30 seconds).
READ_PING_MAX_SECONDS = 60


def _visit(member: Member, day: dt.date) -> MemberVisit:
    visit, _created = MemberVisit.objects.get_or_create(
        member=member, day=day, defaults={"workspace_id": member.workspace_id}
    )
    return visit


def thread_view_record(
    *, member: Member, thread: Thread, numbers: Iterable[int], now: dt.datetime | None = None
) -> ThreadView:
    """The member was shown these post numbers of the thread: move their place in it to the
    highest, count the posts they had not seen yet and today's visit. A fixed number of
    queries whatever the page holds."""
    if member.workspace_id != thread.workspace_id:
        raise NotFound()
    moment = now or timezone.now()
    shown = sorted(set(numbers))
    profile = profile_ensure(member)
    with transaction.atomic():
        view, created = ThreadView.objects.get_or_create(
            member=member,
            thread=thread,
            defaults={
                "workspace_id": thread.workspace_id,
                "last_read_number": shown[-1] if shown else 0,
                "first_at": moment,
                "last_at": moment,
            },
        )
        seen_before = 0 if created else view.last_read_number
        new_posts = sum(1 for number in shown if number > seen_before)
        if not created:
            view.last_read_number = max(view.last_read_number, shown[-1] if shown else 0)
            view.last_at = moment
            ThreadView.objects.filter(pk=view.pk).update(
                last_read_number=view.last_read_number, last_at=moment
            )
        visit = _visit(member, moment.date())
        if new_posts:
            MemberVisit.objects.filter(pk=visit.pk).update(posts_read=F("posts_read") + new_posts)
        CommunityProfile.objects.filter(pk=profile.pk).update(
            threads_entered=F("threads_entered") + int(created),
            posts_read=F("posts_read") + new_posts,
            last_seen_at=moment,
        )
        profile.threads_entered += int(created)
        profile.posts_read += new_posts
        profile.last_seen_at = moment
        trust_check(member=member, now=moment)
    return view


def read_time_record(
    *, member: Member, thread: Thread, seconds: int, now: dt.datetime | None = None
) -> int:
    """Add reading time the thread page reported; returns the seconds credited. A ping
    counts at most READ_PING_MAX_SECONDS, and never more than the wall-clock time since the
    member's last view or ping of this thread, nor since their last one anywhere (two open
    tabs do not count twice). Nothing is credited for a thread the member never opened."""
    if member.workspace_id != thread.workspace_id:
        raise NotFound()
    if seconds < 0:
        raise CommunityError("seconds", _("Reading time cannot be negative."))
    moment = now or timezone.now()
    view = ThreadView.objects.filter(member=member, thread=thread).first()
    if view is None:
        return 0
    profile = profile_ensure(member)
    bounds = [seconds, READ_PING_MAX_SECONDS, (moment - view.last_at).total_seconds()]
    if profile.last_seen_at is not None:
        bounds.append((moment - profile.last_seen_at).total_seconds())
    credited = max(0, int(min(bounds)))
    with transaction.atomic():
        ThreadView.objects.filter(pk=view.pk).update(last_at=moment)
        CommunityProfile.objects.filter(pk=profile.pk).update(
            read_seconds=F("read_seconds") + credited, last_seen_at=moment
        )
        profile.read_seconds += credited
        profile.last_seen_at = moment
        if credited:
            visit = _visit(member, moment.date())
            MemberVisit.objects.filter(pk=visit.pk).update(
                read_seconds=F("read_seconds") + credited
            )
            trust_check(member=member, now=moment)
    return credited
