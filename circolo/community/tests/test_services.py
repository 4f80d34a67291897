"""Community writes: threads, replies, edits, reactions and accepted answers, with their
activities, permissions and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from circolo.activity.models import Activity
from circolo.community.models import Post, PostRevision, Space, Thread
from circolo.community.services import (
    CommunityError,
    NotFound,
    answer_accept,
    post_edit,
    reaction_add,
    reaction_remove,
    reply_create,
    space_create,
    thread_create,
)
from circolo.core.models import Role
from circolo.people.models import Member
from circolo.testing.factories import MemberFactory, UserFactory, WorkspaceRoleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def space(workspace: Any) -> Space:
    return space_create(workspace=workspace, actor=None, name="Domande sul caffè", language="it")


@pytest.fixture
def asker(workspace: Any) -> Member:
    return MemberFactory(workspace=workspace, display_name="Giulia")


@pytest.fixture
def helper(workspace: Any) -> Member:
    return MemberFactory(workspace=workspace, display_name="Marco")


def staff_member(workspace: Any, role: str = Role.MODERATOR) -> Member:
    user = UserFactory()
    WorkspaceRoleFactory(workspace=workspace, user=user, role=role)
    return MemberFactory(workspace=workspace, user=user)


def kinds(member: Member) -> list[str]:
    return sorted(Activity.objects.filter(member=member).values_list("kind", flat=True))


def test_question_reply_accept_records_each_activity(space, asker, helper) -> None:
    thread = thread_create(
        space=space,
        author=asker,
        kind=Thread.Kind.QUESTION,
        title="  Quanto  caffè per la moka da 3? ",
        body="Uso la **moka** da 3 tazze.",
        tags=["Moka", "moka", "Dosi"],
        skus=["MOKA-3"],
    )
    assert thread.title == "Quanto caffè per la moka da 3?"
    assert thread.tags == ["moka", "dosi"] and thread.language == "it"
    first = thread.posts.get()
    assert (first.number, "<strong>moka</strong>" in first.html) == (1, True)

    answer = reply_create(thread=thread, author=helper, body="Circa 15 grammi.")
    assert answer.number == 2
    thread.refresh_from_db()
    assert thread.reply_count == 1

    answer_accept(thread=thread, post=answer, actor=asker)
    thread.refresh_from_db()
    assert thread.accepted_post == answer
    assert kinds(asker) == ["post"]
    assert kinds(helper) == ["accepted_answer", "reply"]
    # Accepting again records nothing more.
    answer_accept(thread=thread, post=answer, actor=asker)
    assert kinds(helper) == ["accepted_answer", "reply"]


def test_only_the_asker_or_staff_accepts_and_only_on_questions(space, asker, helper, workspace):
    question = thread_create(space=space, author=asker, kind="question", title="Q", body="?")
    answer = reply_create(thread=question, author=helper, body="A")
    with pytest.raises(CommunityError, match="Only the person who asked"):
        answer_accept(thread=question, post=answer, actor=helper)
    with pytest.raises(CommunityError, match="question itself"):
        answer_accept(thread=question, post=question.posts.get(number=1), actor=asker)
    answer_accept(thread=question, post=answer, actor=staff_member(workspace))
    talk = thread_create(space=space, author=asker, title="Chat", body="Ciao")
    reply = reply_create(thread=talk, author=helper, body="Ciao!")
    with pytest.raises(CommunityError, match="Only a question"):
        answer_accept(thread=talk, post=reply, actor=asker)


def test_replies_are_numbered_in_order_and_closed_threads_refuse(space, asker, helper):
    thread = thread_create(space=space, author=asker, title="Numbers", body="one")
    numbers = [reply_create(thread=thread, author=helper, body=f"r{n}").number for n in range(4)]
    assert numbers == [2, 3, 4, 5]
    Thread.objects.filter(pk=thread.pk).update(closed=True)
    thread.refresh_from_db()
    with pytest.raises(CommunityError, match="closed"):
        reply_create(thread=thread, author=helper, body="late")


@pytest.mark.parametrize(
    ("field", "title", "body", "match"),
    [
        ("title", "", "x", "title"),
        ("title", "t" * 201, "x", "at most 200"),
        ("body", "t", "   ", "Write something"),
        ("body", "t", "x" * 20_001, "at most 20,000"),
    ],
)
def test_bad_input_names_the_field(space, asker, field, title, body, match) -> None:
    with pytest.raises(CommunityError, match=match) as error:
        thread_create(space=space, author=asker, title=title, body=body)
    assert error.value.field == field
    assert not Thread.objects.exists() and not Post.objects.exists()


def test_edit_keeps_the_history_and_only_author_or_moderator_edits(
    space, asker, helper, workspace
) -> None:
    thread = thread_create(space=space, author=asker, title="Edit", body="first text")
    post = thread.posts.get()
    with pytest.raises(CommunityError, match="Only the author"):
        post_edit(post=post, editor=helper, body="vandal")
    post_edit(post=post, editor=asker, body="second **text**")
    post_edit(post=post, editor=staff_member(workspace), body="third text")
    post.refresh_from_db()
    assert post.body == "third text" and post.edited_at is not None
    history = list(PostRevision.objects.filter(post=post).order_by("pk").values_list("body"))
    assert history == [("first text",), ("second **text**",)]


def test_reactions_count_once_and_never_on_your_own_post(space, asker, helper) -> None:
    thread = thread_create(space=space, author=asker, title="React", body="hello")
    post = thread.posts.get()
    with pytest.raises(CommunityError, match="own post"):
        reaction_add(post=post, member=asker, emoji="like")
    with pytest.raises(CommunityError, match="offered reactions"):
        reaction_add(post=post, member=helper, emoji="poop")
    assert reaction_add(post=post, member=helper, emoji="like") is True
    assert reaction_add(post=post, member=helper, emoji="like") is False
    assert reaction_remove(post=post, member=helper, emoji="like") is True
    assert reaction_add(post=post, member=helper, emoji="like") is True  # given again
    assert kinds(helper) == ["reaction_given"]  # ... but not paid twice
    assert kinds(asker) == ["post", "reaction_received"]


def test_staff_posts_are_marked_and_their_links_followed(space, asker, workspace) -> None:
    brand = staff_member(workspace, Role.MANAGER)
    thread = thread_create(space=space, author=brand, title="News", body="[shop](https://e.com)")
    post = thread.posts.get()
    assert post.staff is True and "nofollow" not in post.html
    mine = thread_create(space=space, author=asker, title="Mine", body="[x](https://e.com)")
    assert "nofollow" in mine.posts.get().html


def test_other_workspaces_members_cannot_post_or_react(space, asker, other_workspace) -> None:
    stranger = MemberFactory(workspace=other_workspace)
    with pytest.raises(NotFound):
        thread_create(space=space, author=stranger, title="x", body="y")
    thread = thread_create(space=space, author=asker, title="Mine", body="y")
    with pytest.raises(NotFound):
        reaction_add(post=thread.posts.get(), member=stranger, emoji="like")


def test_space_rules(workspace) -> None:
    with pytest.raises(CommunityError, match="tags or products"):
        space_create(workspace=workspace, actor=None, name="Owners", visibility="segment")
    space_create(workspace=workspace, actor=None, name="Owners")
    with pytest.raises(CommunityError, match="already uses"):
        space_create(workspace=workspace, actor=None, name="owners")
    parent = Space.objects.get(workspace=workspace, slug="owners")
    child = space_create(workspace=workspace, actor=None, name="Moka", parent=parent)
    with pytest.raises(CommunityError, match="sub-groups"):
        space_create(workspace=workspace, actor=None, name="Deeper", parent=child)
