"""Points for what members do (post, answer, review, attend, sign up...), from activities.

Each activity pays each matching rule once (key "activity:<id>:<rule>"), at most the rule's
daily cap per member and day (the workspace's calendar day), and "once" rules once per
member ever. A post removed by moderation takes back what it earned; shown again, it pays
it back. Points here are the member's at once (no return window).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from circolo.activity.handlers import HandledActivity
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.models import Movement, Reason
from circolo.loyalty.rules import ACTION_RULES, RuleSpec, rules_in_force

KIND_RULES: dict[str, list[RuleSpec]] = {}
for _spec in ACTION_RULES.values():
    for _kind in _spec.kinds:
        KIND_RULES.setdefault(_kind, []).append(_spec)
ACTION_KINDS = frozenset(KIND_RULES)
COMMUNITY_SOURCE = "community"


def _applies(spec: RuleSpec, activity: HandledActivity) -> bool:
    if spec.key == "review_photo":
        return int(activity.properties.get("photos") or 0) > 0
    return True


def post_of(activity: HandledActivity) -> int | None:
    """The community post an activity is about (its points go if the post is removed)."""
    if activity.source != COMMUNITY_SOURCE:
        return None
    parts = activity.source_id.split(":")
    if parts[0] == "post" and len(parts) == 2 and parts[1].isdigit():
        return int(parts[1])
    if parts[0] == "accepted" and len(parts) == 3 and parts[2].isdigit():
        return int(parts[2])
    return None


def _local_day(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def actions_earn(
    *, workspace_id: int, activities: Sequence[HandledActivity], now: dt.datetime | None = None
) -> int:
    """Pay the action rules for these activities; returns how many movements were posted."""
    now = now or timezone.now()
    wanted = [a for a in activities if a.kind in ACTION_KINDS]
    if not wanted:
        return 0
    rules = rules_in_force(workspace_id=workspace_id)
    zone_name = Workspace.objects.filter(pk=workspace_id).values_list("time_zone", flat=True)
    zone = zoneinfo.ZoneInfo(zone_name.first() or "UTC")
    members = {a.member_id for a in wanted}
    keys = sorted({spec.key for a in wanted for spec in KIND_RULES[a.kind]})
    # What each member already earned per rule: per local day (caps) and ever (once rules).
    low = min(a.occurred_at for a in wanted) - dt.timedelta(days=2)
    high = max(a.occurred_at for a in wanted) + dt.timedelta(days=2)
    per_day: Counter[tuple[int, str, dt.date]] = Counter()
    for member_id, rule_key, occurred in Movement.objects.filter(
        workspace_id=workspace_id,
        member_id__in=members,
        rule__in=keys,
        reason=Reason.ACTION,
        occurred_at__gte=low,
        occurred_at__lte=high,
    ).values_list("member_id", "rule", "occurred_at"):
        per_day[(member_id, rule_key, _local_day(occurred, zone))] += 1
    once_keys = [k for k in keys if ACTION_RULES[k].once]
    ever: set[tuple[int, str]] = set()
    if once_keys:
        ever = set(
            Movement.objects.filter(
                workspace_id=workspace_id,
                member_id__in=members,
                rule__in=once_keys,
                reason=Reason.ACTION,
            ).values_list("member_id", "rule")
        )
    movements: list[ledger.MovementIn] = []
    for activity in sorted(wanted, key=lambda a: (a.occurred_at, a.id)):
        for spec in KIND_RULES[activity.kind]:
            rule = rules[spec.key]
            if not rule["enabled"] or int(rule["points"]) <= 0 or not _applies(spec, activity):
                continue
            member_id = activity.member_id
            if spec.once:
                if (member_id, spec.key) in ever:
                    continue
                ever.add((member_id, spec.key))
            day = (member_id, spec.key, _local_day(activity.occurred_at, zone))
            cap = int(rule["daily_cap"])
            if cap and per_day[day] >= cap:
                continue
            per_day[day] += 1
            details: dict[str, Any] = {"kind": activity.kind}
            if (post := post_of(activity)) is not None:
                details["post"] = post
            if "thread" in activity.properties:
                details["thread"] = activity.properties["thread"]
            movements.append(
                ledger.transfer(
                    key=(
                        f"once:{spec.key}:{member_id}"
                        if spec.once
                        else f"activity:{activity.id}:{spec.key}"
                    ),
                    reason=Reason.ACTION,
                    member_id=member_id,
                    source=ledger.ISSUANCE,
                    target=ledger.member_account(member_id),
                    points=int(rule["points"]),
                    rule=spec.key,
                    activity_id=activity.id,
                    occurred_at=activity.occurred_at,
                    details=details,
                )
            )
    return len(ledger.movements_post(workspace_id=workspace_id, items=movements, now=now))


def bonus_award(
    *,
    workspace_id: int,
    member_id: int,
    rule: str,
    key: str,
    points: int,
    details: dict[str, Any] | None = None,
    reason: str = Reason.BONUS,
    occurred_at: dt.datetime | None = None,
) -> int | None:
    """Pay a member `points` for something outside the activity stream (a birthday, a
    referral), once per key. Returns the movement id, or None when the key was paid."""
    if points <= 0:
        return None
    posted = ledger.movements_post(
        workspace_id=workspace_id,
        items=[
            ledger.transfer(
                key=key,
                reason=reason,
                member_id=member_id,
                source=ledger.ISSUANCE,
                target=ledger.member_account(member_id),
                points=points,
                rule=rule,
                occurred_at=occurred_at,
                details=details or {},
            )
        ],
    )
    return posted.get(key)


# --------------------------------------------------------------------------- moderation


def _post_net(workspace_id: int, post_id: int) -> list[tuple[Movement, int]]:
    """The post's earning movements and what of each is still with the member."""
    earned = list(
        Movement.objects.filter(
            workspace_id=workspace_id, reason=Reason.ACTION, details__post=post_id
        ).order_by("pk")
    )
    if not earned:
        return []
    back = Counter[int]()
    for reverses, reason, points in Movement.objects.filter(
        workspace_id=workspace_id, reverses__in=earned
    ).values_list("reverses_id", "reason", "points"):
        back[reverses] += points if reason == Reason.ACTION_REMOVED else -points
    return [(row, row.points - back[row.pk]) for row in earned]


def post_points_remove(*, workspace_id: int, post_id: int, moderator_id: int | None) -> int:
    """Take back what a post earned (it was removed by moderation); returns the points."""
    return _post_points_move(workspace_id, post_id, moderator_id, remove=True)


def post_points_restore(*, workspace_id: int, post_id: int, moderator_id: int | None) -> int:
    """Pay back what a removal took (the post is shown again); returns the points."""
    return _post_points_move(workspace_id, post_id, moderator_id, remove=False)


def _post_points_move(
    workspace_id: int, post_id: int, moderator_id: int | None, *, remove: bool
) -> int:
    with transaction.atomic():
        rows = _post_net(workspace_id, post_id)
        if not rows:
            return 0
        members = {row.member_id for row, _net in rows if row.member_id is not None}
        ledger.accounts_lock(
            workspace_id=workspace_id, refs=[ledger.member_account(m) for m in members]
        )
        rows = _post_net(workspace_id, post_id)
        items = []
        for row, net in rows:
            assert row.member_id is not None
            amount = net if remove else row.points - net
            if amount <= 0:
                continue
            done = Movement.objects.filter(reverses=row).filter(
                Q(reason=Reason.ACTION_REMOVED) | Q(reason=Reason.ACTION_RESTORED)
            )
            seq = done.aggregate(n=Count("pk"))["n"]
            member = ledger.member_account(row.member_id)
            items.append(
                ledger.transfer(
                    key=f"post:{post_id}:{row.pk}:{seq}",
                    reason=Reason.ACTION_REMOVED if remove else Reason.ACTION_RESTORED,
                    member_id=row.member_id,
                    source=member if remove else ledger.ISSUANCE,
                    target=ledger.ISSUANCE if remove else member,
                    points=amount,
                    rule=row.rule,
                    reverses_id=row.pk,
                    actor_id=moderator_id,
                    details={"post": post_id, "kind": row.details.get("kind", "")},
                )
            )
        ledger.movements_post(workspace_id=workspace_id, items=items)
        return sum(item.points for item in items)
