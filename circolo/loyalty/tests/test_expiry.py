"""Expiry after 12 months without activity, warned 30 and 7 days before; birthdays."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from circolo.activity.services import activity_record
from circolo.community.models import Notification
from circolo.loyalty import ledger
from circolo.loyalty.birthdays import BirthdayError, birthday_set, birthdays_award
from circolo.loyalty.expiry import add_months, expiry_warnings_send, member_expiry, points_expire
from circolo.loyalty.models import ExpiryWarning, Movement, Reason
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC)


def earn(member: Any, points: int, at: dt.datetime, key: str) -> None:
    ledger.movements_post(
        workspace_id=member.workspace_id,
        items=[
            ledger.transfer(
                key=key,
                reason=Reason.BONUS,
                member_id=member.pk,
                source=ledger.ISSUANCE,
                target=ledger.member_account(member.pk),
                points=points,
                occurred_at=at,
            )
        ],
        now=at,
    )


def test_add_months_keeps_the_end_of_month() -> None:
    assert add_months(T0, 11) == dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC)
    assert add_months(T0, 12) == dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)


def test_points_expire_after_twelve_quiet_months_and_only_then(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    earn(member, 300, T0, "a")
    expires = add_months(T0, 12)
    assert member_expiry(member_id=member.pk, workspace_id=workspace.pk).expires_at == expires
    assert points_expire(now=expires - dt.timedelta(minutes=1)) == 0
    assert points_expire(now=expires) == 1
    assert points_expire(now=expires + dt.timedelta(days=1)) == 0  # nothing left
    assert ledger.member_balance(member_id=member.pk).points == 0
    movement = Movement.objects.get(member=member, reason=Reason.EXPIRY)
    assert movement.points == 300
    assert ledger.ledger_verify(workspace_id=workspace.pk).ok


def test_any_activity_keeps_the_points(workspace, django_capture_on_commit_callbacks) -> None:
    member = MemberFactory(workspace=workspace)
    earn(member, 300, T0, "a")
    with django_capture_on_commit_callbacks(execute=True):
        activity_record(
            workspace=workspace,
            member=member,
            kind="reaction_given",
            channel="community",
            occurred_at=T0 + dt.timedelta(days=200),
            source="test",
            source_id="like:1",
        )
    assert points_expire(now=add_months(T0, 12) + dt.timedelta(days=1)) == 0
    assert ledger.member_balance(member_id=member.pk).points == 300


def test_warnings_go_out_thirty_and_seven_days_before_once_each(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    earn(member, 120, T0, "a")
    expires = add_months(T0, 12)
    assert expiry_warnings_send(now=expires - dt.timedelta(days=31)) == 0
    assert expiry_warnings_send(now=expires - dt.timedelta(days=29)) == 1
    assert expiry_warnings_send(now=expires - dt.timedelta(days=20)) == 0
    assert expiry_warnings_send(now=expires - dt.timedelta(days=6)) == 1
    assert expiry_warnings_send(now=expires - dt.timedelta(days=5)) == 0
    assert list(
        ExpiryWarning.objects.filter(member=member)
        .order_by("pk")
        .values_list("days_before", flat=True)
    ) == [30, 7]
    told = Notification.objects.filter(recipient=member, kind="rewards")
    assert told.count() == 2 and told.first().data["what"] == "expiry"


def test_pending_points_do_not_expire(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    ledger.movements_post(
        workspace_id=workspace.pk,
        items=[
            ledger.transfer(
                key="o",
                reason=Reason.ORDER,
                member_id=member.pk,
                source=ledger.ISSUANCE,
                target=ledger.pending_account(member.pk),
                points=80,
                occurred_at=T0,
            )
        ],
        now=T0,
    )
    assert points_expire(now=add_months(T0, 13)) == 0
    assert ledger.member_balance(member_id=member.pk).pending == 80


def test_birthday_points_on_the_day_once_a_year(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    set_at = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    birthday_set(member=member, month=7, day=14, now=set_at)
    with pytest.raises(BirthdayError):
        birthday_set(member=member, month=7, day=15, now=set_at + dt.timedelta(days=10))
    with pytest.raises(BirthdayError):
        birthday_set(member=member, month=2, day=30, now=set_at + dt.timedelta(days=400))
    day = dt.datetime(2026, 7, 14, 9, 0, tzinfo=dt.UTC)
    assert birthdays_award(now=day - dt.timedelta(days=1)) == 0
    assert birthdays_award(now=day) == 1
    assert birthdays_award(now=day + dt.timedelta(hours=5)) == 0
    assert ledger.member_balance(member_id=member.pk).points == 100


def test_a_birthday_moved_to_today_pays_nothing(workspace) -> None:
    member = MemberFactory(workspace=workspace)
    now = dt.datetime(2026, 7, 14, 9, 0, tzinfo=dt.UTC)
    birthday_set(member=member, month=7, day=14, now=now - dt.timedelta(days=2))
    assert birthdays_award(now=now) == 0
