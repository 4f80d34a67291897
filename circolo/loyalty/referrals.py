"""Referrals: a member's link and code, the friend's reward, the advocate's points, fraud review.

A friend opens a member's link (a click, remembered for the referral window: the last click
wins) and claims with their email: they get the friend reward at once. Their first paid order
is attributed to a referral when it carries a member's referral code (typed at checkout: a
code beats a link), else the friend reward's code, else when it was paid within the window
after the claim. The advocate is paid when that order has passed its return window and is
still a purchase; a cancelled or fully refunded first order voids the referral.

Fraud checks (the same person on both sides, a friend who was already a customer, many claims
from one network address) never refuse: they send the referral to the team's review queue
with `flags` saying which check fired and why. Staff approve (it goes on, or pays when its
window has passed) or reject (nothing is paid); decisions are audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from circolo.commerce.selectors import (
    OrderForPoints,
    members_first_paid_orders,
    members_shipping_addresses,
    members_with_paid_orders,
    orders_contacts,
    orders_for_points,
)
from circolo.community.models import CommunityProfile
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty.actions import bonus_award
from circolo.loyalty.badges import badges_referrals_check
from circolo.loyalty.emails import email_key
from circolo.loyalty.models import (
    Movement,
    Program,
    Reason,
    Redemption,
    Referral,
    ReferralClick,
    ReferralCode,
)
from circolo.loyalty.rewards import CODE_ALPHABET, RedeemError, redemption_request
from circolo.loyalty.rules import program_get
from circolo.loyalty.tiers import rewards_notify
from circolo.people.models import Identity, IdentityKind, Member
from circolo.people.normalise import IdentityError, MemberError, clean_text, name_key
from circolo.people.services import IdentityIn, MemberAttrs, member_resolve

logger = logging.getLogger(__name__)

# The channel of the identity a friend's claim gives (the email they typed, unverified).
CLAIM_CHANNEL = "referral"
CODE_BASE_MAX = 10
CODE_RANDOM = 4
CODE_ATTEMPTS = 10
# A chosen (ambassador) code: letters, digits, "-" and "_", 3 to 40 characters.
CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
CLAIMS_PERIOD = dt.timedelta(days=7)
NAME_MAX = 200
NOTE_MAX = 300
PAY_BATCH = 500
# Statuses in which a referral still waits for the friend's first order.
OPEN = (Referral.Status.CLAIMED, Referral.Status.REVIEW)


class ReferralError(ValueError):
    """A referral action refused before anything changed; `field` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


# What each fraud check means, for the review queue.
CHECK_LABELS = {
    "same_customer": gettext_lazy("The friend is the advocate: the same customer"),
    "same_email": gettext_lazy("The friend's email reaches the advocate's mailbox"),
    "same_name": gettext_lazy("The friend has the advocate's name"),
    "same_address": gettext_lazy("The order ships to an address the advocate ordered to"),
    "address_claims": gettext_lazy("Too many claims from one network address in 7 days"),
    "not_new_customer": gettext_lazy("The friend was a customer already"),
}
# Checks about the advocate: when a typed code moves a referral to another advocate, these
# are looked at again for the new one.
ADVOCATE_CHECKS = frozenset({"same_customer", "same_email", "same_name", "same_address"})


def flag_lines(flags: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(plain-words label, detail) of each flag, for pages."""
    return [
        (
            str(CHECK_LABELS.get(str(flag.get("check")), flag.get("check", ""))),
            str(flag.get("detail", "")),
        )
        for flag in flags
    ]


# --------------------------------------------------------------------------- normal forms


def address_hash(address: str) -> str:
    """A network address as stored: a SHA-256 salted with the secret key, never the address
    itself ("" for none)."""
    value = address.strip()
    if not value:
        return ""
    return hashlib.sha256(f"{settings.SECRET_KEY}:{value}".encode()).hexdigest()


_STREET = ("address1", "address_1", "street_1")
_STREET_MORE = ("address2", "address_2", "street_2")
_POSTAL = ("zip", "postcode")
_COUNTRY = ("country_code", "country_iso2", "country")


def _first_text(address: Mapping[str, Any], keys: Sequence[str]) -> str:
    for key in keys:
        value = address.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def address_key(address: Mapping[str, Any]) -> str:
    """A shipping address folded for comparison (any platform's keys): the country, the
    postal code (else the city) and the street without case, accents or punctuation. ""
    when there is no street to compare."""
    street = name_key(f"{_first_text(address, _STREET)} {_first_text(address, _STREET_MORE)}")
    if not street:
        return ""
    postal = "".join(_first_text(address, _POSTAL).split()).upper()
    place = postal or name_key(_first_text(address, ("city",)))
    country = _first_text(address, _COUNTRY)
    country = country.upper() if len(country) == 2 else name_key(country)
    return f"{country}|{place}|{street}"


def address_name(address: Mapping[str, Any]) -> str:
    """The name a shipping address is for (any platform's keys)."""
    name = _first_text(address, ("name",))
    if name:
        return name
    return f"{_first_text(address, ('first_name',))} {_first_text(address, ('last_name',))}".strip()


# --------------------------------------------------------------------------- codes


def _code_base(member: Member) -> str:
    """Readable start of a member's code: their first name, else their handle, in capitals."""
    handle = CommunityProfile.objects.filter(member=member).values_list("handle", flat=True).first()
    first_name = (member.display_name or "").split(" ")[0]
    for text in (first_name, handle or ""):
        letters = "".join(
            char
            for char in unicodedata.normalize("NFKD", text)
            if char.isascii() and char.isalnum()
        ).upper()
        if len(letters) >= 2:
            return letters[:CODE_BASE_MAX]
    return "FRIEND"


def referral_code_for(*, member: Member, now: dt.datetime | None = None) -> ReferralCode:
    """The member's own referral code (made on first use: their first name or handle and four
    characters nobody misreads, unique in the workspace)."""
    found = _own_code(member)
    if found is not None:
        return found
    base = _code_base(member)
    with transaction.atomic():
        # One code per member even when two pages ask at once: the member row is the lock.
        Member.objects.select_for_update().filter(
            workspace_id=member.workspace_id, pk=member.pk
        ).first()
        found = _own_code(member)
        if found is not None:
            return found
        for _attempt in range(CODE_ATTEMPTS):
            random = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_RANDOM))
            try:
                with transaction.atomic():
                    return ReferralCode.objects.create(
                        workspace_id=member.workspace_id,
                        member=member,
                        code=f"{base}-{random}",
                        created_at=now or timezone.now(),
                    )
            except IntegrityError:
                continue  # taken: draw again
    raise IntegrityError("no free referral code after several attempts")


def _own_code(member: Member) -> ReferralCode | None:
    return (
        ReferralCode.objects.filter(
            workspace_id=member.workspace_id, member=member, personal=False, active=True
        )
        .order_by("pk")
        .first()
    )


def referral_code_find(*, workspace: Workspace, code: str) -> ReferralCode | None:
    """The workspace's referral code written `code` (any case), active or not, with its
    member; None when there is none."""
    text = code.strip().upper()
    if not text or len(text) > 40:
        return None
    return (
        ReferralCode.objects.filter(workspace=workspace, code=text).select_related("member").first()
    )


def code_usable(code: ReferralCode | None) -> bool:
    """The code can still bring friends: active, of a member who is neither merged nor erased."""
    return (
        code is not None
        and code.active
        and code.member.merged_into_id is None
        and code.member.erased_at is None
    )


# --------------------------------------------------------------------------- clicks and claims


def referral_click(
    *, code: ReferralCode, visitor: str, address: str, now: dt.datetime | None = None
) -> ReferralClick:
    """Record that a visitor (a cookie's id) opened the code's link; the network address is
    kept only as a salted hash."""
    return ReferralClick.objects.create(
        workspace_id=code.workspace_id,
        code=code,
        visitor=visitor.strip()[:40],
        address_hash=address_hash(address),
        clicked_at=now or timezone.now(),
    )


def _last_click_code(workspace: Workspace, visitor: str, since: dt.datetime) -> ReferralCode | None:
    """The code of the visitor's latest click inside the window, if it can still be used."""
    if not visitor.strip():
        return None
    click = (
        ReferralClick.objects.filter(
            workspace=workspace, visitor=visitor.strip()[:40], clicked_at__gte=since
        )
        .select_related("code", "code__member")
        .order_by("-clicked_at", "-pk")
        .first()
    )
    if click is None or not code_usable(click.code):
        return None
    return click.code


def referral_claim(
    *,
    workspace: Workspace,
    code: str,
    email: str,
    name: str,
    visitor: str,
    address: str,
    via: str,
    viewer: Member | None = None,
    now: dt.datetime | None = None,
) -> Referral:
    """A friend claims an invitation with their email: the referral is recorded and the friend
    gets the program's friend reward (`friend_redemption`), or it waits for review (no reward)
    when a fraud check fires. A link claim goes to the visitor's last click inside the window.
    ReferralError (nothing changed) for a bad email or name, an unknown or inactive code, the
    advocate's own invitation (`viewer`), an email already invited, or a closed program."""
    now = now or timezone.now()
    program = program_get(workspace_id=workspace.pk)
    if not program.enabled:
        raise ReferralError("code", _("The rewards program is closed."))
    if via not in Referral.Via.values:
        raise ReferralError("via", _("Choose how the friend came: a link or a code."))
    try:
        clean_email = _clean_email(email)
        clean_name = clean_text(name, "name", NAME_MAX)
    except (IdentityError, MemberError) as error:
        raise ReferralError(error.field, error.message) from None
    referral_code = referral_code_find(workspace=workspace, code=code)
    if via == Referral.Via.LINK:
        window = dt.timedelta(days=program.referral_window_days)
        referral_code = _last_click_code(workspace, visitor, now - window) or referral_code
    if referral_code is None or not code_usable(referral_code):
        raise ReferralError("code", _("This invitation is not valid any more."))
    if viewer is not None and viewer.pk == referral_code.member_id:
        raise ReferralError("code", _("This is your own invitation: share it with your friends."))
    key = email_key(clean_email)
    if Referral.objects.filter(workspace=workspace, friend_email_key=key).exists():
        raise ReferralError("email", _("This email address was invited already."))
    hashed = address_hash(address)
    try:
        with transaction.atomic():
            friend = member_resolve(
                workspace=workspace,
                identities=[
                    IdentityIn(
                        channel=CLAIM_CHANNEL,
                        kind=IdentityKind.EMAIL,
                        value=clean_email,
                        source="referral",
                    )
                ],
                attrs=MemberAttrs(display_name=clean_name),
                seen_at=now,
            ).member
            flags = _claim_flags(
                workspace=workspace,
                program=program,
                advocate=referral_code.member,
                friend=friend,
                email=clean_email,
                key=key,
                name=clean_name,
                hashed=hashed,
                now=now,
            )
            referral = Referral.objects.create(
                workspace=workspace,
                advocate=referral_code.member,
                friend=friend,
                code=referral_code,
                via=via,
                friend_email=clean_email,
                friend_email_key=key,
                address_hash=hashed,
                status=Referral.Status.REVIEW if flags else Referral.Status.CLAIMED,
                flags=flags,
                claimed_at=now,
            )
    except IntegrityError:
        # The same email claimed at the same moment: the other claim won.
        if Referral.objects.filter(workspace=workspace, friend_email_key=key).exists():
            raise ReferralError("email", _("This email address was invited already.")) from None
        raise
    except (IdentityError, MemberError) as error:
        raise ReferralError(error.field, error.message) from None
    if referral.status == Referral.Status.CLAIMED:
        # After the commit: a store-made code is a network call, never under a transaction.
        friend_reward_give(referral=referral, program=program)
    return referral


def _clean_email(email: str) -> str:
    from circolo.people.normalise import normalise_email

    return normalise_email(email)


def friend_reward_give(*, referral: Referral, program: Program | None = None) -> Redemption | None:
    """Give the friend the program's friend reward, once per referral (request key
    "referral:<id>"); None when the program has none or the reward cannot be given now (the
    reason is logged; asking again later tries again)."""
    if referral.friend_redemption_id is not None:
        return referral.friend_redemption
    program = program or program_get(workspace_id=referral.workspace_id)
    reward = program.referral_friend_reward
    if reward is None or referral.friend is None:
        return None
    try:
        redemption = redemption_request(
            member=referral.friend,
            reward=reward,
            request_key=f"referral:{referral.pk}",
            free=True,
        )
    except RedeemError as error:
        logger.warning("referral %s: the friend reward was not given: %s", referral.pk, error)
        return None
    Referral.objects.filter(pk=referral.pk, friend_redemption__isnull=True).update(
        friend_redemption=redemption
    )
    referral.friend_redemption = redemption
    return redemption


def _advocate_email_keys(workspace_id: int, member_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Each advocate's email keys, with the address each came from."""
    found: dict[int, dict[str, str]] = {}
    for member_id, value in Identity.objects.filter(
        workspace_id=workspace_id, member_id__in=sorted(set(member_ids)), kind=IdentityKind.EMAIL
    ).values_list("member_id", "value"):
        found.setdefault(member_id, {})[email_key(value)] = value
    return found


def _claim_flags(
    *,
    workspace: Workspace,
    program: Program,
    advocate: Member,
    friend: Member,
    email: str,
    key: str,
    name: str,
    hashed: str,
    now: dt.datetime,
) -> list[dict[str, str]]:
    flags: list[dict[str, str]] = []
    if friend.pk == advocate.pk:
        flags.append({"check": "same_customer", "detail": email})
    advocate_keys = _advocate_email_keys(workspace.pk, [advocate.pk]).get(advocate.pk, {})
    if key in advocate_keys:
        flags.append({"check": "same_email", "detail": f"{email} = {advocate_keys[key]}"})
    friend_name = name_key(name) or friend.name_key
    if friend_name and friend_name == advocate.name_key:
        flags.append({"check": "same_name", "detail": name or friend.display_name})
    if hashed:
        recent = Referral.objects.filter(
            workspace=workspace, address_hash=hashed, claimed_at__gte=now - CLAIMS_PERIOD
        ).count()
        if recent >= program.referral_claims_per_address:
            flags.append(
                {
                    "check": "address_claims",
                    "detail": f"{recent + 1} > {program.referral_claims_per_address}",
                }
            )
    # A customer already: the friend's member, or whoever else holds this very email.
    holders = set(
        Identity.objects.filter(
            workspace=workspace, kind=IdentityKind.EMAIL, value=email
        ).values_list("member_id", flat=True)
    )
    if members_with_paid_orders(workspace_id=workspace.pk, member_ids=holders | {friend.pk}):
        flags.append({"check": "not_new_customer", "detail": email})
    return flags


# --------------------------------------------------------------------------- orders


def order_void(order: OrderForPoints) -> bool:
    """The order is no purchase any more: cancelled, or all its merchandise (or its whole
    total) refunded."""
    if order.cancelled:
        return True
    merchandise = sum(order.lines.values())
    refunded = order.refunded_unlined + sum(
        min(order.refunded_lines.get(line, 0), base) for line, base in order.lines.items()
    )
    if merchandise > 0:
        return refunded >= merchandise
    return order.total_minor > 0 and refunded >= order.total_minor


@dataclass
class _Batch:
    """What one call of referrals_orders_seen read, so each order is decided without queries."""

    program: Program
    referrals: dict[int, Referral]
    by_order: dict[int, Referral] = field(default_factory=dict)
    by_friend: dict[int, list[Referral]] = field(default_factory=dict)
    by_key: dict[str, Referral] = field(default_factory=dict)
    by_reward_code: dict[str, Referral] = field(default_factory=dict)
    codes: dict[str, ReferralCode] = field(default_factory=dict)

    def index(self, referral: Referral) -> None:
        self.referrals[referral.pk] = referral
        if referral.order_id is not None:
            self.by_order[referral.order_id] = referral
        if referral.friend_id is not None:
            self.by_friend.setdefault(referral.friend_id, []).append(referral)
        self.by_key[referral.friend_email_key] = referral


def _open(referral: Referral) -> bool:
    """Still waiting for the friend's first order."""
    return referral.status in OPEN and referral.order_id is None


def referrals_orders_seen(
    *, workspace_id: int, orders: Sequence[OrderForPoints], now: dt.datetime | None = None
) -> int:
    """Bring referrals in line with these orders (called by loyalty.orders.orders_sync for
    every order event, in its transaction; replays change nothing): a friend's first paid
    order is attributed (a typed referral code, else the friend reward's code, else the
    friend's claim within the window), checked for fraud (review) or put in its return
    window (ordered); a voided first order voids its referral. Returns how many changed."""
    now = now or timezone.now()
    if not orders:
        return 0
    contacts = orders_contacts(workspace_id=workspace_id, order_ids=[o.order_id for o in orders])
    # The friend's referral is found by their email too: the store may know them as another
    # member than the one their claim made (an unverified email joins nobody).
    keys = {pk: email_key(c.email) for pk, c in contacts.items() if c.email}
    batch = _batch_read(workspace_id, orders, set(keys.values()))
    if batch is None:
        return 0
    changed: dict[int, Referral] = {}
    plans: list[tuple[OrderForPoints, Referral, list[dict[str, str]]]] = []
    for order in sorted(orders, key=lambda o: (o.paid_at, o.order_id)):
        known = batch.by_order.get(order.order_id)
        if known is not None:
            if known.status in (Referral.Status.ORDERED, Referral.Status.REVIEW) and order_void(
                order
            ):
                known.status = Referral.Status.VOID
                changed[known.pk] = known
            continue
        if order.member_id is None or not order.paid:
            continue
        picked = _attribute(workspace_id, batch, order, keys.get(order.order_id, ""), contacts)
        if picked is not None:
            referral, carried = picked
            if referral.pk is None or _open(referral):
                plans.append((order, referral, carried))
    if plans:
        _decide_first_orders(workspace_id, batch, plans, contacts, changed, now)
    for referral in changed.values():
        referral.save(
            update_fields=[
                "advocate",
                "code",
                "via",
                "friend",
                "status",
                "flags",
                "order_id",
                "qualify_after",
            ]
        )
    return len(changed)


def _referrals_locked(rows: Any) -> list[Referral]:
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True).order_by("pk")
    return list(rows)


def _batch_read(
    workspace_id: int, orders: Sequence[OrderForPoints], keys: set[str]
) -> _Batch | None:
    """The referrals and codes these orders may touch (at most three queries); None when
    there are none."""
    members = sorted({o.member_id for o in orders if o.member_id is not None})
    typed = {code.strip() for o in orders for code in o.discount_codes if code and code.strip()}
    upper = sorted({code.upper() for code in typed})
    codes: dict[str, ReferralCode] = {}
    if upper:
        codes = {
            row.code: row
            for row in ReferralCode.objects.filter(
                workspace_id=workspace_id, code__in=upper, active=True
            ).select_related("member")
            if row.member.merged_into_id is None and row.member.erased_at is None
        }
    # Each term probes an index (a referral's order is its friend's: no order_id index).
    query = Q(friend_id__in=members)
    if keys:
        query |= Q(friend_email_key__in=sorted(keys))
    variants = sorted({c for code in typed for c in (code, code.upper(), code.lower())})
    if variants:
        query |= Q(
            friend_redemption_id__in=Redemption.objects.filter(
                workspace_id=workspace_id, code__in=variants
            ).values("pk")
        )
    referrals = _referrals_locked(Referral.objects.filter(query, workspace_id=workspace_id))
    if not referrals and not codes:
        return None
    batch = _Batch(program=program_get(workspace_id=workspace_id), referrals={}, codes=codes)
    for referral in referrals:
        batch.index(referral)
    redemption_ids = [r.friend_redemption_id for r in referrals if r.friend_redemption_id]
    if redemption_ids and typed:
        by_id = {r.friend_redemption_id: r for r in referrals}
        for pk, code in Redemption.objects.filter(pk__in=redemption_ids).values_list("pk", "code"):
            if code:
                batch.by_reward_code[code.upper()] = by_id[pk]
    return batch


def _attribute(
    workspace_id: int,
    batch: _Batch,
    order: OrderForPoints,
    key: str,
    contacts: Mapping[int, Any],
) -> tuple[Referral, list[dict[str, str]]] | None:
    """The referral this paid order may be the first order of (new and unsaved for a code
    typed by someone never invited), with the flags it carries over; None when none."""
    member_id = order.member_id
    assert member_id is not None
    mine = sorted(
        [r for r in batch.by_friend.get(member_id, []) if r.friend_email_key != key]
        + ([batch.by_key[key]] if key and key in batch.by_key else []),
        key=lambda r: (r.claimed_at, r.pk or 0),
    )
    existing = next((r for r in mine if _open(r)), mine[0] if mine else None)
    typed = [code.strip().upper() for code in order.discount_codes if code and code.strip()]
    code = next((batch.codes[c] for c in typed if c in batch.codes), None)
    if code is not None:
        if existing is None:
            email = contacts[order.order_id].email if order.order_id in contacts else ""
            referral = Referral(
                workspace_id=workspace_id,
                advocate=code.member,
                friend_id=member_id,
                code=code,
                via=Referral.Via.CODE,
                friend_email=email[:320],
                friend_email_key=key or f"member:{member_id}",
                status=Referral.Status.CLAIMED,
                claimed_at=order.paid_at,
            )
            return referral, []
        if not _open(existing):
            return None
        carried = list(existing.flags)
        if existing.code_id != code.pk:
            # A code typed at checkout beats the link the friend claimed with.
            existing.advocate = code.member
            existing.code = code
            existing.via = Referral.Via.CODE
            carried = [f for f in carried if f.get("check") not in ADVOCATE_CHECKS]
        return existing, carried
    rewarded = next((batch.by_reward_code[c] for c in typed if c in batch.by_reward_code), None)
    if rewarded is not None:
        return (rewarded, list(rewarded.flags)) if _open(rewarded) else None
    if existing is None or not _open(existing):
        return None
    window = dt.timedelta(days=batch.program.referral_window_days)
    if not existing.claimed_at <= order.paid_at <= existing.claimed_at + window:
        return None
    return existing, list(existing.flags)


def _decide_first_orders(
    workspace_id: int,
    batch: _Batch,
    plans: Sequence[tuple[OrderForPoints, Referral, list[dict[str, str]]]],
    contacts: Mapping[int, Any],
    changed: dict[int, Referral],
    now: dt.datetime,
) -> None:
    """Run the order-time checks on the attributed first orders and set their referrals."""
    friends = {order.member_id for order, _r, _f in plans if order.member_id is not None}
    advocates = {referral.advocate_id for _o, referral, _f in plans}
    first = members_first_paid_orders(workspace_id=workspace_id, member_ids=friends)
    names = dict(
        Member.objects.filter(workspace_id=workspace_id, pk__in=friends | advocates).values_list(
            "pk", "name_key"
        )
    )
    emails = _advocate_email_keys(workspace_id, advocates)
    addresses = members_shipping_addresses(workspace_id=workspace_id, member_ids=advocates)
    window = dt.timedelta(days=batch.program.return_window_days)
    taken: set[int] = set()
    for order, referral, carried in plans:
        member_id = order.member_id
        assert member_id is not None
        if referral.pk is not None and referral.pk in taken:
            continue  # two orders in one batch: the earlier (first) one decided it
        earliest = first.get(member_id)
        flags = list(carried)
        if earliest is not None and earliest[0] != order.order_id:
            if earliest[1] >= referral.claimed_at and referral.pk is not None:
                continue  # not the first order after the claim: that one decides
            if not any(f.get("check") == "not_new_customer" for f in flags):
                flags.append({"check": "not_new_customer", "detail": order.number})
        contact = contacts.get(order.order_id)
        fresh = _order_flags(
            referral=referral,
            member_id=member_id,
            key=email_key(contact.email) if contact is not None and contact.email else "",
            shipping=contact.shipping_address if contact is not None else {},
            friend_name=names.get(member_id, ""),
            advocate_name=names.get(referral.advocate_id, ""),
            advocate_emails=emails.get(referral.advocate_id, {}),
            advocate_addresses=addresses.get(referral.advocate_id, []),
        )
        # Checks the team already looked at and approved are not raised again.
        seen = {f.get("check") for f in referral.flags} if referral.decided_at else set()
        known = {f.get("check") for f in flags}
        flags += [f for f in fresh if f["check"] not in known and f["check"] not in seen]
        referral.friend_id = member_id
        referral.order_id = order.order_id
        referral.qualify_after = order.paid_at + window
        referral.flags = flags
        if order_void(order):
            referral.status = Referral.Status.VOID
        elif any(f.get("check") not in seen for f in flags):
            referral.status = Referral.Status.REVIEW
        else:
            referral.status = Referral.Status.ORDERED
        if referral.pk is None:
            try:
                with transaction.atomic():
                    referral.save()
            except IntegrityError:
                # The friend's email was invited at the same moment: that referral decides.
                continue
            batch.index(referral)
        else:
            changed[referral.pk] = referral
        taken.add(referral.pk)


def _order_flags(
    *,
    referral: Referral,
    member_id: int,
    key: str,
    shipping: Mapping[str, Any],
    friend_name: str,
    advocate_name: str,
    advocate_emails: Mapping[str, str],
    advocate_addresses: Sequence[Mapping[str, Any]],
) -> list[dict[str, str]]:
    flags: list[dict[str, str]] = []
    if member_id == referral.advocate_id:
        flags.append({"check": "same_customer", "detail": f"#{member_id}"})
    for candidate in (key, referral.friend_email_key):
        if candidate and candidate in advocate_emails:
            flags.append(
                {"check": "same_email", "detail": f"{candidate} = {advocate_emails[candidate]}"}
            )
            break
    advocate_names = {advocate_name} | {name_key(address_name(a)) for a in advocate_addresses}
    advocate_names.discard("")
    shipped_to = address_name(shipping)
    for shown, folded in ((shipped_to, name_key(shipped_to)), ("", friend_name)):
        if folded and folded in advocate_names:
            flags.append({"check": "same_name", "detail": shown or folded})
            break
    place = address_key(shipping)
    if place and place in {address_key(a) for a in advocate_addresses}:
        flags.append({"check": "same_address", "detail": place.replace("|", ", ")})
    return flags


# --------------------------------------------------------------------------- payouts


def referrals_pay_due(*, now: dt.datetime | None = None, limit: int = PAY_BATCH) -> int:
    """Pay the advocates of ordered referrals whose first order passed its return window and
    is still a purchase (else void them), and lapse claims older than the referral window
    without an order. Idempotent (one movement per referral, key "referral:<id>"); returns
    how many referrals changed: run it until it returns 0."""
    now = now or timezone.now()
    changed = 0
    due = Referral.objects.filter(status=Referral.Status.ORDERED, qualify_after__lte=now)
    by_workspace: dict[int, list[int]] = {}
    for workspace_id, pk in due.order_by("pk").values_list("workspace_id", "pk")[:limit]:
        by_workspace.setdefault(workspace_id, []).append(pk)
    for workspace_id, ids in by_workspace.items():
        changed += _pay(workspace_id, ids, now)
    changed += _lapse(now)
    return changed


class _Moved(Exception):
    """The referral changed while its advocate was being paid: the payment is undone."""


def _pay(workspace_id: int, ids: Sequence[int], now: dt.datetime) -> int:
    """Pay (or void) these due referrals of one workspace, each in its own transaction;
    returns how many changed.

    The points are posted before the referral row is locked: order events lock the ledger
    before the referral too (orders_sync), so the two never wait for each other in a circle.
    """
    program = program_get(workspace_id=workspace_id)
    referrals = list(
        Referral.objects.filter(
            workspace_id=workspace_id, pk__in=list(ids), status=Referral.Status.ORDERED
        ).order_by("pk")
    )
    orders = {
        order.order_id: order
        for order in orders_for_points(
            workspace_id=workspace_id,
            order_ids=[r.order_id for r in referrals if r.order_id is not None],
        )
    }
    points = program.referral_advocate_points
    paid: list[Referral] = []
    changed = 0
    for referral in referrals:
        order = orders.get(referral.order_id) if referral.order_id is not None else None
        if order is None or order_void(order):
            changed += Referral.objects.filter(
                pk=referral.pk, status=Referral.Status.ORDERED
            ).update(status=Referral.Status.VOID)
            continue
        try:
            with transaction.atomic():
                movement_id = _advocate_pay(referral, points, order, now)
                row = Referral.objects.select_for_update().filter(pk=referral.pk).first()
                if row is None or row.status != Referral.Status.ORDERED:
                    raise _Moved
                Referral.objects.filter(pk=referral.pk).update(
                    status=Referral.Status.REWARDED, advocate_movement_id=movement_id
                )
        except _Moved:
            continue  # voided or paid by someone else meanwhile
        changed += 1
        paid.append(referral)
    if paid:
        rewards_notify(
            workspace_id=workspace_id,
            items=[
                (r.advocate_id, f"referral:{r.pk}", {"what": "referral", "points": points})
                for r in paid
            ],
            now=now,
        )
        badges_referrals_check(
            workspace_id=workspace_id, member_ids=[r.advocate_id for r in paid], now=now
        )
    return changed


def _advocate_pay(
    referral: Referral, points: int, order: OrderForPoints, now: dt.datetime
) -> int | None:
    """The advocate's points for a referral, once (the key makes a second call a no-op);
    returns the movement's id (None when the program pays nothing)."""
    key = f"referral:{referral.pk}"
    posted = bonus_award(
        workspace_id=referral.workspace_id,
        member_id=referral.advocate_id,
        rule="referral",
        key=key,
        points=points,
        reason=Reason.REFERRAL,
        occurred_at=min(now, timezone.now()),
        details={"referral": referral.pk, "friend": referral.friend_id, "order": order.number},
    )
    if posted is not None:
        return posted
    return (
        Movement.objects.filter(workspace_id=referral.workspace_id, key=key)
        .values_list("pk", flat=True)
        .first()
    )


def _lapse(now: dt.datetime) -> int:
    """Claims without an order after their workspace's referral window lapse."""
    lapsed = 0
    workspace_ids = (
        Referral.objects.filter(status=Referral.Status.CLAIMED, order_id__isnull=True)
        .filter(claimed_at__lt=now - dt.timedelta(days=1))
        .values_list("workspace_id", flat=True)
        .distinct()
        .order_by()
    )
    for workspace_id in list(workspace_ids):
        window = dt.timedelta(days=program_get(workspace_id=workspace_id).referral_window_days)
        lapsed += Referral.objects.filter(
            workspace_id=workspace_id,
            status=Referral.Status.CLAIMED,
            order_id__isnull=True,
            claimed_at__lt=now - window,
        ).update(status=Referral.Status.LAPSED)
    return lapsed


# --------------------------------------------------------------------------- review


def referral_review_decide(
    *,
    referral: Referral,
    actor: Any,
    approve: bool,
    note: str,
    now: dt.datetime | None = None,
) -> Referral:
    """The team decides a referral in review (audited). Approved, it goes on: paid at once
    when its order has passed the return window, ordered while it is in it, or claimed (the
    friend gets their reward) when there is no order yet. Rejected, nothing is paid.
    ReferralError when it is not waiting for review or the note is too long."""
    now = now or timezone.now()
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ReferralError("note", _("Keep the note to %(n)s characters.") % {"n": NOTE_MAX})
    with transaction.atomic():
        rows = Referral.objects.filter(workspace_id=referral.workspace_id, pk=referral.pk)
        row = rows.select_for_update().first()
        if row is None or row.status != Referral.Status.REVIEW:
            raise ReferralError("referral", _("This referral is not waiting for review."))
        row.decided_at = now
        row.decided_by = actor if getattr(actor, "is_authenticated", False) else None
        row.note = note
        if not approve:
            row.status = Referral.Status.REJECTED
        elif row.order_id is None:
            row.status = Referral.Status.CLAIMED
        else:
            row.status = Referral.Status.ORDERED
        row.save(update_fields=["status", "decided_at", "decided_by", "note"])
        audit_record(
            workspace=Workspace.objects.get(pk=row.workspace_id),
            actor=actor,
            action="loyalty.referral.approve" if approve else "loyalty.referral.reject",
            target=row,
            data={
                "advocate": row.advocate_id,
                "friend": row.friend_id,
                "flags": [f.get("check") for f in row.flags],
                "note": note,
            },
        )
        due = row.qualify_after is not None and row.qualify_after <= now
    if row.status == Referral.Status.ORDERED and due:
        # After the decision's commit, the way the payout job pays (ledger first).
        _pay(row.workspace_id, [row.pk], now)
    row.refresh_from_db()
    if row.status == Referral.Status.CLAIMED:
        friend_reward_give(referral=row)
    return row


# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class MemberReferrals:
    """A member's referrals for their pages: the latest first, counted by status."""

    referrals: list[Referral]
    counts: dict[str, int]
    points: int

    @property
    def rewarded(self) -> int:
        return self.counts.get(Referral.Status.REWARDED, 0)

    @property
    def waiting(self) -> int:
        return sum(
            self.counts.get(status, 0)
            for status in (Referral.Status.CLAIMED, Referral.Status.ORDERED, Referral.Status.REVIEW)
        )


def member_referrals(*, member: Member, limit: int = 50) -> MemberReferrals:
    """The friends a member brought (the latest `limit`), counts per status and the points
    they earned. Three queries."""
    rows = Referral.objects.filter(workspace_id=member.workspace_id, advocate=member)
    counts = dict(
        rows.values("status").annotate(n=Count("pk")).order_by().values_list("status", "n")
    )
    points = rows.aggregate(p=Sum("advocate_movement__points"))["p"] or 0
    return MemberReferrals(
        referrals=list(rows.select_related("friend").order_by("-claimed_at", "-pk")[:limit]),
        counts=counts,
        points=int(points),
    )


def referral_queue(*, workspace: Workspace, limit: int = 200) -> list[Referral]:
    """Referrals waiting for the team's review, the oldest first, with their people."""
    return list(
        Referral.objects.filter(workspace=workspace, status=Referral.Status.REVIEW)
        .select_related("advocate", "friend", "code")
        .order_by("claimed_at", "pk")[:limit]
    )


def referrals_recent(*, workspace: Workspace, limit: int = 50) -> list[Referral]:
    """The workspace's latest referrals, with their people."""
    return list(
        Referral.objects.filter(workspace=workspace)
        .select_related("advocate", "friend", "code")
        .order_by("-claimed_at", "-pk")[:limit]
    )


@dataclass(frozen=True)
class ReferralStats:
    counts: dict[str, int]
    clicks_30_days: int
    points_paid: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rewarded(self) -> int:
        return self.counts.get(Referral.Status.REWARDED, 0)

    @property
    def in_review(self) -> int:
        return self.counts.get(Referral.Status.REVIEW, 0)


def referral_stats(*, workspace: Workspace, now: dt.datetime | None = None) -> ReferralStats:
    """Referrals per status, link clicks in the last 30 days and points paid to advocates.
    Three queries."""
    now = now or timezone.now()
    rows = Referral.objects.filter(workspace=workspace)
    counts = dict(
        rows.values("status").annotate(n=Count("pk")).order_by().values_list("status", "n")
    )
    clicks = ReferralClick.objects.filter(
        workspace=workspace, clicked_at__gte=now - dt.timedelta(days=30)
    ).count()
    points = Movement.objects.filter(workspace=workspace, reason=Reason.REFERRAL).aggregate(
        p=Sum("points")
    )["p"]
    return ReferralStats(counts=counts, clicks_30_days=clicks, points_paid=int(points or 0))
