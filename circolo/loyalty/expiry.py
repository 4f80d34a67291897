"""Points expire after a stretch of months without any activity, with warnings first.

A member's clock restarts with anything they do (community, orders, reviews: every
recorded activity) and with any movement of their points. Expiry takes the whole spendable
balance (pending points never expire) into the expiry account, numbered per member
(key "expire:<member>:<how many expiries before>"). Warnings go out 30 and 7 days before, once each.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Max
from django.utils import timezone

from circolo.activity.selectors import members_last_active
from circolo.loyalty import ledger
from circolo.loyalty.models import Account, ExpiryWarning, Movement, Program, Reason
from circolo.loyalty.rules import program_get
from circolo.people.models import Member

WARN_DAYS = (30, 7)
BATCH = 2000


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """`moment` plus calendar months (the 31st becomes the month's last day)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Holder:
    member_id: int
    balance: int
    last_seen: dt.datetime
    expires_at: dt.datetime


def _holders(program: Program, member_ids: Sequence[int] | None = None) -> list[Holder]:
    """Members of the program with spendable points and when those points expire."""
    accounts = Account.objects.filter(
        workspace_id=program.workspace_id, kind=Account.Kind.MEMBER, balance__gt=0
    )
    if member_ids is not None:
        accounts = accounts.filter(member_id__in=member_ids)
    holders: list[Holder] = []
    rows = list(accounts.values_list("member_id", "balance").order_by("member_id"))
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        ids = [member_id for member_id, _balance in chunk if member_id is not None]
        active = members_last_active(workspace_id=program.workspace_id, member_ids=ids)
        moved = dict(
            Movement.objects.filter(workspace_id=program.workspace_id, member_id__in=ids)
            .exclude(reason=Reason.EXPIRY)
            .values("member_id")
            .annotate(last=Max("occurred_at"))
            .values_list("member_id", "last")
        )
        for member_id, balance in chunk:
            assert member_id is not None
            seen = [t for t in (active.get(member_id), moved.get(member_id)) if t is not None]
            if not seen:
                continue
            last = max(seen)
            holders.append(
                Holder(
                    member_id=member_id,
                    balance=balance,
                    last_seen=last,
                    expires_at=add_months(last, program.expiry_months),
                )
            )
    return holders


def _programs(workspace_id: int | None) -> list[Program]:
    """The programs whose points expire and that have members holding points (a workspace
    without settings of its own has the default program)."""
    holders = Account.objects.filter(kind=Account.Kind.MEMBER, balance__gt=0)
    if workspace_id is not None:
        holders = holders.filter(workspace_id=workspace_id)
    ids = sorted(set(holders.values_list("workspace_id", flat=True).distinct()))
    programs = [program_get(workspace_id=pk) for pk in ids]
    return [program for program in programs if program.expiry_months]


def points_expire(*, now: dt.datetime | None = None, workspace_id: int | None = None) -> int:
    """Expire the points of members inactive for the program's months; returns how many
    members' points expired."""
    now = now or timezone.now()
    expired = 0
    for program in _programs(workspace_id):
        due = [h for h in _holders(program) if h.expires_at <= now]
        for start in range(0, len(due), BATCH):
            expired += len(_expire(program, due[start : start + BATCH], now))
    return expired


def _expire(program: Program, due: Sequence[Holder], now: dt.datetime) -> dict[str, int]:
    from django.db import transaction

    with transaction.atomic():
        balances = ledger.accounts_lock(
            workspace_id=program.workspace_id,
            refs=[ledger.member_account(h.member_id) for h in due],
        )
        # Numbered per member: a second expiry on the same day (late, backdated earnings)
        # is a movement of its own, while running the job twice finds nothing left.
        before = dict(
            Movement.objects.filter(
                workspace_id=program.workspace_id,
                member_id__in=[h.member_id for h in due],
                reason=Reason.EXPIRY,
            )
            .values("member_id")
            .annotate(n=Count("pk"))
            .values_list("member_id", "n")
        )
        items = []
        for holder in due:
            balance = balances[ledger.member_account(holder.member_id)]
            if balance <= 0:
                continue
            items.append(
                ledger.transfer(
                    key=f"expire:{holder.member_id}:{before.get(holder.member_id, 0)}",
                    reason=Reason.EXPIRY,
                    member_id=holder.member_id,
                    source=ledger.member_account(holder.member_id),
                    target=ledger.EXPIRY,
                    points=balance,
                    occurred_at=holder.expires_at,
                    details={
                        "last_seen": holder.last_seen.date().isoformat(),
                        "months": program.expiry_months,
                    },
                )
            )
        return ledger.movements_post(workspace_id=program.workspace_id, items=items, now=now)


def expiry_warnings_send(*, now: dt.datetime | None = None) -> int:
    """Warn members whose points expire within 30 and within 7 days (once per lead and
    expiry day); returns how many warnings went out."""
    from circolo.community.notifications import notify

    now = now or timezone.now()
    sent = 0
    for program in _programs(None):
        holders = [h for h in _holders(program) if now < h.expires_at <= now + dt.timedelta(30)]
        if not holders:
            continue
        warned = set(
            ExpiryWarning.objects.filter(
                member_id__in=[h.member_id for h in holders],
                expires_on__in={h.expires_at.date() for h in holders},
            ).values_list("member_id", "expires_on", "days_before")
        )
        members = Member.objects.in_bulk([h.member_id for h in holders])
        for holder in holders:
            left = holder.expires_at - now
            lead = min(d for d in WARN_DAYS if left <= dt.timedelta(days=d))
            day = holder.expires_at.date()
            if (holder.member_id, day, lead) in warned:
                continue
            ExpiryWarning.objects.create(
                workspace_id=program.workspace_id,
                member_id=holder.member_id,
                expires_on=day,
                days_before=lead,
                points=holder.balance,
                sent_at=now,
            )
            member = members.get(holder.member_id)
            if member is not None:
                notify(
                    recipient=member,
                    kind="rewards",
                    key=f"expiry:{day.isoformat()}:{lead}",
                    data={"what": "expiry", "points": holder.balance, "date": day.isoformat()},
                    now=now,
                )
            sent += 1
    return sent


def member_expiry(*, member_id: int, workspace_id: int) -> Holder | None:
    """When the member's spendable points expire if they do nothing (None: nothing to lose
    or the program's points never expire)."""
    program = program_get(workspace_id=workspace_id)
    if not program.expiry_months:
        return None
    found = _holders(program, member_ids=[member_id])
    return found[0] if found else None
