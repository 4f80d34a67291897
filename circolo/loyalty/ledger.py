"""The one way points move: `movements_post` writes double-entry movements, once per key.

Every movement's legs sum to zero. Accounts keep a running balance that the same transaction
updates, after locking the touched accounts in id order (so two writers never wait on each
other in a cycle); `ledger_verify` recomputes every balance from the entries. Rows are never
updated or deleted here: a correction is a movement of its own.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from circolo.loyalty.inserts import rows_insert
from circolo.loyalty.models import Account, Entry, Movement

Kind = Account.Kind
# (kind, member id or None for the program's own accounts)
AccountRef = tuple[str, int | None]

ISSUANCE: AccountRef = (Kind.ISSUANCE, None)
REDEMPTION: AccountRef = (Kind.REDEMPTION, None)
EXPIRY: AccountRef = (Kind.EXPIRY, None)
POST_ATTEMPTS = 3


def member_account(member_id: int) -> AccountRef:
    return (Kind.MEMBER, member_id)


def pending_account(member_id: int) -> AccountRef:
    return (Kind.PENDING, member_id)


class LedgerError(ValueError):
    """A movement that cannot be posted as given (a programming error, not user input)."""


@dataclass(frozen=True)
class MovementIn:
    """A movement to post. `legs` are (account, amount) pairs summing to zero; `points` is
    how many points reached or left the member (positive), for lists and explanations."""

    key: str
    reason: str
    member_id: int | None
    legs: tuple[tuple[AccountRef, int], ...]
    points: int
    rule: str = ""
    activity_id: int | None = None
    order_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reverses_id: int | None = None
    actor_id: int | None = None
    occurred_at: dt.datetime | None = None


def transfer(
    *,
    key: str,
    reason: str,
    member_id: int | None,
    source: AccountRef,
    target: AccountRef,
    points: int,
    **extra: Any,
) -> MovementIn:
    """A movement of `points` (> 0) from one account to another."""
    return MovementIn(
        key=key,
        reason=reason,
        member_id=member_id,
        legs=((source, -points), (target, points)),
        points=points,
        **extra,
    )


def _check(item: MovementIn) -> None:
    if not item.key or len(item.key) > 120:
        raise LedgerError(f"a movement needs a key of 1-120 characters, not {item.key!r}")
    if not item.legs or any(amount == 0 for _ref, amount in item.legs):
        raise LedgerError(f"movement {item.key}: every leg moves a non-zero amount")
    if sum(amount for _ref, amount in item.legs) != 0:
        raise LedgerError(f"movement {item.key}: the legs do not sum to zero")
    if item.points <= 0:
        raise LedgerError(f"movement {item.key}: points must be positive")
    for (kind, member_id), _amount in item.legs:
        if (kind in Account.MEMBER_KINDS) != (member_id is not None):
            raise LedgerError(f"movement {item.key}: account {kind} with member {member_id}")
        if member_id is not None and member_id != item.member_id:
            raise LedgerError(f"movement {item.key}: a leg touches another member")


def accounts_ensure(*, workspace_id: int, refs: Iterable[AccountRef]) -> dict[AccountRef, int]:
    """The ids of these accounts of the workspace, creating the missing ones."""
    wanted = set(refs)
    found = _accounts_find(workspace_id, wanted)
    missing = wanted - set(found)
    if missing:
        Account.objects.bulk_create(
            [Account(workspace_id=workspace_id, kind=kind, member_id=m) for kind, m in missing],
            ignore_conflicts=True,
        )
        found.update(_accounts_find(workspace_id, missing))
    return found


def _accounts_find(workspace_id: int, refs: set[AccountRef]) -> dict[AccountRef, int]:
    if not refs:
        return {}
    members = {m for _kind, m in refs if m is not None}
    found: dict[AccountRef, int] = {}
    rows = Account.objects.filter(workspace_id=workspace_id, member__isnull=True)
    if any(m is None for _kind, m in refs):
        found.update({(kind, None): pk for pk, kind in rows.values_list("pk", "kind")})
    for start in range(0, len(members), 5000):
        chunk = sorted(members)[start : start + 5000]
        found.update(
            {
                (kind, member_id): pk
                for pk, kind, member_id in Account.objects.filter(
                    workspace_id=workspace_id, member_id__in=chunk
                ).values_list("pk", "kind", "member_id")
            }
        )
    return {ref: pk for ref, pk in found.items() if ref in refs}


def accounts_lock(*, workspace_id: int, refs: Iterable[AccountRef]) -> dict[AccountRef, int]:
    """Lock these accounts (creating missing ones) in id order for the rest of the current
    transaction; returns their balances. Lock before reading a balance you will spend."""
    ids = accounts_ensure(workspace_id=workspace_id, refs=refs)
    balances = _lock_ids(sorted(ids.values()))
    return {ref: balances[pk] for ref, pk in ids.items()}


def _lock_ids(ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    # SQLite has no row locks: its IMMEDIATE transactions already hold the write lock.
    rows = Account.objects.filter(pk__in=ids).order_by("pk")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(no_key=True)
    return dict(rows.values_list("pk", "balance"))


def movements_post(
    *, workspace_id: int, items: Sequence[MovementIn], now: dt.datetime | None = None
) -> dict[str, int]:
    """Post the movements whose keys are new (a known key, also twice in `items`, is a
    no-op) and update the balances. Returns {key: movement id} of those posted now."""
    for item in items:
        _check(item)
    if not items:
        return {}
    for attempt in range(POST_ATTEMPTS):
        try:
            with transaction.atomic():
                return _post(workspace_id, items, now or timezone.now())
        except IntegrityError:
            # A concurrent writer posted one of the keys first: read the keys and go again.
            if attempt == POST_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _post(workspace_id: int, items: Sequence[MovementIn], now: dt.datetime) -> dict[str, int]:
    unique: dict[str, MovementIn] = {}
    for item in items:
        unique.setdefault(item.key, item)
    keys = list(unique)
    known: set[str] = set()
    for start in range(0, len(keys), 5000):
        known.update(
            Movement.objects.filter(
                workspace_id=workspace_id, key__in=keys[start : start + 5000]
            ).values_list("key", flat=True)
        )
    fresh = [item for key, item in unique.items() if key not in known]
    if not fresh:
        return {}
    accounts = accounts_ensure(
        workspace_id=workspace_id, refs={ref for item in fresh for ref, _a in item.legs}
    )
    deltas: dict[int, int] = defaultdict(int)
    for item in fresh:
        for ref, amount in item.legs:
            deltas[accounts[ref]] += amount
    _lock_ids(sorted(deltas))
    ids = rows_insert(
        Movement,
        (
            "workspace_id", "member_id", "reason", "rule", "key", "activity_id", "order_id",
            "points", "details", "reverses_id", "actor_id", "occurred_at", "created_at",
        ),
        [
            (
                workspace_id, item.member_id, item.reason, item.rule, item.key,
                item.activity_id, item.order_id, item.points, item.details, item.reverses_id,
                item.actor_id, item.occurred_at or now, now,
            )
            for item in fresh
        ],
    )  # fmt: skip
    rows_insert(
        Entry,
        ("workspace_id", "movement_id", "account_id", "amount"),
        [
            (workspace_id, pk, accounts[ref], amount)
            for pk, item in zip(ids, fresh, strict=True)
            for ref, amount in item.legs
        ],
    )
    _balances_add(deltas, now)
    return {item.key: pk for pk, item in zip(ids, fresh, strict=True)}


def _balances_add(deltas: dict[int, int], now: dt.datetime) -> None:
    changed = [(pk, delta) for pk, delta in sorted(deltas.items()) if delta]
    if not changed:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE loyalty_account AS a SET balance = a.balance + v.delta, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, delta) WHERE a.id = v.id",
                [now, [pk for pk, _d in changed], [d for _pk, d in changed]],
            )
        else:
            cursor.executemany(
                "UPDATE loyalty_account SET balance = balance + %s, updated_at = %s WHERE id = %s",
                [(delta, now, pk) for pk, delta in changed],
            )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Balance:
    points: int
    pending: int


def member_balance(*, member_id: int) -> Balance:
    """A member's spendable and pending points (0 when they have no account yet)."""
    rows = dict(Account.objects.filter(member_id=member_id).values_list("kind", "balance"))
    return Balance(points=rows.get(Kind.MEMBER, 0), pending=rows.get(Kind.PENDING, 0))


def members_balances(*, workspace_id: int, member_ids: Sequence[int]) -> dict[int, Balance]:
    """member_balance for many members, in one query."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for member_id, kind, balance in Account.objects.filter(
        workspace_id=workspace_id, member_id__in=member_ids
    ).values_list("member_id", "kind", "balance"):
        found[member_id][kind] = balance
    return {
        member_id: Balance(
            points=found[member_id].get(Kind.MEMBER, 0),
            pending=found[member_id].get(Kind.PENDING, 0),
        )
        for member_id in member_ids
    }


@dataclass
class Verification:
    """What ledger_verify found; `ok` when nothing is wrong."""

    movements: int = 0
    accounts: int = 0
    unbalanced_movements: list[int] = field(default_factory=list)
    wrong_balances: list[tuple[int, int, int]] = field(default_factory=list)  # id, kept, sum
    total: int = 0

    @property
    def ok(self) -> bool:
        return not self.unbalanced_movements and not self.wrong_balances and self.total == 0


def ledger_verify(*, workspace_id: int) -> Verification:
    """Recompute the ledger from its entries: every movement sums to zero, every account's
    running balance equals the sum of its entries, and all balances together are zero."""
    result = Verification()
    result.movements = Movement.objects.filter(workspace_id=workspace_id).count()
    result.unbalanced_movements = list(
        Entry.objects.filter(workspace_id=workspace_id)
        .values("movement_id")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("movement_id", flat=True)
    )
    sums = dict(
        Entry.objects.filter(workspace_id=workspace_id)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    for pk, balance in Account.objects.filter(workspace_id=workspace_id).values_list(
        "pk", "balance"
    ):
        result.accounts += 1
        result.total += balance
        if sums.get(pk, 0) != balance:
            result.wrong_balances.append((pk, balance, sums.get(pk, 0)))
    return result
