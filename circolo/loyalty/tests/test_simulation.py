"""The rule simulation: hand-computed replays of 90 days (caps per local day, once rules,
photo reviews, order points rounded down with multipliers, first purchases, birthdays),
the draft against the rules in force, and publishing changing what new activities earn."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Any

import pytest

from circolo.activity.services import activity_record
from circolo.commerce.models import Order, OrderLine
from circolo.loyalty import ledger
from circolo.loyalty.models import MemberTier, Movement, Reason, RewardsProfile, RuleSet, Tier
from circolo.loyalty.rules import (
    default_rules,
    rules_clean,
    rules_in_force,
    ruleset_draft_save,
    ruleset_publish,
)
from circolo.loyalty.simulation import Simulation, simulate, utc_offsets
from circolo.people.models import Member
from circolo.testing.commerce import make_store
from circolo.testing.factories import ActivityFactory, MemberFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2025, 4, 15, 12, 0, tzinfo=UTC)
ROME = zoneinfo.ZoneInfo("Europe/Rome")
_ids = itertools.count(1)


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def act(member: Member, kind: str, when: dt.datetime, **properties: Any) -> None:
    ActivityFactory(member=member, workspace=member.workspace, kind=kind, occurred_at=when,
                    properties=properties)  # fmt: skip


def order(
    store: Any,
    member: Member | None,
    paid_at: dt.datetime | None,
    lines: list[tuple[int, int, int]],
    *,
    currency: str = "EUR",
    cancelled: bool = False,
    placed_at: dt.datetime | None = None,
    status: str = "paid",
) -> Order:
    """An order row with lines (quantity, unit price, discount); shipping and tax are set
    to show they are left out."""
    placed = placed_at or paid_at
    assert placed is not None
    row = Order.objects.create(
        workspace=store.workspace, store=store, external_id=f"o{next(_ids)}", member=member,
        currency=currency, shipping_minor=700, tax_minor=300, status=status, base_status=status,
        placed_at=placed, paid_at=paid_at, source_updated_at=placed,
        cancelled_at=placed if cancelled else None,
    )  # fmt: skip
    for number, (quantity, price, discount) in enumerate(lines):
        OrderLine.objects.create(
            workspace=store.workspace, order=row, external_id=f"l{number}", quantity=quantity,
            unit_price_minor=price, discount_minor=discount,
        )  # fmt: skip
    return row


def paid_before(member: Member, rule: str, reason: str, when: dt.datetime) -> None:
    """A movement of the ledger from before the window (the member was paid `rule`)."""
    ledger.movements_post(
        workspace_id=member.workspace_id,
        items=[
            ledger.transfer(
                key=f"old:{rule}:{member.pk}", reason=reason, member_id=member.pk,
                source=ledger.ISSUANCE, target=ledger.member_account(member.pk), points=10,
                rule=rule, occurred_at=when,
            )
        ],
    )  # fmt: skip


def row(simulation: Simulation, key: str) -> Any:
    return next(r for r in simulation.rules if r.key == key)


def figures(simulation: Simulation, key: str) -> tuple[int, int, int, int]:
    """(draft points, draft members, in-force points, in-force members) of a rule."""
    r = row(simulation, key)
    return (r.draft.points, r.draft.members, r.in_force.points, r.in_force.members)


@pytest.fixture
def rome(workspace: Any) -> Any:
    workspace.time_zone = "Europe/Rome"
    workspace.save()
    return workspace


@pytest.fixture
def people(rome: Any) -> dict[str, Member]:
    return {name: MemberFactory(workspace=rome, display_name=name) for name in
            ("ana", "bea", "carlo", "dario", "eva")}  # fmt: skip


@pytest.fixture
def history(rome: Any, people: dict[str, Member]) -> None:
    """90 days (2025-01-15 12:00 UTC to 2025-04-15 12:00 UTC) of a small community and shop.

    The window crosses Rome's switch to summer time (2025-03-30 01:00 UTC).
    """
    ana, bea, carlo, dario, eva = (people[n] for n in ("ana", "bea", "carlo", "dario", "eva"))
    # Posts: five on one day (cap 3), two that are one UTC day but two Rome days in summer
    # (21:30 and 22:30 UTC = 23:30 and 00:30 CEST) and in winter (22:30 and 23:30 UTC).
    for minute in range(5):
        act(ana, "post", at(3, 5, 10, minute))
    act(ana, "post", at(4, 10, 21, 30))
    act(ana, "post", at(4, 10, 22, 30))
    act(ana, "post", at(1, 10))  # before the window
    act(ana, "post", NOW + dt.timedelta(minutes=1))  # after it
    act(carlo, "post", at(2, 10, 22, 30))
    act(carlo, "post", at(2, 10, 23, 30))
    # Reviews: one with photos, one without, one whose "photos" is 0.
    act(bea, "review", at(2, 1), photos=2)
    act(bea, "review", at(2, 1, 11))
    act(carlo, "review", at(2, 2), photos=0)
    # Sign-ups: bea was paid hers before the window (a second sign-up pays nothing).
    act(ana, "signup", at(1, 20))
    act(bea, "signup", at(1, 20))
    act(bea, "signup", at(1, 21))
    paid_before(bea, "signup", Reason.ACTION, at(1, 2))
    # An activity of another workspace is never counted.
    act(MemberFactory(), "post", at(3, 1))

    store = make_store(rome, external_id="bottega.myshopify.com")
    gold = Tier.objects.create(workspace=rome, name="Gold", threshold=1, multiplier_percent=150)
    MemberTier.objects.create(member=bea, workspace=rome, tier=gold)
    # ana: 2 x 6.49 + (5.00 - 1.00) = 16.98 (shipping and tax left out), then 9.99.
    order(store, ana, at(3, 1), [(2, 649, 0), (1, 500, 100)])
    order(store, ana, at(3, 20), [(1, 999, 0)])
    # bea: 12.99 at 150%.
    order(store, bea, at(2, 15), [(1, 1299, 0)])
    # carlo earned on an order before the window: no first purchase now.
    paid_before(carlo, "order", Reason.ORDER, at(1, 1, year=2025) - dt.timedelta(days=30))
    order(store, carlo, at(4, 1), [(2, 2500, 0)])
    # dario: a cancelled order, one before the window, one never paid, then yen.
    order(store, dario, at(2, 1), [(1, 10_000, 0)], cancelled=True)
    order(store, dario, at(1, 2), [(1, 10_000, 0)])
    order(store, dario, None, [(1, 10_000, 0)], placed_at=at(2, 3), status="pending")
    order(store, dario, at(3, 3), [(3, 500, 0)], currency="JPY")
    # An order of nobody (a guest) earns nothing.
    order(store, None, at(3, 3), [(1, 10_000, 0)])
    # Birthdays: eva's on 10 March, told in 2024; dario told his on 1 March (too late).
    RewardsProfile.objects.create(member=eva, workspace=rome, birthday_month=3,
                                  birthday_day=10, birthday_set_at=at(6, 1, year=2024))  # fmt: skip
    RewardsProfile.objects.create(member=dario, workspace=rome, birthday_month=3,
                                  birthday_day=12, birthday_set_at=at(3, 1))  # fmt: skip


DRAFT = {
    "order": {"points": 2, "per": 5},
    "post": {"points": 20, "daily_cap": 1},
    "review": {"points": 40, "daily_cap": 1},
    "review_photo": {"enabled": False},
    "signup": {"points": 150},
    "first_purchase": {"enabled": False},
}


def test_defaults_and_draft_hand_computed(rome, people, history) -> None:
    result = simulate(workspace_id=rome.pk, rules=rules_clean(DRAFT), now=NOW)
    assert result.since == NOW - dt.timedelta(days=90) and result.currency == "EUR"
    # Posts under the rules in force (10 points, 3 a day): ana 3 + 1 + 1, carlo 1 + 1.
    # Draft (20 points, 1 a day, Rome days): ana on 5 March, 10 and 11 April; carlo on
    # 10 and 11 February.
    assert figures(result, "post") == (100, 2, 70, 2)
    assert row(result, "post").events == 9
    # Reviews: bea 2 (one with photos), carlo 1 whose photos are 0.
    assert figures(result, "review") == (80, 2, 150, 2)
    assert figures(result, "review_photo") == (0, 0, 50, 1)
    # Sign-up once per member: only ana (bea was paid before the window).
    assert figures(result, "signup") == (150, 1, 100, 1)
    # Orders, rounded down per order: in force 16 + 9 (ana) + 12.99 x 150% = 19 (bea)
    # + 50 (carlo) + 1500 yen = 1500 (dario); draft 2 per 5: 6 + 3 + 7 + 20 + 600.
    assert figures(result, "order") == (636, 4, 1594, 4)
    assert row(result, "order").events == 5
    # First purchase: ana, bea, dario (his earlier order never earned); carlo had earned.
    assert figures(result, "first_purchase") == (0, 0, 600, 3)
    # Birthday: eva only (dario told his less than 30 days before).
    assert figures(result, "birthday") == (100, 1, 100, 1)
    assert figures(result, "reply") == (0, 0, 0, 0)

    total = result.total
    assert (total.draft.points, total.in_force.points) == (1066, 2664)
    assert (total.draft.members, total.in_force.members) == (5, 5)
    # 100 points are worth EUR 1.00 by default.
    assert (total.draft.cost_minor, total.in_force.cost_minor) == (1066, 2664)
    assert (total.points_diff, total.cost_diff) == (-1598, -1598)
    assert total.in_force_cost_text == "EUR 26.64"
    assert total.cost_diff_text == "EUR -15.98"
    assert row(result, "post").cost_diff_text == "+EUR 0.30"


def test_same_rules_no_difference_and_value_of_points(rome, people, history) -> None:
    from circolo.loyalty.rules import program_get

    program = program_get(workspace_id=rome.pk)
    program.value_per_100_minor = 250
    program.save()
    result = simulate(workspace_id=rome.pk, rules=default_rules(), now=NOW)
    assert all(r.points_diff == 0 and r.members_diff == 0 for r in result.rules)
    # 2664 points at EUR 2.50 per 100, rounded down.
    assert result.total.draft.cost_minor == 2664 * 250 // 100 == 6660


def test_published_rules_are_the_comparison(rome, people, history, owner) -> None:
    ruleset_draft_save(workspace=rome, raw={"post": {"points": 1, "daily_cap": 0}}, actor=None)
    ruleset_publish(workspace=rome, actor=None)
    result = simulate(workspace_id=rome.pk, rules=default_rules(), now=NOW)
    # In force now: 1 point per post, no cap: 9 posts.
    assert figures(result, "post") == (70, 2, 9, 2)


def test_empty_workspace(rome) -> None:
    result = simulate(workspace_id=rome.pk, rules=default_rules(), now=NOW)
    assert result.total.draft.points == 0 and result.total.events == 0


def test_activity_photos_as_text_and_a_short_window(rome, people) -> None:
    act(people["ana"], "review", NOW - dt.timedelta(days=2), photos="3")
    act(people["ana"], "review", NOW - dt.timedelta(days=20), photos=1)
    result = simulate(workspace_id=rome.pk, rules=default_rules(), days=7, now=NOW)
    assert figures(result, "review_photo") == (50, 1, 50, 1)
    assert result.days == 7


def test_utc_offsets_find_the_daylight_saving_switches() -> None:
    segments = utc_offsets(ROME, at(1, 1), at(12, 31))
    assert segments == [
        (at(1, 1), 3600),
        (dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC), 7200),
        (dt.datetime(2025, 10, 26, 1, 0, tzinfo=UTC), 3600),
    ]
    assert utc_offsets(zoneinfo.ZoneInfo("UTC"), at(1, 1), at(12, 31)) == [(at(1, 1), 0)]


def test_publishing_changes_what_new_activities_earn(
    rome, people, django_capture_on_commit_callbacks
) -> None:
    ana = people["ana"]
    ruleset_draft_save(workspace=rome, raw={"post": {"points": 33, "daily_cap": 0}}, actor=None)
    # A draft changes nothing yet.
    with django_capture_on_commit_callbacks(execute=True):
        activity_record(workspace=rome, member=ana, kind="post", channel="community",
                        occurred_at=NOW, source="test", source_id="p1")  # fmt: skip
    assert Movement.objects.get(member=ana, rule="post").points == 10
    published = ruleset_publish(workspace=rome, actor=None)
    assert published.status == RuleSet.Status.PUBLISHED
    assert rules_in_force(workspace_id=rome.pk)["post"]["points"] == 33
    with django_capture_on_commit_callbacks(execute=True):
        activity_record(workspace=rome, member=ana, kind="post", channel="community",
                        occurred_at=NOW, source="test", source_id="p2")  # fmt: skip
    assert sorted(Movement.objects.filter(member=ana, rule="post").values_list(
        "points", flat=True)) == [10, 33]  # fmt: skip
    assert ledger.ledger_verify(workspace_id=rome.pk).ok


def test_a_free_first_order_pays_no_first_purchase(rome, people) -> None:
    store = make_store(rome, external_id="bottega.myshopify.com")
    ana, bea = people["ana"], people["bea"]
    # ana's first order cost nothing (all discounted); bea's free order came second.
    order(store, ana, at(3, 1), [(1, 1000, 1000)])
    order(store, ana, at(3, 2), [(1, 1000, 0)])
    order(store, bea, at(3, 1), [(1, 1000, 0)])
    order(store, bea, at(3, 2), [(1, 1000, 2000)])
    result = simulate(workspace_id=rome.pk, rules=default_rules(), now=NOW)
    assert figures(result, "first_purchase") == (200, 1, 200, 1)
    assert row(result, "first_purchase").in_force.members == 1
    assert figures(result, "order") == (20, 2, 20, 2)
    assert row(result, "order").events == 4
