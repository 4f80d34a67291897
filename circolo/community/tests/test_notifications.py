"""Notifications: who is told about a new post and how (one notification per member per
post, by priority), "ask owners", never anything about a space the recipient cannot read,
and the notification pages (list, open, mark read, bell, settings)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from circolo.commerce.models import OrderLine, Product
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.follows import follow_add, follow_remove, is_following
from circolo.community.models import Notification, Post
from circolo.community.notifications import (
    notifications_visible,
    notify,
    post_fanout,
    quote_markdown,
    quoted_posts,
    unread_count,
)
from circolo.community.profiles import profile_ensure, profile_update
from circolo.community.services import (
    answer_accept,
    member_for_user,
    post_edit,
    post_moderate,
    reaction_add,
    reply_create,
    space_create,
    thread_create,
)
from circolo.people.models import Identity, Member, MemberTag
from circolo.testing.commerce import make_store
from circolo.testing.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def space(workspace: Any) -> Any:
    return space_create(workspace=workspace, actor=None, name="Domande")


@pytest.fixture
def vip(workspace: Any) -> Any:
    return space_create(
        workspace=workspace, actor=None, name="VIP", visibility="segment",
        segment={"tags": ["vip"]},
    )  # fmt: skip


def person(workspace: Any, handle: str, **extra: Any) -> Member:
    member = MemberFactory(workspace=workspace, display_name=handle.title(), **extra)
    profile_ensure(member)
    profile_update(member=member, handle=handle)
    return member


def kinds_for(post: Post) -> dict[str, str]:
    return {
        n.recipient.community.handle: n.kind
        for n in Notification.objects.filter(post=post).select_related("recipient__community")
    }


def test_fanout_tells_each_member_once_by_priority(workspace, space) -> None:
    asker, helper, fan, watcher, quoted = (
        person(workspace, name) for name in ("asker", "helper", "fan", "watcher", "quoted")
    )
    thread = thread_create(space=space, author=asker, title="Moka?", body="Quanto caffè?")
    post_fanout(post_id=thread.posts.get().pk)
    assert is_following(asker, thread=thread)  # the author follows their thread
    first = reply_create(thread=thread, author=quoted, body="Circa 15 g.")
    post_fanout(post_id=first.pk)
    follow_add(member=watcher, thread=thread)
    follow_add(member=fan, followed=helper)
    url = f"/c/{workspace.slug}/t/{thread.pk}/#post-{first.number}"
    body = quote_markdown(post=first, url=url) + "Vero, @ASKER. Ciao @watcher"
    reply = reply_create(thread=thread, author=helper, body=body)
    assert post_fanout(post_id=reply.pk) == 4
    assert kinds_for(reply) == {
        "asker": "mention",  # mentioned beats replied-to (and case does not matter)
        "watcher": "mention",  # mentioned beats followed
        "quoted": "quote",  # quoted beats following the thread they replied in
        "fan": "followed_member",
    }
    # A rerun (Celery redelivery, or a moderator's approval) tells nobody twice.
    assert post_fanout(post_id=reply.pk) == 0
    assert Notification.objects.filter(post=reply).count() == 4
    # The replier now follows the thread too; the author of a later reply is not told.
    assert is_following(helper, thread=thread)
    later = reply_create(thread=thread, author=asker, body="Grazie!")
    post_fanout(post_id=later.pk)
    assert kinds_for(later) == {"helper": "followed_thread", "quoted": "followed_thread",
                                "watcher": "followed_thread"}  # fmt: skip


def test_reply_notifies_the_threads_author_and_followers_of_a_space(workspace, space) -> None:
    asker, helper, reader = (person(workspace, n) for n in ("asker", "helper", "reader"))
    follow_add(member=reader, space=space)
    thread = thread_create(space=space, author=asker, title="Nuovo", body="Ciao")
    opening = thread.posts.get()
    post_fanout(post_id=opening.pk)
    assert kinds_for(opening) == {"reader": "followed_space"}
    reply = reply_create(thread=thread, author=helper, body="Benvenuto")
    post_fanout(post_id=reply.pk)
    assert kinds_for(reply) == {"asker": "reply"}  # space followers hear of new threads only
    own = reply_create(thread=thread, author=asker, body="Grazie")
    post_fanout(post_id=own.pk)
    assert kinds_for(own) == {"helper": "followed_thread"}  # not "reply" to oneself


def test_unfollowing_sticks_after_later_posts_and_edits(workspace, space) -> None:
    asker, helper = person(workspace, "asker"), person(workspace, "helper")
    thread = thread_create(space=space, author=asker, title="t", body="b")
    post_fanout(post_id=thread.posts.get().pk)
    follow_remove(member=asker, thread=thread)
    again = reply_create(thread=thread, author=asker, body="di nuovo")
    post_fanout(post_id=again.pk)
    assert not is_following(asker, thread=thread)
    reply = reply_create(thread=thread, author=helper, body="risposta")
    post_fanout(post_id=reply.pk)
    assert kinds_for(reply) == {"asker": "reply"}  # the author still hears of replies


def test_an_edit_tells_only_whom_it_newly_mentions(workspace, space) -> None:
    asker, helper, late = (person(workspace, n) for n in ("asker", "helper", "late"))
    thread = thread_create(space=space, author=asker, title="t", body="b")
    reply = reply_create(thread=thread, author=helper, body="risposta")
    post_fanout(post_id=reply.pk)
    follow_add(member=late, thread=thread)
    post_edit(post=reply, editor=helper, body="risposta, @late")
    post_fanout(post_id=reply.pk)
    assert kinds_for(reply) == {"asker": "reply", "late": "mention"}
    newcomer = person(workspace, "newcomer")
    follow_add(member=newcomer, thread=thread)
    post_edit(post=reply, editor=helper, body="risposta corretta, @late")
    post_fanout(post_id=reply.pk)
    assert "newcomer" not in kinds_for(reply)  # followed since: an edit is not news


def test_mentioning_someone_who_cannot_read_the_space_tells_nobody(workspace, vip) -> None:
    insider = person(workspace, "insider")
    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    outsider_here = person(workspace, "plain")
    stranger = MemberFactory(workspace=MemberFactory().workspace, display_name="Plain")
    profile_ensure(stranger)
    thread = thread_create(space=vip, author=insider, title="Segreto", body="Ciao @plain")
    assert post_fanout(post_id=thread.posts.get().pk) == 0
    assert not Notification.objects.filter(recipient__in=[outsider_here, stranger]).exists()


def test_hidden_posts_tell_nobody_until_shown(workspace, space, moderator) -> None:
    asker, helper = person(workspace, "asker"), person(workspace, "helper")
    thread = thread_create(space=space, author=asker, title="t", body="b")
    reply = reply_create(thread=thread, author=helper, body="ciao @asker")
    staff = member_for_user(workspace=workspace, user=moderator.user)
    post_moderate(post=reply, moderator=staff, action="hide")
    assert post_fanout(post_id=reply.pk) == 0
    post_moderate(post=reply, moderator=staff, action="show")
    assert post_fanout(post_id=reply.pk) == 1
    assert post_fanout(post_id=10**9) == 0  # a post deleted meanwhile


def test_after_post_runs_the_fanout_once_committed(
    workspace, space, django_capture_on_commit_callbacks
) -> None:
    asker, helper = person(workspace, "asker"), person(workspace, "helper")
    thread = thread_create(space=space, author=asker, title="t", body="b")
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_create(thread=thread, author=helper, body="risposta")
    assert kinds_for(reply) == {"asker": "reply"}


def test_accepted_answers_and_reactions_tell_the_author(workspace, space) -> None:
    asker, helper = person(workspace, "asker"), person(workspace, "helper")
    thread = thread_create(space=space, author=asker, title="?", body="?", kind="question")
    answer = reply_create(thread=thread, author=helper, body="42")
    answer_accept(thread=thread, post=answer, actor=asker)
    reaction_add(post=answer, member=asker, emoji="like")
    reaction_add(post=answer, member=asker, emoji="heart")  # one notification per member
    assert sorted(Notification.objects.filter(recipient=helper).values_list("kind", flat=True)) == [
        "accepted",
        "reaction",
    ]


def test_quote_syntax_round_trip(workspace, space) -> None:
    asker = person(workspace, "asker")
    thread = thread_create(space=space, author=asker, title="t", body="riga uno\nriga due")
    opening = thread.posts.get()
    text = quote_markdown(post=opening, url=f"/c/x/t/{thread.pk}/#post-1")
    assert text.startswith(f"> @asker [#1](/c/x/t/{thread.pk}/#post-1)\n> riga uno\n> riga due")
    assert quoted_posts(text + "risposta", thread) == [opening]
    # Quotes of another thread's post, in code, or of a missing number quote nobody here.
    assert quoted_posts(f"> @asker [#1](/c/x/t/{thread.pk + 1}/#post-1)", thread) == []
    assert quoted_posts("```\n> @asker [#1](#)\n```", thread) == []
    assert quoted_posts("> @asker [#9](#post-9)", thread) == []


# --------------------------------------------------------------------------- ask owners


def buy(workspace: Any, store: Any, member: Member, sku: str, days_ago: int, n: int) -> None:
    Identity.objects.get_or_create(
        workspace=workspace, member=member, channel=store.channel, kind="customer_id",
        value=f"c{member.pk}",
    )  # fmt: skip
    placed = T0 - dt.timedelta(days=days_ago)
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=f"o{n}", currency="EUR", placed_at=placed, updated_at=placed,
            status="paid", total_minor=2990, customer=CustomerIn(external_id=f"c{member.pk}"),
            lines=(LineIn(external_id=f"l{n}", sku=sku, quantity=1, unit_price_minor=2990),),
        ),
    )  # fmt: skip


def test_ask_owners_picks_recent_buyers_who_can_read_and_are_not_overasked(
    workspace, space
) -> None:
    store = make_store(workspace, platform="shopify", external_id="aurora.myshopify.com")
    asker = person(workspace, "asker")
    owners = [person(workspace, f"owner{i}") for i in range(8)]
    for i, owner in enumerate(owners):
        buy(workspace, store, owner, "MOKA-3", days_ago=i + 1, n=i)
    buy(workspace, store, asker, "MOKA-3", days_ago=0, n=99)  # the asker owns one too
    product = Product.objects.create(
        workspace=workspace, store=store, external_id="p1", title={"en": "Moka"}
    )
    OrderLine.objects.filter(order__store=store).update(product=product)
    owners[0].erased_at = T0  # erased members are never asked
    owners[0].save()
    for n in range(3):  # owner1 was asked three times this week already
        other = thread_create(space=space, author=asker, title=f"old {n}", body="b")
        notify(recipient=owners[1], kind="ask_owners", key=f"old:{n}", thread=other,
               now=T0 - dt.timedelta(days=2))  # fmt: skip
    thread = thread_create(
        space=space, author=asker, title="La moka perde?", body="Aiuto", kind="question",
        skus=["MOKA-3"],
    )  # fmt: skip
    post_fanout(post_id=thread.posts.get().pk, now=T0)
    asked = set(
        Notification.objects.filter(thread=thread, kind="ask_owners").values_list(
            "recipient_id", flat=True
        )
    )
    assert asked == {owner.pk for owner in owners[2:7]}  # five, the most recent buyers first
    # A discussion (not a question), or a question about nothing, asks nobody.
    talk = thread_create(space=space, author=asker, title="x", body="y", skus=["MOKA-3"])
    post_fanout(post_id=talk.posts.get().pk, now=T0)
    assert not Notification.objects.filter(thread=talk).exists()


# --------------------------------------------------------------------------- visibility


def test_notifications_about_what_became_unreadable_are_not_shown(
    workspace, space, moderator
) -> None:
    asker, helper = person(workspace, "asker"), person(workspace, "helper")
    thread = thread_create(space=space, author=asker, title="Aperto", body="b")
    reply = reply_create(thread=thread, author=helper, body="ciao")
    post_fanout(post_id=reply.pk)
    assert unread_count(asker) == 1
    space.visibility = "segment"
    space.segment = {"tags": ["vip"]}
    space.save()
    assert list(notifications_visible(asker)) == [] and unread_count(asker) == 0
    space.visibility = "public"
    space.save()
    staff = member_for_user(workspace=workspace, user=moderator.user)
    post_moderate(post=reply, moderator=staff, action="hide")
    assert list(notifications_visible(asker)) == []


# --------------------------------------------------------------------------- pages


def signed_in_member(workspace: Any, persona: Any) -> Member:
    return member_for_user(workspace=workspace, user=persona.user)


def test_notification_pages(workspace, space, member_user, client) -> None:
    me = signed_in_member(workspace, member_user)
    base = f"/c/{workspace.slug}/notifications/"
    page = member_user.client.get(base)
    assert page.status_code == 200 and 'data-empty="notifications"' in page.content.decode()
    helper = person(workspace, "helper")
    thread = thread_create(space=space, author=me, title="La mia domanda", body="b")
    reply = reply_create(thread=thread, author=helper, body="risposta")
    post_fanout(post_id=reply.pk)
    text = member_user.client.get(base).content.decode()
    assert "Helper replied to “La mia domanda”" in text and 'data-unread="1"' in text
    told = Notification.objects.get(recipient=me)
    opened = member_user.client.get(f"{base}{told.pk}/")
    assert opened.status_code == 302
    assert opened["Location"] == f"/c/{workspace.slug}/t/{thread.pk}/#post-2"
    told.refresh_from_db()
    assert told.read_at is not None
    assert 'data-unread="' not in member_user.client.get(base).content.decode()
    # Mark all read.
    Notification.objects.filter(pk=told.pk).update(read_at=None)
    assert member_user.client.post(f"{base}read/").status_code == 302
    assert not Notification.objects.filter(recipient=me, read_at__isnull=True).exists()
    # Signed out: to the sign-in page. Someone else's notification: 404.
    assert "/accounts/login/" in client.get(base)["Location"]
    other = notify(recipient=helper, kind="reply", key="x", post=reply)
    assert other is not None
    assert member_user.client.get(f"{base}{other.pk}/").status_code == 404


def test_outsider_gets_404_for_another_communitys_notification(
    workspace, other_workspace, space, member_user, outsider
) -> None:
    me = signed_in_member(workspace, member_user)
    helper = person(workspace, "helper")
    thread = thread_create(space=space, author=me, title="t", body="b")
    post_fanout(post_id=reply_create(thread=thread, author=helper, body="r").pk)
    told = Notification.objects.get(recipient=me)
    assert outsider.client.get(f"/c/{workspace.slug}/notifications/{told.pk}/").status_code == 404
    own = outsider.client.get(f"/c/{other_workspace.slug}/notifications/{told.pk}/")
    assert own.status_code == 404
    assert outsider.client.get("/c/nowhere/notifications/").status_code == 404


def test_notifications_page_queries_do_not_grow(
    workspace, space, member_user, django_assert_max_num_queries
) -> None:
    me = signed_in_member(workspace, member_user)
    thread = thread_create(space=space, author=me, title="t", body="b")
    helpers = [person(workspace, f"h{i}") for i in range(3)]

    def add(n: int) -> None:
        for i in range(n):
            post = reply_create(thread=thread, author=helpers[i % 3], body=f"r{i}")
            notify(recipient=me, kind="reply", key=f"r:{post.pk}", actor=post.author, post=post)

    url = f"/c/{workspace.slug}/notifications/"
    add(2)
    with CaptureQueriesContext(connection) as few:
        assert member_user.client.get(url).status_code == 200
    add(25)
    with django_assert_max_num_queries(len(few)):
        page = member_user.client.get(url)
    assert page.content.decode().count('class="notification unread"') == 27


def test_bell_shows_the_unread_count_on_community_pages(workspace, space, member_user) -> None:
    me = signed_in_member(workspace, member_user)
    helper = person(workspace, "helper")
    thread = thread_create(space=space, author=me, title="t", body="b")
    post_fanout(post_id=reply_create(thread=thread, author=helper, body="r").pk)
    home = member_user.client.get(f"/c/{workspace.slug}/").content.decode()
    assert 'id="notification-bell"' in home and 'data-unread="1"' in home


def test_settings_page_saves_mail_choices(workspace, member_user, client) -> None:
    me = signed_in_member(workspace, member_user)
    url = f"/c/{workspace.slug}/notifications/settings/"
    assert member_user.client.get(url).status_code == 200
    kinds = [k for k in Notification.Kind.values if k not in ("reaction", "followed_space")]
    response = member_user.client.post(url, {"email_kinds": kinds, "digest": "daily"})
    assert response.status_code == 302
    me.community.refresh_from_db()
    assert me.community.email_muted == ["followed_space", "reaction"]
    assert me.community.digest == "daily"
    bad = member_user.client.post(url, {"email_kinds": ["nonsense"], "digest": "hourly"})
    assert bad.status_code == 400
    assert "hourly" in bad.content.decode() or "valid choice" in bad.content.decode()
    assert "/accounts/login/" in client.get(url)["Location"]
