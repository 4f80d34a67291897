"""A member's points history, each movement explained in plain words in their language."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from circolo.commerce.money import format_money
from circolo.loyalty.models import Account, Entry, Movement, OrderEarning, Reason
from circolo.loyalty.rules import RULE_LABELS
from circolo.people.models import Member

HISTORY_PAGE_SIZE = 25


@dataclass(frozen=True)
class HistoryRow:
    movement: Movement
    # What the movement did to the member's spendable and pending points (signed).
    points: int
    pending: int
    text: str


def movement_text(movement: Movement) -> str:
    """One sentence saying why points moved, in the active language."""
    d: dict[str, Any] = movement.details or {}
    number = str(d.get("number", ""))
    reason = movement.reason
    if reason == Reason.ORDER:
        amount = format_money(int(d.get("base_minor", 0)), str(d.get("currency", "EUR")))
        text = _(
            "Order %(number)s: points for %(amount)s of goods (shipping and tax excluded)."
        ) % {"number": number, "amount": amount}
        if d.get("bonus"):
            text += " " + _("Includes %(bonus)s points for your first purchase.") % {
                "bonus": d["bonus"]
            }
        if d.get("until"):
            text += " " + _("Pending until %(date)s, when the return window closes.") % {
                "date": d["until"]
            }
        return text
    if reason == Reason.ORDER_APPROVED:
        return _("Order %(number)s: the return window closed, the points are yours.") % {
            "number": number or _("(earlier)")
        }
    if reason == Reason.ORDER_VOIDED:
        return _("Order %(number)s was cancelled: its points were removed.") % {"number": number}
    if reason == Reason.REFUND:
        return _(
            "Refund on order %(number)s: the points of the refunded goods were taken back."
        ) % {"number": number}
    if reason == Reason.ACTION:
        label = RULE_LABELS.get(movement.rule)
        return str(label) if label is not None else _("Community")
    if reason == Reason.ACTION_REMOVED:
        return _("A moderator removed your post: the points it earned were taken back.")
    if reason == Reason.ACTION_RESTORED:
        return _("Your post is back: so are its points.")
    if reason == Reason.BONUS:
        label = RULE_LABELS.get(movement.rule)
        return str(label) if label is not None else _("Bonus")
    if reason == Reason.REFERRAL:
        return _("A friend you invited made their first order.")
    if reason == Reason.REDEMPTION:
        return _("Reward: %(reward)s.") % {"reward": d.get("reward", "")}
    if reason == Reason.REDEMPTION_REFUNDED:
        return _("The reward “%(reward)s” could not be issued: your points are back.") % {
            "reward": d.get("reward", "")
        }
    if reason == Reason.EXPIRY:
        months = int(d.get("months", 12))
        return ngettext(
            "Points expired after %(months)s month without any activity.",
            "Points expired after %(months)s months without any activity.",
            months,
        ) % {"months": months}
    if reason == Reason.ADJUSTMENT:
        note = str(d.get("note", ""))
        return (
            _("Adjusted by the team: %(note)s") % {"note": note}
            if note
            else _("Adjusted by the team.")
        )
    if reason == Reason.DISPUTE:
        return _("Correction after your question to the team.")
    if reason == Reason.MERGE:
        return _("Points from another account of yours.")
    return str(Reason(reason).label) if reason in Reason.values else reason


def _member_movements(member: Member) -> QuerySet[Movement]:
    return Movement.objects.filter(workspace_id=member.workspace_id, member=member).order_by(
        "-occurred_at", "-pk"
    )


def member_history(*, member: Member, page: int | str = 1) -> Page[HistoryRow]:
    """A page of the member's movements, newest first, with their effect and explanation,
    in two queries."""
    paginator = Paginator(_member_movements(member), HISTORY_PAGE_SIZE)
    found = paginator.get_page(page)
    movements: Sequence[Movement] = list(found.object_list)
    effects = _effects(member, [m.pk for m in movements])
    rows: list[Any] = [
        HistoryRow(
            movement=movement,
            points=effects[movement.pk][Account.Kind.MEMBER],
            pending=effects[movement.pk][Account.Kind.PENDING],
            text=movement_text(movement),
        )
        for movement in movements
    ]
    found.object_list = rows
    return found  # type: ignore[return-value]


def _effects(member: Member, movement_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    effects: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for movement_id, kind, amount in Entry.objects.filter(
        workspace_id=member.workspace_id,
        movement_id__in=movement_ids,
        account__member=member,
    ).values_list("movement_id", "account__kind", "amount"):
        effects[movement_id][kind] += amount
    return effects


@dataclass(frozen=True)
class PendingOrder:
    number: str
    points: int
    until: dt.date


def member_pending_orders(*, member: Member) -> list[PendingOrder]:
    """The member's orders whose points wait for the return window, soonest first."""
    rows = OrderEarning.objects.filter(
        workspace_id=member.workspace_id, member=member, status=OrderEarning.Status.PENDING
    ).order_by("approve_after")[:20]
    numbers = dict(
        Movement.objects.filter(
            workspace_id=member.workspace_id,
            order_id__in=[row.order_id for row in rows],
            reason=Reason.ORDER,
        ).values_list("order_id", "details__number")
    )
    return [
        PendingOrder(
            number=str(numbers.get(row.order_id) or ""),
            points=row.points - row.clawed,
            until=row.approve_after.date(),
        )
        for row in rows
        if row.points > row.clawed
    ]
