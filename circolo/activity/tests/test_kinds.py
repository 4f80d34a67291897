from __future__ import annotations

import pytest

from circolo.activity.kinds import KINDS, kind_label, weights_for
from circolo.activity.models import KindWeight
from circolo.activity.services import ActivityValidationError, activity_record, kind_weight_set
from circolo.activity.tests.conftest import at, on_commit_run
from circolo.core.models import AuditLog

pytestmark = pytest.mark.django_db


def test_registry_has_the_agreed_kinds_and_defaults():
    expected = {
        "post": 5, "reply": 3, "reaction_given": 1, "reaction_received": 1,
        "accepted_answer": 10, "review": 8, "order": 10, "refund": 0, "referral": 10,
        "event_rsvp": 2, "event_attendance": 6, "idea": 5, "vote": 1,
        "support_message": 2, "mention": 1, "signup": 1,
        "order_paid": 0, "order_fulfilled": 0, "order_cancelled": 0, "flag": 0, "poll_vote": 1,
        "idea_milestone": 10, "social_follow": 1,
    }  # fmt: skip
    assert {key: kind.default_weight for key, kind in KINDS.items()} == expected
    assert all(kind.key == key and str(kind.label) for key, kind in KINDS.items())
    assert kind_label("order") == "Order"
    assert kind_label("retired_kind") == "retired_kind"


def test_weights_for_overlays_workspace_rows(workspace, other_workspace, owner):
    kind_weight_set(workspace=workspace, kind="review", weight=20, actor=owner.user)
    kind_weight_set(workspace=workspace, kind="review", weight=25, actor=owner.user)
    mine, theirs = weights_for(workspace=workspace), weights_for(workspace=other_workspace)
    assert mine["review"] == 25
    assert theirs["review"] == 8
    assert {k: v for k, v in mine.items() if k != "review"} == {
        k: v for k, v in theirs.items() if k != "review"
    }
    assert KindWeight.objects.filter(workspace=workspace).count() == 1
    entries = AuditLog.objects.filter(workspace=workspace, action="activity.kind_weight_set")
    assert [entry.data for entry in entries.order_by("id")] == [
        {"kind": "review", "weight": 20, "previous": 8},
        {"kind": "review", "weight": 25, "previous": 20},
    ]
    assert entries.first().actor == owner.user


@pytest.mark.parametrize(
    ("kind", "weight", "field"),
    [("teleport", 5, "kind"), ("post", -1, "weight"), ("post", 1001, "weight"),
     ("post", 2.5, "weight"), ("post", True, "weight")],
)  # fmt: skip
def test_kind_weight_set_rejects_bad_input(workspace, owner, kind, weight, field):
    with pytest.raises(ActivityValidationError) as raised:
        kind_weight_set(workspace=workspace, kind=kind, weight=weight, actor=owner.user)
    assert set(raised.value.errors) == {field}
    assert not KindWeight.objects.exists()


def test_new_weight_applies_to_activities_recorded_afterwards(workspace, member, owner):
    with on_commit_run():
        before, _ = activity_record(
            workspace=workspace, member=member, kind="post", channel="community",
            occurred_at=at(1), source="t", source_id="1",
        )  # fmt: skip
    kind_weight_set(workspace=workspace, kind="post", weight=0, actor=owner.user)
    with on_commit_run():
        after, _ = activity_record(
            workspace=workspace, member=member, kind="post", channel="community",
            occurred_at=at(1), source="t", source_id="2",
        )  # fmt: skip
    assert (before.weight, after.weight) == (5, 0)
