from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from circolo.activity.models import Activity
from circolo.activity.selectors import member_score
from circolo.activity.services import activity_record
from circolo.core.models import AuditLog
from circolo.people.models import Identity, Member, MemberTag, MergeRecord, MergeSuggestion
from circolo.people.services import MergeError, member_merge, merge_undo
from circolo.testing.factories import (
    ActivityFactory,
    IdentityFactory,
    MemberFactory,
    UserFactory,
)
from circolo.testing.people_factories import MemberTagFactory, MergeSuggestionFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def snapshot(workspace: Any) -> dict[str, Any]:
    """Everything a merge may touch, in a comparable form."""
    return {
        "members": sorted(
            Member.objects.filter(workspace=workspace).values_list(
                "pk", "merged_into_id", "first_seen", "last_seen", "user_id", "display_name"
            )
        ),
        "identities": sorted(
            Identity.objects.filter(workspace=workspace).values_list(
                "pk", "member_id", "channel", "kind", "value", "verified"
            )
        ),
        "activities": sorted(
            Activity.objects.filter(workspace=workspace).values_list("pk", "member_id")
        ),
        "tags": sorted(
            MemberTag.objects.filter(workspace=workspace).values_list("member_id", "tag")
        ),
        "suggestions": sorted(
            MergeSuggestion.objects.filter(workspace=workspace).values_list(
                "pk", "status", "decided_by_id"
            )
        ),
    }


def person(workspace: Any, *, days: tuple[int, int] = (0, 30), **fields: Any) -> Member:
    return MemberFactory(
        workspace=workspace,
        first_seen=T0 + dt.timedelta(days=days[0]),
        last_seen=T0 + dt.timedelta(days=days[1]),
        **fields,
    )


def activity(member: Member, day: int) -> Activity:
    return ActivityFactory(member=member, occurred_at=T0 + dt.timedelta(days=day, hours=1))


def test_merge_moves_everything_and_records_it(workspace, moderator) -> None:
    survivor = person(workspace, days=(10, 20))
    merged = person(workspace, days=(0, 40))
    keep_identity = IdentityFactory(member=survivor)
    moved_identities = [
        IdentityFactory(member=merged),
        IdentityFactory(member=merged, kind="phone", value="+393331234567"),
    ]
    keep_activity = activity(survivor, 12)
    moved_activities = [activity(merged, 1), activity(merged, 39)]
    MemberTagFactory(member=survivor, tag="vip")
    MemberTagFactory(member=merged, tag="vip")
    MemberTagFactory(member=merged, tag="reviewer")

    record = member_merge(
        workspace=workspace, survivor=survivor, merged=merged, actor=moderator.user
    )

    assert sorted(record.identity_ids) == sorted(i.pk for i in moved_identities)
    assert sorted(record.activity_ids) == sorted(a.pk for a in moved_activities)
    assert record.tags == ["reviewer"]
    assert record.merged_by == moderator.user and record.workspace == workspace
    assert set(survivor.identities.values_list("pk", flat=True)) == {
        keep_identity.pk,
        *record.identity_ids,
    }
    assert set(survivor.activities.values_list("pk", flat=True)) == {
        keep_activity.pk,
        *record.activity_ids,
    }
    assert set(survivor.tags.values_list("tag", flat=True)) == {"vip", "reviewer"}
    assert merged.merged_into == survivor
    assert survivor.first_seen == T0 and survivor.last_seen == T0 + dt.timedelta(days=40)
    entry = AuditLog.objects.get(action="member.merge")
    assert entry.actor == moderator.user and entry.target_id == str(survivor.pk)
    assert entry.data["merged_id"] == merged.pk and entry.data["record_id"] == record.pk


def test_undo_restores_exactly(workspace, moderator) -> None:
    user = UserFactory()
    survivor = person(workspace, days=(10, 20))
    merged = person(workspace, days=(0, 40), user=user)
    IdentityFactory(member=survivor)
    IdentityFactory(member=merged)
    activity(survivor, 15)
    activity(merged, 2)
    MemberTagFactory(member=survivor, tag="vip")
    MemberTagFactory(member=merged, tag="vip")
    MemberTagFactory(member=merged, tag="reviewer")
    suggestion = MergeSuggestionFactory(member_a=survivor, member_b=merged)
    before = snapshot(workspace)

    record = member_merge(
        workspace=workspace, survivor=survivor, merged=merged, actor=moderator.user
    )
    survivor.refresh_from_db()
    assert survivor.user == user
    assert record.suggestion == suggestion
    suggestion.refresh_from_db()
    assert suggestion.status == MergeSuggestion.Status.ACCEPTED

    merge_undo(record=record, actor=moderator.user)

    assert snapshot(workspace) == before
    assert record.undone_at is not None and record.undone_by == moderator.user
    assert AuditLog.objects.filter(action="member.merge_undo", target_id=str(survivor.pk)).exists()
    with pytest.raises(MergeError):
        merge_undo(record=record, actor=moderator.user)


def test_undo_keeps_what_changed_since_the_merge(workspace, moderator) -> None:
    survivor = person(workspace, days=(10, 20))
    merged = person(workspace, days=(0, 40))
    record = member_merge(
        workspace=workspace, survivor=survivor, merged=merged, actor=moderator.user
    )
    later = T0 + dt.timedelta(days=90)
    Member.objects.filter(pk=survivor.pk).update(last_seen=later)
    new_identity = IdentityFactory(member=survivor)
    MemberTagFactory(member=survivor, tag="added-later")

    merge_undo(record=record, actor=moderator.user)

    survivor.refresh_from_db()
    assert survivor.last_seen == later
    assert survivor.first_seen == T0 + dt.timedelta(days=10)
    assert new_identity in survivor.identities.all()
    assert survivor.tags.filter(tag="added-later").exists()


def test_scores_follow_the_activities_and_come_back(
    workspace, moderator, django_capture_on_commit_callbacks, settings
) -> None:
    # Handlers in process even when a broker is configured (REDIS_URL on the PostgreSQL run).
    settings.CELERY_TASK_ALWAYS_EAGER = True
    survivor = person(workspace, days=(-400, 0))
    merged = person(workspace, days=(-400, 0))
    now = dt.datetime.now(dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        for index, member in enumerate([survivor, merged, merged]):
            activity_record(
                workspace=workspace,
                member=member,
                kind="review",
                channel="shop",
                occurred_at=now - dt.timedelta(hours=index + 1),
                source="test",
                source_id=f"r-{index}",
            )
    assert member_score(member=survivor).activity_count == 1
    assert member_score(member=merged).activity_count == 2

    record = member_merge(
        workspace=workspace, survivor=survivor, merged=merged, actor=moderator.user
    )
    assert member_score(member=survivor).activity_count == 3
    assert member_score(member=merged).activity_count == 0

    merge_undo(record=record, actor=moderator.user)
    assert member_score(member=survivor).activity_count == 1
    assert member_score(member=merged).activity_count == 2


def test_nested_merges_undo_in_order(workspace, owner) -> None:
    a, b, c = (person(workspace) for _ in range(3))
    for member in (a, b, c):
        IdentityFactory(member=member)
        activity(member, 5)
    before = snapshot(workspace)

    a_from_b = member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user)
    c_from_a = member_merge(workspace=workspace, survivor=c, merged=a, actor=owner.user)
    assert Identity.objects.filter(workspace=workspace, member=c).count() == 3
    assert Activity.objects.filter(workspace=workspace, member=c).count() == 3

    with pytest.raises(MergeError) as caught:
        merge_undo(record=a_from_b, actor=owner.user)
    assert "undo that merge first" in caught.value.message
    a_from_b.refresh_from_db()
    assert a_from_b.undone_at is None

    merge_undo(record=c_from_a, actor=owner.user)
    merge_undo(record=a_from_b, actor=owner.user)
    assert snapshot(workspace) == before


def test_merge_refuses_bad_pairs(workspace, other_workspace, owner) -> None:
    a, b, c = (person(workspace) for _ in range(3))
    with pytest.raises(MergeError):
        member_merge(workspace=workspace, survivor=a, merged=a, actor=owner.user)
    member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user)
    with pytest.raises(MergeError):
        member_merge(workspace=workspace, survivor=c, merged=b, actor=owner.user)
    with pytest.raises(MergeError):
        member_merge(workspace=workspace, survivor=b, merged=c, actor=owner.user)
    assert MergeRecord.objects.count() == 1


def test_merge_across_workspaces_is_not_found(workspace, other_workspace, owner) -> None:
    mine = person(workspace)
    theirs = person(other_workspace)
    IdentityFactory(member=theirs)
    activity(theirs, 3)
    before = snapshot(other_workspace)
    with pytest.raises(Member.DoesNotExist):
        member_merge(workspace=workspace, survivor=mine, merged=theirs, actor=owner.user)
    with pytest.raises(Member.DoesNotExist):
        member_merge(workspace=other_workspace, survivor=mine, merged=theirs, actor=owner.user)
    assert snapshot(other_workspace) == before
    assert not MergeRecord.objects.exists()


def test_suggestion_of_another_pair_is_refused(workspace, owner) -> None:
    a, b, c = (person(workspace) for _ in range(3))
    wrong = MergeSuggestionFactory(member_a=a, member_b=c)
    with pytest.raises(MergeError):
        member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user, suggestion=wrong)
    assert Member.objects.get(pk=b.pk).merged_into is None


# --------------------------------------------------------------------------- property


member_shapes = st.lists(
    st.fixed_dictionaries(
        {
            "identities": st.lists(
                st.sampled_from(["email", "phone", "customer_id", "handle"]), max_size=4
            ),
            "activity_days": st.lists(st.integers(min_value=0, max_value=60), max_size=5),
            "tags": st.sets(st.sampled_from(["vip", "reviewer", "ambassador", "it"]), max_size=3),
            "verified": st.booleans(),
            "seen": st.tuples(st.integers(0, 10), st.integers(0, 30)),
            "with_user": st.booleans(),
        }
    ),
    min_size=2,
    max_size=4,
)


@given(shapes=member_shapes, data=st.data())
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_merge_then_undo_restores_the_snapshot(workspace, owner, shapes, data) -> None:
    with transaction.atomic():
        members = []
        for index, shape in enumerate(shapes):
            start, length = shape["seen"]
            member = MemberFactory(
                workspace=workspace,
                first_seen=T0 + dt.timedelta(days=start),
                last_seen=T0 + dt.timedelta(days=start + length + 60),
                user=UserFactory() if shape["with_user"] else None,
            )
            for position, kind in enumerate(shape["identities"]):
                value = {
                    "email": f"p{index}-{position}@example.com",
                    "phone": f"+3933312345{index}{position}",
                    "customer_id": f"c-{index}-{position}",
                    "handle": f"h{index}{position}",
                }[kind]
                IdentityFactory(
                    member=member, kind=kind, channel=kind, value=value, verified=shape["verified"]
                )
            for day in shape["activity_days"]:
                ActivityFactory(
                    member=member,
                    occurred_at=T0 + dt.timedelta(days=start + min(day, length), hours=1),
                )
            for tag in shape["tags"]:
                MemberTagFactory(member=member, tag=tag)
            members.append(member)
        a, b = data.draw(st.permutations(members))[:2]
        if data.draw(st.booleans()):
            MergeSuggestionFactory(
                member_a=min(a, b, key=lambda m: m.pk), member_b=max(a, b, key=lambda m: m.pk)
            )
        before = snapshot(workspace)

        record = member_merge(workspace=workspace, survivor=a, merged=b, actor=owner.user)
        assert Member.objects.get(pk=b.pk).merged_into_id == a.pk
        assert not Identity.objects.filter(member=b).exists()
        assert not Activity.objects.filter(member=b).exists()
        merge_undo(record=record, actor=owner.user)

        assert snapshot(workspace) == before
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_accept_keeps_the_chosen_member_and_refuses_a_stranger(workspace) -> None:
    from circolo.people.models import MergeSuggestion
    from circolo.people.services import MergeError, merge_suggestion_accept
    from circolo.testing.factories import MemberFactory

    a, b, stranger = (MemberFactory(workspace=workspace) for _ in range(3))
    suggestion = MergeSuggestion.objects.create(
        workspace=workspace, member_a=a, member_b=b, score=0.9, reasons=[]
    )
    with pytest.raises(MergeError):
        merge_suggestion_accept(suggestion=suggestion, actor=None, survivor=stranger)
    record = merge_suggestion_accept(suggestion=suggestion, actor=None, survivor=b)
    assert (record.survivor_id, record.merged_id) == (b.pk, a.pk)
    suggestion.refresh_from_db()
    assert suggestion.status == MergeSuggestion.Status.ACCEPTED
