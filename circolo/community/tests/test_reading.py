"""Reading is recorded: how far into each thread, the day's visit and the time spent, which
cannot be inflated; a thread the reader may not see is a 404; the thread page's query count
does not grow with replies for a signed-in reader either."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from circolo.community.models import CommunityProfile, MemberVisit, ThreadView
from circolo.community.reading import READ_PING_MAX_SECONDS, read_time_record, thread_view_record
from circolo.community.services import (
    CommunityError,
    member_for_user,
    reply_create,
    space_create,
    thread_create,
)
from circolo.people.models import MemberTag
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    return {
        "public": space_create(workspace=workspace, actor=None, name="Domande"),
        "vip": space_create(
            workspace=workspace, actor=None, name="VIP", visibility="segment",
            segment={"tags": ["vip"]},
        ),
    }  # fmt: skip


@pytest.fixture
def thread(workspace: Any, spaces: Any) -> Any:
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=spaces["public"], author=author, title="Moka", body="start")
    for n in range(3):
        reply_create(thread=thread, author=author, body=f"reply {n}")
    return thread


def reader(member_user: Any, workspace: Any) -> Any:
    return member_for_user(workspace=workspace, user=member_user.user)


def test_the_thread_page_records_the_view_and_the_visit(workspace, thread, member_user) -> None:
    url = f"/c/{workspace.slug}/t/{thread.pk}/"
    assert member_user.client.get(url).status_code == 200
    member = reader(member_user, workspace)
    view = ThreadView.objects.get(member=member, thread=thread)
    assert view.last_read_number == 4
    visit = MemberVisit.objects.get(member=member)
    assert visit.day == timezone.now().date() and visit.posts_read == 4
    profile = CommunityProfile.objects.get(member=member)
    assert (profile.threads_entered, profile.posts_read) == (1, 4)
    assert profile.last_seen_at is not None
    # Coming back after two new replies counts only those, and the thread once.
    reply_create(thread=thread, author=thread.author, body="new one")
    reply_create(thread=thread, author=thread.author, body="and another")
    member_user.client.get(url)
    profile.refresh_from_db()
    assert (profile.threads_entered, profile.posts_read) == (1, 6)
    assert ThreadView.objects.get(member=member, thread=thread).last_read_number == 6
    assert MemberVisit.objects.get(member=member).posts_read == 6


def test_a_visitor_records_nothing(client, workspace, thread) -> None:
    assert client.get(f"/c/{workspace.slug}/t/{thread.pk}/").status_code == 200
    assert (
        client.post(f"/c/{workspace.slug}/t/{thread.pk}/read/", {"seconds": 30}).status_code == 204
    )
    assert not ThreadView.objects.exists() and not MemberVisit.objects.exists()


def test_reading_time_is_capped_per_ping_and_by_the_clock(workspace, thread) -> None:
    member = MemberFactory(workspace=workspace)
    t0 = timezone.now()
    assert read_time_record(member=member, thread=thread, seconds=30, now=t0) == 0  # not opened
    thread_view_record(member=member, thread=thread, numbers=[1, 2], now=t0)
    assert (
        read_time_record(
            member=member, thread=thread, seconds=30, now=t0 + dt.timedelta(seconds=31)
        )
        == 30
    )
    # Claiming more than the time since the last ping gets the wall-clock time only.
    assert (
        read_time_record(
            member=member, thread=thread, seconds=60, now=t0 + dt.timedelta(seconds=41)
        )
        == 10
    )
    # And a ping never counts more than READ_PING_MAX_SECONDS.
    later = t0 + dt.timedelta(minutes=10)
    assert (
        read_time_record(member=member, thread=thread, seconds=9999, now=later)
        == READ_PING_MAX_SECONDS
    )
    profile = CommunityProfile.objects.get(member=member)
    assert profile.read_seconds == 30 + 10 + READ_PING_MAX_SECONDS
    assert MemberVisit.objects.get(member=member).read_seconds == profile.read_seconds
    with pytest.raises(CommunityError, match="negative"):
        read_time_record(member=member, thread=thread, seconds=-5, now=later)


def test_two_open_tabs_do_not_count_twice(workspace, spaces, thread) -> None:
    member = MemberFactory(workspace=workspace)
    second = thread_create(space=spaces["public"], author=thread.author, title="Two", body="b")
    t0 = timezone.now()
    thread_view_record(member=member, thread=thread, numbers=[1], now=t0)
    thread_view_record(member=member, thread=second, numbers=[1], now=t0)
    total = read_time_record(
        member=member, thread=thread, seconds=30, now=t0 + dt.timedelta(seconds=30)
    )
    total += read_time_record(
        member=member, thread=second, seconds=30, now=t0 + dt.timedelta(seconds=31)
    )
    assert total == 31
    assert CommunityProfile.objects.get(member=member).read_seconds == 31


def test_the_ping_endpoint(workspace, thread, member_user) -> None:
    url = f"/c/{workspace.slug}/t/{thread.pk}/read/"
    member_user.client.get(f"/c/{workspace.slug}/t/{thread.pk}/")
    member = reader(member_user, workspace)
    earlier = timezone.now() - dt.timedelta(seconds=45)
    ThreadView.objects.filter(member=member).update(last_at=earlier)
    CommunityProfile.objects.filter(member=member).update(last_seen_at=earlier)
    assert member_user.client.post(url, {"seconds": "30"}).status_code == 204
    assert CommunityProfile.objects.get(member=member).read_seconds == 30
    bad = member_user.client.post(url, {"seconds": "lots"})
    assert bad.status_code == 400 and "seconds" in bad.content.decode()
    negative = member_user.client.post(url, {"seconds": "-3"})
    assert negative.status_code == 400 and "negative" in negative.content.decode()
    assert member_user.client.get(url).status_code == 405
    assert CommunityProfile.objects.get(member=member).read_seconds == 30


def test_a_thread_the_reader_may_not_see_is_a_404(workspace, spaces, member_user, outsider):
    insider = MemberFactory(workspace=workspace)
    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    secret = thread_create(space=spaces["vip"], author=insider, title="Segreto", body="shh")
    for client in (member_user.client, outsider.client, Client()):
        assert client.get(f"/c/{workspace.slug}/t/{secret.pk}/").status_code == 404
        assert (
            client.post(f"/c/{workspace.slug}/t/{secret.pk}/read/", {"seconds": 30}).status_code
            == 404
        )
    assert (
        member_user.client.post(f"/c/elsewhere/t/{secret.pk}/read/", {"seconds": 3}).status_code
        == 404
    )
    assert not ThreadView.objects.filter(thread=secret).exists()


def test_the_page_holds_the_ping_for_signed_in_readers_only(client, workspace, thread, member_user):
    ping = f"/c/{workspace.slug}/t/{thread.pk}/read/"
    assert ping in member_user.client.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert ping not in client.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()


def test_signed_in_thread_page_queries_do_not_grow(workspace, spaces) -> None:
    authors = [MemberFactory(workspace=workspace) for _ in range(5)]
    thread = thread_create(space=spaces["public"], author=authors[0], title="Long", body="x")
    client = Client()
    client.force_login(UserFactory(email="reader@example.com"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(f"/c/{workspace.slug}/t/{thread.pk}/").status_code == 200
        return len(context)

    for n in range(3):
        reply_create(thread=thread, author=authors[n % 5], body=f"reply {n}")
    queries()  # the first visit makes the member, their profile and the view
    reply_create(thread=thread, author=authors[0], body="one new")
    few = queries()
    for n in range(40):
        reply_create(thread=thread, author=authors[n % 5], body=f"more {n}")
    assert queries() == few
