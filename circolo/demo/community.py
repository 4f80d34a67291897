"""The demo store's community: spaces in each language, a members-only club and a space for
owners of the moka pot, with threads, replies, reactions and accepted answers written by
demo members through community.services (so every one is also an activity).

Deterministic per seed, and done once per workspace: a second run finds the spaces there.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

from django.db import transaction

from circolo.community.events import EventIn, event_create, rsvp_check_in, rsvp_set
from circolo.community.models import Event, Poll, Space, Thread
from circolo.community.polls import poll_create, poll_vote
from circolo.community.services import (
    CommunityError,
    answer_accept,
    reaction_add,
    reply_create,
    space_create,
    thread_create,
)
from circolo.core.models import Workspace
from circolo.demo import texts
from circolo.people.models import Member

THREADS_PER_LANGUAGE = 24
REPLIES_MAX = 6
OWNER_SKU = "MOKA-3"
QUESTION_SPACE = 4  # "Help" in texts.SPACES


def demo_community_ensure(*, workspace: Workspace, seed: int, now: dt.datetime) -> int:
    """Create the demo community unless it exists; returns the threads created."""
    if Space.objects.filter(workspace=workspace).exists():
        return 0
    rng = random.Random(seed * 7919)
    speakers: dict[str, list[Member]] = defaultdict(list)
    for member in Member.objects.filter(workspace=workspace, merged_into__isnull=True).order_by(
        "pk"
    ):
        language = (member.languages or ["en"])[0]
        if language in texts.LANGUAGES:
            speakers[language].append(member)
    if not speakers:
        return 0
    created = 0
    with transaction.atomic():
        for language in texts.LANGUAGES:
            people = speakers.get(language)
            if not people:
                continue
            names = texts.SPACES[language]
            spaces = [
                space_create(
                    workspace=workspace,
                    actor=None,
                    name=name,
                    slug=f"{language}-{index}",
                    language=language,
                )
                for index, name in enumerate(names)
            ]
            for number in range(THREADS_PER_LANGUAGE):
                space = spaces[number % len(spaces)]
                created += _thread(rng, space, people, language, now, number)
        club = space_create(
            workspace=workspace,
            actor=None,
            name="Club Aurora",
            slug="club",
            language="en",
            description="Members only: early news, tastings and events.",
            visibility=Space.Visibility.MEMBERS,
        )
        _events(rng, club, [person for group in speakers.values() for person in group], now)
        space_create(
            workspace=workspace,
            actor=None,
            name="Moka owners",
            slug="moka-owners",
            description="For members who bought a Moka pot.",
            visibility=Space.Visibility.SEGMENT,
            segment={"skus": [OWNER_SKU]},
        )
    # Events and polls open threads of their own: count every thread the demo wrote.
    return Thread.objects.filter(workspace=workspace).count() if created else 0


def _thread(
    rng: random.Random,
    space: Space,
    people: list[Member],
    language: str,
    now: dt.datetime,
    number: int,
) -> int:
    product = rng.choice(texts.PRODUCTS)
    title = rng.choice(texts.POST_TITLES[language]).format(product=product.names[language])
    author = rng.choice(people)
    started = now - dt.timedelta(days=rng.uniform(1, 120), minutes=number)
    question = space.slug.endswith(f"-{QUESTION_SPACE}") or rng.random() < 0.3
    try:
        thread = thread_create(
            space=space,
            author=author,
            kind=Thread.Kind.QUESTION if question else Thread.Kind.DISCUSSION,
            title=title[:200],
            body=rng.choice(texts.REPLY_TEXTS[language]),
            skus=[product.sku],
            now=started,
        )
    except CommunityError:
        # Too fast, or the same text twice in a day: the community refuses it, so does the demo.
        return 0
    replies = []
    moment = started
    for _ in range(rng.randrange(0, REPLIES_MAX + 1)):
        moment += dt.timedelta(hours=rng.uniform(0.2, 30))
        if moment >= now:
            break
        helper = rng.choice(people)
        try:
            replies.append(
                reply_create(
                    thread=thread,
                    author=helper,
                    body=rng.choice(texts.REPLY_TEXTS[language]),
                    now=moment,
                )
            )
        except CommunityError:
            continue  # refused as the community would refuse it (limits, duplicates)
    later = min(moment + dt.timedelta(hours=2), now)
    for reply in replies:
        if rng.random() < 0.5:
            fan = rng.choice(people)
            if fan.pk != reply.author_id:
                emoji = rng.choice(("like", "heart", "thanks"))
                reaction_add(post=reply, member=fan, emoji=emoji, now=later)
    answers = [reply for reply in replies if reply.author_id != author.pk]
    if question and answers and rng.random() < 0.6:
        answer_accept(thread=thread, post=rng.choice(answers), actor=author, now=later)
    return 1


def _events(rng: random.Random, club: Space, people: list[Member], now: dt.datetime) -> None:
    """The club's events, written through community.events: a tasting held last week with
    its attendance, an online class next week (full, with a waitlist) and a poll."""
    if len(people) < 3:
        return
    host = people[0]
    club.moderators.add(host)  # the club's host runs its events
    guests = rng.sample(people[1:], min(len(people) - 1, 14))
    held = now - dt.timedelta(days=7)
    tasting = event_create(
        space=club,
        host=host,
        data=EventIn(
            title="Coffee tasting at the roastery",
            description="Three single origins, brewed three ways. Bring a friend.",
            format=Event.Format.IN_PERSON,
            location="Via Tortona 12, Milano",
            starts_at=held.replace(tzinfo=None) + dt.timedelta(hours=1),
            ends_at=held.replace(tzinfo=None) + dt.timedelta(hours=3),
            timezone="UTC",
            capacity=20,
        ),
        now=held - dt.timedelta(days=10),
    )
    for n, guest in enumerate(guests[:10]):
        rsvp = rsvp_set(
            event=tasting, member=guest, going=True, now=held - dt.timedelta(days=9 - n % 9)
        )
        if rng.random() < 0.7:
            rsvp_check_in(rsvp=rsvp, actor=host, now=tasting.starts_at + dt.timedelta(minutes=n))
    masterclass = event_create(
        space=club,
        host=host,
        data=EventIn(
            title="Online class: the perfect moka",
            description="Grind, water, heat: a live class with **Q&A** at the end.",
            format=Event.Format.ONLINE,
            url="https://meet.example.com/moka-class",
            starts_at=now + dt.timedelta(days=6),
            ends_at=now + dt.timedelta(days=6, hours=1),
            timezone="Europe/Rome",
            capacity=8,
        ),
        now=now - dt.timedelta(days=2),
    )
    for n, guest in enumerate(guests):
        rsvp_set(event=masterclass, member=guest, going=True, now=now - dt.timedelta(hours=30 - n))
    thread = thread_create(
        space=club,
        author=host,
        title="Which class next?",
        body="Tell us what you would like to learn at the next online class.",
        now=now - dt.timedelta(days=3),
    )
    poll = poll_create(
        thread=thread,
        author=host,
        question="Which class next?",
        options=["Espresso at home", "Cold brew", "Latte art"],
        results=Poll.Results.ALWAYS,
        now=now - dt.timedelta(days=3),
    )
    choices = list(poll.options.values_list("pk", flat=True))
    for n, guest in enumerate(guests):
        poll_vote(
            poll=poll,
            member=guest,
            option_ids=[rng.choice(choices)],
            now=now - dt.timedelta(days=2, hours=n),
        )
