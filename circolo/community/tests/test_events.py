"""Community events: the team creates, edits and cancels them with clear errors; members
answer going or not going, the waitlist fills free places in order and never lets "going"
exceed the places; reminders go once; check-in has its window; activities are recorded
once. The pages: private spaces and other workspaces give 404, bad input 400."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.community.events import (
    EventIn,
    event_cancel,
    event_create,
    event_reminders_send,
    event_update,
    rsvp_check_in,
    rsvp_set,
)
from circolo.community.models import Event, Notification, Rsvp, Thread
from circolo.community.services import CommunityError, NotFound, member_for_user, space_create
from circolo.community.tasks import event_reminders_task
from circolo.core.models import AuditLog
from circolo.people.models import MemberTag
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

ROME = zoneinfo.ZoneInfo("Europe/Rome")


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    return {
        "public": space_create(workspace=workspace, actor=None, name="Incontri"),
        "vip": space_create(
            workspace=workspace, actor=None, name="VIP", visibility="segment",
            segment={"tags": ["vip"]},
        ),
    }  # fmt: skip


@pytest.fixture
def host(workspace: Any, owner: Any) -> Any:
    return member_for_user(workspace=workspace, user=owner.user)


def data(start: dt.datetime, **changes: Any) -> EventIn:
    values: dict[str, Any] = {
        "title": "Degustazione di caffè",
        "description": "Porta la tua **moka**.",
        "format": Event.Format.IN_PERSON,
        "location": "Via Roma 1, Milano",
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=2),
        "timezone": "Europe/Rome",
        "capacity": None,
    }
    values.update(changes)
    return EventIn(**values)


def make(space: Any, host: Any, now: dt.datetime, **changes: Any) -> Event:
    start = changes.pop("start", now + dt.timedelta(days=2))
    return event_create(space=space, host=host, data=data(start, **changes), now=now)


def members(workspace: Any, n: int) -> list[Any]:
    return [MemberFactory(workspace=workspace) for _ in range(n)]


# --------------------------------------------------------------------------- creating


def test_create_stores_utc_renders_markdown_and_opens_a_thread(spaces, host, now) -> None:
    local = dt.datetime(2031, 7, 1, 18, 30)  # summer: Rome is UTC+2
    event = make(spaces["public"], host, now, start=local, ends_at=local + dt.timedelta(hours=2))
    assert event.starts_at == dt.datetime(2031, 7, 1, 16, 30, tzinfo=dt.UTC)
    assert event.ends_at == dt.datetime(2031, 7, 1, 18, 30, tzinfo=dt.UTC)
    assert event.timezone == "Europe/Rome"
    assert "<strong>moka</strong>" in event.html
    thread = Thread.objects.get(pk=event.thread_id)
    assert thread.title == "Degustazione di caffè" and thread.space == spaces["public"]
    assert AuditLog.objects.filter(action="event.create").count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"title": "  "}, "title"),
        ({"ends_at": dt.datetime(2031, 7, 1, 18, 0)}, "ends_at"),
        ({"format": "in_person", "location": ""}, "location"),
        ({"format": "online", "url": ""}, "url"),
        ({"format": "online", "url": "javascript:alert(1)"}, "url"),
        ({"capacity": 0}, "capacity"),
        ({"format": "zoom"}, "format"),
    ],
)
def test_bad_input_names_the_field(spaces, host, now, changes, field) -> None:
    start = dt.datetime(2031, 7, 1, 18, 0)
    with pytest.raises(CommunityError) as error:
        make(spaces["public"], host, now, start=start, **changes)
    assert error.value.field == field and error.value.message
    assert not Event.objects.exists() and not Thread.objects.exists()


def test_past_start_and_clock_change_gap_are_refused(spaces, host, now) -> None:
    with pytest.raises(CommunityError) as error:
        make(spaces["public"], host, now, start=now - dt.timedelta(minutes=1))
    assert error.value.field == "starts_at"
    # 2031-03-30 02:30 does not exist in Rome: the clocks jump from 02:00 to 03:00.
    gap = dt.datetime(2031, 3, 30, 2, 30)
    with pytest.raises(CommunityError) as error:
        make(spaces["public"], host, now, start=gap, ends_at=gap + dt.timedelta(hours=3))
    assert error.value.field == "starts_at" and "Europe/Rome" in error.value.message


def test_only_the_team_or_the_spaces_moderators_create(workspace, spaces, now, moderator):
    member = MemberFactory(workspace=workspace)
    with pytest.raises(CommunityError):
        make(spaces["public"], member, now)
    # A workspace moderator lacks the manage permission, unless they moderate the space.
    team_moderator = member_for_user(workspace=workspace, user=moderator.user)
    with pytest.raises(CommunityError):
        make(spaces["public"], team_moderator, now)
    spaces["public"].moderators.add(member)
    assert make(spaces["public"], member, now).created_by == member


def test_a_private_space_is_not_found_for_an_outsider_host(other_workspace, spaces, now):
    stranger = MemberFactory(workspace=other_workspace)
    with pytest.raises(NotFound):
        make(spaces["public"], stranger, now)


# --------------------------------------------------------------------------- RSVPs


def test_capacity_is_never_exceeded_and_the_waitlist_keeps_order(workspace, spaces, host, now):
    event = make(spaces["public"], host, now, capacity=3)
    people = members(workspace, 10)
    for n, person in enumerate(people):
        rsvp_set(event=event, member=person, going=True, now=now + dt.timedelta(seconds=n))
        going = Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING).count()
        assert going <= 3
    assert Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING).count() == 3
    waiting = list(
        Rsvp.objects.filter(event=event, status=Rsvp.Status.WAITLIST)
        .order_by("waiting_since")
        .values_list("member_id", flat=True)
    )
    assert waiting == [person.pk for person in people[3:]]
    # Answering going twice changes nothing.
    again = rsvp_set(event=event, member=people[5], going=True, now=now + dt.timedelta(minutes=5))
    assert again.status == Rsvp.Status.WAITLIST
    assert Rsvp.objects.filter(event=event).count() == 10


def test_leaving_promotes_the_earliest_waiting_member_and_tells_them(
    workspace, spaces, host, now
) -> None:
    event = make(spaces["public"], host, now, capacity=2)
    a, b, c, d = members(workspace, 4)
    for n, person in enumerate((a, b, c, d)):
        rsvp_set(event=event, member=person, going=True, now=now + dt.timedelta(seconds=n))
    # Someone waiting who leaves frees no place: nobody moves.
    rsvp_set(event=event, member=d, going=False, now=now + dt.timedelta(minutes=1))
    assert Rsvp.objects.get(event=event, member=c).status == Rsvp.Status.WAITLIST
    rsvp_set(event=event, member=a, going=False, now=now + dt.timedelta(minutes=2))
    assert Rsvp.objects.get(event=event, member=c).status == Rsvp.Status.GOING
    assert Rsvp.objects.get(event=event, member=a).status == Rsvp.Status.NOT_GOING
    assert Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING).count() == 2
    told = Notification.objects.filter(recipient=c, kind="event", event=event)
    assert told.count() == 1 and told.get().data["what"] == "promoted"
    assert not Notification.objects.filter(recipient=d).exists()


def test_more_places_move_waiting_members_in_and_fewer_than_going_is_refused(
    workspace, spaces, host, now
) -> None:
    event = make(spaces["public"], host, now, capacity=1)
    a, b, c = members(workspace, 3)
    for n, person in enumerate((a, b, c)):
        rsvp_set(event=event, member=person, going=True, now=now + dt.timedelta(seconds=n))
    start = event.starts_at
    event_update(event=event, actor=host, data=data(start, capacity=2), now=now)
    assert Rsvp.objects.get(event=event, member=b).status == Rsvp.Status.GOING
    assert Rsvp.objects.get(event=event, member=c).status == Rsvp.Status.WAITLIST
    with pytest.raises(CommunityError) as error:
        event_update(event=event, actor=host, data=data(start, capacity=1), now=now)
    assert error.value.field == "capacity" and "2" in error.value.message
    event_update(event=event, actor=host, data=data(start, capacity=None), now=now)
    assert Rsvp.objects.filter(event=event, status=Rsvp.Status.GOING).count() == 3
    event.refresh_from_db()
    assert event.capacity is None


def test_rsvp_activity_is_recorded_once(workspace, spaces, host, now) -> None:
    event = make(spaces["public"], host, now)
    person = MemberFactory(workspace=workspace)
    for n, going in enumerate((True, False, True, True)):
        rsvp_set(event=event, member=person, going=going, now=now + dt.timedelta(seconds=n))
    rows = Activity.objects.filter(member=person, kind="event_rsvp")
    assert rows.count() == 1 and rows.get().source_id == f"rsvp:{event.pk}:{person.pk}"


def test_no_rsvp_to_a_cancelled_or_started_event_or_by_whoever_cannot_read(
    workspace, other_workspace, spaces, host, now
) -> None:
    person = MemberFactory(workspace=workspace)
    started = make(
        spaces["public"], host, now - dt.timedelta(days=1), start=now - dt.timedelta(hours=20)
    )
    with pytest.raises(CommunityError) as error:
        rsvp_set(event=started, member=person, going=True, now=now)
    assert error.value.field == "event"
    cancelled = make(spaces["public"], host, now)
    event_cancel(event=cancelled, actor=host, now=now)
    with pytest.raises(CommunityError):
        rsvp_set(event=cancelled, member=person, going=True, now=now)
    secret = make(spaces["vip"], host, now)
    with pytest.raises(NotFound):
        rsvp_set(event=secret, member=person, going=True, now=now)
    with pytest.raises(NotFound):
        rsvp_set(event=secret, member=MemberFactory(workspace=other_workspace), going=True)
    MemberTag.objects.create(workspace=workspace, member=person, tag="vip")
    assert rsvp_set(event=secret, member=person, going=True, now=now).status == "going"
    assert not Rsvp.objects.filter(event__in=[started, cancelled]).exists()


def test_cancel_tells_going_and_waiting_members_once(workspace, spaces, host, now) -> None:
    event = make(spaces["public"], host, now, capacity=1)
    going, waiting, gone = members(workspace, 3)
    rsvp_set(event=event, member=going, going=True, now=now)
    rsvp_set(event=event, member=waiting, going=True, now=now)
    rsvp_set(event=event, member=gone, going=False, now=now)
    event_cancel(event=event, actor=host, now=now)
    event_cancel(event=event, actor=host, now=now + dt.timedelta(minutes=1))
    told = Notification.objects.filter(key=f"event-cancelled:{event.pk}")
    assert sorted(told.values_list("recipient_id", flat=True)) == sorted([going.pk, waiting.pk])
    assert Event.objects.get(pk=event.pk).cancelled_at == now
    with pytest.raises(CommunityError):
        event_update(event=event, actor=host, data=data(event.starts_at), now=now)
    member = MemberFactory(workspace=workspace)
    with pytest.raises(CommunityError):
        event_cancel(event=make(spaces["public"], host, now), actor=member, now=now)


# --------------------------------------------------------------------------- reminders


def test_reminders_go_once_24_hours_and_1_hour_before(workspace, spaces, host, now) -> None:
    event = make(spaces["public"], host, now, start=now + dt.timedelta(hours=30))
    going, away = members(workspace, 2)
    rsvp_set(event=event, member=going, going=True, now=now)
    rsvp_set(event=event, member=away, going=False, now=now)
    assert event_reminders_send(now=now) == 0  # 30 hours before: nothing yet
    day_before = event.starts_at - dt.timedelta(hours=23)
    assert event_reminders_send(now=day_before) == 1
    assert event_reminders_send(now=day_before + dt.timedelta(minutes=5)) == 0
    hour_before = event.starts_at - dt.timedelta(minutes=50)
    assert event_reminders_send(now=hour_before) == 1
    assert event_reminders_send(now=hour_before + dt.timedelta(minutes=5)) == 0
    keys = sorted(Notification.objects.filter(recipient=going).values_list("key", flat=True))
    assert keys == [f"event-reminder:{event.pk}:1h", f"event-reminder:{event.pk}:24h"]
    assert not Notification.objects.filter(recipient=away).exists()
    assert event_reminders_send(now=event.starts_at + dt.timedelta(minutes=1)) == 0


def test_a_cancelled_event_gets_no_reminder_and_the_task_runs(workspace, spaces, host, now):
    soon = make(spaces["public"], host, now, start=now + dt.timedelta(minutes=30))
    person = MemberFactory(workspace=workspace)
    rsvp_set(event=soon, member=person, going=True, now=now)
    assert event_reminders_task.apply().get() == 1  # through Celery, with the real clock
    assert event_reminders_task.apply().get() == 0
    later = make(spaces["public"], host, now, start=now + dt.timedelta(minutes=40))
    rsvp_set(event=later, member=person, going=True, now=now)
    event_cancel(event=later, actor=host, now=now)
    assert event_reminders_send(now=now) == 0


# --------------------------------------------------------------------------- check-in


def test_check_in_window_undo_and_attendance_recorded_once(
    workspace, spaces, host, now, member_user
) -> None:
    event = make(
        spaces["public"], host, now - dt.timedelta(days=1), start=now - dt.timedelta(minutes=30)
    )
    person = MemberFactory(workspace=workspace)
    rsvp = Rsvp.objects.create(
        workspace=workspace, event=event, member=person, status=Rsvp.Status.GOING,
        created_at=now - dt.timedelta(days=1), updated_at=now - dt.timedelta(days=1),
    )  # fmt: skip
    too_early = event.starts_at - dt.timedelta(hours=1, minutes=1)
    with pytest.raises(CommunityError):
        rsvp_check_in(rsvp=rsvp, actor=host, now=too_early)
    with pytest.raises(CommunityError):
        rsvp_check_in(rsvp=rsvp, actor=host, now=event.ends_at + dt.timedelta(hours=12, seconds=1))
    plain = member_for_user(workspace=workspace, user=member_user.user)
    with pytest.raises(CommunityError):
        rsvp_check_in(rsvp=rsvp, actor=plain, now=now)
    assert rsvp_check_in(rsvp=rsvp, actor=host, now=now).checked_in_at == now
    assert rsvp_check_in(rsvp=rsvp, actor=host, undo=True, now=now).checked_in_at is None
    rsvp_check_in(rsvp=rsvp, actor=host, now=now + dt.timedelta(minutes=1))
    assert Rsvp.objects.get(pk=rsvp.pk).checked_in_at == now + dt.timedelta(minutes=1)
    rows = Activity.objects.filter(member=person, kind="event_attendance")
    assert rows.count() == 1 and rows.get().source_id == f"attendance:{event.pk}:{person.pk}"
    early_ok = event.starts_at - dt.timedelta(minutes=59)
    assert rsvp_check_in(rsvp=rsvp, actor=host, undo=True, now=early_ok).checked_in_at is None


# --------------------------------------------------------------------------- pages


def test_events_pages_show_local_times_and_answers(client, workspace, spaces, host, now):
    local = dt.datetime(2031, 1, 15, 19, 0)
    event = make(spaces["public"], host, now, start=local, ends_at=local + dt.timedelta(hours=2))
    make(spaces["vip"], host, now, title="Segreto VIP")
    page = client.get(f"/c/{workspace.slug}/events/").content.decode()
    assert "Degustazione di caffè" in page and "Europe/Rome" in page
    assert "Segreto VIP" not in page
    assert "7:00" in page or "19:00" in page  # Rome's wall clock, not UTC's 18:00
    detail = client.get(f"/c/{workspace.slug}/events/{event.pk}/")
    assert detail.status_code == 200 and "Sign in to answer" in detail.content.decode()
    home = client.get(f"/c/{workspace.slug}/").content.decode()
    assert "Degustazione di caffè" in home and f"/c/{workspace.slug}/events/" in home


def test_empty_events_page(client, workspace, spaces) -> None:
    page = client.get(f"/c/{workspace.slug}/events/").content.decode()
    assert 'data-empty="upcoming"' in page and 'data-empty="past"' in page


def test_rsvp_through_the_page_with_waitlist_and_join_link(
    workspace, spaces, host, now, member_user
):
    event = make(
        spaces["public"], host, now, format="online", location="",
        url="https://meet.example.com/caffe", capacity=1,
    )  # fmt: skip
    rsvp_set(event=event, member=MemberFactory(workspace=workspace), going=True, now=now)
    url = f"/c/{workspace.slug}/events/{event.pk}/"
    page = member_user.client.get(url).content.decode()
    assert "meet.example.com" not in page and "Join the waitlist" in page
    response = member_user.client.post(f"{url}rsvp/", {"going": "yes"})
    assert response.status_code == 302
    page = member_user.client.get(url).content.decode()
    assert 'data-rsvp="waitlist"' in page and "number 1" in page
    assert "meet.example.com" not in page
    ics = member_user.client.get(f"{url}event.ics").content.decode()
    assert "meet.example.com" not in ics
    first = Rsvp.objects.get(event=event, status=Rsvp.Status.GOING)
    rsvp_set(event=event, member=first.member, going=False, now=now)
    page = member_user.client.get(url).content.decode()
    assert 'data-rsvp="going"' in page and 'id="join-link"' in page
    assert (
        "LOCATION:https://meet.example.com/caffe"
        in member_user.client.get(f"{url}event.ics").content.decode()
    )


def test_rsvp_bad_input_and_closed_event_get_400_with_a_message(
    workspace, spaces, host, now, member_user
) -> None:
    event = make(spaces["public"], host, now)
    url = f"/c/{workspace.slug}/events/{event.pk}/rsvp/"
    response = member_user.client.post(url, {"going": "maybe"})
    assert response.status_code == 400 and "Choose going or not going" in response.content.decode()
    event_cancel(event=event, actor=host, now=now)
    response = member_user.client.post(url, {"going": "yes"})
    assert response.status_code == 400 and "cancelled" in response.content.decode()
    assert not Rsvp.objects.exists()


def test_anonymous_rsvp_goes_to_sign_in(client, workspace, spaces, host, now) -> None:
    event = make(spaces["public"], host, now)
    response = client.post(f"/c/{workspace.slug}/events/{event.pk}/rsvp/", {"going": "yes"})
    assert response.status_code == 302 and "login" in response["Location"]


def test_private_space_events_are_404_everywhere(client, workspace, spaces, host, now, member_user):
    secret = make(spaces["vip"], host, now, title="Segreto VIP")
    base = f"/c/{workspace.slug}/events/{secret.pk}/"
    for who in (client, member_user.client):
        assert who.get(base).status_code == 404
        assert who.get(f"{base}event.ics").status_code == 404
    assert member_user.client.post(f"{base}rsvp/", {"going": "yes"}).status_code == 404
    assert (
        "Segreto VIP" not in member_user.client.get(f"/c/{workspace.slug}/events/").content.decode()
    )
    assert "Segreto VIP" not in member_user.client.get(f"/c/{workspace.slug}/").content.decode()
    assert not Rsvp.objects.exists()


def test_an_event_is_404_under_another_workspace(
    client, workspace, other_workspace, spaces, host, now, outsider
) -> None:
    event = make(spaces["public"], host, now)
    other = f"/c/{other_workspace.slug}/events/{event.pk}/"
    assert client.get(other).status_code == 404
    assert client.get(f"{other}event.ics").status_code == 404
    assert outsider.client.post(f"{other}rsvp/", {"going": "yes"}).status_code == 404
    assert outsider.client.get(f"/w/{workspace.slug}/community/events/").status_code == 404
    staff_page = f"/w/{workspace.slug}/community/events/{event.pk}/"
    assert outsider.client.get(staff_page).status_code == 404
    assert outsider.client.post(f"{staff_page}cancel/").status_code == 404
    assert Event.objects.get(pk=event.pk).cancelled_at is None


def test_events_list_queries_do_not_grow(client, workspace, spaces, host, now,
                                         django_assert_max_num_queries) -> None:  # fmt: skip
    people = members(workspace, 3)

    def add(n: int) -> None:
        for i in range(n):
            event = make(spaces["public"], host, now, capacity=2, title=f"Evento {i}")
            for person in people:
                rsvp_set(event=event, member=person, going=True, now=now)

    def count(path: str) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as context:
            assert client.get(path).status_code == 200
        return len(context)

    add(2)
    path = f"/c/{workspace.slug}/events/"
    few = count(path)
    add(15)
    with django_assert_max_num_queries(few):
        assert client.get(path).status_code == 200


# --------------------------------------------------------------------------- the team's pages


def test_team_creates_edits_checks_in_and_cancels(workspace, spaces, owner, now) -> None:
    base = f"/w/{workspace.slug}/community/events/"
    page = owner.client.get(base)
    assert page.status_code == 200 and 'data-empty="upcoming"' in page.content.decode()
    start = (now + dt.timedelta(days=3)).astimezone(ROME).strftime("%Y-%m-%dT%H:%M")
    end = (now + dt.timedelta(days=3, hours=2)).astimezone(ROME).strftime("%Y-%m-%dT%H:%M")
    form = {
        "space": spaces["public"].pk, "title": "Cena", "description": "", "format": "in_person",
        "location": "Trattoria", "url": "", "starts_at": start, "ends_at": end,
        "timezone": "Europe/Rome", "capacity": "10",
    }  # fmt: skip
    response = owner.client.post(base, form)
    assert response.status_code == 302
    event = Event.objects.get()
    assert event.capacity == 10 and event.thread_id is not None
    assert event.starts_at == dt.datetime.fromisoformat(start).replace(tzinfo=ROME)
    detail = owner.client.get(f"{base}{event.pk}/")
    assert detail.status_code == 200 and 'data-empty="rsvps"' in detail.content.decode()
    edit = owner.client.get(f"{base}{event.pk}/edit/")
    assert edit.status_code == 200 and start in edit.content.decode()
    response = owner.client.post(f"{base}{event.pk}/edit/", {**form, "title": "Cena sociale"})
    assert response.status_code == 302
    assert Event.objects.get().title == "Cena sociale"
    person = MemberFactory(workspace=workspace)
    rsvp = rsvp_set(event=event, member=person, going=True, now=now)
    response = owner.client.post(f"{base}{event.pk}/check-in/", {"rsvp": rsvp.pk})
    assert response.status_code == 400 and "Check-in is open" in response.content.decode()
    response = owner.client.post(f"{base}{event.pk}/check-in/", {"rsvp": "nope"})
    assert response.status_code == 400
    assert owner.client.post(f"{base}{event.pk}/cancel/").status_code == 302
    assert Event.objects.get().cancelled_at is not None


def test_team_form_errors_are_400_with_the_field(workspace, spaces, owner, now) -> None:
    base = f"/w/{workspace.slug}/community/events/"
    form = {
        "space": spaces["public"].pk, "title": "Cena", "format": "in_person",
        "location": "Trattoria", "starts_at": "2031-06-01T20:00", "ends_at": "2031-06-01T19:00",
        "timezone": "Europe/Rome",
    }  # fmt: skip
    response = owner.client.post(base, form)
    assert (
        response.status_code == 400
        and "The end must be after the start" in response.content.decode()
    )
    response = owner.client.post(
        base, {**form, "ends_at": "2031-06-01T22:00", "timezone": "Nowhere"}
    )
    assert response.status_code == 400 and "is not a time zone" in response.content.decode()
    response = owner.client.post(base, {**form, "starts_at": "tomorrow"})
    assert response.status_code == 400 and "Enter a date and a time" in response.content.decode()
    assert not Event.objects.exists()


def test_team_moderators_see_and_check_in_but_cannot_create(
    workspace, spaces, host, moderator, now
) -> None:
    base = f"/w/{workspace.slug}/community/events/"
    page = moderator.client.get(base)
    assert page.status_code == 200 and "New event" not in page.content.decode()
    assert moderator.client.post(base, {"title": "x"}).status_code == 403
    event = make(
        spaces["public"], host, now - dt.timedelta(days=1), start=now - dt.timedelta(minutes=10)
    )
    person = MemberFactory(workspace=workspace)
    rsvp = Rsvp.objects.create(
        workspace=workspace, event=event, member=person, status=Rsvp.Status.GOING,
        created_at=now, updated_at=now,
    )  # fmt: skip
    response = moderator.client.post(f"{base}{event.pk}/check-in/", {"rsvp": rsvp.pk})
    assert response.status_code == 302
    assert Rsvp.objects.get(pk=rsvp.pk).checked_in_at is not None
    assert moderator.client.get(f"{base}{event.pk}/edit/").status_code == 403
    assert moderator.client.post(f"{base}{event.pk}/cancel/").status_code == 403
    assert Event.objects.get(pk=event.pk).cancelled_at is None
