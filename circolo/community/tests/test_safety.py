"""Safety: watched words (block, require approval, censor, flag; accents, wildcards,
Chinese), spam checks (repeats, link spam), silence and suspend with their lifting, the
moderation queue's approval, and the team's pages with their permissions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from circolo.community import services
from circolo.community.models import Flag, Post, Reaction, Sanction, Thread, ThreadView, WatchedWord
from circolo.community.safety import (
    CENSORED,
    sanction_create,
    sanction_lift,
    watched_matches,
    watched_word_add,
)
from circolo.community.services import (
    CommunityError,
    member_for_user,
    post_edit,
    post_flag,
    reaction_add,
    reply_create,
    space_create,
    thread_create,
)
from circolo.core.models import AuditLog
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Chiacchiere")


@pytest.fixture
def club(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Club", visibility="members")


def watch(workspace: Any, word: str, action: str) -> WatchedWord:
    return watched_word_add(workspace=workspace, actor=None, word=word, action=action)


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("word", "text", "hit"),
    [
        ("spam", "This is SPAM!", "SPAM"),
        ("spam", "spamming is not the word", None),
        ("spam*", "a Spammer here", "Spammer"),
        ("ass", "first class service", None),
        ("caffe", "Un CAFFÈ, grazie", "CAFFÈ"),
        ("perché", "PERCHE no?", "PERCHE"),
        ("cheap pills", "buy cheap   pills now", "cheap   pills"),
        ("广告", "这是一个广告帖子", "广告"),
        ("代购", "专业代购，便宜", "代购"),
    ],
)
def test_watched_words_match_without_case_or_accents(workspace, word, text, hit) -> None:
    watched = WatchedWord(workspace=workspace, word=word, action="block")
    found = watched_matches(text, [watched])
    assert [text[m.start : m.end] for m in found] == ([hit] if hit else [])


# --------------------------------------------------------------------------- the four actions


def test_block_refuses_without_showing_the_list(workspace, space) -> None:
    watch(workspace, "truffa", "block")
    watch(workspace, "segreto-lista", "block")
    member = MemberFactory(workspace=workspace)
    with pytest.raises(CommunityError) as error:
        thread_create(space=space, author=member, title="Ciao", body="Non è una TRUFFA")
    assert error.value.field == "body"
    assert "segreto-lista" not in error.value.message and "TRUFFA" in error.value.message
    with pytest.raises(CommunityError) as error:
        thread_create(space=space, author=member, title="Una truffa?", body="ciao")
    assert error.value.field == "title"
    thread = thread_create(space=space, author=member, title="Ciao", body="ok")
    post = thread.posts.get()
    with pytest.raises(CommunityError):
        post_edit(post=post, editor=member, body="ora è una truffa")
    assert not Post.objects.filter(body__icontains="truffa").exists()


def test_censor_replaces_the_word_in_text_html_and_title(workspace, space) -> None:
    watch(workspace, "idiota", "censor")
    watch(workspace, "笨蛋", "censor")
    member = MemberFactory(workspace=workspace)
    thread = thread_create(
        space=space, author=member, title="Che IDIOTA", body="Sei un idiòta, 你这个笨蛋!"
    )
    post = thread.posts.get()
    assert thread.title == f"Che {CENSORED}"
    assert post.body == f"Sei un {CENSORED}, 你这个{CENSORED}!"
    assert CENSORED in post.html and "idi" not in post.html.lower()
    assert post.hidden_at is None


def test_require_approval_holds_until_a_moderator_approves(
    workspace, space, moderator, monkeypatch
) -> None:
    watch(workspace, "sconto*", "approve")
    member = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=member, title="Domanda", body="ciao")
    reply = reply_create(thread=thread, author=member, body="Ecco uno SCONTONE")
    assert reply.hidden_at is not None and reply.hidden_reason == "approval"
    held = thread_create(space=space, author=member, title="Sconto 50%", body="guarda")
    held.refresh_from_db()
    assert held.hidden_at is not None  # its opening post waits: the thread waits with it
    visitor = Client()
    assert visitor.get(f"/c/{workspace.slug}/t/{held.pk}/").status_code == 404
    assert "Ecco uno" not in visitor.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()

    queue = moderator.client.get(f"/w/{workspace.slug}/community/moderation/").content.decode()
    assert "Waiting for approval" in queue and 'value="approve"' in queue
    assert "Watched word: sconto*" in queue

    after: list[int] = []
    monkeypatch.setattr(services, "_after_post", lambda post: after.append(post.pk))
    url = f"/w/{workspace.slug}/community/moderation/"
    response = moderator.client.post(url, {"post": held.posts.get().pk, "action": "approve"})
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.hidden_at is None and held.posts.get().hidden_at is None
    assert after == [held.posts.get().pk]  # what follows a new post happens on approval
    assert visitor.get(f"/c/{workspace.slug}/t/{held.pk}/").status_code == 200

    response = moderator.client.post(url, {"post": reply.pk, "action": "reject", "reason": "ads"})
    reply.refresh_from_db()
    assert reply.hidden_at is not None and reply.hidden_reason == "rejected"
    assert AuditLog.objects.filter(action="post.approve").count() == 1
    assert AuditLog.objects.get(action="post.reject").data["reason"] == "ads"
    again = moderator.client.post(url, {"post": reply.pk, "action": "approve"})
    assert again.status_code == 400 and "not waiting for approval" in again.content.decode()


def test_flag_publishes_and_queues_an_automatic_flag(workspace, space, moderator) -> None:
    watch(workspace, "whatsapp", "flag")
    member = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=member, title="Ciao", body="Scrivimi su WhatsApp")
    post = thread.posts.get()
    assert post.hidden_at is None
    flag = Flag.objects.get(post=post)
    assert flag.member is None and flag.reason == "automatic" and "whatsapp" in flag.note
    queue = moderator.client.get(f"/w/{workspace.slug}/community/moderation/").content.decode()
    assert "Scrivimi su" in queue and "Watched word: whatsapp" in queue
    # Flags are for moderators only: the thread page does not show them.
    page = Client().get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert "Watched word" not in page


def test_the_team_is_censored_but_never_held_or_flagged(workspace, space, owner) -> None:
    for word, action in (("offerta", "approve"), ("link", "flag"), ("brutto", "censor")):
        watch(workspace, word, action)
    staff = member_for_user(workspace=workspace, user=owner.user)
    thread = thread_create(
        space=space, author=staff, title="Offerta", body="Un link, niente di brutto"
    )
    post = thread.posts.get()
    assert post.hidden_at is None and not Flag.objects.exists()
    assert post.body == f"Un link, niente di {CENSORED}"


# --------------------------------------------------------------------------- spam checks


@pytest.mark.limits
def test_the_same_text_twice_in_a_day_is_refused(workspace, space, owner) -> None:
    member = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=member, title="Ciao", body="Hello   World", now=T0)
    with pytest.raises(CommunityError, match="already posted this"):
        reply_create(
            thread=thread, author=member, body="hello world", now=T0 + dt.timedelta(hours=1)
        )
    reply_create(thread=thread, author=member, body="hello world", now=T0 + dt.timedelta(hours=25))
    reply_create(
        thread=thread, author=MemberFactory(workspace=workspace), body="Hello World", now=T0
    )
    staff = member_for_user(workspace=workspace, user=owner.user)
    for _ in range(2):
        reply_create(thread=thread, author=staff, body="Welcome!", now=T0)
    assert Post.objects.filter(author=staff).count() == 2


@pytest.mark.limits
def test_a_new_members_links_to_one_site_in_three_posts_are_held(workspace, space) -> None:
    member = MemberFactory(workspace=workspace)
    thread = thread_create(
        space=space, author=member, title="Ciao", body="[a](https://shop.example/a)", now=T0
    )
    second = reply_create(
        thread=thread, author=member, body="[b](https://www.shop.example/b)",
        now=T0 + dt.timedelta(hours=1),
    )  # fmt: skip
    assert second.hidden_at is None
    third = reply_create(
        thread=thread, author=member, body="see [c](http://SHOP.example/c)",
        now=T0 + dt.timedelta(hours=2),
    )  # fmt: skip
    assert third.hidden_reason == "approval"
    assert "same site" in Flag.objects.get(post=third).note
    # More links than the level allows is refused outright (TL0: 2).
    with pytest.raises(CommunityError, match="at most 2 links"):
        reply_create(
            thread=thread, author=member,
            body="[x](https://a.example) [y](https://b.example) [z](https://c.example)",
            now=T0 + dt.timedelta(hours=3),
        )  # fmt: skip
    # A TL1 member is not held for the same.
    basic = MemberFactory(workspace=workspace)
    services.profile_ensure(basic)
    basic.community.trust_level = 1
    basic.community.save()
    for n in range(3):
        post = reply_create(
            thread=thread, author=basic, body=f"[{n}](https://shop.example/{n})",
            now=T0 + dt.timedelta(hours=n),
        )  # fmt: skip
        assert post.hidden_at is None


# --------------------------------------------------------------------------- sanctions


def test_a_silenced_member_reads_but_cannot_write(workspace, space, moderator) -> None:
    member = MemberFactory(workspace=workspace)
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=author, title="Ciao", body="ciao")
    mine = reply_create(thread=thread, author=member, body="prima")
    sanction = sanction_create(
        member=member, kind="silence", reason="Too many insults", days=3,
        actor=moderator.user, workspace_id=workspace.pk,
    )  # fmt: skip
    post = thread.posts.get(number=1)
    attempts = [
        lambda: reply_create(thread=thread, author=member, body="still here"),
        lambda: thread_create(space=space, author=member, title="New", body="new"),
        lambda: reaction_add(post=post, member=member, emoji="like"),
        lambda: post_flag(post=post, member=member, reason="spam"),
        lambda: post_edit(post=mine, editor=member, body="changed"),
    ]
    for attempt in attempts:
        with pytest.raises(CommunityError) as error:
            attempt()
        assert "Too many insults" in error.value.message and "silenced" in error.value.message
    assert not Reaction.objects.exists() and not Flag.objects.exists()
    audit = AuditLog.objects.get(action="sanction.silence")
    assert audit.actor == moderator.user and audit.data["reason"] == "Too many insults"
    sanction_lift(sanction=sanction, actor=moderator.user, workspace_id=workspace.pk)
    reply_create(thread=thread, author=member, body="sorry")
    assert AuditLog.objects.filter(action="sanction.lift").count() == 1


def test_a_sanction_ends_by_itself(workspace, space) -> None:
    member = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=member, title="Ciao", body="ciao")
    now = timezone.now()
    earlier = now - dt.timedelta(hours=23)
    sanction = sanction_create(member=member, kind="silence", reason="calm", days=1, actor=None,
                               workspace_id=workspace.pk, now=earlier)  # fmt: skip
    with pytest.raises(CommunityError):
        reply_create(thread=thread, author=member, body="x")
    Sanction.objects.filter(pk=sanction.pk).update(ends_at=now - dt.timedelta(seconds=1))
    reply_create(thread=thread, author=member, body="x")


def test_a_suspended_member_is_a_visitor_and_told_why(workspace, club, moderator) -> None:
    user = UserFactory(email="rude@example.com")
    client = Client()
    client.force_login(user)
    member = member_for_user(workspace=workspace, user=user)
    author = MemberFactory(workspace=workspace)
    members_only = thread_create(space=club, author=author, title="Club talk", body="hi")
    assert client.get(f"/c/{workspace.slug}/t/{members_only.pk}/").status_code == 200
    sanction = sanction_create(
        member=member, kind="suspend", reason="Spam in every space", days=7,
        actor=moderator.user, workspace_id=workspace.pk,
    )  # fmt: skip
    home = client.get(f"/c/{workspace.slug}/")
    assert home.status_code == 200
    text = home.content.decode()
    assert "Spam in every space" in text and "suspended" in text
    assert client.get(f"/c/{workspace.slug}/t/{members_only.pk}/").status_code == 404
    reply = client.post(f"/c/{workspace.slug}/s/{club.slug}/new/", {
        "kind": "discussion", "title": "Again", "body": "buy"})  # fmt: skip
    assert reply.status_code == 400 and "Spam in every space" in reply.content.decode()
    assert not Thread.objects.filter(title="Again").exists()
    sanction_lift(sanction=sanction, actor=moderator.user, workspace_id=workspace.pk)
    assert client.get(f"/c/{workspace.slug}/t/{members_only.pk}/").status_code == 200
    assert ThreadView.objects.filter(member=member).count() == 1


def test_a_silenced_member_sees_the_reason_on_the_page(workspace, space, member_user) -> None:
    member = member_for_user(workspace=workspace, user=member_user.user)
    thread = thread_create(
        space=space, author=MemberFactory(workspace=workspace), title="T", body="b"
    )
    sanction_create(member=member, kind="silence", reason="Cool off", days=2, actor=None,
                    workspace_id=workspace.pk)  # fmt: skip
    page = member_user.client.get(f"/c/{workspace.slug}/t/{thread.pk}/")
    assert page.status_code == 200 and "Cool off" in page.content.decode()
    response = member_user.client.post(f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "hey"})
    assert response.status_code == 400 and "Cool off" in response.content.decode()


def test_sanction_rules(workspace, owner, other_workspace) -> None:
    member = MemberFactory(workspace=workspace)
    common = {"actor": owner.user, "workspace_id": workspace.pk}
    with pytest.raises(CommunityError, match="reason"):
        sanction_create(member=member, kind="silence", reason="  ", days=1, **common)
    with pytest.raises(CommunityError, match="1 to 3650"):
        sanction_create(member=member, kind="silence", reason="x", days=0, **common)
    with pytest.raises(CommunityError, match="silence or"):
        sanction_create(member=member, kind="ban", reason="x", days=1, **common)
    staff = member_for_user(workspace=workspace, user=owner.user)
    with pytest.raises(CommunityError, match="team"):
        sanction_create(member=staff, kind="suspend", reason="x", days=1, **common)
    sanction_create(member=member, kind="silence", reason="x", days=1, **common)
    with pytest.raises(CommunityError, match="lift it first"):
        sanction_create(member=member, kind="silence", reason="y", days=1, **common)
    with pytest.raises(CommunityError):
        sanction_create(member=member, kind="suspend", reason="x", days=1, actor=owner.user,
                        workspace_id=other_workspace.pk)  # fmt: skip
    assert Sanction.objects.count() == 1


# --------------------------------------------------------------------------- team pages


def test_watched_words_page(workspace, moderator, member_user, outsider, analyst, client):
    url = f"/w/{workspace.slug}/community/watched-words/"
    page = moderator.client.get(url)
    assert page.status_code == 200 and 'data-empty="words"' in page.content.decode()
    assert 'data-empty="sanctions"' in page.content.decode()
    assert outsider.client.get(url).status_code == 404
    assert member_user.client.get(url).status_code == 403
    assert analyst.client.get(url).status_code == 403
    assert client.get(url).status_code == 302  # sign in first
    assert outsider.client.post(url, {"word": "x", "action": "block"}).status_code == 404

    bad = moderator.client.post(url, {"word": "  ", "action": "block"})
    assert bad.status_code == 400 and "This field is required" in bad.content.decode()
    bad = moderator.client.post(url, {"word": "***", "action": "block"})
    assert bad.status_code == 400 and "Write the word" in bad.content.decode()
    bad = moderator.client.post(url, {"word": "x", "action": "explode"})
    assert bad.status_code == 400
    assert moderator.client.post(url, {"word": "Truffa", "action": "block"}).status_code == 302
    dup = moderator.client.post(url, {"word": "TRÜFFA", "action": "censor"})
    assert dup.status_code == 400 and "already watched" in dup.content.decode()
    word = WatchedWord.objects.get()
    assert word.created_by == moderator.user
    assert AuditLog.objects.filter(action="watched_word.add", actor=moderator.user).exists()
    assert "Truffa" in moderator.client.get(url).content.decode()

    delete = f"{url}{word.pk}/delete/"
    assert outsider.client.post(delete).status_code == 404
    assert member_user.client.post(delete).status_code == 403
    assert moderator.client.post(delete).status_code == 302
    assert not WatchedWord.objects.exists()
    assert AuditLog.objects.filter(action="watched_word.remove").exists()
    assert moderator.client.post(delete).status_code == 404


def test_watched_words_page_queries_do_not_grow(
    workspace, moderator, django_assert_max_num_queries
):
    url = f"/w/{workspace.slug}/community/watched-words/"
    watch(workspace, "a", "block")
    moderator.client.get(url)
    with django_assert_max_num_queries(15):
        moderator.client.get(url)
    for n in range(30):
        watch(workspace, f"word{n}", "flag")
        member = MemberFactory(workspace=workspace)
        sanction_create(member=member, kind="silence", reason="r", days=1, actor=None,
                        workspace_id=workspace.pk)  # fmt: skip
    with django_assert_max_num_queries(15):
        page = moderator.client.get(url).content.decode()
    assert "word29" in page


def test_member_page_silence_lift_lock(
    workspace, moderator, member_user, outsider, other_workspace
):
    member = MemberFactory(workspace=workspace, display_name="Rude Rita")
    url = f"/w/{workspace.slug}/community/members/{member.pk}/"
    page = moderator.client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Rude Rita" in text and 'data-empty="sanctions"' in text and "Threads entered" in text
    assert outsider.client.get(url).status_code == 404
    assert member_user.client.get(url).status_code == 403
    stranger = MemberFactory(workspace=other_workspace)
    assert (
        moderator.client.get(f"/w/{workspace.slug}/community/members/{stranger.pk}/").status_code
        == 404
    )

    bad = moderator.client.post(
        url, {"action": "sanction", "kind": "silence", "days": 3, "reason": ""}
    )
    assert bad.status_code == 400 and "This field is required" in bad.content.decode()
    bad = moderator.client.post(
        url, {"action": "sanction", "kind": "silence", "days": 0, "reason": "x"}
    )
    assert bad.status_code == 400
    assert moderator.client.post(url, {"action": "dance"}).status_code == 400
    done = moderator.client.post(
        url, {"action": "sanction", "kind": "silence", "days": 3, "reason": "Insults"}
    )
    assert done.status_code == 302
    sanction = Sanction.objects.get(member=member)
    assert sanction.ends_at - sanction.starts_at == dt.timedelta(days=3)
    text = moderator.client.get(url).content.decode()
    assert "Insults" in text and "Lift now" in text
    assert (
        moderator.client.post(url, {"action": "lift", "sanction": sanction.pk}).status_code == 302
    )
    sanction.refresh_from_db()
    assert sanction.lifted_at is not None
    assert moderator.client.post(url, {"action": "lift", "sanction": 999999}).status_code == 404

    assert moderator.client.post(url, {"action": "lock", "level": "9"}).status_code == 400
    assert moderator.client.post(url, {"action": "lock", "level": "4"}).status_code == 302
    member.community.refresh_from_db()
    assert member.community.trust_level == 4 and member.community.trust_locked
    assert moderator.client.post(url, {"action": "unlock"}).status_code == 302
    assert moderator.client.post(url, {"action": "unlock"}).status_code == 400
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"sanction.silence", "sanction.lift", "trust.lock", "trust.unlock"} <= actions

    staff = member_for_user(workspace=workspace, user=moderator.user)
    no = moderator.client.post(
        f"/w/{workspace.slug}/community/members/{staff.pk}/",
        {"action": "sanction", "kind": "suspend", "days": 1, "reason": "x"},
    )
    assert no.status_code == 400 and "team cannot be" in no.content.decode()
    assert timezone.now() > sanction.starts_at


def test_a_silenced_member_cannot_rsvp_but_may_say_no(workspace, space, owner) -> None:
    from circolo.community.events import EventIn, event_create, rsvp_set

    host = member_for_user(workspace=workspace, user=owner.user)
    now = timezone.now()
    event = event_create(
        space=space,
        host=host,
        data=EventIn(
            title="Degustazione", description="", format="in_person", location="Via Roma 1",
            starts_at=now + dt.timedelta(days=2), ends_at=now + dt.timedelta(days=2, hours=1),
            timezone="Europe/Rome", capacity=None,
        ),
        now=now,
    )  # fmt: skip
    member = MemberFactory(workspace=workspace)
    sanction_create(member=member, kind="silence", reason="Be kind", days=1, actor=None,
                    workspace_id=workspace.pk)  # fmt: skip
    with pytest.raises(CommunityError, match="Be kind"):
        rsvp_set(event=event, member=member, going=True)
    rsvp_set(event=event, member=member, going=False)
    assert not event.rsvps.filter(status="going").exists()
