"""The demo generator: realistic, deterministic by seed, idempotent, through the real services."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import phonenumbers
import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.activity.kinds import KINDS
from circolo.activity.models import Activity, ActivityChunk, DailyRollup, MemberScore
from circolo.commerce.models import Order, Refund
from circolo.demo import generator, texts
from circolo.demo.generator import (
    PHASE_ACTIVITIES,
    PHASE_MEMBERS,
    PHASE_ORDERS,
    _World,
    demo_generate,
    demo_generated,
)
from circolo.demo.loyalty import FRIEND_DOMAIN
from circolo.people.models import Identity, Member, MemberTag, MergeSuggestion
from circolo.people.selectors import pending_suggestions

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def handlers_in_process(settings):
    """Activity handlers run in this process at commit, even when REDIS_URL is set."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


SMALL = {"members": 60, "activities": 600, "seed": 11, "now": NOW}


def _activity_rows(workspace):
    # Commerce source ids and properties name the store row, community ones the thread and
    # post rows: compare without them.
    return sorted(
        (
            a.source_id.split(":", 1)[-1] if a.source == "commerce" else a.source_id,
            a.kind,
            a.channel,
            a.occurred_at,
            json.dumps({k: v for k, v in a.properties.items() if k != "store"}, sort_keys=True),
        )
        if a.source != "community"
        else (a.source, a.kind, a.channel, a.occurred_at, a.member.display_name)
        for a in Activity.objects.filter(workspace=workspace).select_related("member")
    )


def _member_rows(workspace):
    return sorted(
        (m.display_name, m.city, m.country, tuple(m.languages))
        for m in Member.objects.filter(workspace=workspace)
    )


@pytest.mark.django_db
def test_small_store_has_every_kind_of_thing(workspace):
    summary = demo_generate(workspace=workspace, **SMALL)

    assert summary.members == 60
    # The demo's customers; the rewards program adds the friends they invited.
    customers = Member.objects.filter(workspace=workspace).exclude(
        identities__value__endswith=f"@{FRIEND_DOMAIN}"
    )
    assert summary.members_created == customers.count() == 60
    # Orders and refunds of the plan went to the shop's books through the file import,
    # which recorded their activities (placed, paid, fulfilled, refunded) itself.
    direct = Activity.objects.filter(workspace=workspace, source="demo")
    assert summary.activities_created == direct.count() < 600
    # The invited friends' first orders come on top of the imported books.
    books = Order.objects.filter(workspace=workspace).exclude(external_id__startswith="ref-")
    assert summary.orders == books.count() > 0
    assert summary.refunds == Refund.objects.filter(workspace=workspace).count() > 0
    from_books = Activity.objects.filter(workspace=workspace, source="commerce").exclude(
        source_id__contains=":order:ref-"
    )
    assert from_books.filter(kind="order").count() == summary.orders
    assert from_books.filter(kind="refund").count() == summary.refunds
    kinds = set(direct.values_list("kind", flat=True))
    assert len(kinds) >= 8
    assert kinds <= set(KINDS) - {"order", "refund"}
    assert set(summary.kinds) == kinds
    assert sum(summary.kinds.values()) == summary.activities_created
    # Every order joined the member of its customer record: nobody new, no stray member.
    assert not Order.objects.filter(workspace=workspace, member__isnull=True).exists()

    # Customers in all four languages, with names, cities and countries.
    languages = Counter(
        lang for langs in Member.objects.filter(workspace=workspace).values_list(
            "languages", flat=True
        ) for lang in langs
    )  # fmt: skip
    assert set(texts.LANGUAGES) <= set(languages)
    assert set(summary.languages) == set(texts.LANGUAGES)
    assert not customers.filter(display_name="").exists()
    assert not customers.filter(city="").exists()
    chinese = [m for m in Member.objects.filter(workspace=workspace) if "zh-hans" in m.languages]
    assert chinese and all(
        any("\u4e00" <= ch <= "\u9fff" for ch in m.display_name) for m in chinese
    )

    # Identities: store ids, emails, some phones, tags set by the team.
    kinds_of_identity = set(
        Identity.objects.filter(workspace=workspace).values_list("kind", flat=True)
    )
    assert {"customer_id", "email", "phone"} <= kinds_of_identity
    for value in Identity.objects.filter(workspace=workspace, kind="phone").values_list(
        "value", flat=True
    ):
        assert phonenumbers.is_valid_number(phonenumbers.parse(value))
    assert MemberTag.objects.filter(workspace=workspace, tag=texts.CHAMPION_TAG).exists()

    # Times: inside the 18 months before `now`, tz-aware.
    first = Activity.objects.filter(workspace=workspace).order_by("occurred_at").first()
    last = Activity.objects.filter(workspace=workspace).order_by("-occurred_at").first()
    assert first is not None and last is not None
    assert last.occurred_at <= NOW
    assert first.occurred_at >= NOW - dt.timedelta(days=18 * 31)


@pytest.mark.django_db
def test_properties_are_short_texts_in_the_members_language(workspace):
    demo_generate(workspace=workspace, **SMALL)
    posts = Activity.objects.filter(workspace=workspace, kind="post", source="demo").select_related(
        "member"
    )
    assert posts
    for post in posts:
        language = post.member.languages[0]
        titles = texts.POST_TITLES[language]
        assert any(post.properties["title"].startswith(t.split("{")[0]) for t in titles), (
            post.properties
        )
    for order in Order.objects.filter(workspace=workspace).prefetch_related("lines"):
        assert order.total_minor > 0
        assert order.total_minor == sum(line.gross_minor for line in order.lines.all())
        assert order.currency in {c.currency for c in texts.COUNTRIES}


@pytest.mark.django_db
def test_planted_twins_become_merge_suggestions(workspace):
    summary = demo_generate(workspace=workspace, **SMALL)

    assert summary.twins == 3  # at least one of each case
    assert summary.suggestions == pending_suggestions(workspace=workspace).count()
    codes = {
        reason["code"]
        for reasons in MergeSuggestion.objects.filter(workspace=workspace).values_list(
            "reasons", flat=True
        )
        for reason in reasons
    }
    assert {"same_email", "same_phone", "same_name_city"} <= codes


@pytest.mark.django_db
def test_handlers_maintain_rollups_and_scores(workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        demo_generate(workspace=workspace, **SMALL)
    total = DailyRollup.objects.filter(workspace=workspace).aggregate(n=Sum("count"))["n"]
    assert total == Activity.objects.filter(workspace=workspace).count()
    assert not ActivityChunk.objects.filter(workspace=workspace, handled_at__isnull=True).exists()
    active = Activity.objects.filter(workspace=workspace).values("member").distinct().count()
    assert MemberScore.objects.filter(workspace=workspace).count() == active


@pytest.mark.django_db
def test_same_seed_same_store(workspace, other_workspace):
    demo_generate(workspace=workspace, **SMALL)
    demo_generate(workspace=other_workspace, **SMALL)
    assert _activity_rows(workspace) == _activity_rows(other_workspace)
    assert _member_rows(workspace) == _member_rows(other_workspace)


@pytest.mark.django_db
def test_other_seed_other_store(workspace, other_workspace):
    demo_generate(workspace=workspace, **SMALL)
    demo_generate(workspace=other_workspace, **{**SMALL, "seed": 12})
    assert _member_rows(workspace) != _member_rows(other_workspace)


@pytest.mark.django_db
def test_running_twice_adds_nothing(workspace):
    assert not demo_generated(workspace=workspace, members=60, activities=600, seed=11)
    first = demo_generate(workspace=workspace, **SMALL)
    counts = (
        Member.objects.filter(workspace=workspace).count(),
        Identity.objects.filter(workspace=workspace).count(),
        MergeSuggestion.objects.filter(workspace=workspace).count(),
        MemberTag.objects.filter(workspace=workspace).count(),
        Activity.objects.filter(workspace=workspace).count(),
        Order.objects.filter(workspace=workspace).count(),
        Refund.objects.filter(workspace=workspace).count(),
    )
    assert demo_generated(workspace=workspace, members=60, activities=600, seed=11)

    again = demo_generate(workspace=workspace, **SMALL)

    assert again.members_created == 0
    assert again.activities_created == 0
    assert again.activities_duplicate == first.activities_created
    assert counts == (
        Member.objects.filter(workspace=workspace).count(),
        Identity.objects.filter(workspace=workspace).count(),
        MergeSuggestion.objects.filter(workspace=workspace).count(),
        MemberTag.objects.filter(workspace=workspace).count(),
        Activity.objects.filter(workspace=workspace).count(),
        Order.objects.filter(workspace=workspace).count(),
        Refund.objects.filter(workspace=workspace).count(),
    )


@pytest.mark.django_db
def test_progress_reports_each_phase_to_its_total(workspace, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK", 100)
    monkeypatch.setattr(generator, "MEMBER_CHUNK", 10)
    seen: list[tuple[str, int, int]] = []
    demo_generate(
        workspace=workspace, members=30, activities=350, seed=1, now=NOW,
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )  # fmt: skip
    assert Activity.objects.filter(workspace=workspace, source="demo").count() < 350
    assert [p for p, _, _ in seen if p == PHASE_ORDERS] == [PHASE_ORDERS, PHASE_ORDERS]
    for phase, total in ((PHASE_MEMBERS, 30), (PHASE_ACTIVITIES, 350)):
        steps = [done for p, done, t in seen if p == phase and t == total]
        assert steps[0] == 0 and steps[-1] == total
        assert steps == sorted(steps) and len(steps) >= 3  # chunked, in order
    assert [p for p, _, _ in seen] == sorted(
        (p for p, _, _ in seen), key=[PHASE_MEMBERS, PHASE_ACTIVITIES, PHASE_ORDERS].index
    )


@pytest.mark.django_db
def test_rejects_impossible_sizes(workspace):
    with pytest.raises(ValueError):
        demo_generate(workspace=workspace, members=0, activities=10)
    with pytest.raises(ValueError):
        demo_generate(workspace=workspace, members=5, activities=-1)
    assert not Member.objects.filter(workspace=workspace).exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    members=st.integers(min_value=1, max_value=80),
    activities=st.integers(min_value=0, max_value=400),
    months=st.integers(min_value=1, max_value=24),
)
def test_any_world_is_valid_and_repeatable(seed, members, activities, months):
    """Without a database: every planned activity would pass validation, the same each time."""

    def plan():
        world = _World(seed=seed, members=members, activities=activities, months=months, now=NOW)
        world.make_people()
        world.make_events()
        return world, [
            (p.index, kind, round(at, 6), props, channel)
            for p, kind, at, props, channel in world.activity_stream()
        ]

    world, stream = plan()
    assert stream == plan()[1]
    assert len(world.people) == members
    assert len(stream) == activities
    assert len({p.customer_id for p in world.people}) == members
    # Every identity belongs to one record: twins share values only across channels.
    keys = Counter((i.channel, i.kind, i.value) for p in world.people for i in world.identities(p))
    assert max(keys.values()) == 1
    for _index, kind, at, props, channel in stream:
        assert kind in KINDS
        assert 0 <= at <= world.window + 1e-6
        assert 0 < len(channel) <= 40
        assert len(json.dumps(props, ensure_ascii=False).encode()) < 2_000


@pytest.mark.django_db
def test_the_community_has_spaces_threads_and_answers_once(workspace):
    from circolo.community.models import Post, Space, Thread

    summary = demo_generate(workspace=workspace, **SMALL)
    assert summary.threads == Thread.objects.filter(workspace=workspace).count() > 0
    assert Space.objects.filter(workspace=workspace, visibility="segment").exists()
    languages = set(Thread.objects.filter(workspace=workspace).values_list("language", flat=True))
    assert languages <= set(texts.LANGUAGES) and len(languages) >= 2
    posts = Post.objects.filter(workspace=workspace).count()
    assert Activity.objects.filter(workspace=workspace, source="community").exists()
    again = demo_generate(workspace=workspace, **SMALL)
    assert again.threads == 0 and Post.objects.filter(workspace=workspace).count() == posts
