"""Team tools: thread actions, scheduled threads and the content calendar's 80/20 warning."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from circolo.community.models import ScheduledThread, Thread
from circolo.community.services import CommunityError, member_for_user, space_create, thread_create
from circolo.community.team import (
    content_calendar,
    scheduled_publish_due,
    scheduled_thread_cancel,
    scheduled_thread_create,
    thread_manage,
)
from circolo.core.models import AuditLog
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Novità")


def test_thread_actions_need_a_moderator(workspace: Any, space: Any, owner: Any) -> None:
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=author, title="Ciao", body="Ciao")
    with pytest.raises(CommunityError, match="moderator"):
        thread_manage(thread=thread, actor=author, action="pin")
    staff = member_for_user(workspace=workspace, user=owner.user)
    for action in ("pin", "announce", "close"):
        thread_manage(thread=thread, actor=staff, action=action)
    thread.refresh_from_db()
    assert thread.pinned and thread.announcement and thread.closed
    with pytest.raises(CommunityError):
        thread_manage(thread=thread, actor=staff, action="explode")
    # A space moderator may pin but not announce.
    moderator = MemberFactory(workspace=workspace)
    space.moderators.add(moderator)
    thread_manage(thread=thread, actor=moderator, action="unpin")
    with pytest.raises(CommunityError, match="team"):
        thread_manage(thread=thread, actor=moderator, action="unannounce")
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"thread.pin", "thread.announce", "thread.close", "thread.unpin"} <= actions


def test_thread_page_tools_and_home_announcements(
    workspace: Any, space: Any, owner: Any, member_user: Any
) -> None:
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=author, title="Saldi di Natale", body="…")
    url = f"/c/{workspace.slug}/t/{thread.pk}/manage/"
    assert member_user.client.post(url, {"action": "pin"}).status_code == 400
    assert Client().post(url, {"action": "pin"}).status_code == 404
    page = owner.client.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert "Make it an announcement" in page
    assert owner.client.post(url, {"action": "announce"}).status_code == 302
    home = Client().get(f"/c/{workspace.slug}/").content.decode()
    assert 'id="announcements-title"' in home and "Saldi di Natale" in home
    assert owner.client.post(url, {"action": "close"}).status_code == 302
    response = member_user.client.post(f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "x"})
    assert response.status_code == 400 and "closed" in response.content.decode()


def test_schedule_publish_once_and_cancel(workspace: Any, space: Any, owner: Any) -> None:
    staff = member_for_user(workspace=workspace, user=owner.user)
    later = MONDAY + dt.timedelta(hours=2)
    with pytest.raises(CommunityError, match="future"):
        scheduled_thread_create(space=space, author=staff, title="T", body="B",
                                publish_at=MONDAY - dt.timedelta(hours=1), now=MONDAY)  # fmt: skip
    with pytest.raises(CommunityError, match="team"):
        scheduled_thread_create(space=space, author=MemberFactory(workspace=workspace),
                                title="T", body="B", publish_at=later, now=MONDAY)  # fmt: skip
    planned = scheduled_thread_create(
        space=space, author=staff, title="Come pulire la moka", body="Passo per passo",
        publish_at=later, content_kind="value", pinned=True, now=MONDAY,
    )  # fmt: skip
    doomed = scheduled_thread_create(space=space, author=staff, title="Da annullare", body="B",
                                     publish_at=later, now=MONDAY)  # fmt: skip
    scheduled_thread_cancel(planned=doomed, actor=staff)
    assert scheduled_publish_due(now=MONDAY + dt.timedelta(hours=1)) == 0
    assert scheduled_publish_due(now=later) == 1
    assert scheduled_publish_due(now=later) == 0  # twice publishes nothing more
    planned.refresh_from_db()
    thread = Thread.objects.get(pk=planned.published_thread_id)
    assert (thread.title, thread.pinned, thread.content_kind) == (
        "Come pulire la moka", True, "value",
    )  # fmt: skip
    assert thread.created_at == later
    assert ScheduledThread.objects.count() == 1
    with pytest.raises(CommunityError, match="already"):
        scheduled_thread_cancel(planned=planned, actor=staff)


def test_publishing_fails_visibly_when_the_space_is_archived(
    workspace: Any, space: Any, owner: Any
) -> None:
    staff = member_for_user(workspace=workspace, user=owner.user)
    planned = scheduled_thread_create(
        space=space, author=staff, title="T", body="B",
        publish_at=MONDAY + dt.timedelta(hours=1), now=MONDAY,
    )  # fmt: skip
    space.archived = True
    space.save()
    assert scheduled_publish_due(now=MONDAY + dt.timedelta(hours=2)) == 0
    planned.refresh_from_db()
    assert "archived" in planned.error and planned.published_thread_id is None


def test_calendar_counts_and_warns_over_20_percent(workspace: Any, space: Any, owner: Any) -> None:
    staff = member_for_user(workspace=workspace, user=owner.user)
    for n, kind in enumerate(["value", "value", "value", "value", "promotion"]):
        thread_create(space=space, author=staff, title=f"Settimana 1 #{n}", body="b",
                      content_kind=kind, now=MONDAY + dt.timedelta(hours=n))  # fmt: skip
    for n, kind in enumerate(["value", "promotion"]):
        scheduled_thread_create(space=space, author=staff, title=f"Settimana 2 #{n}", body="b",
                                content_kind=kind, now=MONDAY,
                                publish_at=MONDAY + dt.timedelta(days=7, hours=n))  # fmt: skip
    # A member's thread has no content kind and is not counted.
    thread_create(space=space, author=MemberFactory(workspace=workspace), title="Domanda",
                  body="?", content_kind="promotion", now=MONDAY)  # fmt: skip
    weeks = content_calendar(workspace_id=workspace.pk, start=MONDAY.date(), weeks=3)
    assert [(w.value, w.promotion) for w in weeks] == [(4, 1), (1, 1), (0, 0)]
    assert [w.too_promotional for w in weeks] == [False, True, False]
    assert weeks[1].promotion_percent == 50


def test_calendar_page(
    workspace: Any, space: Any, owner: Any, moderator: Any, outsider: Any
) -> None:
    url = f"/w/{workspace.slug}/community/calendar/"
    staff = member_for_user(workspace=workspace, user=owner.user)
    now = timezone.now()
    for kind in ("promotion", "promotion"):
        scheduled_thread_create(
            space=space, author=staff, title=f"Offerta {kind}", body="b",
            content_kind=kind, publish_at=now + dt.timedelta(minutes=5),
        )  # fmt: skip
    page = owner.client.get(url).content.decode()
    assert 'data-warning="promotion"' in page and "Offerta promotion" in page
    response = owner.client.post(url, {"space": space.pk, "title": "", "body": "b",
                                       "publish_at": "2020-01-01T10:00", "content_kind": "value",
                                       "kind": "discussion"})  # fmt: skip
    assert response.status_code == 400
    response = owner.client.post(url, {"space": space.pk, "title": "Guida", "body": "b",
                                       "publish_at": "2020-01-01T10:00", "content_kind": "value",
                                       "kind": "discussion"})  # fmt: skip
    assert response.status_code == 400 and "future" in response.content.decode()
    future = (now + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = owner.client.post(url, {"space": space.pk, "title": "Guida", "body": "b",
                                       "publish_at": future, "content_kind": "value",
                                       "kind": "discussion"})  # fmt: skip
    assert response.status_code == 302
    assert ScheduledThread.objects.filter(title="Guida").exists()
    planned = ScheduledThread.objects.get(title="Guida")
    assert owner.client.post(url, {"cancel": planned.pk}).status_code == 302
    assert not ScheduledThread.objects.filter(title="Guida").exists()
    assert moderator.client.get(url).status_code == 403
    assert outsider.client.get(url).status_code == 404


def test_staff_sets_content_kind_when_posting(workspace: Any, space: Any, owner: Any,
                                              member_user: Any) -> None:  # fmt: skip
    url = f"/c/{workspace.slug}/s/{space.slug}/new/"
    assert "content_kind" not in member_user.client.get(url).content.decode()
    owner.client.post(url, {"kind": "discussion", "title": "Offerta", "body": "-20%",
                            "content_kind": "promotion"})  # fmt: skip
    assert Thread.objects.get(title="Offerta").content_kind == "promotion"


def test_the_scheduler_task_publishes_due_threads(workspace: Any, space: Any, owner: Any) -> None:
    from django.conf import settings

    from circolo.community.tasks import scheduled_threads_task

    staff = member_for_user(workspace=workspace, user=owner.user)
    now = timezone.now()
    planned = scheduled_thread_create(
        space=space, author=staff, title="Domani", body="b",
        publish_at=now + dt.timedelta(minutes=1), now=now,
    )  # fmt: skip
    ScheduledThread.objects.filter(pk=planned.pk).update(publish_at=now - dt.timedelta(seconds=1))
    assert scheduled_threads_task.apply().get() == 1
    assert Thread.objects.filter(title="Domani").exists()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "circolo.community.tasks.scheduled_threads_task" in tasks
    assert "circolo.community.tasks.drafts_purge_task" in tasks
