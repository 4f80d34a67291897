"""Trust levels: what a member earns by reading, taking part and being appreciated, and the
limits each level lifts.

The rules start from Discourse's defaults (its `tl1_requires_*`, `tl2_requires_*` and
`tl3_*` site settings, named next to each constant). Levels 0-2 are only ever gained
(a staff lock is the one way down); level 3 is re-checked every day over the last 100 days
and lost when the member no longer meets it, after a two-week grace since the promotion;
level 4 is only given by the team. A silence or suspension does not change the level (it
blocks posting: see community.safety) but keeps a member out of level 3 for six months.

Each change updates the member's CommunityProfile, is written to the audit log and tells
the member (notification kind "trust").
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.core.audit import audit_record
from circolo.people.models import Member

from .models import (
    CommunityProfile,
    Flag,
    MemberVisit,
    Post,
    Reaction,
    Sanction,
    ThreadView,
)
from .notifications import notify
from .profiles import profile_ensure
from .selectors import readable_threads
from .services import CommunityError, NotFound

Level = CommunityProfile.TrustLevel

# ------------------------------------------------------------------ TL0 new -> TL1 basic
TL1_THREADS_ENTERED = 5  # Discourse tl1_requires_topics_entered
TL1_POSTS_READ = 30  # Discourse tl1_requires_read_posts
TL1_READ_SECONDS = 10 * 60  # Discourse tl1_requires_time_spent_mins = 10

# ------------------------------------------------------------------ TL1 basic -> TL2 member
TL2_DAYS_VISITED = 15  # Discourse tl2_requires_days_visited
TL2_REACTIONS_GIVEN = 1  # Discourse tl2_requires_likes_given (any reaction counts as a like)
TL2_REACTIONS_RECEIVED = 1  # Discourse tl2_requires_likes_received
TL2_THREADS_REPLIED = 3  # Discourse tl2_requires_topic_reply_count (others' threads)
TL2_THREADS_ENTERED = 20  # Discourse tl2_requires_topics_entered
TL2_POSTS_READ = 100  # Discourse tl2_requires_read_posts
TL2_READ_SECONDS = 60 * 60  # Discourse tl2_requires_time_spent_mins = 60

# ------------------------------------------------------------------ TL2 member -> TL3 regular
TL3_WINDOW_DAYS = 100  # Discourse tl3_time_period
TL3_DAYS_VISITED = 50  # Discourse tl3_requires_days_visited
TL3_THREADS_REPLIED = 10  # Discourse tl3_requires_topics_replied_to
TL3_THREADS_READ_PERCENT = 25  # Discourse tl3_requires_topics_viewed (% of new threads)
TL3_THREADS_READ_CAP = 500  # Discourse tl3_requires_topics_viewed_cap
TL3_POSTS_READ_PERCENT = 25  # Discourse tl3_requires_posts_read (% of new posts)
TL3_POSTS_READ_CAP = 20_000  # Discourse tl3_requires_posts_read_cap
TL3_REACTIONS_RECEIVED = 20  # Discourse tl3_requires_likes_received
TL3_REACTIONS_GIVEN = 30  # Discourse tl3_requires_likes_given
TL3_MAX_FLAGGED_POSTS = 5  # Discourse tl3_requires_max_flagged (posts flagged, upheld)
TL3_MAX_FLAGGING_MEMBERS = 5  # Discourse: flagged by at most 5 different members
TL3_SANCTION_FREE_DAYS = 183  # Discourse: not silenced or suspended in the last 6 months
TL3_GRACE_DAYS = 14  # Discourse tl3_promotion_min_duration: kept at least two weeks


@dataclass(frozen=True)
class Limits:
    """What a member of one trust level may post (the team is not limited)."""

    threads_per_day: int
    posts_per_day: int  # threads and replies, per rolling 24 hours
    post_interval_seconds: int
    links_per_post: int
    images_per_post: int
    mentions_per_post: int


# TL0 starts from Discourse's new-user settings: max_topics_in_first_day 3,
# rate_limit_new_user_create_post 30 s, newuser_max_links 2, newuser_max_embedded_media 1
# (one image, so a new customer can still show the product they talk about),
# newuser_max_mentions_per_post 2. TL1 lifts them (max_mentions_per_post is 10 from TL2).
LIMITS: dict[int, Limits] = {
    Level.NEW: Limits(3, 20, 30, 2, 1, 2),
    Level.BASIC: Limits(10, 50, 15, 10, 10, 5),
    Level.MEMBER: Limits(30, 200, 5, 50, 50, 10),
    Level.REGULAR: Limits(50, 500, 5, 100, 100, 10),
    Level.LEADER: Limits(50, 500, 5, 100, 100, 10),
}


def limits_for(level: int) -> Limits:
    """The limits of a trust level (levels above the table get its highest row)."""
    return LIMITS.get(level) or LIMITS[max(LIMITS)]


def links_trusted(level: int) -> bool:
    """Links of members from level 2 on pass on reputation (no rel=nofollow)."""
    return level >= Level.MEMBER


@dataclass(frozen=True)
class Requirement:
    """One rule of a level and where the member stands: `actual` must reach `needed`
    (or, for an `at_most` rule, not exceed it)."""

    label: str | Promise
    needed: int
    actual: int
    at_most: bool = False

    @property
    def met(self) -> bool:
        return self.actual <= self.needed if self.at_most else self.actual >= self.needed


_MINUTES = gettext_lazy("Minutes spent reading")


def _all_met(requirements: list[Requirement]) -> bool:
    return all(requirement.met for requirement in requirements)


def requirements_tl1(profile: CommunityProfile) -> list[Requirement]:
    """TL0 -> TL1, from the profile's reading counters alone (no query)."""
    return [
        Requirement(gettext_lazy("Threads entered"), TL1_THREADS_ENTERED, profile.threads_entered),
        Requirement(gettext_lazy("Posts read"), TL1_POSTS_READ, profile.posts_read),
        Requirement(_MINUTES, TL1_READ_SECONDS // 60, profile.read_seconds // 60),
    ]


def _tl2_counters(profile: CommunityProfile) -> list[Requirement]:
    return [
        Requirement(gettext_lazy("Threads entered"), TL2_THREADS_ENTERED, profile.threads_entered),
        Requirement(gettext_lazy("Posts read"), TL2_POSTS_READ, profile.posts_read),
        Requirement(_MINUTES, TL2_READ_SECONDS // 60, profile.read_seconds // 60),
    ]


def _threads_replied(member: Member, since: dt.datetime | None = None) -> int:
    """Distinct threads started by someone else in which the member replied."""
    replies = Post.objects.filter(
        workspace_id=member.workspace_id, author=member, number__gt=1, hidden_at__isnull=True
    ).exclude(thread__author=member)
    if since is not None:
        replies = replies.filter(created_at__gte=since)
    return replies.values("thread_id").distinct().count()


def _reactions_given(member: Member, since: dt.datetime | None = None) -> int:
    """Posts the member reacted to (several emoji on one post count once, like a like)."""
    given = Reaction.objects.filter(workspace_id=member.workspace_id, member=member)
    if since is not None:
        given = given.filter(created_at__gte=since)
    return given.values("post_id").distinct().count()


def _reactions_received(member: Member, since: dt.datetime | None = None) -> int:
    """Reactions on the member's posts, once per post and reacting member."""
    received = Reaction.objects.filter(
        workspace_id=member.workspace_id, post__author=member
    ).exclude(member=member)
    if since is not None:
        received = received.filter(created_at__gte=since)
    return received.values("post_id", "member_id").distinct().count()


def _tl2_activity(member: Member) -> list[Requirement]:
    days = MemberVisit.objects.filter(member=member).count()
    return [
        Requirement(gettext_lazy("Days visited"), TL2_DAYS_VISITED, days),
        Requirement(gettext_lazy("Reactions given"), TL2_REACTIONS_GIVEN, _reactions_given(member)),
        Requirement(
            gettext_lazy("Reactions received"),
            TL2_REACTIONS_RECEIVED,
            _reactions_received(member),
        ),
        Requirement(
            gettext_lazy("Threads replied to"), TL2_THREADS_REPLIED, _threads_replied(member)
        ),
    ]


def requirements_tl2(profile: CommunityProfile) -> list[Requirement]:
    """TL1 -> TL2: the reading counters, then days visited, reactions and replies."""
    return _tl2_counters(profile) + _tl2_activity(profile.member)


def _share(percent: int, total: int, cap: int) -> int:
    return min(cap, math.ceil(total * percent / 100))


def requirements_tl3(member: Member, *, now: dt.datetime | None = None) -> list[Requirement]:
    """TL2 -> TL3 (and keeping TL3), over the last TL3_WINDOW_DAYS days."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=TL3_WINDOW_DAYS)
    days = MemberVisit.objects.filter(member=member, day__gt=since.date()).count()
    threads = readable_threads(member.workspace_id, member).filter(created_at__gte=since)
    new_threads = threads.count()
    new_posts = Post.objects.filter(
        thread__in=threads.values("pk"), created_at__gte=since, hidden_at__isnull=True
    ).count()
    threads_read = ThreadView.objects.filter(member=member, last_at__gte=since).count()
    posts_read = (
        MemberVisit.objects.filter(member=member, day__gt=since.date()).aggregate(
            n=Coalesce(Sum("posts_read"), 0)
        )["n"]
        or 0
    )
    upheld = Flag.objects.filter(
        post__author=member,
        outcome=Flag.Outcome.UPHELD,
        member__isnull=False,
        created_at__gte=since,
    ).exclude(member=member)
    flags = upheld.aggregate(
        posts=Count("post_id", distinct=True), members=Count("member_id", distinct=True)
    )
    return [
        Requirement(gettext_lazy("Days visited"), TL3_DAYS_VISITED, days),
        Requirement(
            gettext_lazy("Threads replied to"),
            TL3_THREADS_REPLIED,
            _threads_replied(member, since),
        ),
        Requirement(
            gettext_lazy("Threads read"),
            _share(TL3_THREADS_READ_PERCENT, new_threads, TL3_THREADS_READ_CAP),
            threads_read,
        ),
        Requirement(
            gettext_lazy("Posts read"),
            _share(TL3_POSTS_READ_PERCENT, new_posts, TL3_POSTS_READ_CAP),
            int(posts_read),
        ),
        Requirement(
            gettext_lazy("Reactions received"),
            TL3_REACTIONS_RECEIVED,
            _reactions_received(member, since),
        ),
        Requirement(
            gettext_lazy("Reactions given"), TL3_REACTIONS_GIVEN, _reactions_given(member, since)
        ),
        Requirement(
            gettext_lazy("Posts flagged by others (upheld)"),
            TL3_MAX_FLAGGED_POSTS,
            int(flags["posts"] or 0),
            at_most=True,
        ),
        Requirement(
            gettext_lazy("Members who flagged them"),
            TL3_MAX_FLAGGING_MEMBERS,
            int(flags["members"] or 0),
            at_most=True,
        ),
        Requirement(
            gettext_lazy("Silenced or suspended in the last 6 months"),
            0,
            _recent_sanctions(member, now).count(),
            at_most=True,
        ),
    ]


def _recent_sanctions(member: Member, now: dt.datetime) -> QuerySet[Sanction]:
    """Sanctions in force at some time in the last six months (a lifted one ended early)."""
    since = now - dt.timedelta(days=TL3_SANCTION_FREE_DAYS)
    return (
        Sanction.objects.filter(member=member, starts_at__lte=now)
        .annotate(ended=Coalesce("lifted_at", "ends_at"))
        .filter(ended__gt=since)
    )


def trust_progress(member: Member, *, now: dt.datetime | None = None) -> dict[int, list[Any]]:
    """Where the member stands on each earned level's rules, for the team's member page."""
    profile = profile_ensure(member)
    return {
        Level.BASIC: requirements_tl1(profile),
        Level.MEMBER: requirements_tl2(profile),
        Level.REGULAR: requirements_tl3(member, now=now),
    }


def _change(
    member: Member,
    profile: CommunityProfile,
    level: int,
    *,
    now: dt.datetime,
    action: str,
    actor: Any = None,
    locked: bool | None = None,
) -> None:
    """Write the new level (and lock), audit it and tell the member."""
    before = profile.trust_level
    fields = ["trust_level", "trust_changed_at"]
    profile.trust_level = level
    profile.trust_changed_at = now
    if locked is not None:
        profile.trust_locked = locked
        fields.append("trust_locked")
    with transaction.atomic():
        CommunityProfile.objects.filter(pk=profile.pk).update(
            **{field: getattr(profile, field) for field in fields}
        )
        audit_record(
            workspace=member.workspace,
            actor=actor,
            action=action,
            target=member,
            data={"from": before, "to": level, "locked": profile.trust_locked},
        )
        if level != before:
            notify(
                recipient=member,
                kind="trust",
                key=f"trust:{member.pk}:{level}:{now.date().isoformat()}",
                data={"from": before, "to": level},
                now=now,
            )


def trust_check(*, member: Member, now: dt.datetime | None = None) -> int:
    """The cheap check run when reading, reacting or replying: promote a TL0/TL1 member who
    now meets the next level's rules. Returns the member's level. Only reading counters are
    read unless they are already met, so it costs nothing on most calls."""
    profile = profile_ensure(member)
    level = profile.trust_level
    if profile.trust_locked or level >= Level.MEMBER or member.merged_into_id is not None:
        return level
    target = level
    if target == Level.NEW and _all_met(requirements_tl1(profile)):
        target = Level.BASIC
    if (
        target == Level.BASIC
        and _all_met(_tl2_counters(profile))
        and _all_met(_tl2_activity(member))
    ):
        target = Level.MEMBER
    if target != level:
        _change(member, profile, target, now=now or timezone.now(), action="trust.promote")
    return target


def trust_review(*, member: Member, now: dt.datetime | None = None) -> int:
    """The daily review: the cheap check, then promotion to TL3 or, after the grace period,
    demotion from it. Locked members and leaders are left where the team put them."""
    now = now or timezone.now()
    level = trust_check(member=member, now=now)
    profile = profile_ensure(member)
    if profile.trust_locked or level not in (Level.MEMBER, Level.REGULAR):
        return level
    if level == Level.REGULAR:
        changed = profile.trust_changed_at
        if changed is not None and now - changed < dt.timedelta(days=TL3_GRACE_DAYS):
            return level
    meets = _all_met(requirements_tl3(member, now=now))
    if level == Level.MEMBER and meets:
        _change(member, profile, Level.REGULAR, now=now, action="trust.promote")
        return Level.REGULAR
    if level == Level.REGULAR and not meets:
        _change(member, profile, Level.MEMBER, now=now, action="trust.demote")
        return Level.MEMBER
    return level


def trust_review_workspace(*, workspace_id: int, now: dt.datetime | None = None) -> int:
    """Review every unlocked TL2 and TL3 member of a workspace; returns how many changed."""
    changed = 0
    profiles = (
        CommunityProfile.objects.filter(
            workspace_id=workspace_id,
            trust_locked=False,
            trust_level__in=[Level.MEMBER, Level.REGULAR],
            member__merged_into__isnull=True,
            member__erased_at__isnull=True,
        )
        .select_related("member")
        .order_by("pk")
    )
    for profile in profiles.iterator(chunk_size=500):
        member = profile.member
        member.community = profile
        before = profile.trust_level
        if trust_review(member=member, now=now) != before:
            changed += 1
    return changed


def trust_lock(
    *, member: Member, level: int, actor: Any, workspace_id: int, now: dt.datetime | None = None
) -> CommunityProfile:
    """The team puts a member at a level and keeps them there (the only way to TL4, and the
    only way down from TL0-2); audited, and the member is told of a change."""
    if member.workspace_id != workspace_id or member.merged_into_id is not None:
        raise NotFound()
    if level not in Level.values:
        raise CommunityError("level", _("Choose a trust level from 0 to 4."))
    profile = profile_ensure(member)
    _change(
        member,
        profile,
        int(level),
        now=now or timezone.now(),
        action="trust.lock",
        actor=actor,
        locked=True,
    )
    return profile


def trust_unlock(
    *, member: Member, actor: Any, workspace_id: int, now: dt.datetime | None = None
) -> CommunityProfile:
    """Let the rules move the member again, starting from the level they have; audited."""
    if member.workspace_id != workspace_id or member.merged_into_id is not None:
        raise NotFound()
    profile = profile_ensure(member)
    if not profile.trust_locked:
        raise CommunityError("level", _("This member's trust level is not locked."))
    with transaction.atomic():
        profile.trust_locked = False
        CommunityProfile.objects.filter(pk=profile.pk).update(trust_locked=False)
        audit_record(
            workspace=member.workspace,
            actor=actor,
            action="trust.unlock",
            target=member,
            data={"level": profile.trust_level},
        )
    trust_check(member=member, now=now)
    return profile
