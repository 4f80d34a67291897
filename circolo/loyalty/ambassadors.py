"""The ambassador program: members apply or are invited, the team approves them with a
personal code, perks and an earn multiplier, and sees what each ambassador brings.

Every team decision is audited. An approved ambassador earns their multiplier on orders
(loyalty.orders.members_multipliers), gets the "ambassador" badge when the workspace has one,
and their personal code brings friends like any referral code; ending the membership turns
the code off and takes the badge back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.models import Activity, MemberDailyRollup
from circolo.commerce.selectors import orders_totals_by_member
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty.badges import badge_grant, badge_revoke
from circolo.loyalty.models import Ambassador, Badge, MemberBadge, Referral, ReferralCode
from circolo.loyalty.referrals import CODE_RE
from circolo.loyalty.tiers import MULTIPLIER_MAX, MULTIPLIER_MIN, rewards_notify
from circolo.people.models import Member

MESSAGE_MAX = 2000
PERKS_MAX = 2000
BADGE_SLUG = "ambassador"
SUGGESTION_DAYS = 90
IMPACT_DAYS = 365
# Referrals whose friend really bought: what an ambassador's impact counts.
BOUGHT = (Referral.Status.ORDERED, Referral.Status.REWARDED)
# An ambassador (or a member on the way to be one): not suggested again.
CURRENT = (Ambassador.Status.APPLIED, Ambassador.Status.INVITED, Ambassador.Status.APPROVED)


class AmbassadorError(ValueError):
    """An ambassador action refused before anything changed; `field` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def _live(member: Member) -> None:
    if member.merged_into_id is not None or member.erased_at is not None:
        raise AmbassadorError("member", _("This member was merged or erased."))


def _message(text: str, limit: int, field_name: str) -> str:
    value = text.strip()
    if len(value) > limit:
        raise AmbassadorError(
            field_name, _("Keep it to %(limit)s characters.") % {"limit": f"{limit:,}"}
        )
    return value


def ambassador_of(*, member: Member) -> Ambassador | None:
    """The member's place in the ambassador program (with their code), or None."""
    return (
        Ambassador.objects.filter(workspace_id=member.workspace_id, member=member)
        .select_related("code")
        .first()
    )


def ambassador_apply(*, member: Member, message: str, now: dt.datetime | None = None) -> Ambassador:
    """The member asks to be an ambassador (or accepts the team's invitation) with a few words
    for the team. AmbassadorError for an ambassador, a pending application, an empty or too
    long message, or a merged or erased member."""
    now = now or timezone.now()
    _live(member)
    text = _message(message, MESSAGE_MAX, "message")
    if not text:
        raise AmbassadorError("message", _("Tell the team why you would like to be an ambassador."))
    with transaction.atomic():
        row = (
            Ambassador.objects.select_for_update()
            .filter(workspace_id=member.workspace_id, member=member)
            .first()
        )
        if row is not None and row.status == Ambassador.Status.APPROVED:
            raise AmbassadorError("member", _("You are an ambassador already."))
        if row is not None and row.status == Ambassador.Status.APPLIED:
            raise AmbassadorError("member", _("You applied already: the team will answer soon."))
        if row is None:
            row = Ambassador(workspace_id=member.workspace_id, member=member)
        row.status = Ambassador.Status.APPLIED
        row.message = text
        row.created_at = now
        row.decided_at = None
        row.decided_by = None
        row.save()
    return row


def ambassador_invite(
    *,
    workspace: Workspace,
    member: Member,
    actor: Any,
    message: str,
    now: dt.datetime | None = None,
) -> Ambassador:
    """The team invites a member to the program (audited; the member is told). The member
    accepts by applying. AmbassadorError for a member of another workspace, merged or erased,
    already an ambassador or with an application waiting."""
    now = now or timezone.now()
    if member.workspace_id != workspace.pk:
        raise AmbassadorError("member", _("No such member in this workspace."))
    _live(member)
    text = _message(message, MESSAGE_MAX, "message")
    with transaction.atomic():
        row = (
            Ambassador.objects.select_for_update()
            .filter(workspace=workspace, member=member)
            .first()
        )
        if row is not None and row.status == Ambassador.Status.APPROVED:
            raise AmbassadorError("member", _("This member is an ambassador already."))
        if row is not None and row.status == Ambassador.Status.APPLIED:
            raise AmbassadorError(
                "member", _("This member applied already: decide the application.")
            )
        if row is None:
            row = Ambassador(workspace=workspace, member=member)
        row.status = Ambassador.Status.INVITED
        row.message = text
        row.created_at = now
        row.decided_at = None
        row.decided_by = None
        row.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.ambassador.invite",
            target=row,
            data={"member": member.pk},
        )
        rewards_notify(
            workspace_id=workspace.pk,
            items=[
                (
                    member.pk,
                    f"ambassador:{row.pk}:invited:{now:%Y%m%d%H%M%S}",
                    {"what": "ambassador_invited"},
                )
            ],
            now=now,
        )
    return row


def _personal_code(ambassador: Ambassador, text: str, now: dt.datetime) -> ReferralCode:
    """The ambassador's personal code written `text`: theirs already, or made now."""
    code = text.strip().upper()
    if not CODE_RE.match(code):
        raise AmbassadorError(
            "code",
            _("Use 3 to 40 letters, digits, “-” or “_”, starting with a letter or a digit."),
        )
    found = ReferralCode.objects.filter(workspace_id=ambassador.workspace_id, code=code).first()
    if found is not None and found.member_id != ambassador.member_id:
        raise AmbassadorError("code", _("This code is taken: choose another one."))
    if found is not None:
        if not (found.personal and found.active):
            found.personal = True
            found.active = True
            found.save(update_fields=["personal", "active"])
        return found
    try:
        with transaction.atomic():
            return ReferralCode.objects.create(
                workspace_id=ambassador.workspace_id,
                member_id=ambassador.member_id,
                code=code,
                personal=True,
                created_at=now,
            )
    except IntegrityError:
        raise AmbassadorError("code", _("This code is taken: choose another one.")) from None


def _ambassador_badge(workspace_id: int) -> Badge | None:
    return Badge.objects.filter(workspace_id=workspace_id, slug=BADGE_SLUG, enabled=True).first()


def ambassador_decide(
    *,
    ambassador: Ambassador,
    actor: Any,
    approve: bool,
    perks: str = "",
    multiplier_percent: int = 100,
    code: str = "",
    now: dt.datetime | None = None,
) -> Ambassador:
    """The team approves an application or invitation (a personal code, perks and an earn
    multiplier; the member is told and gets the ambassador badge), changes an approved
    ambassador's code, perks or multiplier, or declines. Audited. AmbassadorError for a bad
    or taken code, a multiplier out of range, or nothing to decide."""
    now = now or timezone.now()
    member = Member.objects.get(workspace_id=ambassador.workspace_id, pk=ambassador.member_id)
    with transaction.atomic():
        row = (
            Ambassador.objects.select_for_update()
            .filter(workspace_id=ambassador.workspace_id, pk=ambassador.pk)
            .first()
        )
        waiting = (Ambassador.Status.APPLIED, Ambassador.Status.INVITED)
        if row is None or row.status not in (*waiting, Ambassador.Status.APPROVED):
            raise AmbassadorError("ambassador", _("There is nothing to decide here."))
        if not approve:
            if row.status not in waiting:
                raise AmbassadorError("ambassador", _("End the membership instead."))
            row.status = Ambassador.Status.DECLINED
            row.decided_at = now
            row.decided_by = actor if getattr(actor, "is_authenticated", False) else None
            row.save(update_fields=["status", "decided_at", "decided_by"])
            _audit(row, actor, "loyalty.ambassador.decline", {})
            return row
        _live(member)
        if not MULTIPLIER_MIN <= multiplier_percent <= MULTIPLIER_MAX:
            raise AmbassadorError(
                "multiplier_percent",
                _("Give a multiplier from %(low)s to %(high)s %%.")
                % {"low": MULTIPLIER_MIN, "high": MULTIPLIER_MAX},
            )
        clean_perks = _message(perks, PERKS_MAX, "perks")
        personal = _personal_code(row, code, now)
        if row.code_id is not None and row.code_id != personal.pk:
            # One personal code at a time: the old one stops bringing friends.
            ReferralCode.objects.filter(pk=row.code_id).update(active=False)
        newly = row.status != Ambassador.Status.APPROVED
        row.status = Ambassador.Status.APPROVED
        row.code = personal
        row.perks = clean_perks
        row.multiplier_percent = multiplier_percent
        row.decided_at = now
        row.decided_by = actor if getattr(actor, "is_authenticated", False) else None
        row.save()
        _audit(
            row,
            actor,
            "loyalty.ambassador.approve" if newly else "loyalty.ambassador.update",
            {"code": personal.code, "multiplier": multiplier_percent},
        )
        if newly:
            rewards_notify(
                workspace_id=row.workspace_id,
                items=[
                    (
                        member.pk,
                        f"ambassador:{row.pk}:approved:{now:%Y%m%d%H%M%S}",
                        {"what": "ambassador", "code": personal.code},
                    )
                ],
                now=now,
            )
            badge = _ambassador_badge(row.workspace_id)
            # Held already by an ambassador of before whose badge stayed: nothing to give.
            if badge is not None and not _holds(member, badge):
                badge_grant(badge=badge, member=member, actor=actor, now=now)
    return row


def ambassador_end(
    *, ambassador: Ambassador, actor: Any, now: dt.datetime | None = None
) -> Ambassador:
    """End an ambassador's membership (audited): their personal code stops working, their
    multiplier stops and the ambassador badge is taken back. AmbassadorError when they are
    not an ambassador."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            Ambassador.objects.select_for_update()
            .filter(workspace_id=ambassador.workspace_id, pk=ambassador.pk)
            .first()
        )
        if row is None or row.status != Ambassador.Status.APPROVED:
            raise AmbassadorError("ambassador", _("This member is not an ambassador."))
        row.status = Ambassador.Status.ENDED
        row.decided_at = now
        row.decided_by = actor if getattr(actor, "is_authenticated", False) else None
        row.save(update_fields=["status", "decided_at", "decided_by"])
        if row.code_id is not None:
            ReferralCode.objects.filter(pk=row.code_id).update(active=False)
        _audit(row, actor, "loyalty.ambassador.end", {})
        badge = _ambassador_badge(row.workspace_id)
        member = Member.objects.get(workspace_id=row.workspace_id, pk=row.member_id)
        if badge is not None and _holds(member, badge):
            badge_revoke(
                badge=badge, member=member, actor=actor, note=_("Ambassador program ended")
            )
    return row


def _holds(member: Member, badge: Badge) -> bool:
    return MemberBadge.objects.filter(
        workspace_id=member.workspace_id, member=member, badge=badge
    ).exists()


def _audit(row: Ambassador, actor: Any, action: str, data: dict[str, Any]) -> None:
    audit_record(
        workspace=Workspace.objects.get(pk=row.workspace_id),
        actor=actor,
        action=action,
        target=row,
        data={"member": row.member_id, **data},
    )


# --------------------------------------------------------------------------- selectors


def ambassadors_list(*, workspace: Workspace) -> list[Ambassador]:
    """Everyone in the program (waiting first, then approved, then the past), with members
    and codes."""
    order = {
        Ambassador.Status.APPLIED: 0,
        Ambassador.Status.INVITED: 1,
        Ambassador.Status.APPROVED: 2,
        Ambassador.Status.DECLINED: 3,
        Ambassador.Status.ENDED: 4,
    }
    rows = list(
        Ambassador.objects.filter(workspace=workspace)
        .select_related("member", "code")
        .order_by("-created_at", "-pk")
    )
    rows.sort(key=lambda row: order.get(Ambassador.Status(row.status), 9))
    return rows


@dataclass
class Suggestion:
    """A member worth inviting, and why."""

    member: Member
    reasons: list[str] = field(default_factory=list)
    weight: int = 0
    referrals: int = 0
    answers: int = 0


def ambassador_suggestions(
    *, workspace: Workspace, limit: int = 20, now: dt.datetime | None = None
) -> list[Suggestion]:
    """Members to invite: the top contributors by activity weight, the advocates with the
    most rewarded referrals and the members with the most accepted answers (the last 90
    days), current ambassadors left out; the ones with most reasons first. Four queries."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=SUGGESTION_DAYS)
    taken = Ambassador.objects.filter(workspace=workspace, status__in=CURRENT).values("member_id")
    weights = (
        MemberDailyRollup.objects.filter(workspace=workspace, day__gte=since.date())
        .exclude(member_id__in=taken)
        .values("member_id")
        .annotate(total=Sum("weight_sum"))
        .filter(total__gt=0)
        .order_by("-total", "member_id")
        .values_list("member_id", "total")[:limit]
    )
    referrals = (
        Referral.objects.filter(workspace=workspace, status=Referral.Status.REWARDED)
        .exclude(advocate_id__in=taken)
        .values("advocate_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "advocate_id")
        .values_list("advocate_id", "n")[:limit]
    )
    answers = (
        Activity.objects.filter(workspace=workspace, kind="accepted_answer", occurred_at__gte=since)
        .exclude(member_id__in=taken)
        .values("member_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "member_id")
        .values_list("member_id", "n")[:limit]
    )
    found: dict[int, dict[str, int]] = {}
    for member_id, total in weights:
        found.setdefault(member_id, {})["weight"] = int(total)
    for member_id, n in referrals:
        found.setdefault(member_id, {})["referrals"] = n
    for member_id, n in answers:
        found.setdefault(member_id, {})["answers"] = n
    members = {
        member.pk: member
        for member in Member.objects.filter(
            workspace=workspace,
            pk__in=list(found),
            merged_into__isnull=True,
            erased_at__isnull=True,
        )
    }
    suggestions: list[Suggestion] = []
    for member_id, numbers in found.items():
        member = members.get(member_id)
        if member is None:
            continue
        item = Suggestion(
            member=member,
            weight=numbers.get("weight", 0),
            referrals=numbers.get("referrals", 0),
            answers=numbers.get("answers", 0),
        )
        if item.weight:
            item.reasons.append(
                _("Top contributor: activity worth %(n)s in 90 days") % {"n": f"{item.weight:,}"}
            )
        if item.referrals:
            item.reasons.append(
                _("%(n)s friends brought and rewarded") % {"n": f"{item.referrals:,}"}
            )
        if item.answers:
            item.reasons.append(_("%(n)s accepted answers in 90 days") % {"n": f"{item.answers:,}"})
        suggestions.append(item)
    suggestions.sort(
        key=lambda s: (-len(s.reasons), -s.referrals, -s.answers, -s.weight, s.member.pk)
    )
    return suggestions[:limit]


@dataclass
class Impact:
    """What an ambassador brought in the last 12 months."""

    friends: int = 0
    orders: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    posts: int = 0
    replies: int = 0

    @property
    def content(self) -> int:
        return self.posts + self.replies


def ambassadors_impact(
    *,
    workspace_id: int,
    ambassadors: Sequence[Ambassador],
    now: dt.datetime | None = None,
) -> dict[int, Impact]:
    """Per ambassador (by id): the friends their codes brought who bought, those friends'
    orders and revenue per currency, accepted answers, posts and replies, in the last 12
    months. Three queries for any number of ambassadors."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=IMPACT_DAYS)
    by_member = {row.member_id: row.pk for row in ambassadors if row.workspace_id == workspace_id}
    impact = {pk: Impact() for pk in by_member.values()}
    if not by_member:
        return impact
    friends: dict[int, int] = {}
    for advocate_id, friend_id in Referral.objects.filter(
        workspace_id=workspace_id,
        advocate_id__in=list(by_member),
        status__in=BOUGHT,
        friend__isnull=False,
    ).values_list("advocate_id", "friend_id"):
        friends[friend_id] = advocate_id
        impact[by_member[advocate_id]].friends += 1
    totals = orders_totals_by_member(workspace_id=workspace_id, member_ids=friends, since=since)
    for friend_id, (count, revenue) in totals.items():
        row = impact[by_member[friends[friend_id]]]
        row.orders += count
        for currency, amount in revenue.items():
            row.revenue[currency] = row.revenue.get(currency, 0) + amount
    counts = (
        Activity.objects.filter(
            workspace_id=workspace_id,
            member_id__in=list(by_member),
            kind__in=("accepted_answer", "post", "reply"),
            occurred_at__gte=since,
        )
        .values("member_id", "kind")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("member_id", "kind", "n")
    )
    for member_id, kind, n in counts:
        row = impact[by_member[member_id]]
        if kind == "accepted_answer":
            row.answers += n
        elif kind == "post":
            row.posts += n
        else:
            row.replies += n
    return impact


def ambassador_impact(*, ambassador: Ambassador, now: dt.datetime | None = None) -> Impact:
    """One ambassador's impact in the last 12 months (see ambassadors_impact)."""
    return ambassadors_impact(
        workspace_id=ambassador.workspace_id, ambassadors=[ambassador], now=now
    )[ambassador.pk]
