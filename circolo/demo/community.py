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

from circolo.community.models import Space, Thread
from circolo.community.services import (
    RateLimited,
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
        space_create(
            workspace=workspace,
            actor=None,
            name="Club Aurora",
            slug="club",
            description="Members only: early news, tastings and events.",
            visibility=Space.Visibility.MEMBERS,
        )
        space_create(
            workspace=workspace,
            actor=None,
            name="Moka owners",
            slug="moka-owners",
            description="For members who bought a Moka pot.",
            visibility=Space.Visibility.SEGMENT,
            segment={"skus": [OWNER_SKU]},
        )
    return created


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
    except RateLimited:
        return 0  # the same member again within seconds: the community would refuse it too
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
        except RateLimited:
            continue
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
