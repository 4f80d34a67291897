"""Polls: made with a new thread (clear errors, nothing half-written), single and multiple
choice with a limit, no votes after closing, results shown by the poll's rule (staff always),
the "poll_vote" activity once; the pages: 404 for private spaces and other workspaces, 400
with the reason, and a thread page whose query count does not grow with votes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from circolo.activity.models import Activity
from circolo.community.models import Poll, PollOption, PollVote, Thread
from circolo.community.polls import poll_close, poll_create, poll_for_thread, poll_vote
from circolo.community.services import (
    CommunityError,
    NotFound,
    member_for_user,
    space_create,
    thread_create,
)
from circolo.testing.factories import MemberFactory

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
def author(workspace: Any) -> Any:
    return MemberFactory(workspace=workspace)


def poll_in(space: Any, author: Any, **options: Any) -> Poll:
    thread = thread_create(space=space, author=author, title="Quale moka?", body="Votate!")
    labels = options.pop("options", ["Tre tazze", "Sei tazze", "Nove tazze"])
    return poll_create(thread=thread, author=author, question="Quale?", options=labels, **options)


def option_ids(poll: Poll) -> list[int]:
    return list(PollOption.objects.filter(poll=poll).values_list("pk", flat=True))


# --------------------------------------------------------------------------- creating


def test_create_keeps_options_in_order(spaces, author) -> None:
    poll = poll_in(spaces["public"], author, options=[" Tre  tazze ", "", "Sei tazze"])
    assert list(poll.options.values_list("position", "label")) == [
        (0, "Tre tazze"),
        (1, "Sei tazze"),
    ]
    assert poll.results == Poll.Results.VOTED and not poll.multiple


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"options": ["Solo una"]}, "poll_options"),
        ({"options": [f"O{n}" for n in range(21)]}, "poll_options"),
        ({"options": ["a", "x" * 121]}, "poll_options"),
        ({"options": ["Moka", "moka"]}, "poll_options"),
        ({"max_choices": 2}, "poll_max_choices"),
        ({"multiple": True, "max_choices": 4}, "poll_max_choices"),
        ({"results": "never"}, "poll_results"),
        ({"closes_at": timezone.now() - dt.timedelta(minutes=1)}, "poll_closes_at"),
    ],
)
def test_bad_polls_name_the_field(spaces, author, kwargs, field) -> None:
    with pytest.raises(CommunityError) as error:
        poll_in(spaces["public"], author, **kwargs)
    assert error.value.field == field and error.value.message
    assert not Poll.objects.exists()


def test_one_poll_per_thread_and_only_by_its_author(workspace, spaces, author) -> None:
    poll = poll_in(spaces["public"], author)
    with pytest.raises(CommunityError):
        poll_create(thread=poll.thread, author=author, question="Again?", options=["a", "b"])
    other = MemberFactory(workspace=workspace)
    thread = thread_create(space=spaces["public"], author=author, title="T", body="b")
    with pytest.raises(CommunityError):
        poll_create(thread=thread, author=other, question="Mine?", options=["a", "b"])


# --------------------------------------------------------------------------- voting


def test_single_choice_replaces_the_vote_and_records_activity_once(workspace, spaces, author):
    poll = poll_in(spaces["public"], author)
    first, second, _third = option_ids(poll)
    voter = MemberFactory(workspace=workspace)
    poll_vote(poll=poll, member=voter, option_ids=[first])
    poll_vote(poll=poll, member=voter, option_ids=[second])
    assert list(PollVote.objects.filter(member=voter).values_list("option_id", flat=True)) == [
        second
    ]
    with pytest.raises(CommunityError) as error:
        poll_vote(poll=poll, member=voter, option_ids=[first, second])
    assert error.value.field == "option"
    rows = Activity.objects.filter(member=voter, kind="poll_vote")
    assert rows.count() == 1 and rows.get().source_id == f"poll_vote:{poll.pk}:{voter.pk}"


def test_multiple_choice_sets_the_choices_within_the_limit(workspace, spaces, author) -> None:
    poll = poll_in(spaces["public"], author, multiple=True, max_choices=2)
    a, b, c = option_ids(poll)
    voter = MemberFactory(workspace=workspace)
    assert poll_vote(poll=poll, member=voter, option_ids=[a, b, a]) == [a, b]
    with pytest.raises(CommunityError) as error:
        poll_vote(poll=poll, member=voter, option_ids=[a, b, c])
    assert "at most 2" in error.value.message
    poll_vote(poll=poll, member=voter, option_ids=[c])
    assert set(PollVote.objects.filter(member=voter).values_list("option_id", flat=True)) == {c}


def test_unknown_options_empty_choice_and_closed_polls_are_refused(workspace, spaces, author):
    poll = poll_in(spaces["public"], author)
    other = poll_in(spaces["public"], author)
    voter = MemberFactory(workspace=workspace)
    for bad in ([option_ids(other)[0]], [999_999], ["abc"], []):
        with pytest.raises(CommunityError) as error:
            poll_vote(poll=poll, member=voter, option_ids=bad)
        assert error.value.field == "option"
    stranger = MemberFactory(workspace=author.workspace)
    with pytest.raises(CommunityError):
        poll_close(poll=poll, actor=stranger)
    poll_close(poll=poll, actor=author)
    with pytest.raises(CommunityError) as error:
        poll_vote(poll=poll, member=voter, option_ids=option_ids(poll)[:1])
    assert "closed" in error.value.message
    assert not PollVote.objects.exists()
    assert not Activity.objects.filter(kind="poll_vote").exists()


def test_close_date_passes(workspace, spaces, author) -> None:
    now = timezone.now()
    poll = poll_in(spaces["public"], author, closes_at=now + dt.timedelta(hours=1))
    voter = MemberFactory(workspace=workspace)
    poll_vote(poll=poll, member=voter, option_ids=option_ids(poll)[:1], now=now)
    with pytest.raises(CommunityError):
        poll_vote(
            poll=poll, member=voter, option_ids=option_ids(poll)[1:2],
            now=now + dt.timedelta(hours=2),
        )  # fmt: skip


def test_private_space_and_other_workspace_polls_are_not_found(
    workspace, other_workspace, spaces
) -> None:
    insider = MemberFactory(workspace=workspace)
    from circolo.people.models import MemberTag

    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    poll = poll_in(spaces["vip"], insider)
    for stranger in (MemberFactory(workspace=workspace), MemberFactory(workspace=other_workspace)):
        with pytest.raises(NotFound):
            poll_vote(poll=poll, member=stranger, option_ids=option_ids(poll)[:1])


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("results", "before_vote", "after_vote", "after_close"),
    [("always", True, True, True), ("voted", False, True, True), ("closed", False, False, True)],
)
def test_results_show_by_the_polls_rule(
    workspace, spaces, author, owner, results, before_vote, after_vote, after_close
) -> None:
    poll = poll_in(spaces["public"], author, results=results)
    voter = MemberFactory(workspace=workspace)
    staff = member_for_user(workspace=workspace, user=owner.user)
    thread = poll.thread

    def shown(who: Any, is_staff: bool = False) -> bool:
        view = poll_for_thread(thread=thread, viewer=who, staff=is_staff)
        assert view is not None
        return view.show_results

    assert shown(voter) is before_vote
    assert shown(staff, True) is True
    poll_vote(poll=poll, member=voter, option_ids=option_ids(poll)[:1])
    assert shown(voter) is after_vote
    assert shown(None) is (results == "always")
    poll_close(poll=poll, actor=author)
    assert shown(voter) is after_close
    view = poll_for_thread(thread=thread, viewer=voter, staff=False)
    assert view is not None and view.closed and not view.can_vote
    if after_close:
        assert [row.votes for row in view.options] == [1, 0, 0] and view.voters == 1


def test_hidden_results_do_not_leak_counts(workspace, spaces, author) -> None:
    poll = poll_in(spaces["public"], author, results="closed")
    for _ in range(3):
        poll_vote(
            poll=poll, member=MemberFactory(workspace=workspace), option_ids=option_ids(poll)[:1]
        )
    view = poll_for_thread(thread=poll.thread, viewer=author, staff=False)
    assert view is not None and view.voters is None
    assert [row.votes for row in view.options] == [0, 0, 0]


# --------------------------------------------------------------------------- pages


def test_new_thread_with_a_poll_and_voting_through_the_pages(workspace, spaces, member_user):
    client = member_user.client
    response = client.post(
        f"/c/{workspace.slug}/s/domande/new/",
        {
            "kind": "discussion", "title": "Sondaggio", "body": "Ditemi",
            "poll_question": "Caffè preferito?", "poll_options": "Espresso\nMoka\nFiltro",
            "poll_multiple": "on", "poll_max_choices": "2", "poll_results": "always",
        },
    )  # fmt: skip
    assert response.status_code == 302
    poll = Poll.objects.get()
    assert poll.multiple and poll.max_choices == 2 and poll.results == "always"
    page = client.get(f"/c/{workspace.slug}/t/{poll.thread_id}/").content.decode()
    assert "Caffè preferito?" in page and 'type="checkbox"' in page
    a, b, c = option_ids(poll)
    url = f"/c/{workspace.slug}/polls/{poll.pk}/vote/"
    response = client.post(url, {"option": [a, c]})
    assert response.status_code == 302 and response["Location"].endswith("#poll")
    response = client.post(url, {"option": [a, b, c]})
    assert response.status_code == 400 and "Choose at most 2 options" in response.content.decode()
    response = client.post(url, {"option": ["x"]})
    assert response.status_code == 400 and "not part of this poll" in response.content.decode()
    assert PollVote.objects.count() == 2


def test_a_bad_poll_on_the_new_thread_form_writes_nothing(workspace, spaces, member_user):
    response = member_user.client.post(
        f"/c/{workspace.slug}/s/domande/new/",
        {"kind": "discussion", "title": "Sondaggio", "body": "Ditemi",
         "poll_question": "Caffè?", "poll_options": "Solo espresso"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "2 to 20 options" in response.content.decode()
    assert not Thread.objects.exists() and not Poll.objects.exists()


def test_poll_pages_are_404_for_private_spaces_and_other_workspaces(
    client, workspace, other_workspace, spaces, member_user
) -> None:
    insider = MemberFactory(workspace=workspace)
    from circolo.people.models import MemberTag

    MemberTag.objects.create(workspace=workspace, member=insider, tag="vip")
    secret = poll_in(spaces["vip"], insider)
    option = option_ids(secret)[0]
    assert (
        member_user.client.post(
            f"/c/{workspace.slug}/polls/{secret.pk}/vote/", {"option": option}
        ).status_code
        == 404
    )
    assert (
        member_user.client.post(f"/c/{workspace.slug}/polls/{secret.pk}/close/").status_code == 404
    )
    public = poll_in(spaces["public"], insider)
    assert (
        member_user.client.post(
            f"/c/{other_workspace.slug}/polls/{public.pk}/vote/", {"option": option_ids(public)[0]}
        ).status_code
        == 404
    )
    assert client.post(f"/c/{workspace.slug}/polls/999999/vote/").status_code == 404
    response = client.post(f"/c/{workspace.slug}/polls/{public.pk}/vote/", {"option": 1})
    assert response.status_code == 302 and "login" in response["Location"]
    assert not PollVote.objects.exists()


def test_only_author_or_staff_close_through_the_page(workspace, spaces, member_user, owner):
    poll = poll_in(spaces["public"], MemberFactory(workspace=workspace))
    url = f"/c/{workspace.slug}/polls/{poll.pk}/close/"
    response = member_user.client.post(url)
    assert response.status_code == 400 and 'id="poll-error"' in response.content.decode()
    assert owner.client.post(url).status_code == 302
    assert Poll.objects.get().closes_at is not None


def test_thread_page_queries_do_not_grow_with_votes(client, workspace, spaces, author) -> None:
    poll = poll_in(spaces["public"], author, results="always")
    ids = option_ids(poll)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            page = client.get(f"/c/{workspace.slug}/t/{poll.thread_id}/")
            assert page.status_code == 200 and 'data-poll="' in page.content.decode()
        return len(context)

    for n in range(3):
        poll_vote(poll=poll, member=MemberFactory(workspace=workspace), option_ids=[ids[n % 3]])
    few = queries()
    for n in range(30):
        poll_vote(poll=poll, member=MemberFactory(workspace=workspace), option_ids=[ids[n % 3]])
    assert queries() == few
