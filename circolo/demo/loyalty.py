"""The demo store's rewards program: tiers, a catalogue with codes, badges earned from the
community's history, referrals in every state (one waiting for review), ambassadors and a
few redemptions, all made through the loyalty services (so the ledger is the real one).

Deterministic per seed, and done once per workspace: a second run finds the tiers there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from dataclasses import dataclass

from django.db.models import Count

from circolo.commerce.models import Store
from circolo.commerce.schema import CustomerIn, LineIn, OrderIn
from circolo.commerce.services import order_upsert
from circolo.community.models import Event
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.ambassadors import ambassador_apply, ambassador_decide, ambassador_invite
from circolo.loyalty.badges import badges_activity_check, top_contributors_award
from circolo.loyalty.models import Ambassador, Referral, Reward, Tier
from circolo.loyalty.orders import earnings_approve_due
from circolo.loyalty.referrals import (
    ReferralError,
    referral_claim,
    referral_code_for,
    referrals_pay_due,
)
from circolo.loyalty.rewards import RedeemError, pool_codes_add, redemption_request
from circolo.loyalty.rules import program_get
from circolo.loyalty.tiers import tiers_recalculate
from circolo.people.models import Member

TIERS = (
    # name, names, threshold (minor units of net spend in 12 months), multiplier, perks
    ("Bronze", {"it": "Bronzo", "es": "Bronce", "zh-hans": "青铜"}, 5_000, 100, False, False),
    ("Silver", {"it": "Argento", "es": "Plata", "zh-hans": "白银"}, 20_000, 125, False, True),
    ("Gold", {"it": "Oro", "es": "Oro", "zh-hans": "黄金"}, 50_000, 150, True, True),
)
REWARDS = (
    # name, names, kind, cost, amount, percent
    ("€5 off", {"it": "5 € di sconto", "es": "5 € de descuento", "zh-hans": "立减 5 欧元"},
     Reward.Kind.AMOUNT_OFF, 500, 500, 0),
    ("Free shipping", {"it": "Spedizione gratuita", "es": "Envío gratis", "zh-hans": "免运费"},
     Reward.Kind.FREE_SHIPPING, 300, 0, 0),
    ("10% off", {"it": "10% di sconto", "es": "10% de descuento", "zh-hans": "九折"},
     Reward.Kind.PERCENT_OFF, 900, 0, 10),
)  # fmt: skip
FRIEND_REWARD = ("€10 off your first order", {
    "it": "10 € di sconto sul primo ordine", "es": "10 € de descuento en tu primer pedido",
    "zh-hans": "首单立减 10 欧元",
})  # fmt: skip
CODES_PER_REWARD = 200
# Invited friends write from here (the demo's customers use real-looking providers).
FRIEND_DOMAIN = "friends.example.org"


@dataclass(frozen=True)
class LoyaltySummary:
    tiers: int
    members_in_tiers: int
    badges: int
    referrals: dict[str, int]
    ambassadors: int
    redemptions: int


def _pool(reward: Reward, prefix: str, rng: random.Random) -> None:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    codes = {
        f"{prefix}-{''.join(rng.choice(alphabet) for _ in range(8))}"
        for _ in range(CODES_PER_REWARD)
    }
    pool_codes_add(reward=reward, codes=sorted(codes), actor=None)


def _catalogue(workspace: Workspace, rng: random.Random) -> Reward:
    """The rewards (codes from uploaded pools: the demo shop has no API) and the friend's
    welcome reward; returns the latter."""
    for name, names, kind, cost, amount, percent in REWARDS:
        reward = Reward.objects.create(
            workspace=workspace,
            name=name,
            names=names,
            kind=kind,
            cost_points=cost,
            amount_minor=amount,
            percent=percent,
            currency=workspace.currency,
            code_source=Reward.CodeSource.POOL,
        )
        _pool(reward, "DEMO", rng)
    event = Event.objects.filter(workspace=workspace, starts_at__gt=_now()).order_by("starts_at")
    upcoming = event.first()
    if upcoming is not None:
        Reward.objects.create(
            workspace=workspace,
            name=f"Ticket: {upcoming.title}",
            kind=Reward.Kind.EVENT_TICKET,
            cost_points=400,
            event=upcoming,
            code_source=Reward.CodeSource.CIRCOLO,
        )
    friend = Reward.objects.create(
        workspace=workspace,
        name=FRIEND_REWARD[0],
        names=FRIEND_REWARD[1],
        kind=Reward.Kind.AMOUNT_OFF,
        cost_points=0,
        amount_minor=1000,
        currency=workspace.currency,
        min_order_minor=3000,
        code_source=Reward.CodeSource.POOL,
    )
    _pool(friend, "FRIEND", rng)
    return friend


def _now() -> dt.datetime:
    from django.utils import timezone

    return timezone.now()


def _friend_order(
    store: Store, *, email: str, name: str, number: str, paid_at: dt.datetime,
    codes: tuple[str, ...], address: dict[str, str],
) -> None:  # fmt: skip
    order_upsert(
        store=store,
        order=OrderIn(
            external_id=f"ref-{number}",
            number=f"#R{number}",
            currency="EUR",
            placed_at=paid_at,
            updated_at=paid_at,
            paid_at=paid_at,
            status="paid",
            subtotal_minor=4_800,
            discount_minor=1_000 if codes else 0,
            total_minor=3_800 if codes else 4_800,
            discount_codes=codes,
            customer=CustomerIn(
                external_id=f"ref-{number}", email=email, first_name=name, last_name="Demo"
            ),
            shipping_address=address,
            lines=(
                LineIn(
                    external_id="1",
                    quantity=1,
                    unit_price_minor=4_800,
                    discount_minor=1_000 if codes else 0,
                    title="Moka pot, 3 cups",
                ),
            ),
        ),
    )


def _referrals(workspace: Workspace, store: Store, rng: random.Random, now: dt.datetime) -> None:
    """Advocates (the best customers) invite friends: some order (long enough ago to be paid,
    or still in the window), one only joins, and two are stopped by the fraud checks."""
    advocates = list(
        Member.objects.filter(workspace=workspace, orders__isnull=False, merged_into__isnull=True)
        .annotate(n=Count("orders"))
        .order_by("-n", "pk")[:6]
    )
    if len(advocates) < 3:
        return
    names = ("Livia", "Tomás", "Mei", "Sara", "Pablo", "Lin", "Marco", "Ana")
    plan = [
        # (advocate index, days ago the friend ordered, None: no order yet)
        (0, 45), (0, 38), (1, 40), (1, 6), (2, 3), (2, None), (3, None),
    ]  # fmt: skip
    for n, (who, days) in enumerate(plan):
        advocate = advocates[who % len(advocates)]
        code = referral_code_for(member=advocate)
        email = f"{names[n].lower().replace('á', 'a')}.friend{n}@{FRIEND_DOMAIN}"
        claimed = now - dt.timedelta(days=(days or 2) + 1)
        try:
            referral = referral_claim(
                workspace=workspace,
                code=code.code,
                email=email,
                name=f"{names[n]} Demo",
                visitor=f"demo-visitor-{n}",
                address=f"198.51.100.{n + 10}",
                via=Referral.Via.LINK,
                now=claimed,
            )
        except ReferralError:
            continue
        if days is None:
            continue
        codes = (referral.friend_redemption.code,) if referral.friend_redemption else ()
        _friend_order(
            store,
            email=email,
            name=names[n],
            number=str(n),
            paid_at=now - dt.timedelta(days=days),
            codes=codes,
            address={"address1": f"Via Roma {n + 1}", "city": "Bologna", "zip": "40121"},
        )
    # Fraud: an advocate "invites" their own Gmail with a dot and a plus tag.
    cheat = advocates[-1]
    own = cheat.identities.filter(kind="email").values_list("value", flat=True).first()
    if own and "@" in own:
        local, _at, _domain = own.partition("@")
        twisted = f"{local[:1]}.{local[1:]}+deal@gmail.com"
        # A second demo run in the same workspace finds the email invited already.
        with contextlib.suppress(ReferralError):
            referral_claim(
                workspace=workspace,
                code=referral_code_for(member=cheat).code,
                email=twisted if own.endswith("@gmail.com") else own.upper(),
                name=cheat.display_name or "Friend",
                visitor="demo-cheat",
                address="203.0.113.9",
                via=Referral.Via.CODE,
                now=now - dt.timedelta(days=1),
            )
    referrals_pay_due(now=now)


def _ambassadors(workspace: Workspace, now: dt.datetime) -> None:
    from circolo.loyalty.ambassadors import ambassador_suggestions

    suggestions = ambassador_suggestions(workspace=workspace, now=now)
    for index, suggestion in enumerate(suggestions[:3]):
        member = suggestion.member
        if index == 2:
            ambassador_apply(member=member, message="I love helping other moka fans.", now=now)
            continue
        row = ambassador_invite(
            workspace=workspace, member=member, actor=None, message="Join us!", now=now
        )
        first = (member.display_name or "").split(" ")[0]
        handle = "".join(ch for ch in first if ch.isascii() and ch.isalnum()).upper()[:12]
        ambassador_decide(
            ambassador=row,
            actor=None,
            approve=True,
            perks="Early samples of new blends; 15% off once a month.",
            multiplier_percent=150,
            code=f"{handle if len(handle) >= 2 else 'AMBASSADOR'}{index + 1}",
            now=now,
        )


def demo_loyalty_ensure(
    *, workspace: Workspace, store: Store, seed: int, now: dt.datetime
) -> LoyaltySummary | None:
    """Create the demo's rewards program unless it exists (tiers are the marker)."""
    if Tier.objects.filter(workspace=workspace).exists():
        return None
    rng = random.Random(seed * 104_729)
    program = program_get(workspace_id=workspace.pk)
    for name, names, threshold, multiplier, early, shipping in TIERS:
        Tier.objects.create(
            workspace=workspace,
            name=name,
            names=names,
            threshold=threshold,
            multiplier_percent=multiplier,
            early_access=early,
            free_shipping=shipping,
        )
    program.referral_friend_reward = _catalogue(workspace, rng)
    program.save()
    # The history's order points: approved where the return window has passed.
    while earnings_approve_due(now=now):
        pass
    members = list(
        Member.objects.filter(workspace=workspace, merged_into__isnull=True).values_list(
            "pk", flat=True
        )
    )
    badges = badges_activity_check(workspace_id=workspace.pk, member_ids=members, now=now)
    last_month = (now.date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    badges += top_contributors_award(workspace_id=workspace.pk, month=last_month, now=now)
    _referrals(workspace, store, rng, now)
    _ambassadors(workspace, now)
    tiers_recalculate(workspace_id=workspace.pk, now=now)
    redeemed = 0
    rewards = list(Reward.objects.filter(workspace=workspace, cost_points__gt=0, kind="amount_off"))
    balances = ledger.members_balances(workspace_id=workspace.pk, member_ids=members)
    rich = sorted(
        (m for m, b in balances.items() if b.points >= 500), key=lambda m: -balances[m].points
    )
    for member in Member.objects.filter(pk__in=rich[:8]):
        try:
            redemption_request(member=member, reward=rewards[0], request_key=f"demo-{seed}")
            redeemed += 1
        except RedeemError:
            continue
    statuses = dict(
        Referral.objects.filter(workspace=workspace)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return LoyaltySummary(
        tiers=len(TIERS),
        members_in_tiers=Tier.objects.filter(workspace=workspace).aggregate(n=Count("membertier"))[
            "n"
        ],
        badges=badges,
        referrals=statuses,
        ambassadors=Ambassador.objects.filter(
            workspace=workspace, status=Ambassador.Status.APPROVED
        ).count(),
        redemptions=redeemed,
    )
