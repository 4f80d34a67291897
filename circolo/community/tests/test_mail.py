"""Mail: pending notifications are batched (one mail per member per ten minutes), muted
kinds, members without an address and inactive members get nothing, one-click unsubscribe
(RFC 8058) with signed tokens, digests, the member's language, and no leaks by mail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail, signing

from circolo.community.models import CommunityProfile, Notification
from circolo.community.notifications import (
    digest_threads,
    digests_send,
    member_email,
    notifications_mail,
    notify,
    unsubscribe_read,
    unsubscribe_token,
)
from circolo.community.profiles import profile_ensure
from circolo.community.services import reply_create, space_create, thread_create
from circolo.people.models import Identity, Member
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _locmem(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://community.example"


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Domande")


def mailable(workspace: Any, name: str, *, languages: list[str] | None = None) -> Member:
    member = MemberFactory(
        workspace=workspace, display_name=name, last_seen=T0 - dt.timedelta(days=2),
        languages=languages or [],
    )  # fmt: skip
    Identity.objects.create(
        workspace=workspace, member=member, channel="email", kind="email",
        value=f"{name.lower()}@example.com", verified=True,
    )  # fmt: skip
    profile_ensure(member)
    return member


def tell(recipient: Member, thread: Any, n: int, kind: str = "reply", at: dt.datetime = T0) -> Any:
    post = reply_create(thread=thread, author=thread.author, body=f"risposta {n}")
    return notify(recipient=recipient, kind=kind, key=f"t:{n}", actor=thread.author, post=post,
                  now=at)  # fmt: skip


@pytest.fixture
def setting(workspace: Any, space: Any) -> tuple[Member, Any]:
    author = MemberFactory(workspace=workspace, display_name="Marco")
    reader = mailable(workspace, "Giulia")
    thread = thread_create(space=space, author=author, title="La moka", body="b")
    return reader, thread


def test_pending_notifications_are_batched_into_one_mail_per_ten_minutes(setting) -> None:
    reader, thread = setting
    tell(reader, thread, 1)
    tell(reader, thread, 2)
    assert notifications_mail(now=T0) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["giulia@example.com"]
    assert message.body.count("Marco replied to “La moka”") == 2
    assert "2 new notifications" in message.subject
    tell(reader, thread, 3, at=T0 + dt.timedelta(minutes=1))
    assert notifications_mail(now=T0 + dt.timedelta(minutes=5)) == 0  # waits for the batch
    tell(reader, thread, 4, at=T0 + dt.timedelta(minutes=6))
    assert notifications_mail(now=T0 + dt.timedelta(minutes=11)) == 1
    assert len(mail.outbox) == 2 and mail.outbox[1].body.count("Marco replied") == 2
    assert not Notification.objects.filter(email="pending").exists()
    assert notifications_mail(now=T0 + dt.timedelta(minutes=30)) == 0  # nothing twice


def test_muted_kinds_already_read_and_unreadable_are_skipped(setting) -> None:
    reader, thread = setting
    profile = reader.community
    profile.email_muted = ["reaction"]
    profile.save()
    muted = tell(reader, thread, 1, kind="reaction")
    read = tell(reader, thread, 2)
    Notification.objects.filter(pk=read.pk).update(read_at=T0)
    assert notifications_mail(now=T0) == 0 and mail.outbox == []
    assert set(Notification.objects.values_list("email", flat=True)) == {"skipped"}
    # Visibility changed since the notification: the thread is not mailed (no leak).
    secret = tell(reader, thread, 3, at=T0 + dt.timedelta(minutes=20))
    thread.space.visibility = "segment"
    thread.space.segment = {"tags": ["vip"]}
    thread.space.save()
    assert notifications_mail(now=T0 + dt.timedelta(minutes=30)) == 0
    secret.refresh_from_db()
    assert secret.email == "skipped" and mail.outbox == []
    assert muted is not None


def test_no_mail_without_an_address_or_after_six_months_away(workspace, space) -> None:
    author = MemberFactory(workspace=workspace, display_name="Marco")
    thread = thread_create(space=space, author=author, title="t", body="b")
    silent = MemberFactory(workspace=workspace, last_seen=T0)  # no email identity
    gone = mailable(workspace, "Gone")
    Member.objects.filter(pk=gone.pk).update(last_seen=T0 - dt.timedelta(days=200))
    unverified = mailable(workspace, "Known")
    Identity.objects.filter(member=unverified).update(verified=False)
    for n, member in enumerate([silent, gone, unverified]):
        tell(Member.objects.get(pk=member.pk), thread, n)
    assert notifications_mail(now=T0) == 1  # a known (unverified) address is mailed
    assert mail.outbox[0].to == ["known@example.com"]
    assert member_email(silent) == ""
    assert Notification.objects.get(recipient=silent).email == "skipped"
    assert Notification.objects.get(recipient=gone).email == "skipped"


def test_unsubscribe_headers_and_links(setting, client) -> None:
    reader, thread = setting
    tell(reader, thread, 1)
    notifications_mail(now=T0)
    message = mail.outbox[0]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<https://community.example/c/bottega/notifications/unsubscribe/")
    url = header.strip("<>").removeprefix("https://community.example")
    assert unsubscribe_read(url.rstrip("/").rsplit("/", 1)[1]) == (reader.pk, "all")
    # The body has one link per kind in the mail, in text and HTML.
    reply_token = unsubscribe_token(member_id=reader.pk, kind="reply")
    kind_url = f"https://community.example/c/bottega/notifications/unsubscribe/{reply_token}/"
    assert kind_url in message.body
    assert kind_url in message.alternatives[0][0]
    # GET asks, POST (one click, no sign-in, no CSRF token) unsubscribes.
    page = client.get(kind_url.removeprefix("https://community.example"))
    assert page.status_code == 200 and "Replies to my threads" in page.content.decode()
    reader.community.refresh_from_db()
    assert reader.community.email_muted == []
    done = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    reader.community.refresh_from_db()
    assert set(reader.community.email_muted) == set(Notification.Kind.values)


def test_unsubscribe_tokens_cannot_be_forged_or_moved(setting, client, other_workspace) -> None:
    reader, _thread = setting
    other = mailable(reader.workspace, "Other")
    token = unsubscribe_token(member_id=reader.pk, kind="mention")
    base = f"/c/{reader.workspace.slug}/notifications/unsubscribe/"
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post(f"{base}{tampered}/").status_code == 400
    with pytest.raises(signing.BadSignature):
        unsubscribe_read(tampered)
    # A token made with another salt (another purpose) is refused too.
    foreign = signing.dumps({"m": other.pk, "k": "mention"}, salt="something-else")
    assert client.post(f"{base}{foreign}/").status_code == 400
    assert client.post(f"{base}{token}/").status_code == 200
    reader.community.refresh_from_db()
    other.community.refresh_from_db()
    assert reader.community.email_muted == ["mention"] and other.community.email_muted == []
    # A valid token used under another community's address: 404.
    assert (
        client.get(f"/c/{other_workspace.slug}/notifications/unsubscribe/{token}/").status_code
        == 404
    )


@pytest.mark.parametrize(
    ("languages", "expected"),
    [(["it"], "it"), (["es-ES"], "es"), (["zh-Hans"], "zh-hans"), (["fr", "it"], "en"), ([], "en")],
)
def test_mail_speaks_the_members_language(workspace, space, languages, expected) -> None:
    author = MemberFactory(workspace=workspace, display_name="Marco")
    thread = thread_create(space=space, author=author, title="La moka", body="b")
    reader = mailable(workspace, "Giulia", languages=languages)
    tell(reader, thread, 1)
    notifications_mail(now=T0)
    message = mail.outbox[0]
    assert message.extra_headers["Content-Language"] == expected
    assert f'<html lang="{expected}">' in message.alternatives[0][0]


def test_mail_language_is_the_members_first_supported_language(workspace) -> None:
    from circolo.community.notifications import mail_language

    def lang(languages: list[str]) -> str:
        return mail_language(MemberFactory(workspace=workspace, languages=languages))

    assert lang(["it", "en"]) == "it"
    assert lang(["es-ES"]) == "es"
    assert lang(["zh-Hans"]) == "zh-hans"
    assert lang(["fr", "it"]) == "en"  # only the first entry counts
    assert lang([]) == "en"


# --------------------------------------------------------------------------- digests


def test_digest_lists_active_readable_threads_and_respects_the_period(workspace, space) -> None:
    author = MemberFactory(workspace=workspace, display_name="Marco")
    vip = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                       segment={"tags": ["vip"]})  # fmt: skip
    from circolo.people.models import MemberTag

    MemberTag.objects.create(workspace=workspace, member=author, tag="vip")
    busy = thread_create(space=space, author=author, title="Molto attivo", body="b",
                         now=T0 - dt.timedelta(days=3))  # fmt: skip
    quiet = thread_create(space=space, author=author, title="Poco attivo", body="b",
                          now=T0 - dt.timedelta(days=3))  # fmt: skip
    secret = thread_create(space=vip, author=author, title="Segreto", body="b",
                           now=T0 - dt.timedelta(days=3))  # fmt: skip
    for n in range(3):
        reply_create(thread=busy, author=author, body=f"r{n}", now=T0 - dt.timedelta(hours=20))
        reply_create(thread=secret, author=author, body=f"r{n}", now=T0 - dt.timedelta(hours=20))
    reply_create(thread=quiet, author=author, body="r", now=T0 - dt.timedelta(hours=20))
    weekly = mailable(workspace, "Weekly")
    Member.objects.filter(pk=weekly.pk).update(last_seen=T0 - dt.timedelta(days=10))
    daily = mailable(workspace, "Daily")
    CommunityProfile.objects.filter(member=daily).update(digest="daily")
    around = mailable(workspace, "Around")  # weekly, but was here this week: no digest
    away = mailable(workspace, "Away")
    Member.objects.filter(pk=away.pk).update(last_seen=T0 - dt.timedelta(days=400))
    off = mailable(workspace, "Off")
    CommunityProfile.objects.filter(member=off).update(digest="off")
    assert around.last_seen > T0 - dt.timedelta(days=7)

    threads = digest_threads(member=weekly, since=T0 - dt.timedelta(days=7), now=T0)
    assert [t.title for t in threads] == ["Molto attivo", "Poco attivo"]
    assert threads[0].new_posts == 4  # the opening post and three replies this week

    assert digests_send(now=T0) == 2
    sent = {message.to[0]: message for message in mail.outbox}
    assert set(sent) == {"weekly@example.com", "daily@example.com"}
    body = sent["weekly@example.com"].body
    assert body.index("Molto attivo") < body.index("Poco attivo") and "Segreto" not in body
    header = sent["weekly@example.com"].extra_headers["List-Unsubscribe"]
    token = header.strip("<>").rstrip("/").rsplit("/", 1)[1]
    assert unsubscribe_read(token) == (weekly.pk, "digest")
    # Not again within the period; the daily one comes back the next day.
    assert digests_send(now=T0 + dt.timedelta(hours=2)) == 0
    reply_create(thread=busy, author=author, body="ancora", now=T0 + dt.timedelta(hours=5))
    assert digests_send(now=T0 + dt.timedelta(days=1, hours=1)) == 1
    assert mail.outbox[-1].to == ["daily@example.com"]
    # The digest's unsubscribe turns the digest off.
    from django.test import Client

    assert (
        Client().post(header.strip("<>").removeprefix("https://community.example")).status_code
        == 200
    )
    assert CommunityProfile.objects.get(member=weekly).digest == "off"
