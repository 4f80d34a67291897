"""Demo data for Bottega Aurora: customers in four languages and 18 months of their activity.

Everything goes through the real services, so the demo exercises the same paths as a store
integration: customers through `people.services.member_resolve` (which also plants the merge
suggestions), activities through `activity.services.activity_record_bulk` in chunks (so the
handlers maintain rollups and scores the real way).

The data is a function of the seed: the same seed gives the same customers, texts and source
keys; times are laid out backwards from `now`. Source keys carry the seed, the size and the
position, and every customer record has a verified key of its own, so a second run with the
same seed on the same workspace resolves to the same members and records nothing new.

Shapes: more customers join as months go by; how much each one does follows a heavy tail (a
few champions, many casual customers, some who stop after a while); days follow a weekly
rhythm and hours a daily one in the customer's own time zone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
import re
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.db import transaction
from django.utils import timezone

from circolo.activity.services import (
    ActivityIn,
    ActivityValidationError,
    activities_validate,
    activity_record_bulk,
)
from circolo.core.models import Workspace
from circolo.demo import texts
from circolo.demo.community import demo_community_ensure
from circolo.demo.loyalty import LoyaltySummary, demo_loyalty_ensure
from circolo.demo.shop import (
    SALE_KINDS,
    Sale,
    demo_books_import,
    demo_books_imported,
    demo_store_ensure,
)
from circolo.people.selectors import pending_suggestions
from circolo.people.services import IdentityIn, MemberAttrs, member_resolve, member_tag_add

# progress(phase, done, total): phases are PHASE_MEMBERS, PHASE_ACTIVITIES, PHASE_ORDERS.
ProgressFn = Callable[[str, int, int], None]
PHASE_MEMBERS = "members"
PHASE_ACTIVITIES = "activities"
PHASE_ORDERS = "orders"

SOURCE = "demo"
CHUNK = 10_000
MEMBER_CHUNK = 250
TWIN_SHARE = 0.02  # customers who show up a second time under another identity
DAY = 86_400.0
MONTH_DAYS = 30.436875

# What each kind of customer does, as relative weights per activity kind.
PERSONA_MIX: dict[str, dict[str, int]] = {
    "talker": {
        "post": 14, "reply": 26, "reaction_given": 22, "reaction_received": 12,
        "accepted_answer": 3, "vote": 6, "idea": 2, "event_rsvp": 3, "event_attendance": 2,
        "mention": 2, "order": 5, "review": 2, "support_message": 1,
    },
    "shopper": {
        "order": 34, "review": 12, "refund": 3, "support_message": 13, "reaction_given": 9,
        "vote": 6, "referral": 4, "mention": 4, "event_rsvp": 3, "event_attendance": 2,
        "post": 4, "reply": 6,
    },
    "fan": {
        "reaction_given": 24, "vote": 14, "event_rsvp": 10, "event_attendance": 8, "idea": 6,
        "mention": 10, "referral": 6, "order": 10, "review": 5, "post": 3, "reply": 4,
    },
    # Only twins planted from a WhatsApp support chat.
    "contact": {"support_message": 8, "order": 2},
}  # fmt: skip
PERSONAS = (("talker", 25), ("shopper", 50), ("fan", 25))

# Relative activity per weekday (Monday first) and per local hour.
WEEKDAY_WEIGHT = (1.0, 0.97, 1.0, 0.95, 0.85, 0.7, 0.8)
HOUR_WEIGHT = (
    1, 1, 1, 1, 1, 2, 4, 8, 10, 9, 8, 8, 10, 11, 8, 7, 7, 8, 10, 12, 14, 13, 9, 4,
)  # fmt: skip
REVIEW_STARS = ((5, 55), (4, 25), (3, 10), (2, 5), (1, 5))
ALL_KINDS = tuple(sorted({kind for mix in PERSONA_MIX.values() for kind in mix} | {"signup"}))


@dataclass(frozen=True)
class DemoSummary:
    """What one generation did; counts of *new* rows unless said otherwise."""

    workspace_id: int
    members: int  # customer records resolved (twins included)
    members_created: int
    twins: int  # customers planted twice, each a merge-suggestion case
    suggestions: int  # pending merge suggestions in the workspace after the run
    activities: int  # activities generated (new and already present)
    activities_created: int
    activities_duplicate: int
    kinds: dict[str, int]  # new activities per kind
    languages: dict[str, int]  # customers per main language
    seconds: float
    orders: int = 0  # orders imported into the demo store (with their refunds)
    refunds: int = 0
    threads: int = 0  # community threads written (with replies, reactions, answers)
    loyalty: LoyaltySummary | None = None  # the rewards program, when made by this run


@dataclass
class _Person:
    index: int
    display_name: str
    language: str  # the language they write in
    languages: tuple[str, ...]
    country: texts.Country
    city: str
    email: str
    phone: str
    customer_id: str
    handle: str
    persona: str
    joined: float  # seconds since the window start (negative: customer from before)
    left: float  # seconds since the window start when they stop
    appetite: float
    tags: list[str] = field(default_factory=list)
    email_verified: bool = True
    twin_case: str = ""  # "", or how this record duplicates an earlier customer
    member_id: int = 0


@dataclass(frozen=True)
class _Event:
    at: float  # seconds since the window start
    title: int  # index into texts.EVENT_TITLES[lang]
    city: str


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[Any], cumulative: Sequence[float]) -> Any:
    return items[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


class _World:
    """The random world of one seed: people, their events and their activities."""

    def __init__(
        self,
        *,
        seed: int,
        members: int,
        activities: int,
        months: int,
        now: dt.datetime,
        store_channel: str = "store",
    ):
        self.rng = random.Random(seed)
        # Identity channel of the demo shop's customers (its Store.channel).
        self.store_channel = store_channel
        self.seed = seed
        self.now = now
        self.window = months * MONTH_DAYS * DAY
        self.start_ts = now.timestamp() - self.window
        self.members = members
        self.activities = activities
        self.countries = texts.COUNTRIES
        self.country_cum = _cumulative([c.share for c in self.countries])
        self.persona_cum = _cumulative([w for _, w in PERSONAS])
        self.kind_tables = {
            persona: (list(mix), _cumulative(list(mix.values())))
            for persona, mix in PERSONA_MIX.items()
        }
        self.hour_cum = _cumulative(HOUR_WEIGHT)
        self.stars_cum = _cumulative([w for _, w in REVIEW_STARS])
        # Cheap things sell more often than espresso machines.
        self.product_cum = _cumulative([1_000_000 / p.price_cents for p in texts.PRODUCTS])
        self.people: list[_Person] = []
        self.events: list[_Event] = []
        self.event_times: list[float] = []

    # -- people -------------------------------------------------------------------------
    def make_people(self) -> None:
        rng = self.rng
        twins = max(3, round(self.members * TWIN_SHARE)) if self.members >= 10 else 0
        originals = self.members - twins
        for index in range(originals):
            self.people.append(self._person(index))
        # The top 2% by appetite are the champions the team would like as ambassadors.
        if originals:
            ranked = sorted(self.people, key=lambda p: p.appetite, reverse=True)
            for person in ranked[: max(1, originals // 50)]:
                person.tags.append(texts.CHAMPION_TAG)
        cases = ("guest", "name_city", "phone")
        # Each twin has its own original: a customer shows up at most twice.
        for number, position in enumerate(rng.sample(range(originals), twins)):
            case = cases[number % len(cases)]
            self.people.append(self._twin(originals + number, self.people[position], case))

    def _person(self, index: int) -> _Person:
        rng = self.rng
        if index < len(texts.FIRST_CUSTOMERS):
            # However small the store, its first customers write in each of the languages.
            code, language = texts.FIRST_CUSTOMERS[index]
            country = next(c for c in self.countries if c.code == code)
        else:
            country = _pick(rng, self.countries, self.country_cum)
            langs = [lang for lang, _ in country.languages]
            language = _pick(rng, langs, _cumulative([w for _, w in country.languages]))
        display_name, local_part = self._name(language)
        spoken = (language,) if rng.random() < 0.8 or language == "en" else (language, "en")
        persona: str = _pick(rng, [p for p, _ in PERSONAS], self.persona_cum)
        # Growth: 15% were customers before the window; the rest join ever faster.
        if rng.random() < 0.15:
            joined = -rng.random() * 365 * DAY
        else:
            joined = (rng.random() ** 0.65) * self.window
        if rng.random() < 0.4:
            left = min(self.window, max(joined, 0.0) + rng.expovariate(1 / (0.25 * self.window)))
        else:
            left = self.window
        # Heavy tail: the top 1% of customers do about a fifth of everything, half do little.
        appetite = min(rng.paretovariate(1.3), 100.0)
        phone = self._phone(country) if rng.random() < 0.3 else ""
        tags = [tag for tag, share in texts.TAGS if rng.random() < share]
        email_verified = rng.random() < 0.85
        return _Person(
            index=index,
            display_name=display_name,
            language=language,
            languages=spoken,
            country=country,
            city=rng.choice(country.cities),
            email=f"{local_part}{index}@{rng.choice(country.mail_domains)}",
            phone=phone,
            customer_id=f"AUR-{self.seed}-{index:07d}",
            handle=f"{local_part[:12]}_{index}" if persona != "shopper" else "",
            persona=persona,
            joined=joined,
            left=left,
            appetite=appetite,
            tags=tags,
            email_verified=email_verified,
        )

    def _name(self, language: str) -> tuple[str, str]:
        """(display name, email user part) as a customer of that language would write them."""
        rng = self.rng
        if language == "zh-hans":
            surname, surname_pinyin = rng.choice(texts.ZH_SURNAMES)
            if rng.random() < 0.4:
                given, given_pinyin = rng.choice(texts.ZH_GIVEN_NAMES)
            else:
                (first, first_pinyin), (second, second_pinyin) = (
                    rng.choice(texts.ZH_GIVEN_CHARS),
                    rng.choice(texts.ZH_GIVEN_CHARS),
                )
                given, given_pinyin = first + second, first_pinyin + second_pinyin
            return surname + given, f"{given_pinyin}.{surname_pinyin}"
        first = rng.choice(texts.FIRST_NAMES[language])
        last = rng.choice(texts.SURNAMES[language])
        if language == "es" and rng.random() < 0.8:
            # Spanish speakers mostly go by both surnames.
            last = f"{last} {rng.choice(texts.SURNAMES['es'])}"
        return f"{first} {last}", f"{_ascii(first)}.{_ascii(last)}"

    def _phone(self, country: texts.Country) -> str:
        rng = self.rng
        while True:
            pattern = rng.choice(country.phone_patterns)
            number = "".join(
                str(rng.randint(0, 9)) if ch == "#" else str(rng.randint(2, 9)) if ch == "@" else ch
                for ch in pattern
            )
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                return number

    def _twin(self, index: int, original: _Person, case: str) -> _Person:
        """A second record of `original`, as a guest checkout, a new email or a shared phone."""
        rng = self.rng
        if case == "phone" and not original.phone:
            original.phone = self._phone(original.country)
        if case == "guest":
            # A verified address would simply join the guest to its owner: this one was
            # never confirmed, so only a person can tell that the two are the same.
            original.email_verified = False
        joined = min(self.window - DAY, max(original.joined, 0.0) + rng.random() * 60 * DAY)
        domain = rng.choice(original.country.mail_domains)
        if case == "guest":
            email = original.email  # typed again at a guest checkout: same, but unverified
            display_name = original.display_name
        elif case == "name_city":
            local = original.email.partition("@")[0].rstrip("0123456789")
            email = f"{local}.{index}@{domain}"
            display_name = original.display_name
        else:
            email = ""  # a WhatsApp contact: a number and the first name they gave
            display_name = original.display_name.split(" ")[0]
        return _Person(
            index=index,
            display_name=display_name,
            language=original.language,
            languages=original.languages,
            country=original.country,
            city=original.city,
            email=email,
            phone=original.phone if case == "phone" else "",
            customer_id=f"AUR-{self.seed}-{index:07d}",
            handle="",
            persona="contact" if case == "phone" else "shopper",
            joined=joined,
            left=min(self.window, joined + 90 * DAY),
            appetite=1.0,
            twin_case=case,
        )

    def identities(self, person: _Person) -> list[IdentityIn]:
        """What the store and the community know of a customer record.

        Every record has one verified key of its own (a store customer id, or for a WhatsApp
        contact its number on that channel), so a repeated run joins the same members. Twins
        share an email or phone with their original on *another* channel and unverified, or
        only a name and city: people.member_resolve then suggests a merge instead of joining.
        """
        if person.twin_case == "phone":
            return [IdentityIn(channel="whatsapp", kind="phone", value=person.phone,
                               source=SOURCE)]  # fmt: skip
        found = [
            IdentityIn(channel=self.store_channel, kind="customer_id", value=person.customer_id,
                       verified=True, source=SOURCE),
        ]  # fmt: skip
        if person.twin_case == "guest":
            found.append(IdentityIn(channel="checkout", kind="email", value=person.email,
                                    source=SOURCE))  # fmt: skip
            return found
        found.append(IdentityIn(channel=self.store_channel, kind="email", value=person.email,
                                verified=person.email_verified, source=SOURCE))  # fmt: skip
        if person.phone:
            found.append(IdentityIn(channel=self.store_channel, kind="phone", value=person.phone,
                                    source=SOURCE))  # fmt: skip
        if person.handle:
            found.append(IdentityIn(channel="community", kind="handle", value=person.handle,
                                    verified=True, source=SOURCE))  # fmt: skip
        return found

    def seen_at(self, person: _Person) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_ts + person.joined, dt.UTC)

    # -- events ---------------------------------------------------------------------------
    def make_events(self) -> None:
        rng = self.rng
        at = rng.random() * 10 * DAY
        titles = len(texts.EVENT_TITLES["en"])
        while at < self.window + 30 * DAY:
            # Events start at 18:00 UTC give or take: evening in Europe, lunch in the Americas.
            day_start = at - (self.start_ts + at) % DAY
            self.events.append(
                _Event(
                    at=day_start + 18 * 3600,
                    title=rng.randrange(titles),
                    city=rng.choice(texts.EVENT_CITIES),
                )
            )
            at += (10 + rng.random() * 8) * DAY
        self.event_times = [event.at for event in self.events]

    # -- activities -------------------------------------------------------------------------
    def activity_stream(self) -> Iterator[tuple[_Person, str, float, dict[str, Any], str]]:
        """(person, kind, seconds since window start, properties, channel), in time order.

        Two passes: first who does what when (compact arrays), then the details in time order,
        from a second random stream. Time order is how a live store sends its activity, and
        it keeps the database's time indexes growing at their ends instead of everywhere.
        """
        people, kinds, moments = self._plan()
        order = sorted(range(len(moments)), key=moments.__getitem__)
        details = random.Random(self.seed * 1_000_003 + 17)
        for position in order:
            person = self.people[people[position]]
            kind = ALL_KINDS[kinds[position]]
            at = moments[position]
            properties, channel = self._details(details, person, kind, at)
            yield person, kind, at, properties, channel

    def _plan(self) -> tuple[array[int], array[int], array[float]]:
        rng = self.rng
        people, kinds, moments = array("I"), array("B"), array("d")
        budget = self.activities
        signup = ALL_KINDS.index("signup")
        # Who joined inside the window signed up there; sign-ups take at most a fifth of a
        # small budget, so that even a tiny store shows what its customers do.
        signups = budget // 5
        for person in self.people:
            if len(moments) == signups:
                break
            if person.joined >= 0:
                people.append(person.index)
                kinds.append(signup)
                moments.append(person.joined)
        pool = [p for p in self.people if p.left > max(p.joined, 0.0)]
        if not pool:
            return people, kinds, moments
        pool_cum = _cumulative([p.appetite * (p.left - max(p.joined, 0.0) + DAY) for p in pool])
        kind_index = {kind: index for index, kind in enumerate(ALL_KINDS)}
        attendance = kind_index["event_attendance"]
        for _ in range(budget - len(moments)):
            actor: _Person = _pick(rng, pool, pool_cum)
            persona_kinds, persona_cum = self.kind_tables[actor.persona]
            kind = kind_index[_pick(rng, persona_kinds, persona_cum)]
            at = self._moment(actor)
            if kind == attendance:
                # Attending happens at the event: the one just before the drawn moment.
                event = self.events[max(bisect.bisect_right(self.event_times, at) - 1, 0)]
                at = min(max(event.at + rng.random() * 5400, 0.0), self.window - 1)
            people.append(actor.index)
            kinds.append(kind)
            moments.append(at)
        return people, kinds, moments

    def _moment(self, person: _Person) -> float:
        rng = self.rng
        begin = max(person.joined, 0.0)
        span = person.left - begin
        offset = person.country.utc_offset * 3600
        while True:
            at = begin + rng.random() * span
            local = self.start_ts + at + offset
            weekday = (int(local // DAY) + 3) % 7  # 1970-01-01 was a Thursday
            if rng.random() < WEEKDAY_WEIGHT[weekday]:
                break
        hour = bisect.bisect_right(self.hour_cum, rng.random() * self.hour_cum[-1])
        local_midnight = local - local % DAY
        moment = local_midnight + hour * 3600 + rng.random() * 3600 - offset - self.start_ts
        return min(max(moment, begin), self.window - 1)

    def _details(
        self, rng: random.Random, person: _Person, kind: str, at: float
    ) -> tuple[dict[str, Any], str]:
        lang = person.language
        if kind in {"post", "reply", "reaction_given", "reaction_received", "accepted_answer"}:
            title = self._post_title(rng, lang)
            if kind == "post":
                return {"title": title, "space": rng.choice(texts.SPACES[lang])}, "community"
            if kind == "reply":
                return {"thread": title, "text": rng.choice(texts.REPLY_TEXTS[lang])}, "community"
            if kind == "accepted_answer":
                return {"thread": title}, "community"
            return {"thread": title, "reaction": rng.choice(texts.REACTIONS)}, "community"
        if kind == "order":
            return self._order(rng, person), "store"
        if kind == "refund":
            country = person.country
            product: texts.Product = _pick(rng, texts.PRODUCTS, self.product_cum)
            return {
                "order_id": f"AUR{rng.randrange(10_000, 999_999)}",
                "amount_minor": self._money(product.price_cents, country),
                "currency": country.currency,
                "reason": rng.choice(texts.REFUND_REASONS[lang]),
            }, "store"
        if kind == "review":
            product = _pick(rng, texts.PRODUCTS, self.product_cum)
            stars: int = _pick(rng, [s for s, _ in REVIEW_STARS], self.stars_cum)
            mood = "positive" if stars >= 4 else "mixed" if stars == 3 else "negative"
            return {
                "product": product.names[lang],
                "sku": product.sku,
                "rating": stars,
                "text": rng.choice(texts.REVIEW_TEXTS[lang][mood]),
                "verified_buyer": rng.random() < 0.85,
            }, "store"
        if kind in {"idea", "vote"}:
            idea = rng.choice(texts.IDEA_TITLES[lang])
            return ({"title": idea} if kind == "idea" else {"idea": idea}), "community"
        if kind in {"event_rsvp", "event_attendance"}:
            return self._event(person, kind, at)
        if kind == "support_message":
            channel = rng.choice(("email", "chat", "whatsapp"))
            return {"subject": rng.choice(texts.SUPPORT_SUBJECTS[lang])}, channel
        if kind == "mention":
            network = rng.choice(texts.MENTION_NETWORKS[lang])
            return {"network": network, "text": rng.choice(texts.MENTION_TEXTS[lang])}, network
        if kind == "referral":
            if lang == "zh-hans":
                friend = rng.choice(texts.ZH_SURNAMES)[0] + rng.choice(texts.ZH_GIVEN_NAMES)[0]
            else:
                friend = rng.choice(texts.FIRST_NAMES[lang])
            return {"code": f"AURORA-{person.index:05d}", "friend": friend}, "store"
        if kind == "signup":
            via = "community" if person.handle else "store"
            return {"via": via}, via
        raise ValueError(f"no demo details for kind {kind!r}")

    def _post_title(self, rng: random.Random, lang: str) -> str:
        product: texts.Product = rng.choice(texts.PRODUCTS)
        return rng.choice(texts.POST_TITLES[lang]).format(product=product.names[lang])

    def _money(self, euro_cents: int, country: texts.Country) -> int:
        # Prices in the customer's currency, in its minor unit (CLP has none).
        units = euro_cents / 100 * country.eur_rate
        return round(units * 10**country.currency_exponent)

    def _order(self, rng: random.Random, person: _Person) -> dict[str, Any]:
        lines = 1 if rng.random() < 0.6 else rng.randint(2, 4)
        skus: list[str] = []
        total = 0
        for _ in range(lines):
            product: texts.Product = _pick(rng, texts.PRODUCTS, self.product_cum)
            quantity = 1 if rng.random() < 0.8 else 2
            skus.append(product.sku)
            total += self._money(product.price_cents, person.country) * quantity
        return {
            "order_id": f"AUR{rng.randrange(100_000, 999_999)}",
            "total_minor": total,
            "currency": person.country.currency,
            "items": lines,
            "skus": skus,
        }

    def _event(self, person: _Person, kind: str, at: float) -> tuple[dict[str, Any], str]:
        lang = person.language
        if kind == "event_rsvp":  # for the next event
            position = min(bisect.bisect_right(self.event_times, at), len(self.events) - 1)
        else:  # at the event (the plan put the moment there)
            position = max(bisect.bisect_right(self.event_times, at) - 1, 0)
        event = self.events[position]
        starts = dt.datetime.fromtimestamp(self.start_ts + event.at, dt.UTC)
        return {
            "event": texts.EVENT_TITLES[lang][event.title],
            "city": event.city,
            "starts_at": starts.isoformat(),
        }, "events"


def demo_generate(
    *,
    workspace: Workspace,
    members: int = 2000,
    activities: int = 50000,
    months: int = 18,
    seed: int = 7,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
) -> DemoSummary:
    """Fill `workspace` with the demo store's customers and activities (idempotent per seed).

    Raises ValueError for negative sizes and ActivityValidationError if a generated activity
    is refused (a bug in the generator, never expected).
    """
    if members < 1 or activities < 0 or months < 1:
        raise ValueError("members must be >= 1, activities >= 0 and months >= 1")
    started = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    store = demo_store_ensure(workspace=workspace)
    world = _World(
        seed=seed,
        members=members,
        activities=activities,
        months=months,
        # The demo's clock is the start of the hour: events, attendance and the plan's
        # calendar follow it, so two runs within the hour make the very same store.
        now=(now or timezone.now()).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0),
        store_channel=store.channel,
    )
    world.make_people()
    world.make_events()

    created_members = _resolve_people(workspace=workspace, world=world, report=report)
    sales: list[Sale] = []
    created, duplicates, kinds = _record_activities(
        workspace=workspace, world=world, report=report, sales=sales
    )
    report(PHASE_ORDERS, 0, 1)
    orders, refunds = demo_books_import(
        store=store,
        sales=sales,
        start_ts=world.start_ts,
        now_ts=world.now.timestamp(),
        money=world._money,
        seed=seed,
        members=members,
        activities=activities,
    )
    report(PHASE_ORDERS, 1, 1)
    threads = demo_community_ensure(workspace=workspace, seed=seed, now=world.now)
    loyalty = demo_loyalty_ensure(workspace=workspace, store=store, seed=seed, now=world.now)
    return DemoSummary(
        workspace_id=workspace.pk,
        members=len(world.people),
        members_created=created_members,
        twins=sum(1 for person in world.people if person.twin_case),
        suggestions=pending_suggestions(workspace=workspace).count(),
        activities=created + duplicates,
        activities_created=created,
        activities_duplicate=duplicates,
        kinds=dict(kinds),
        languages=dict(Counter(person.language for person in world.people)),
        seconds=time.perf_counter() - started,
        orders=orders,
        refunds=refunds,
        threads=threads,
        loyalty=loyalty,
    )


def demo_generated(*, workspace: Workspace, members: int, activities: int, seed: int) -> bool:
    """True when a run with these sizes and seed already completed on the workspace.

    Chunks are recorded in order, each in its own transaction, after all customers: the last
    activity of the run being there means everything before it is too.
    """
    if activities == 0:
        return False
    # The store's books are imported last: their import being done means all of it is there.
    return demo_books_imported(
        workspace=workspace, seed=seed, members=members, activities=activities
    )


def _source_id(seed: int, members: int, position: int) -> str:
    # The sizes are part of the key: a run with other sizes is another run, not a repeat.
    # Zero-padded so that keys sort in recording order (the unique index grows at its end).
    return f"{seed}-{members}-{position:08d}"


def _resolve_people(*, workspace: Workspace, world: _World, report: ProgressFn) -> int:
    total = len(world.people)
    created = 0
    report(PHASE_MEMBERS, 0, total)
    for start in range(0, total, MEMBER_CHUNK):
        with transaction.atomic():
            for person in world.people[start : start + MEMBER_CHUNK]:
                resolution = member_resolve(
                    workspace=workspace,
                    identities=world.identities(person),
                    attrs=MemberAttrs(
                        display_name=person.display_name,
                        city=person.city,
                        country=person.country.code,
                        languages=person.languages,
                    ),
                    seen_at=world.seen_at(person),
                )
                person.member_id = resolution.member.pk
                if resolution.created:
                    created += 1
                    for tag in person.tags:
                        member_tag_add(member=resolution.member, tag=tag, actor=None)
        report(PHASE_MEMBERS, min(start + MEMBER_CHUNK, total), total)
    return created


def _record_activities(
    *, workspace: Workspace, world: _World, report: ProgressFn, sales: list[Sale]
) -> tuple[int, int, Counter[str]]:
    total = world.activities
    created = duplicates = 0
    kinds: Counter[str] = Counter()
    report(PHASE_ACTIVITIES, 0, total)
    stream = world.activity_stream()
    position = 0
    while True:
        batch = list(itertools.islice(stream, CHUNK))
        if not batch:
            break
        chunk: list[ActivityIn] = []
        for person, kind, at, properties, channel in batch:
            if kind in SALE_KINDS:
                # Orders and refunds reach the store's books through the file import,
                # which records their activities itself.
                sales.append(Sale(person=person, kind=kind, at=at, properties=properties))
            else:
                chunk.append(
                    ActivityIn(
                        member_id=person.member_id,
                        kind=kind,
                        channel=channel,
                        occurred_at=dt.datetime.fromtimestamp(world.start_ts + at, dt.UTC),
                        source=SOURCE,
                        source_id=_source_id(world.seed, world.members, position),
                        properties=properties,
                    )
                )
            position += 1
        if chunk:
            _validate(workspace=workspace, items=chunk, now=world.now)
            result = activity_record_bulk(workspace=workspace, items=chunk)
            created += len(result.created)
            duplicates += len(result.duplicates)
            kinds.update(chunk[i].kind for i in result.created)
        report(PHASE_ACTIVITIES, position, total)
    return created, duplicates, kinds


def _validate(*, workspace: Workspace, items: Sequence[ActivityIn], now: dt.datetime) -> None:
    # Callers validate before the bulk path; a refusal here is a generator bug, said loudly.
    invalid = activities_validate(workspace=workspace, items=items, now=now)
    if invalid:
        position, errors = next(iter(invalid.items()))
        raise ActivityValidationError(
            {
                name: f"{message} (demo item {items[position].source_id})"
                for name, message in errors.items()
            }
        )
