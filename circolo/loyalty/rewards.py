"""The reward catalogue and redeeming: points for a single-use code.

Redeeming spends the points first, under a lock on the member's account (two requests can
never spend the same points), and then makes the code: from an uploaded pool in the same
transaction, or in the store through its API after the commit (never holding a lock over a
network call). If the store cannot make it, the points go back with a movement of their own.
A request key makes asking twice (a double click, a retried API call) give one redemption.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.dialect import is_postgres
from circolo.commerce.models import Store

if TYPE_CHECKING:
    from circolo.commerce.discounts import DiscountSpec
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.models import MemberTier, PoolCode, Reason, Redemption, Reward
from circolo.loyalty.rules import program_get
from circolo.people.models import Member

logger = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,99}$")
# A redemption still "issuing" after this long lost its worker: the retry job finishes it.
ISSUING_STALE = dt.timedelta(minutes=5)


class RedeemError(ValueError):
    """A redemption refused before anything changed; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def code_generate(prefix: str = "") -> str:
    """A fresh code: the prefix and 10 characters nobody misreads (no 0/O, 1/I)."""
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    return f"{prefix}-{body}" if prefix else body


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class RewardIn:
    name: str
    kind: str
    cost_points: int
    description: str = ""
    amount_minor: int = 0
    percent: int = 0
    currency: str = ""
    min_order_minor: int = 0
    code_source: str = Reward.CodeSource.STORE
    store_id: int | None = None
    product_id: int | None = None
    event_id: int | None = None
    tier_id: int | None = None
    valid_days: int = 90
    stock: int | None = None
    enabled: bool = True


class RewardError(ValueError):
    """A reward that cannot be saved: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _reward_errors(workspace: Workspace, data: RewardIn) -> dict[str, str]:
    from circolo.commerce.discounts import discounts_supported

    errors: dict[str, str] = {}
    if not data.name.strip():
        errors["name"] = _("Give the reward a name.")
    if data.kind not in Reward.Kind.values:
        errors["kind"] = _("Choose what the reward is.")
    if not 0 <= data.cost_points <= 10_000_000:
        errors["cost_points"] = _("Give a cost from 0 to 10,000,000 points.")
    if data.kind == Reward.Kind.AMOUNT_OFF and data.amount_minor <= 0:
        errors["amount_minor"] = _("Give the amount off.")
    if data.kind == Reward.Kind.PERCENT_OFF and not 1 <= data.percent <= 100:
        errors["percent"] = _("Give a percentage from 1 to 100.")
    if data.kind in (Reward.Kind.FREE_PRODUCT, Reward.Kind.EARLY_ACCESS) and not data.product_id:
        errors["product"] = _("Choose the product.")
    if data.kind == Reward.Kind.EVENT_TICKET and not data.event_id:
        errors["event"] = _("Choose the event.")
    in_store = data.kind in Reward.STORE_KINDS
    if in_store and data.code_source == Reward.CodeSource.CIRCOLO:
        errors["code_source"] = _("A discount must come from the store or from uploaded codes.")
    if not in_store and data.code_source != Reward.CodeSource.CIRCOLO:
        errors["code_source"] = _("Early access and tickets are issued by Circolo.")
    if data.code_source == Reward.CodeSource.STORE:
        store = (
            Store.objects.filter(workspace=workspace, pk=data.store_id).first()
            if data.store_id is not None
            else None
        )
        if store is None:
            errors["store"] = _("Choose the store that makes the codes.")
        elif not discounts_supported(store=store):
            errors["store"] = _(
                "This store cannot make codes through an API: upload a list of codes instead."
            )
    if data.stock is not None and data.stock < 0:
        errors["stock"] = _("Give how many can be redeemed, or leave it empty for no limit.")
    if not 0 <= data.valid_days <= 3650:
        errors["valid_days"] = _("Give from 0 to 3,650 days (0: no end).")
    return errors


def reward_save(
    *, workspace: Workspace, data: RewardIn, actor: object, reward: Reward | None = None
) -> Reward:
    """Create a reward, or change one of the workspace's (RewardError names each problem).
    Past redemptions keep what they were given."""
    if reward is not None and reward.workspace_id != workspace.pk:
        raise RewardError({"reward": _("No such reward.")})
    errors = _reward_errors(workspace, data)
    if errors:
        raise RewardError(errors)
    row = reward or Reward(workspace=workspace)
    row.name = data.name.strip()[:100]
    row.description = data.description.strip()[:300]
    row.kind = data.kind
    row.cost_points = data.cost_points
    row.amount_minor = data.amount_minor
    row.percent = data.percent
    row.currency = (data.currency or workspace.currency).upper()
    row.min_order_minor = data.min_order_minor
    row.code_source = data.code_source
    row.store_id = data.store_id if data.code_source == Reward.CodeSource.STORE else None
    row.product_id = data.product_id
    row.event_id = data.event_id
    row.tier_id = data.tier_id
    row.valid_days = data.valid_days
    row.stock = data.stock
    row.enabled = data.enabled
    with transaction.atomic():
        row.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.reward.update" if reward else "loyalty.reward.create",
            target=row,
            data={"name": row.name, "kind": row.kind, "cost": row.cost_points},
        )
    return row


@dataclass(frozen=True)
class PoolUpload:
    added: int
    duplicates: int
    invalid: list[str]


def pool_codes_add(*, reward: Reward, codes: Iterable[str], actor: object) -> PoolUpload:
    """Add uploaded codes to a pool reward (one per line); known codes are skipped, codes
    with characters a store would not accept are listed and left out."""
    if reward.code_source != Reward.CodeSource.POOL:
        raise RewardError({"codes": _("This reward does not take its codes from a list.")})
    seen: set[str] = set()
    invalid: list[str] = []
    for raw in codes:
        code = raw.strip()
        if not code:
            continue
        if not CODE_RE.match(code):
            invalid.append(code[:100])
        else:
            seen.add(code)
    known = set(
        PoolCode.objects.filter(reward=reward, code__in=seen).values_list("code", flat=True)
    )
    now = timezone.now()
    fresh = sorted(seen - known)
    with transaction.atomic():
        PoolCode.objects.bulk_create(
            [
                PoolCode(workspace_id=reward.workspace_id, reward=reward, code=c, uploaded_at=now)
                for c in fresh
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
        audit_record(
            workspace=reward.workspace,
            actor=actor,
            action="loyalty.reward.codes",
            target=reward,
            data={"added": len(fresh), "duplicates": len(known), "invalid": len(invalid)},
        )
    return PoolUpload(added=len(fresh), duplicates=len(known), invalid=invalid)


def rewards_available(*, workspace_id: int) -> list[Reward]:
    """The rewards members can buy with points now, and tiers' free perks (cost 0 with a
    tier: free shipping codes...), cheapest first, with codes left."""
    rewards = list(
        Reward.objects.filter(workspace_id=workspace_id, enabled=True)
        .filter(Q(cost_points__gt=0) | Q(tier__isnull=False))
        .select_related("tier", "product", "event")
        .annotate(
            redeemed=Count("redemptions", filter=~Q(redemptions__status=Redemption.Status.FAILED)),
            pool_left=Count("pool", filter=Q(pool__taken_at__isnull=True)),
        )
        .order_by("cost_points", "pk")
    )
    return [
        reward
        for reward in rewards
        if (reward.stock is None or reward.redeemed < reward.stock)
        and (reward.code_source != Reward.CodeSource.POOL or reward.pool_left > 0)
    ]


# --------------------------------------------------------------------------- redeeming


def _check(member: Member, reward: Reward, *, free: bool) -> None:
    if reward.workspace_id != member.workspace_id:
        raise RedeemError("reward", _("No such reward."))
    if member.merged_into_id is not None or member.erased_at is not None:
        raise RedeemError("member", _("This member can no longer redeem rewards."))
    if not program_get(workspace_id=member.workspace_id).enabled:
        raise RedeemError("reward", _("The rewards program is closed."))
    if not reward.enabled:
        raise RedeemError("reward", _("This reward is not available any more."))
    if not free and reward.cost_points <= 0 and reward.tier_id is None:
        raise RedeemError("reward", _("This reward cannot be bought with points."))
    if reward.tier_id is not None and not free:
        tier = (
            MemberTier.objects.filter(member=member)
            .values_list("tier__threshold", flat=True)
            .first()
        )
        if tier is None or tier < reward.tier.threshold:  # type: ignore[union-attr]
            raise RedeemError(
                "reward",
                _("This reward is for members of the tier “%(tier)s” and above.")
                % {"tier": reward.tier.name},  # type: ignore[union-attr]
            )


def redemption_request(
    *,
    member: Member,
    reward: Reward,
    request_key: str,
    free: bool = False,
    now: dt.datetime | None = None,
) -> Redemption:
    """Redeem `reward` for `member`: spend its points and make the code. Asking again with
    the same `request_key` returns the first redemption. RedeemError (nothing changed) for a
    disabled or sold-out reward, an insufficient balance or no codes left; a code the store
    could not make gives a FAILED redemption with the points returned. `free`: a gift (a
    referred friend's reward), no points spent."""
    now = now or timezone.now()
    key = request_key.strip()[:80]
    if not key:
        raise RedeemError("request_key", _("The request has no key."))
    existing = Redemption.objects.filter(member=member, request_key=key).first()
    if existing is not None:
        return existing
    _check(member, reward, free=free)
    try:
        with transaction.atomic():
            redemption = _spend(member, reward, key, free, now)
    except IntegrityError:
        # The same request, posted twice at once: the other one won.
        found = Redemption.objects.filter(member=member, request_key=key).first()
        if found is None:
            raise
        return found
    if redemption.status == Redemption.Status.ISSUING:
        redemption_issue(redemption_id=redemption.pk)
        redemption.refresh_from_db()
    return redemption


def _spend(member: Member, reward: Reward, key: str, free: bool, now: dt.datetime) -> Redemption:
    cost = 0 if free else reward.cost_points
    account = ledger.member_account(member.pk)
    if cost:
        balances = ledger.accounts_lock(
            workspace_id=member.workspace_id, refs=[account, ledger.REDEMPTION]
        )
        if balances[account] < cost:
            raise RedeemError(
                "points",
                _("You need %(cost)s points for this reward and have %(balance)s.")
                % {"cost": cost, "balance": max(balances[account], 0)},
            )
    if reward.stock is not None:
        # Counted under the reward's lock: concurrent requests cannot pass the stock.
        Reward.objects.select_for_update().filter(pk=reward.pk).first()
        taken = reward.redemptions.exclude(status=Redemption.Status.FAILED).count()
        if taken >= reward.stock:
            raise RedeemError("reward", _("This reward has run out."))
    if reward.cost_points == 0 and reward.tier_id is not None and not free:
        # A tier's perk (a free shipping code...): once a month while in the tier.
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = Redemption.objects.filter(
            member=member, reward=reward, created_at__gte=month
        ).exclude(status=Redemption.Status.FAILED)
        if this_month.exists():
            raise RedeemError(
                "reward", _("You have this month's already: the next one comes next month.")
            )
    redemption = Redemption.objects.create(
        workspace_id=member.workspace_id,
        member=member,
        reward=reward,
        points=cost,
        request_key=key,
        created_at=now,
        expires_at=now + dt.timedelta(days=reward.valid_days) if reward.valid_days else None,
    )
    if reward.code_source == Reward.CodeSource.POOL:
        pool = PoolCode.objects.filter(reward=reward, taken_at__isnull=True).order_by("pk")
        code = pool.select_for_update(skip_locked=True).first() if is_postgres() else pool.first()
        if code is None:
            raise RedeemError("reward", _("All the codes of this reward have been given out."))
        PoolCode.objects.filter(pk=code.pk).update(taken_at=now)
        redemption.code = code.code
        redemption.status = Redemption.Status.ISSUED
        redemption.issued_at = now
    else:
        prefix = "GIFT" if free else "R"
        redemption.code = code_generate(prefix)
        if reward.code_source == Reward.CodeSource.STORE:
            redemption.store_id = reward.store_id
    redemption.save()
    if cost:
        ledger.movements_post(
            workspace_id=member.workspace_id,
            items=[
                ledger.transfer(
                    key=f"redeem:{redemption.pk}",
                    reason=Reason.REDEMPTION,
                    member_id=member.pk,
                    source=account,
                    target=ledger.REDEMPTION,
                    points=cost,
                    details={"reward": reward.name, "reward_id": reward.pk},
                )
            ],
            now=now,
        )
    return redemption


def redemption_issue(*, redemption_id: int) -> Redemption:
    """Make the code of a redemption still being issued (idempotent): in the store, or here
    for early access and tickets. A failure the store says is final returns the points."""
    from circolo.commerce.discounts import DiscountError, discount_create

    redemption = Redemption.objects.select_related("reward", "member", "store").get(
        pk=redemption_id
    )
    if redemption.status != Redemption.Status.ISSUING:
        return redemption
    reward = redemption.reward
    external_id = ""
    try:
        if reward.code_source == Reward.CodeSource.STORE:
            if redemption.store is None:
                raise DiscountError(_("The reward's store is gone."), retryable=False)
            created = discount_create(store=redemption.store, spec=_spec(redemption))
            external_id = created.external_id
        elif reward.kind == Reward.Kind.EVENT_TICKET:
            _ticket(redemption)
    except DiscountError as error:
        if error.retryable and timezone.now() - redemption.created_at < dt.timedelta(hours=24):
            logger.warning("redemption %s: the store failed, retrying later", redemption.pk)
            Redemption.objects.filter(pk=redemption.pk).update(error=str(error)[:300])
            redemption.error = str(error)[:300]
            return redemption
        return _fail(redemption, str(error))
    except RedeemError as error:
        return _fail(redemption, error.message)
    Redemption.objects.filter(pk=redemption.pk, status=Redemption.Status.ISSUING).update(
        status=Redemption.Status.ISSUED,
        external_id=external_id[:200],
        issued_at=timezone.now(),
        error="",
    )
    redemption.refresh_from_db()
    return redemption


def _spec(redemption: Redemption) -> DiscountSpec:
    from circolo.commerce.discounts import DiscountSpec

    reward = redemption.reward
    product = reward.product.external_id if reward.product is not None else ""
    emails = redemption.member.identities.filter(kind="email").values_list("value", flat=True)
    return DiscountSpec(
        code=redemption.code,
        kind=reward.kind,
        amount_minor=reward.amount_minor,
        percent=reward.percent,
        currency=reward.currency,
        product_external_id=product,
        min_order_minor=reward.min_order_minor,
        ends_at=redemption.expires_at,
        customer_email=emails.first() or "",
        title=f"Circolo: {reward.name}"[:100],
    )


def _ticket(redemption: Redemption) -> None:
    """An event ticket is a place at the event (the member is put on its list)."""
    from circolo.community.events import rsvp_set
    from circolo.community.services import CommunityError

    event = redemption.reward.event
    if event is None:
        raise RedeemError("reward", _("The reward's event is gone."))
    try:
        rsvp_set(event=event, member=redemption.member, going=True)
    except CommunityError as error:
        raise RedeemError("reward", str(error)) from error


def _fail(redemption: Redemption, message: str) -> Redemption:
    with transaction.atomic():
        changed = Redemption.objects.filter(
            pk=redemption.pk, status=Redemption.Status.ISSUING
        ).update(status=Redemption.Status.FAILED, error=message[:300])
        if changed and redemption.points:
            ledger.movements_post(
                workspace_id=redemption.workspace_id,
                items=[
                    ledger.transfer(
                        key=f"redeem:{redemption.pk}:refund",
                        reason=Reason.REDEMPTION_REFUNDED,
                        member_id=redemption.member_id,
                        source=ledger.REDEMPTION,
                        target=ledger.member_account(redemption.member_id),
                        points=redemption.points,
                        details={"reward": redemption.reward.name},
                    )
                ],
            )
    redemption.refresh_from_db()
    return redemption


def redemptions_retry(*, now: dt.datetime | None = None) -> int:
    """Finish redemptions left issuing (a lost worker, a store that was down); returns how
    many were looked at."""
    now = now or timezone.now()
    ids = list(
        Redemption.objects.filter(
            status=Redemption.Status.ISSUING, created_at__lte=now - ISSUING_STALE
        ).values_list("pk", flat=True)[:500]
    )
    for pk in ids:
        redemption_issue(redemption_id=pk)
    return len(ids)


def redemptions_mark_used(*, workspace_id: int, uses: Iterable[tuple[str, int]]) -> int:
    """Mark issued codes used by orders ((code, order id) pairs; codes compared without
    case). Returns how many redemptions changed."""
    by_code = {code.upper(): order_id for code, order_id in uses if code}
    if not by_code:
        return 0
    changed = 0
    now = timezone.now()
    rows = Redemption.objects.filter(
        workspace_id=workspace_id, status=Redemption.Status.ISSUED, code__in=_variants(by_code)
    )
    for pk, code in rows.values_list("pk", "code"):
        changed += Redemption.objects.filter(pk=pk, status=Redemption.Status.ISSUED).update(
            status=Redemption.Status.USED, used_at=now, used_order_id=by_code[code.upper()]
        )
    return changed


def _variants(codes: dict[str, int]) -> list[str]:
    # Codes are stored as issued (generated ones upper case; pool codes as uploaded).
    return sorted({c for code in codes for c in (code, code.lower(), code.upper())})
