"""What a rule set would have paid: the last days of activity and orders replayed under it.

The staff simulate their draft before publishing it: the same window is replayed under the
draft and under the rules in force, in one pass over the data, and each rule shows the points
it would have issued, their cost (Program.value_per_100_minor per 100 points, in the
workspace currency), the members it would have paid and the difference. It is a replay of
what happened, not of what the ledger holds: caps count per member, rule and local day (the
workspace's time zone), "once" rules pay members who had not been paid that rule before the
window, the first purchase is a member's first order in the window when no order of theirs
earned before it. Everything is read set-based (one GROUP BY over the activities, one
streamed query over the orders), so a window of a million activities and a million orders
takes seconds.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import zoneinfo
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from circolo.activity import dialect
from circolo.activity.models import Activity
from circolo.commerce.money import format_money
from circolo.commerce.selectors import orders_for_points, orders_merchandise_since
from circolo.core.models import Workspace
from circolo.loyalty.models import Ambassador, MemberTier, Movement, Reason, RewardsProfile
from circolo.loyalty.orders import members_multipliers, order_points
from circolo.loyalty.rules import ACTION_RULES, ORDER, RULE_LABELS, program_get, rules_in_force

FIRST_PURCHASE = "first_purchase"
BIRTHDAY = "birthday"
REVIEW_PHOTO = "review_photo"
# A birthday pays only if it was given this long before (see loyalty.birthdays).
BIRTHDAY_NOTICE = dt.timedelta(days=30)
CHUNK = 5000
FETCH = 10_000
# The order the rules are shown in: orders first, then the actions as declared.
RULE_ORDER: tuple[str, ...] = (ORDER, *ACTION_RULES)


def _kind_rules() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for spec in ACTION_RULES.values():
        for kind in spec.kinds:
            found.setdefault(kind, []).append(spec.key)
    return found


KIND_RULES = _kind_rules()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Outcome:
    """What one rule (or all of them) would have paid under one rule set."""

    points: int
    cost_minor: int
    members: int


@dataclass(frozen=True)
class RuleResult:
    """One rule's figures under the draft and under the rules in force."""

    key: str
    label: str
    currency: str
    # How many actions (or orders, birthdays) of the window the rule looks at, before caps.
    events: int
    draft: Outcome
    in_force: Outcome

    @property
    def points_diff(self) -> int:
        return self.draft.points - self.in_force.points

    @property
    def cost_diff(self) -> int:
        return self.draft.cost_minor - self.in_force.cost_minor

    @property
    def members_diff(self) -> int:
        return self.draft.members - self.in_force.members

    @property
    def draft_cost_text(self) -> str:
        return format_money(self.draft.cost_minor, self.currency)

    @property
    def in_force_cost_text(self) -> str:
        return format_money(self.in_force.cost_minor, self.currency)

    @property
    def cost_diff_text(self) -> str:
        text = format_money(self.cost_diff, self.currency)
        return f"+{text}" if self.cost_diff > 0 else text


@dataclass(frozen=True)
class Simulation:
    """The replay of [since, until) under a draft and under the rules in force."""

    since: dt.datetime
    until: dt.datetime
    days: int
    currency: str
    value_per_100_minor: int
    rules: list[RuleResult]
    total: RuleResult


class _Sum:
    """Points and members one rule pays under one rule set, added up during the replay."""

    __slots__ = ("members", "points")

    def __init__(self) -> None:
        self.points = 0
        self.members: set[int] = set()


class _Tally:
    """Running figures of one rule set during the replay."""

    def __init__(self, rules: dict[str, dict[str, Any]]) -> None:
        self.rules = rules
        self.sums = {key: _Sum() for key in RULE_ORDER}

    def pays(self, key: str) -> bool:
        rule = self.rules[key]
        return bool(rule["enabled"]) and int(rule["points"]) > 0

    def pay_each(self, key: str, members: set[int]) -> None:
        """Pay the rule's points once to each of these members (once rules, birthdays)."""
        if self.pays(key) and members:
            found = self.sums[key]
            found.points += int(self.rules[key]["points"]) * len(members)
            found.members |= members


def cost_minor(points: int, value_per_100_minor: int) -> int:
    """What `points` are worth in minor units of the workspace currency (rounded down)."""
    return points * value_per_100_minor // 100


# --------------------------------------------------------------------------- the replay


def simulate(
    *,
    workspace_id: int,
    rules: dict[str, dict[str, Any]],
    days: int = 90,
    now: dt.datetime | None = None,
) -> Simulation:
    """Replay the last `days` days under `rules` (a clean rule set, e.g. the draft's) and
    under the rules in force; per rule and in total the points, their cost, the members paid
    and the difference. Reads only; a few set-based queries whatever the volume."""
    until = now or timezone.now()
    since = until - dt.timedelta(days=days)
    workspace = Workspace.objects.only("currency", "time_zone").get(pk=workspace_id)
    zone = _zone(workspace.time_zone)
    program = program_get(workspace_id=workspace_id)
    tallies = [_Tally(rules=rules), _Tally(rules=rules_in_force(workspace_id=workspace_id))]
    events: Counter[str] = Counter()
    _community(workspace_id, since, until, zone, tallies, events)
    _orders(workspace_id, since, until, tallies, events)
    _birthdays(workspace_id, since, until, zone, tallies, events)
    value = program.value_per_100_minor
    currency = workspace.currency

    def outcome(tally: _Tally, keys: Sequence[str]) -> Outcome:
        points = sum(tally.sums[key].points for key in keys)
        members: set[int] = set()
        for key in keys:
            members |= tally.sums[key].members
        return Outcome(points=points, cost_minor=cost_minor(points, value), members=len(members))

    results = [
        RuleResult(
            key=key,
            label=str(RULE_LABELS[key]),
            currency=currency,
            events=events[key],
            draft=outcome(tallies[0], [key]),
            in_force=outcome(tallies[1], [key]),
        )
        for key in RULE_ORDER
    ]
    total = RuleResult(
        key="total",
        label="",
        currency=currency,
        events=sum(events.values()),
        draft=outcome(tallies[0], RULE_ORDER),
        in_force=outcome(tallies[1], RULE_ORDER),
    )
    return Simulation(
        since=since,
        until=until,
        days=days,
        currency=currency,
        value_per_100_minor=value,
        rules=results,
        total=total,
    )


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


# --------------------------------------------------------------------------- community


def _community(
    workspace_id: int,
    since: dt.datetime,
    until: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    tallies: Sequence[_Tally],
    events: Counter[str],
) -> None:
    once_candidates: dict[str, set[int]] = {
        key: set() for key, spec in ACTION_RULES.items() if spec.once and spec.kinds
    }
    # Rules paying for several kinds cap their sum per member and day.
    multi = {key for key, spec in ACTION_RULES.items() if len(spec.kinds) > 1}
    merged: Counter[tuple[str, int, Any]] = Counter()
    # Per kind, what each of its rules does with a (member, day) count, worked out once:
    # (rule, counts photos only, [(points, cap, sum) for each rule set that pays it]).
    plans: dict[str, list[tuple[str, bool, list[tuple[int, int, _Sum]]]]] = {
        kind: [
            (key, key == REVIEW_PHOTO, [] if key in once_candidates or key in multi
             else _payers(tallies, key))
            for key in keys
        ]
        for kind, keys in KIND_RULES.items()
    }  # fmt: skip
    counted: Counter[str] = Counter()
    for member_id, day, kind, count, photos in activity_day_counts(
        workspace_id=workspace_id,
        kinds=sorted(KIND_RULES),
        since=since,
        until=until,
        zone=zone,
    ):
        for key, photos_only, payers in plans[kind]:
            n = photos if photos_only else count
            if n <= 0:
                continue
            counted[key] += n
            for points, cap, found in payers:
                found.points += (n if not cap or n < cap else cap) * points
                found.members.add(member_id)
            if key in once_candidates:
                once_candidates[key].add(member_id)
            elif key in multi:
                merged[(key, member_id, day)] += n
    events.update(counted)
    for (key, member_id, _day), n in merged.items():
        for points, cap, found in _payers(tallies, key):
            found.points += (n if not cap or n < cap else cap) * points
            found.members.add(member_id)
    for key, members in once_candidates.items():
        fresh = members - _paid_before(workspace_id, key, Reason.ACTION, members, since)
        for tally in tallies:
            tally.pay_each(key, fresh)


def _payers(tallies: Sequence[_Tally], key: str) -> list[tuple[int, int, _Sum]]:
    """(points, daily cap, where to add) of each rule set that pays the rule."""
    return [
        (int(tally.rules[key]["points"]), int(tally.rules[key]["daily_cap"]), tally.sums[key])
        for tally in tallies
        if tally.pays(key)
    ]


def activity_day_counts(
    *,
    workspace_id: int,
    kinds: Sequence[str],
    since: dt.datetime,
    until: dt.datetime,
    zone: zoneinfo.ZoneInfo,
) -> Iterator[tuple[int, Any, str, int, int]]:
    """(member id, local day, kind, activities, of which reviews with photos) per member,
    day in `zone` and kind, for activities of these kinds in [since, until): one GROUP BY
    query, streamed. The day is a value to group by (a date or its text), not to show."""
    if not kinds:
        return
    postgres = dialect.is_postgres()
    mark = dialect.placeholder()
    day_sql, day_params = _local_day_sql("occurred_at", zone, since, until)
    kinds_params: list[Any]
    if postgres:
        kinds_sql, kinds_params = "kind = ANY(%s)", [list(kinds)]
        photos = (
            "CASE WHEN jsonb_typeof(properties->'photos') = 'number'"
            " THEN (properties->>'photos')::numeric >= 1"
            " WHEN properties->>'photos' ~ '^\\s*[0-9]+\\s*$'"
            " THEN (properties->>'photos')::numeric >= 1 ELSE false END"
        )
    else:
        kinds_sql = f"kind IN ({', '.join(mark for _kind in kinds)})"
        kinds_params = list(kinds)
        photos = "COALESCE(CAST(json_extract(properties, '$.photos') AS REAL) >= 1, 0)"
    sql = (
        f"SELECT member_id, {day_sql} AS day, kind, COUNT(*),"
        # Only reviews have photos: the JSON is read for them alone.
        f" SUM(CASE WHEN kind <> 'review' THEN 0 WHEN {photos} THEN 1 ELSE 0 END)"
        f" FROM {Activity._meta.db_table}"
        f" WHERE workspace_id = {mark} AND {kinds_sql}"
        f" AND occurred_at >= {mark} AND occurred_at < {mark}"
        # By position: the day expression carries parameters, written once.
        f" GROUP BY 1, 2, 3"
    )
    params = [
        *day_params,
        workspace_id,
        *kinds_params,
        dialect.datetime_param(since),
        dialect.datetime_param(until),
    ]
    cursor = dialect.raw_cursor()
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH):
            # COUNT and SUM of 0/1 are integers, never NULL (a group has rows).
            yield from rows
    finally:
        cursor.close()


def _local_day_sql(
    column: str, zone: zoneinfo.ZoneInfo, since: dt.datetime, until: dt.datetime
) -> tuple[str, list[Any]]:
    """The calendar day of a UTC timestamp column in `zone`, for timestamps in [since, until).

    PostgreSQL knows time zones. SQLite does not, so the zone's UTC offsets in the window
    (they change only at daylight-saving switches) become a CASE over the switch moments.
    """
    if dialect.is_postgres():
        return f"(({column}) AT TIME ZONE %s)::date", [zone.key]
    segments = utc_offsets(zone, since, until)
    if len(segments) == 1:
        return f"date({column}, ?)", [f"{segments[0][1]:+d} seconds"]
    terms: list[str] = []
    params: list[Any] = []
    for (_start, before), (switch, _after) in itertools.pairwise(segments):
        terms.append(f"WHEN {column} < ? THEN ?")
        params.extend([dialect.datetime_param(switch), f"{before:+d} seconds"])
    params.append(f"{segments[-1][1]:+d} seconds")
    return f"date({column}, CASE {' '.join(terms)} ELSE ? END)", params


def utc_offsets(
    zone: zoneinfo.ZoneInfo, since: dt.datetime, until: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """[(from when, UTC offset in seconds)] of `zone` over [since, until): the first starts at
    `since`, each next one at a daylight-saving switch (found to the second)."""

    def offset(moment: dt.datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    step = dt.timedelta(hours=1)
    segments = [(since, offset(since))]
    moment = since
    while moment < until:
        following = min(moment + step, until)
        if offset(following) != segments[-1][1]:
            low, high = moment, following
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            switch = high.replace(microsecond=0)
            if offset(switch) == segments[-1][1]:
                switch += dt.timedelta(seconds=1)
            segments.append((switch, offset(switch)))
        moment = following
    return segments


def _paid_before(
    workspace_id: int, rule: str, reason: str, members: set[int], since: dt.datetime
) -> set[int]:
    """Which of these members the ledger paid `rule` before the window (once rules): one
    query whatever their number, each looked up by the (member, rule, time) index."""
    if not members:
        return set()
    mark = dialect.placeholder()
    in_members, members_param = dialect.ids_filter("member_id", sorted(members))
    cursor = dialect.raw_cursor()
    try:
        cursor.execute(
            f"SELECT DISTINCT member_id FROM {Movement._meta.db_table} WHERE {in_members}"
            f" AND rule = {mark} AND occurred_at < {mark}"
            f" AND {dialect.workspace_term()} = {mark} AND reason = {mark}",
            [members_param, rule, dialect.datetime_param(since), workspace_id, reason],
        )
        return {member_id for (member_id,) in cursor.fetchall()}
    finally:
        cursor.close()


# --------------------------------------------------------------------------- orders


def _orders(
    workspace_id: int,
    since: dt.datetime,
    until: dt.datetime,
    tallies: Sequence[_Tally],
    events: Counter[str],
) -> None:
    multipliers = _multipliers(workspace_id)
    payers = [(tally.rules[ORDER], tally.sums[ORDER]) for tally in tallies if tally.pays(ORDER)]
    # Rule sets with the same order rule compute each order's points once.
    rules_seen: list[dict[str, Any]] = []
    for rule, _found in payers:
        if rule not in rules_seen:
            rules_seen.append(rule)
    plans: list[tuple[dict[str, Any], list[_Sum], dict[tuple[int, str, int], int]]] = [
        (rule, [found for other, found in payers if other == rule], {}) for rule in rules_seen
    ]
    members: set[int] = set()
    # Members with an order of no merchandise (a free order): whether it came first is
    # looked up afterwards, for them alone.
    free: set[int] = set()
    orders = 0
    for _order_id, member_id, currency, base in orders_merchandise_since(
        workspace_id=workspace_id, since=since, until=until
    ):
        orders += 1
        members.add(member_id)
        if base <= 0:
            free.add(member_id)
            continue
        multiplier = multipliers.get(member_id, 100)
        key = (base, currency, multiplier)
        for rule, sums, known in plans:
            # Shops sell at a few prices: most orders' points were worked out already.
            points = known.get(key)
            if points is None:
                points = known[key] = order_points(
                    base_minor=base, currency=currency, rule=rule, multiplier=multiplier
                )
            if points > 0:
                for found in sums:
                    found.points += points
                    found.members.add(member_id)
    events[ORDER] += orders
    candidates = members - _first_order_free(workspace_id, since, until, free)
    fresh = candidates - _paid_before(workspace_id, ORDER, Reason.ORDER, candidates, since)
    events[FIRST_PURCHASE] += len(fresh)
    for tally in tallies:
        tally.pay_each(FIRST_PURCHASE, fresh)


def _first_order_free(
    workspace_id: int, since: dt.datetime, until: dt.datetime, members: set[int]
) -> set[int]:
    """Which of these members' first order of the window had no merchandise (the first
    purchase pays only for merchandise; a later order does not make up for it)."""
    if not members:
        return set()
    ids = [
        order_id
        for order_id, *_rest in orders_merchandise_since(
            workspace_id=workspace_id, since=since, until=until, member_ids=members
        )
    ]
    first: dict[int, tuple[dt.datetime, int, int]] = {}
    for order in orders_for_points(workspace_id=workspace_id, order_ids=ids):
        if order.member_id is None:
            continue
        key = (order.paid_at, order.order_id, sum(order.lines.values()))
        if order.member_id not in first or key < first[order.member_id]:
            first[order.member_id] = key
    return {member_id for member_id, (_at, _id, base) in first.items() if base <= 0}


def _multipliers(workspace_id: int) -> dict[int, int]:
    """The earn multipliers that are not 100% (members without one earn as is): only
    members with a tier or an ambassador's multiplier can have one."""
    ids = set(
        MemberTier.objects.filter(workspace_id=workspace_id, tier__isnull=False)
        .exclude(tier__multiplier_percent=100)
        .values_list("member_id", flat=True)
    )
    ids.update(
        Ambassador.objects.filter(workspace_id=workspace_id, status=Ambassador.Status.APPROVED)
        .exclude(multiplier_percent=100)
        .values_list("member_id", flat=True)
    )
    found: dict[int, int] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        found.update(members_multipliers(workspace_id=workspace_id, member_ids=chunk))
    return found


# --------------------------------------------------------------------------- birthdays


def _birthdays(
    workspace_id: int,
    since: dt.datetime,
    until: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    tallies: Sequence[_Tally],
    events: Counter[str],
) -> None:
    """Members whose birthday fell in the window, given early enough to be paid."""
    latest_set: dict[tuple[int, int], dt.datetime] = {}
    day = since.astimezone(zone).date()
    last = (until - dt.timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        # A birthday pays on its day if it was given NOTICE before (any time of that day).
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        keys = [(day.month, day.day)]
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            keys.append((2, 29))
        for key in keys:
            given_by = end - BIRTHDAY_NOTICE
            latest_set[key] = max(latest_set.get(key, given_by), given_by)
        day += dt.timedelta(days=1)
    if not latest_set:
        return
    paid: set[int] = set()
    for member_id, month, mday, set_at in RewardsProfile.objects.filter(
        workspace_id=workspace_id,
        birthday_month__in=sorted({month for month, _day in latest_set}),
        birthday_day__isnull=False,
        birthday_set_at__isnull=False,
        member__merged_into__isnull=True,
        member__erased_at__isnull=True,
    ).values_list("member_id", "birthday_month", "birthday_day", "birthday_set_at"):
        if month is None or mday is None or set_at is None:
            continue
        deadline = latest_set.get((month, mday))
        if deadline is not None and set_at <= deadline:
            paid.add(member_id)
    events[BIRTHDAY] += len(paid)
    for tally in tallies:
        tally.pay_each(BIRTHDAY, paid)
