"""The community pages: read, ask, answer, accept and react through HTTP; private spaces
give 404 to whoever may not read them; the thread page's query count does not grow."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from circolo.activity.models import Activity
from circolo.community.models import Post, Thread
from circolo.community.polls import poll_create, poll_vote
from circolo.community.services import reply_create, space_create, thread_create
from circolo.core.models import Role, WorkspaceRole
from circolo.people.models import Member, MemberTag
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spaces(workspace: Any) -> dict[str, Any]:
    return {
        "public": space_create(workspace=workspace, actor=None, name="Domande", language="it"),
        "members": space_create(
            workspace=workspace, actor=None, name="Club", visibility="members"
        ),
        "vip": space_create(
            workspace=workspace, actor=None, name="VIP", visibility="segment",
            segment={"tags": ["vip"]},
        ),
    }  # fmt: skip


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(UserFactory(email=email))
    return client


def test_visitor_reads_public_and_gets_404_for_the_rest(client, workspace, spaces) -> None:
    author = MemberFactory(workspace=workspace)
    MemberTag.objects.create(workspace=workspace, member=author, tag="vip")
    public = thread_create(space=spaces["public"], author=author, title="Aperto", body="ciao")
    secret = thread_create(space=spaces["vip"], author=author, title="Segreto", body="shh")
    home = client.get(f"/c/{workspace.slug}/")
    assert home.status_code == 200
    text = home.content.decode()
    assert "Domande" in text and "Aperto" in text
    assert "VIP" not in text and "Segreto" not in text and "Club" not in text
    assert client.get(f"/c/{workspace.slug}/t/{public.pk}/").status_code == 200
    assert client.get(f"/c/{workspace.slug}/t/{secret.pk}/").status_code == 404
    assert client.get(f"/c/{workspace.slug}/s/vip/").status_code == 404
    assert client.get(f"/c/{workspace.slug}/s/club/").status_code == 404
    assert client.get("/c/no-such-community/").status_code == 404


def test_ask_answer_accept_and_react_through_the_pages(workspace, spaces) -> None:
    asker = signed_in("giulia@example.com")
    page = asker.get(f"/c/{workspace.slug}/s/domande/new/")
    assert page.status_code == 200
    response = asker.post(
        f"/c/{workspace.slug}/s/domande/new/",
        {"kind": "question", "title": "Quanto caffè?", "body": "Per la moka da 3 tazze?"},
    )
    thread = Thread.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/t/{thread.pk}/")
    giulia = Member.objects.get(workspace=workspace, user__email="giulia@example.com")
    assert WorkspaceRole.objects.get(workspace=workspace, user=giulia.user).role == Role.MEMBER

    helper = signed_in("marco@example.com")
    response = helper.post(f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "Circa **15 g**."})
    assert response.status_code == 302
    answer = Post.objects.get(thread=thread, number=2)
    page = asker.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert "<strong>15 g</strong>" in page and "Accept this answer" in page
    assert (
        "Accept this answer"
        not in helper.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    )
    assert helper.post(f"/c/{workspace.slug}/p/{answer.pk}/accept/").status_code == 400
    assert asker.post(f"/c/{workspace.slug}/p/{answer.pk}/accept/").status_code == 302
    thread.refresh_from_db()
    assert thread.accepted_post == answer

    assert (
        asker.post(f"/c/{workspace.slug}/p/{answer.pk}/react/", {"emoji": "thanks"}).status_code
        == 302
    )
    assert (
        asker.post(f"/c/{workspace.slug}/p/{answer.pk}/react/", {"emoji": "nope"}).status_code
        == 400
    )
    marco = answer.author
    assert sorted(Activity.objects.filter(member=marco).values_list("kind", flat=True)) == [
        "accepted_answer", "reaction_received", "reply", "signup",
    ]  # fmt: skip


def test_bad_posts_are_refused_with_the_reason_and_nothing_stored(workspace, spaces) -> None:
    asker = signed_in("giulia@example.com")
    response = asker.post(
        f"/c/{workspace.slug}/s/domande/new/", {"kind": "question", "title": "", "body": ""}
    )
    assert response.status_code == 400
    assert not Thread.objects.exists()
    response = asker.post(
        f"/c/{workspace.slug}/s/domande/new/",
        {"kind": "question", "title": "Too long", "body": "x" * 20_001},
    )
    assert response.status_code == 400 and "20000" in response.content.decode().replace(",", "")


def test_writing_needs_a_sign_in(client, workspace, spaces) -> None:
    response = client.get(f"/c/{workspace.slug}/s/domande/new/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=spaces["public"], author=author, title="t", body="b")
    response = client.post(f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "hi"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Post.objects.count() == 1


def test_members_only_space_opens_on_sign_in_but_not_the_segment(workspace, spaces) -> None:
    member = signed_in("ada@example.com")
    assert member.get(f"/c/{workspace.slug}/s/club/").status_code == 200
    assert member.get(f"/c/{workspace.slug}/s/vip/").status_code == 404
    assert member.get(f"/c/{workspace.slug}/s/vip/new/").status_code == 404


def test_thread_page_queries_do_not_grow_with_replies(client, workspace, spaces) -> None:
    authors = [MemberFactory(workspace=workspace) for _ in range(5)]
    thread = thread_create(
        space=spaces["public"], author=authors[0], title="Long", body="start", skus=["MOKA-3"]
    )
    poll = poll_create(thread=thread, author=authors[0], question="Moka?", options=["Sì", "No"])
    choices = list(poll.options.values_list("pk", flat=True))

    member = Client()
    member.force_login(UserFactory(email="reader@example.com"))

    def queries(reader: Client) -> int:
        with CaptureQueriesContext(connection) as context:
            assert reader.get(f"/c/{workspace.slug}/t/{thread.pk}/").status_code == 200
        return len(context)

    queries(member)  # the first visit joins the community
    # Both measures follow new replies, so both record the member reading further.
    for n in range(5):
        reply_create(thread=thread, author=authors[n % 5], body=f"reply {n}")
    few = (queries(client), queries(member))
    for n in range(194):  # 200 posts: the benchmark's page
        reply_create(thread=thread, author=authors[n % 5], body=f"reply {n}")
        if n < 60:
            poll_vote(poll=poll, member=authors[n % 5], option_ids=[choices[n % 2]])
    assert (queries(client), queries(member)) == few


@pytest.mark.parametrize(
    ("language", "expected"),
    [("it", "Community di"), ("es", "Comunidad de"), ("zh-hans", "社区")],
)
def test_pages_speak_the_visitors_language(client, workspace, spaces, language, expected):
    page = client.get(f"/c/{workspace.slug}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert expected in page


def test_community_members_are_not_listed_as_the_team(workspace, spaces, owner, settings):
    settings.CIRCOLO_MFA_ENFORCE = False
    signed_in("joiner@example.com").get(f"/c/{workspace.slug}/")
    assert WorkspaceRole.objects.filter(workspace=workspace, role=Role.MEMBER).count() == 1
    settings_page = owner.client.get(f"/w/{workspace.slug}/settings/").content.decode()
    assert "joiner@example.com" not in settings_page
    assert owner.user.email in settings_page


def test_the_author_edits_a_post_and_others_cannot(workspace, spaces) -> None:
    author = signed_in("giulia@example.com")
    author.post(
        f"/c/{workspace.slug}/s/domande/new/",
        {"kind": "discussion", "title": "Moka", "body": "first text"},
    )
    post = Post.objects.get()
    edit = f"/c/{workspace.slug}/p/{post.pk}/edit/"
    assert "first text" in author.get(edit).content.decode()
    assert author.post(edit, {"body": ""}).status_code == 400
    assert author.post(edit, {"body": "second **text**"}).status_code == 302
    post.refresh_from_db()
    assert post.body == "second **text**" and "<strong>text</strong>" in post.html
    assert post.revisions.get().body == "first text"
    other = signed_in("marco@example.com")
    response = other.post(edit, {"body": "vandal"})
    assert response.status_code == 400 and "Only the author" in response.content.decode()
    post.refresh_from_db()
    assert post.body == "second **text**"
