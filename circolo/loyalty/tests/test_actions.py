"""Points for community actions: each activity pays once, daily caps, once-ever rules, and a
post removed by a moderator takes its points back (and gives them back when restored)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.handlers import HandledActivity
from circolo.activity.services import activity_record
from circolo.community.services import (
    member_for_user,
    post_moderate,
    reply_create,
    space_create,
    thread_create,
)
from circolo.loyalty import ledger
from circolo.loyalty.actions import actions_earn
from circolo.loyalty.models import Movement, Reason
from circolo.loyalty.rules import RulesError, rules_clean, ruleset_draft_save, ruleset_publish
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db


def record(member: Any, kind: str, n: int, at: dt.datetime, **props: Any) -> HandledActivity:
    activity, _created = activity_record(
        workspace=member.workspace,
        member=member,
        kind=kind,
        channel="test",
        occurred_at=at,
        source="test",
        source_id=f"{kind}:{n}",
        properties=props,
    )
    return HandledActivity(
        id=activity.pk,
        workspace_id=member.workspace_id,
        member_id=member.pk,
        kind=kind,
        channel="test",
        occurred_at=at,
        weight=activity.weight,
        source="test",
        source_id=activity.source_id,
        properties_json=json.dumps(props),
    )


def points(member: Any) -> int:
    return ledger.member_balance(member_id=member.pk).points


def test_reviews_pay_up_to_the_daily_cap_and_photos_pay_extra(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    day = timezone.now().replace(hour=10) - dt.timedelta(days=3)
    batch = [
        record(member, "review", n, day + dt.timedelta(minutes=n), photos=n % 2) for n in range(5)
    ]
    actions_earn(workspace_id=workspace.pk, activities=batch)
    # 3 reviews a day pay 50 each; 2 of the 5 had a photo (50 more each, cap 3).
    assert points(member) == 3 * 50 + 2 * 50
    # The same activities again (a replayed handler run) pay nothing more.
    actions_earn(workspace_id=workspace.pk, activities=batch)
    assert points(member) == 250
    # The next day the cap starts again.
    later = record(member, "review", 9, day + dt.timedelta(days=1))
    actions_earn(workspace_id=workspace.pk, activities=[later])
    assert points(member) == 300


def test_once_rules_pay_once_ever(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    now = timezone.now()
    actions_earn(workspace_id=workspace.pk, activities=[record(member, "signup", 1, now)])
    actions_earn(workspace_id=workspace.pk, activities=[record(member, "signup", 2, now)])
    assert points(member) == 100
    assert Movement.objects.filter(member=member, rule="signup").count() == 1


def test_published_rules_change_what_new_activities_earn(workspace, owner) -> None:
    ruleset_draft_save(
        workspace=workspace, raw={"review": {"points": 7, "daily_cap": 0}}, actor=owner.user
    )
    member = MemberFactory(workspace=workspace)
    first = record(member, "review", 1, timezone.now())
    actions_earn(workspace_id=workspace.pk, activities=[first])
    assert points(member) == 50  # the draft is not in force yet
    ruleset_publish(workspace=workspace, actor=owner.user)
    actions_earn(
        workspace_id=workspace.pk, activities=[record(member, "review", 2, timezone.now())]
    )
    assert points(member) == 57


def test_bad_rules_name_each_problem() -> None:
    with pytest.raises(RulesError) as raised:
        rules_clean({"order": {"points": -1, "per": 0}, "review": "x", "rating": {}})
    assert set(raised.value.errors) == {"order.points", "order.per", "review", "rating"}


def test_a_removed_post_takes_its_points_back_and_restoring_returns_them(
    workspace, owner, django_capture_on_commit_callbacks
) -> None:
    space = space_create(workspace=workspace, actor=None, name="Help")
    author = MemberFactory(workspace=workspace)
    moderator = member_for_user(workspace=workspace, user=owner.user)
    with django_capture_on_commit_callbacks(execute=True):
        thread = thread_create(space=space, author=author, title="Grinder?", body="Which one?")
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_create(
            thread=thread,
            author=author,
            body="I found it, the flat one.",
            now=timezone.now() + dt.timedelta(minutes=5),
        )
    assert points(author) == 10 + 5
    with django_capture_on_commit_callbacks(execute=True):
        post_moderate(post=reply, moderator=moderator, action="hide", reason="spam")
    assert points(author) == 10
    removed = Movement.objects.get(member=author, reason=Reason.ACTION_REMOVED)
    assert removed.points == 5 and removed.actor_id == owner.user.pk
    # Hiding again takes nothing more; showing it gives the 5 back, once.
    post_moderate(post=reply, moderator=moderator, action="hide", reason="spam")
    post_moderate(post=reply, moderator=moderator, action="show")
    post_moderate(post=reply, moderator=moderator, action="show")
    assert points(author) == 15
    post_moderate(post=reply, moderator=moderator, action="hide", reason="spam again")
    assert points(author) == 10
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok
