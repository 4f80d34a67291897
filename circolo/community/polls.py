"""Polls in threads: made with a new thread, voted on by members who may read the space,
closed by a date or by hand; results shown always, after voting, or once closed (the team
always sees them). A vote records a "poll_vote" activity once per poll and member."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.services import activity_record
from circolo.people.models import Member

from .models import Poll, PollOption, PollVote, Thread
from .selectors import member_is_staff, member_moderates, space_readable
from .services import ACTIVITY_SOURCE, CHANNEL, CommunityError, NotFound

QUESTION_MAX = 200
OPTION_MAX = 120
OPTIONS_MIN = 2
OPTIONS_MAX = 20


class PollArgs(TypedDict):
    """What the new-thread form gives poll_create."""

    question: str
    options: list[str]
    multiple: bool
    max_choices: int | None
    closes_at: dt.datetime | None
    results: str


def poll_options_parse(text: str) -> list[str]:
    """Options typed one per line: blank lines dropped, spaces tidied."""
    return [" ".join(line.split()) for line in str(text).splitlines() if line.strip()]


def _options(options: Sequence[str]) -> list[str]:
    labels = [" ".join(str(label).split()) for label in options]
    labels = [label for label in labels if label]
    if not OPTIONS_MIN <= len(labels) <= OPTIONS_MAX:
        raise CommunityError(
            "poll_options",
            _("A poll has %(min)d to %(max)d options, one per line.")
            % {"min": OPTIONS_MIN, "max": OPTIONS_MAX},
        )
    long = next((label for label in labels if len(label) > OPTION_MAX), None)
    if long is not None:
        raise CommunityError(
            "poll_options",
            _("An option has at most %(limit)d characters: “%(option)s…” is longer.")
            % {"limit": OPTION_MAX, "option": long[:30]},
        )
    seen: set[str] = set()
    for label in labels:
        if label.casefold() in seen:
            raise CommunityError(
                "poll_options", _("“%(option)s” is there twice.") % {"option": label}
            )
        seen.add(label.casefold())
    return labels


def poll_check(
    *,
    question: str,
    options: Sequence[str],
    multiple: bool = False,
    max_choices: int | None = None,
    closes_at: dt.datetime | None = None,
    results: str = Poll.Results.VOTED,
    now: dt.datetime | None = None,
) -> PollArgs:
    """The poll's input made tidy, or CommunityError naming the field (the new-thread form
    checks it before the thread is written, so a bad poll never leaves a thread behind)."""
    question = " ".join(str(question).split())
    if not question:
        raise CommunityError("poll_question", _("Ask the poll's question."))
    if len(question) > QUESTION_MAX:
        raise CommunityError(
            "poll_question",
            _("A question has at most %(limit)d characters.") % {"limit": QUESTION_MAX},
        )
    labels = _options(options)
    if results not in Poll.Results.values:
        raise CommunityError("poll_results", _("Choose when the results are shown."))
    if max_choices is not None:
        if not multiple:
            raise CommunityError(
                "poll_max_choices", _("A limit of choices needs several answers allowed.")
            )
        if not 1 <= max_choices <= len(labels):
            raise CommunityError(
                "poll_max_choices",
                _("The limit of choices is between 1 and the number of options (%(n)d).")
                % {"n": len(labels)},
            )
    if closes_at is not None:
        if timezone.is_naive(closes_at):
            raise CommunityError("poll_closes_at", _("Give the closing time with its time zone."))
        if closes_at <= (now or timezone.now()):
            raise CommunityError("poll_closes_at", _("The closing date must be in the future."))
    return {
        "question": question,
        "options": labels,
        "multiple": bool(multiple),
        "max_choices": max_choices if multiple else None,
        "closes_at": closes_at,
        "results": results,
    }


def poll_create(
    *,
    thread: Thread,
    author: Member,
    question: str,
    options: Sequence[str],
    multiple: bool = False,
    max_choices: int | None = None,
    closes_at: dt.datetime | None = None,
    results: str = Poll.Results.VOTED,
    now: dt.datetime | None = None,
) -> Poll:
    """A poll in the thread, by its author (or the team), who may post in the space; one per
    thread. `max_choices` only with `multiple`; `closes_at` must be in the future."""
    space = thread.space
    if author.workspace_id != thread.workspace_id or not space_readable(space, author):
        raise NotFound()
    if author.pk != thread.author_id and not member_is_staff(author):
        raise CommunityError("poll_question", _("Only the thread's author can add a poll."))
    if space.archived:
        raise CommunityError("space", _("This space is archived: nothing new can be posted."))
    clean = poll_check(
        question=question,
        options=options,
        multiple=multiple,
        max_choices=max_choices,
        closes_at=closes_at,
        results=results,
        now=now,
    )
    with transaction.atomic():
        if Poll.objects.filter(thread=thread).exists():
            raise CommunityError("poll_question", _("This thread already has a poll."))
        poll = Poll.objects.create(
            workspace_id=thread.workspace_id,
            thread=thread,
            question=clean["question"],
            multiple=clean["multiple"],
            max_choices=clean["max_choices"],
            closes_at=clean["closes_at"],
            results=clean["results"],
        )
        PollOption.objects.bulk_create(
            [
                PollOption(poll=poll, position=n, label=label)
                for n, label in enumerate(clean["options"])
            ]
        )
    return poll


def poll_is_closed(poll: Poll, now: dt.datetime | None = None) -> bool:
    return poll.closes_at is not None and poll.closes_at <= (now or timezone.now())


def _poll_readable(poll: Poll, member: Member) -> None:
    thread = poll.thread
    if member.workspace_id != poll.workspace_id or member.merged_into_id is not None:
        raise NotFound()
    if not space_readable(thread.space, member):
        raise NotFound()
    if thread.hidden_at is not None and not member_is_staff(member):
        raise NotFound()


def poll_vote(
    *,
    poll: Poll,
    member: Member,
    option_ids: Sequence[int | str],
    now: dt.datetime | None = None,
) -> list[int]:
    """Set the member's choice (single choice: replaces the earlier vote; multiple: exactly
    these options, at most `max_choices`). Not after the poll closes. Returns the chosen
    option ids; the first vote records a "poll_vote" activity."""
    _poll_readable(poll, member)
    moment = now or timezone.now()
    try:
        chosen = list(dict.fromkeys(int(option_id) for option_id in option_ids))
    except (TypeError, ValueError):
        raise CommunityError("option", _("That option is not part of this poll.")) from None
    if not chosen:
        raise CommunityError("option", _("Choose an option first."))
    if not poll.multiple and len(chosen) > 1:
        raise CommunityError("option", _("This poll takes one answer: choose one option."))
    if poll.multiple and poll.max_choices is not None and len(chosen) > poll.max_choices:
        raise CommunityError(
            "option",
            _("Choose at most %(n)d options.") % {"n": poll.max_choices},
        )
    with transaction.atomic():
        # One voter at a time per poll, so a single-choice vote can never count twice.
        locked = Poll.objects.select_for_update(no_key=True).get(pk=poll.pk)
        if poll_is_closed(locked, moment):
            raise CommunityError("option", _("This poll is closed."))
        valid = set(PollOption.objects.filter(poll=locked).values_list("pk", flat=True))
        if any(option_id not in valid for option_id in chosen):
            raise CommunityError("option", _("That option is not part of this poll."))
        PollVote.objects.filter(poll=locked, member=member).exclude(option_id__in=chosen).delete()
        have = set(
            PollVote.objects.filter(poll=locked, member=member).values_list("option_id", flat=True)
        )
        PollVote.objects.bulk_create(
            [
                PollVote(
                    workspace_id=locked.workspace_id,
                    poll=locked,
                    option_id=option_id,
                    member=member,
                    created_at=moment,
                )
                for option_id in chosen
                if option_id not in have
            ]
        )
        activity_record(
            workspace=poll.thread.space.workspace,
            member=member,
            kind="poll_vote",
            channel=CHANNEL,
            occurred_at=moment,
            source=ACTIVITY_SOURCE,
            source_id=f"poll_vote:{locked.pk}:{member.pk}",
            properties={"poll": locked.pk, "thread": locked.thread_id},
        )
    return chosen


def poll_close(*, poll: Poll, actor: Member, now: dt.datetime | None = None) -> Poll:
    """Close the poll now (its thread's author, the team or the space's moderators); closing
    a closed poll changes nothing."""
    _poll_readable(poll, actor)
    thread = poll.thread
    if actor.pk != thread.author_id and not member_moderates(actor, thread.space):
        raise CommunityError("poll", _("Only the poll's author or a moderator can close it."))
    moment = now or timezone.now()
    if not poll_is_closed(poll, moment):
        Poll.objects.filter(pk=poll.pk).update(closes_at=moment)
        poll.closes_at = moment
    return poll


# --------------------------------------------------------------------------- reading


@dataclass
class OptionResult:
    option: PollOption
    votes: int
    mine: bool
    percent: int


@dataclass
class PollView:
    """A poll as one viewer sees it."""

    poll: Poll
    options: list[OptionResult]
    voters: int | None  # None while the results are hidden from this viewer
    voted: bool
    closed: bool
    show_results: bool
    can_vote: bool
    can_close: bool
    mine: set[int] = field(default_factory=set)


def poll_for_thread(
    *, thread: Thread, viewer: Member | None, staff: bool, now: dt.datetime | None = None
) -> PollView | None:
    """The thread's poll for this viewer (who may read the thread), or None; a fixed number
    of queries whatever the votes (one when there is no poll)."""
    poll = Poll.objects.filter(thread=thread).prefetch_related("options").first()
    if poll is None:
        return None
    options = list(poll.options.all())
    counts = dict(
        PollVote.objects.filter(poll=poll)
        .values_list("option_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    voters = PollVote.objects.filter(poll=poll).values("member_id").distinct().count()
    mine: set[int] = set()
    if viewer is not None:
        mine = set(
            PollVote.objects.filter(poll=poll, member=viewer).values_list("option_id", flat=True)
        )
    closed = poll_is_closed(poll, now)
    voted = bool(mine)
    show = (
        staff
        or poll.results == Poll.Results.ALWAYS
        or (poll.results == Poll.Results.VOTED and (voted or closed))
        or (poll.results == Poll.Results.CLOSED and closed)
    )
    total = sum(counts.values())
    return PollView(
        poll=poll,
        options=[
            OptionResult(
                option=option,
                votes=counts.get(option.pk, 0) if show else 0,
                mine=option.pk in mine,
                percent=round(100 * counts.get(option.pk, 0) / total) if show and total else 0,
            )
            for option in options
        ],
        voters=voters if show else None,
        voted=voted,
        closed=closed,
        show_results=show,
        can_vote=viewer is not None and not closed,
        can_close=viewer is not None and not closed and (viewer.pk == thread.author_id or staff),
        mine=mine,
    )
