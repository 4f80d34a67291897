"""Trust levels rise and fall by the rules; limits apply to new members and are lifted as
trust grows (acceptance 3). Each rule is checked just below its threshold (no promotion)
and at it (promotion)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from circolo.community import trust
from circolo.community.models import (
    CommunityProfile,
    Flag,
    MemberVisit,
    Notification,
    Post,
    Reaction,
    Sanction,
    ThreadView,
)
from circolo.community.profiles import profile_ensure
from circolo.community.services import (
    CommunityError,
    RateLimited,
    member_for_user,
    reaction_add,
    reply_create,
    space_create,
    thread_create,
)
from circolo.community.tasks import trust_review_task
from circolo.community.trust import Level, trust_check, trust_lock, trust_review, trust_unlock
from circolo.core.models import AuditLog
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Chat")


def at_level(member: Any, level: int, **counters: Any) -> CommunityProfile:
    profile = profile_ensure(member)
    CommunityProfile.objects.filter(pk=profile.pk).update(trust_level=level, **counters)
    profile.refresh_from_db()
    member.community = profile
    return profile


def level_of(member: Any) -> int:
    return CommunityProfile.objects.get(member=member).trust_level


# --------------------------------------------------------------------------- TL0 -> TL1

TL1_MET = {"threads_entered": 5, "posts_read": 30, "read_seconds": 600}


@pytest.mark.parametrize("rule", sorted(TL1_MET))
def test_tl1_needs_each_reading_rule(workspace, rule) -> None:
    member = MemberFactory(workspace=workspace)
    at_level(member, 0, **{**TL1_MET, rule: TL1_MET[rule] - 1})
    assert trust_check(member=member) == Level.NEW
    assert level_of(member) == Level.NEW
    at_level(member, 0, **TL1_MET)
    assert trust_check(member=member) == Level.BASIC
    profile = CommunityProfile.objects.get(member=member)
    assert profile.trust_level == Level.BASIC and profile.trust_changed_at is not None


def test_a_promotion_is_audited_and_the_member_told(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    at_level(member, 0, **TL1_MET)
    now = timezone.now()
    trust_check(member=member, now=now)
    entry = AuditLog.objects.get(action="trust.promote")
    assert entry.target_id == str(member.pk) and entry.data["from"] == 0 and entry.data["to"] == 1
    note = Notification.objects.get(recipient=member, kind="trust")
    assert note.key == f"trust:{member.pk}:1:{now.date().isoformat()}"
    trust_check(member=member, now=now)  # nothing new: no second row
    assert AuditLog.objects.filter(action="trust.promote").count() == 1


# --------------------------------------------------------------------------- TL1 -> TL2

TL2_COUNTERS = {"threads_entered": 20, "posts_read": 100, "read_seconds": 3600}


def tl2_ready(workspace: Any, space: Any, member: Any, *, skip: str = "") -> Any:
    """A TL1 member meeting every TL2 rule except `skip` (one short of it)."""
    counters = dict(TL2_COUNTERS)
    if skip in counters:
        counters[skip] -= 1
    at_level(member, 1, **counters)
    days = trust.TL2_DAYS_VISITED - (1 if skip == "days" else 0)
    today = timezone.now().date()
    MemberVisit.objects.bulk_create(
        MemberVisit(workspace=workspace, member=member, day=today - dt.timedelta(days=n))
        for n in range(days)
    )
    other = MemberFactory(workspace=workspace)
    replies = trust.TL2_THREADS_REPLIED - (1 if skip == "replied" else 0)
    threads = [
        thread_create(space=space, author=other, title=f"T{n}", body=f"b{n}") for n in range(3)
    ]
    posts = [reply_create(thread=thread, author=member, body="yes") for thread in threads[:replies]]
    # Replying in one's own thread does not count.
    own = thread_create(space=space, author=member, title="Mine", body="mine")
    reply_create(thread=own, author=member, body="me again")
    if skip != "given":
        Reaction.objects.create(
            workspace=workspace, post=threads[0].posts.get(number=1), member=member, emoji="like"
        )
    if skip != "received":
        target = posts[0] if posts else own.posts.get(number=1)
        Reaction.objects.create(workspace=workspace, post=target, member=other, emoji="like")
    return other


@pytest.mark.parametrize(
    "skip", ["threads_entered", "posts_read", "read_seconds", "days", "replied", "given",
             "received"],
)  # fmt: skip
def test_tl2_needs_each_rule(workspace, space, skip) -> None:
    member = MemberFactory(workspace=workspace)
    tl2_ready(workspace, space, member, skip=skip)
    assert trust_check(member=member) == Level.BASIC


def test_tl2_at_every_threshold_and_a_reaction_triggers_it(workspace, space) -> None:
    member = MemberFactory(workspace=workspace)
    other = tl2_ready(workspace, space, member, skip="received")
    assert level_of(member) == Level.BASIC
    reply = Post.objects.filter(author=member, number__gt=1).first()
    # The reaction received is the last missing input: the check runs on the event.
    reaction_add(post=reply, member=other, emoji="heart")
    assert level_of(member) == Level.MEMBER


def test_a_tl0_member_meeting_both_goes_straight_to_tl2(workspace, space) -> None:
    member = MemberFactory(workspace=workspace)
    tl2_ready(workspace, space, member)
    at_level(member, 0)
    assert trust_check(member=member) == Level.MEMBER


# --------------------------------------------------------------------------- TL2 -> TL3


@pytest.fixture
def regular(workspace: Any, space: Any) -> dict[str, Any]:
    """A TL2 member meeting every TL3 rule exactly, over the last 100 days."""
    now = timezone.now()
    member = MemberFactory(workspace=workspace)
    at_level(member, Level.MEMBER)
    others = [MemberFactory(workspace=workspace) for _ in range(7)]
    threads = [
        thread_create(space=space, author=others[0], title=f"T{n}", body=f"b{n}") for n in range(12)
    ]
    extra = Post.objects.bulk_create(
        Post(
            workspace=workspace,
            thread=threads[0],
            author=others[1],
            number=n,
            body=f"extra {n}",
            html="",
            created_at=now,
        )
        for n in range(2, 2 + trust.TL3_REACTIONS_GIVEN)
    )
    replies = [
        reply_create(thread=thread, author=member, body="reply")
        for thread in threads[: trust.TL3_THREADS_REPLIED]
    ]
    # 12 threads and 12 + 30 + 10 posts in the window: 25% is 3 threads and 13 posts.
    ThreadView.objects.bulk_create(
        ThreadView(workspace=workspace, member=member, thread=thread, first_at=now, last_at=now)
        for thread in threads[:3]
    )
    MemberVisit.objects.bulk_create(
        MemberVisit(
            workspace=workspace,
            member=member,
            day=now.date() - dt.timedelta(days=n),
            posts_read=13 if n == 0 else 0,
        )
        for n in range(trust.TL3_DAYS_VISITED)
    )
    Reaction.objects.bulk_create(
        Reaction(workspace=workspace, post=post, member=member, emoji="like") for post in extra
    )
    Reaction.objects.bulk_create(
        Reaction(workspace=workspace, post=reply, member=reactor, emoji="like")
        for reply in replies
        for reactor in others[:2]
    )
    return {"member": member, "others": others, "replies": replies, "threads": threads}


def test_tl3_at_every_threshold(regular) -> None:
    member = regular["member"]
    assert all(rule.met for rule in trust.requirements_tl3(member))
    assert trust_review(member=member) == Level.REGULAR
    assert AuditLog.objects.filter(action="trust.promote", data__to=3).exists()


def _break(rule: str, regular: dict[str, Any], workspace: Any) -> None:
    member, others, replies = regular["member"], regular["others"], regular["replies"]
    now = timezone.now()
    if rule == "days":
        MemberVisit.objects.filter(member=member).order_by("day").first().delete()
    elif rule == "replied":
        replies[-1].delete()
    elif rule == "threads_read":
        ThreadView.objects.filter(member=member).first().delete()
    elif rule == "posts_read":
        MemberVisit.objects.filter(member=member, posts_read=13).update(posts_read=12)
    elif rule == "received":
        Reaction.objects.filter(post=replies[0], member=others[0]).delete()
    elif rule == "given":
        Reaction.objects.filter(member=member).first().delete()
    elif rule == "flagged_posts":
        # 6 posts, each flagged (upheld) by one of 2 members.
        posts = [*replies[:6]]
        Flag.objects.bulk_create(
            Flag(workspace=workspace, post=post, member=others[n % 2], reason="spam",
                 outcome="upheld")
            for n, post in enumerate(posts)
        )  # fmt: skip
    elif rule == "flagging_members":
        Flag.objects.bulk_create(
            Flag(workspace=workspace, post=replies[0], member=other, reason="spam",
                 outcome="upheld")
            for other in others[:6]
        )  # fmt: skip
    elif rule == "sanctioned":
        Sanction.objects.create(
            workspace=workspace,
            member=member,
            kind="silence",
            reason="rude",
            starts_at=now - dt.timedelta(days=150),
            ends_at=now - dt.timedelta(days=140),
        )


TL3_RULES = [
    "days", "replied", "threads_read", "posts_read", "received", "given", "flagged_posts",
    "flagging_members", "sanctioned",
]  # fmt: skip


@pytest.mark.parametrize("rule", TL3_RULES)
def test_tl3_needs_each_rule(workspace, regular, rule) -> None:
    _break(rule, regular, workspace)
    assert trust_review(member=regular["member"]) == Level.MEMBER


def test_tl3_limits_at_their_edge(workspace, regular) -> None:
    """Five flagged posts, five flagging members and a sanction over 6 months ago are fine;
    activity older than the 100-day window does not count."""
    member, others, replies = regular["member"], regular["others"], regular["replies"]
    now = timezone.now()
    Flag.objects.bulk_create(
        Flag(workspace=workspace, post=reply, member=other, reason="spam", outcome="upheld")
        for reply, other in zip(replies[:5], others[:5], strict=True)
    )
    Flag.objects.create(workspace=workspace, post=replies[6], member=None, reason="automatic",
                        outcome="upheld")  # fmt: skip
    Sanction.objects.create(
        workspace=workspace, member=member, kind="suspend", reason="x",
        starts_at=now - dt.timedelta(days=200), ends_at=now - dt.timedelta(days=190),
    )  # fmt: skip
    assert trust_review(member=member, now=now) == Level.REGULAR
    # Visits older than the window do not count towards it.
    MemberVisit.objects.filter(member=member).order_by("day").first().delete()
    MemberVisit.objects.create(
        workspace=workspace, member=member, day=now.date() - dt.timedelta(days=101)
    )
    assert trust.requirements_tl3(member, now=now)[0].met is False


def test_tl3_is_lost_after_the_grace_period(workspace, regular) -> None:
    member = regular["member"]
    promoted = timezone.now()
    assert trust_review(member=member, now=promoted) == Level.REGULAR
    _break("days", regular, workspace)
    assert trust_review(member=member, now=promoted + dt.timedelta(days=13)) == Level.REGULAR
    demoted_at = promoted + dt.timedelta(days=14, minutes=1)
    assert trust_review(member=member, now=demoted_at) == Level.MEMBER
    entry = AuditLog.objects.get(action="trust.demote")
    assert entry.data == {"from": 3, "to": 2, "locked": False}
    assert Notification.objects.filter(recipient=member, kind="trust").count() == 2
    # TL2 is not lost with the TL3 rules (nor TL0-1 ever, except by a lock).
    assert trust_review(member=member, now=demoted_at + dt.timedelta(days=30)) == Level.MEMBER


def test_the_daily_task_reviews_and_running_twice_changes_nothing(workspace, regular) -> None:
    assert trust_review_task.apply().get() == 1
    assert level_of(regular["member"]) == Level.REGULAR
    assert trust_review_task.apply().get() == 0
    assert AuditLog.objects.filter(action="trust.promote").count() == 1


def test_a_silence_blocks_posting_but_keeps_the_level(workspace, space) -> None:
    member = MemberFactory(workspace=workspace)
    at_level(member, Level.MEMBER)
    Sanction.objects.create(
        workspace=workspace, member=member, kind="silence", reason="Calm down",
        starts_at=timezone.now(), ends_at=timezone.now() + dt.timedelta(days=3),
    )  # fmt: skip
    with pytest.raises(CommunityError, match="Calm down"):
        thread_create(space=space, author=member, title="Hi", body="hello")
    assert trust_review(member=member) == Level.MEMBER


# --------------------------------------------------------------------------- locks


def test_staff_lock_and_unlock(workspace, owner) -> None:
    member = MemberFactory(workspace=workspace)
    at_level(member, 0, **TL1_MET)
    trust_lock(member=member, level=0, actor=owner.user, workspace_id=workspace.pk)
    assert trust_check(member=member) == Level.NEW  # locked: the rules do not move it
    trust_lock(member=member, level=4, actor=owner.user, workspace_id=workspace.pk)
    profile = CommunityProfile.objects.get(member=member)
    assert profile.trust_level == Level.LEADER and profile.trust_locked
    assert trust_review(member=member) == Level.LEADER
    trust_unlock(member=member, actor=owner.user, workspace_id=workspace.pk)
    assert level_of(member) == Level.LEADER  # leaders are never reviewed automatically
    trust_lock(member=member, level=0, actor=owner.user, workspace_id=workspace.pk)
    trust_unlock(member=member, actor=owner.user, workspace_id=workspace.pk)
    assert level_of(member) == Level.BASIC  # unlocked: the rules apply again at once
    actions = list(
        AuditLog.objects.filter(action__startswith="trust.").values_list("action", flat=True)
    )
    assert actions.count("trust.lock") == 3 and actions.count("trust.unlock") == 2
    assert AuditLog.objects.filter(action="trust.lock", actor=owner.user).count() == 3
    with pytest.raises(CommunityError, match="0 to 4"):
        trust_lock(member=member, level=7, actor=owner.user, workspace_id=workspace.pk)
    with pytest.raises(CommunityError, match="not locked"):
        trust_unlock(member=member, actor=owner.user, workspace_id=workspace.pk)


def test_a_lock_from_another_workspace_is_not_found(workspace, other_workspace, owner) -> None:
    member = MemberFactory(workspace=workspace)
    with pytest.raises(CommunityError):
        trust_lock(member=member, level=2, actor=owner.user, workspace_id=other_workspace.pk)
    assert not CommunityProfile.objects.filter(member=member, trust_level=2).exists()


# --------------------------------------------------------------------------- limits

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


def links(n: int) -> str:
    return " ".join(f"[l{i}](https://site{i}.example/p)" for i in range(n))


def images(n: int) -> str:
    return " ".join(f"![i{i}](https://img.example/{i}.png)" for i in range(n))


def mentions(n: int) -> str:
    return " ".join(f"@someone{i}" for i in range(n))


@pytest.mark.limits
@pytest.mark.parametrize(
    ("make", "allowed"),
    [(links, {0: 2, 1: 10, 2: 50}), (images, {0: 1, 1: 10, 2: 50}),
     (mentions, {0: 2, 1: 5, 2: 10})],
)  # fmt: skip
def test_links_images_and_mentions_per_level(workspace, space, make, allowed) -> None:
    for level, limit in allowed.items():
        member = MemberFactory(workspace=workspace)
        at_level(member, level)
        thread_create(space=space, author=member, title="ok", body=make(limit), now=T0)
        with pytest.raises(CommunityError) as error:
            thread_create(
                space=space,
                author=member,
                title="too many",
                body=make(limit + 1),
                now=T0 + dt.timedelta(hours=1),
            )
        assert error.value.field == "body"
        assert f"at most {limit}" in error.value.message
        assert f"has {limit + 1}" in error.value.message or f"mentions {limit + 1}" in (
            error.value.message
        )


@pytest.mark.limits
def test_posts_and_threads_per_day_grow_with_trust(workspace, space) -> None:
    new, basic = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    at_level(basic, 1)
    made = {}
    for member in (new, basic):
        for n in range(3):
            made[member.pk] = thread_create(
                space=space, author=member, title=f"t{n}", body=f"b{n}",
                now=T0 + dt.timedelta(minutes=n),
            )  # fmt: skip
    with pytest.raises(RateLimited):
        thread_create(
            space=space, author=new, title="t4", body="b4", now=T0 + dt.timedelta(hours=1)
        )
    thread_create(space=space, author=basic, title="t4", body="b4", now=T0 + dt.timedelta(hours=1))
    thread = made[new.pk]
    # TL0: 20 posts a day in all (3 threads already).
    for n in range(17):
        reply_create(
            thread=thread, author=new, body=f"r{n}", now=T0 + dt.timedelta(hours=2, minutes=n)
        )
    with pytest.raises(RateLimited):
        reply_create(thread=thread, author=new, body="one more", now=T0 + dt.timedelta(hours=3))
    for n in range(17):
        reply_create(
            thread=thread, author=basic, body=f"r{n}", now=T0 + dt.timedelta(hours=2, minutes=n)
        )
    reply_create(thread=thread, author=basic, body="one more", now=T0 + dt.timedelta(hours=3))


@pytest.mark.limits
def test_the_pause_between_posts_shortens_with_trust(workspace, space) -> None:
    new, basic = MemberFactory(workspace=workspace), MemberFactory(workspace=workspace)
    at_level(basic, 1)
    for member in (new, basic):
        thread = thread_create(space=space, author=member, title="t", body="b", now=T0)
        if member is new:
            with pytest.raises(RateLimited) as error:
                reply_create(
                    thread=thread, author=member, body="r", now=T0 + dt.timedelta(seconds=20)
                )
            assert error.value.retry_after == 10
        else:
            reply_create(thread=thread, author=member, body="r", now=T0 + dt.timedelta(seconds=20))


@pytest.mark.limits
def test_the_team_is_exempt_and_nofollow_lifts_at_tl2(workspace, space, moderator) -> None:
    staff = member_for_user(workspace=workspace, user=moderator.user)
    thread = thread_create(space=space, author=staff, title="News", body=links(12), now=T0)
    assert "nofollow" not in thread.posts.get().html
    for level, nofollow in ((0, True), (1, True), (2, False), (3, False)):
        member = MemberFactory(workspace=workspace)
        at_level(member, level)
        post = reply_create(thread=thread, author=member, body=links(1), now=T0)
        assert ("nofollow" in post.html) is nofollow
