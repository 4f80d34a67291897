"""Badges: earned by what members do (answers, reviews, events, referrals, the month's top
contributors) or granted by the team, and shown beside members' names.

A member holds a badge once (period ""), a monthly badge once per month ("2026-11"); the
unique (member, badge, period) makes awarding twice a no-op, and every new award tells the
member. Automatic awards are set-based: one GROUP BY counts what a batch of members did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Lower
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from circolo.activity.models import Activity, MemberDailyRollup
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty.models import Badge, MemberBadge, Referral
from circolo.loyalty.tiers import NAME_LANGUAGES, rewards_notify
from circolo.people.models import Identity, IdentityKind, Member

Rule = Badge.Rule
NAME_MAX = 60
DESCRIPTION_MAX = 200
SYMBOL_MAX = 8
THRESHOLD_MAX = 10_000
TOP_CONTRIBUTORS = 3
# Members per GROUP BY (bounded IN lists: SQLite takes at most 32,766 parameters).
CHUNK = 5000
# What the activity-based rules count, by activity kind.
ANSWER, REVIEW, ATTENDANCE = "accepted_answer", "review", "event_attendance"
BADGE_KINDS = frozenset({ANSWER, REVIEW, ATTENDANCE})
ACTIVITY_RULES = (
    Rule.FIRST_ANSWER,
    Rule.ACCEPTED_ANSWERS,
    Rule.VERIFIED_REVIEWER,
    Rule.EVENT_REGULAR,
)
# Rules whose threshold the team may change (the others count one thing, or rank).
THRESHOLD_RULES = (
    Rule.ACCEPTED_ANSWERS,
    Rule.VERIFIED_REVIEWER,
    Rule.EVENT_REGULAR,
    Rule.REFERRALS,
)


class BadgeError(ValueError):
    """A badge write that cannot be done: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class DefaultBadge:
    slug: str
    name: str
    rule: str
    threshold: int
    symbol: str
    description: str


# Names and descriptions are marked for translation here and translated when created.
DEFAULT_BADGES = (
    DefaultBadge(
        "first-answer",
        gettext_noop("First answer"),
        Rule.FIRST_ANSWER,
        1,
        "💡",
        gettext_noop("Gave an answer the asker accepted."),
    ),
    DefaultBadge(
        "helpful-10",
        gettext_noop("Helpful"),
        Rule.ACCEPTED_ANSWERS,
        10,
        "🤝",
        gettext_noop("Ten accepted answers."),
    ),
    DefaultBadge(
        "verified-reviewer",
        gettext_noop("Verified reviewer"),
        Rule.VERIFIED_REVIEWER,
        1,
        "✔",
        gettext_noop("Reviewed a product they bought."),
    ),
    DefaultBadge(
        "event-regular",
        gettext_noop("Event regular"),
        Rule.EVENT_REGULAR,
        3,
        "🎟",
        gettext_noop("Came to three events."),
    ),
    DefaultBadge(
        "top-contributor",
        gettext_noop("Top contributor"),
        Rule.TOP_CONTRIBUTOR,
        TOP_CONTRIBUTORS,
        "🏆",
        gettext_noop("One of the month's three most active members."),
    ),
    DefaultBadge(
        "ambassador",
        gettext_noop("Ambassador"),
        Rule.MANUAL,
        1,
        "🎖",
        gettext_noop("Speaks for the brand in the community."),
    ),
    DefaultBadge(
        "referrer",
        gettext_noop("Referrer"),
        Rule.REFERRALS,
        3,
        "🎁",
        gettext_noop("Brought three friends."),
    ),
)
DEFAULT_SLUGS = frozenset(badge.slug for badge in DEFAULT_BADGES)
_DEFAULT_DESCRIPTIONS = {badge.slug: badge.description for badge in DEFAULT_BADGES}


def _description(slug: str, text: str) -> str:
    """A default badge's description in the active language (unless the team changed it)."""
    return _(text) if text and _DEFAULT_DESCRIPTIONS.get(slug) == text else text


@dataclass(frozen=True)
class BadgeIn:
    name: str
    symbol: str = "★"
    description: str = ""
    names: dict[str, str] = field(default_factory=dict)
    threshold: int = 1
    enabled: bool = True


@dataclass(frozen=True)
class BadgeView:
    """A badge as shown beside a name: in the viewer's language."""

    slug: str
    name: str
    symbol: str
    period: str
    description: str = ""
    awarded_at: dt.datetime | None = None


# --------------------------------------------------------------------------- defaults


def translated_names(text: str) -> dict[str, str]:
    """`text` (an English msgid) in the other languages that translate it."""
    names: dict[str, str] = {}
    for language in NAME_LANGUAGES:
        with translation.override(language):
            value = _(text)
        if value != text:
            names[language] = value
    return names


def badges_ensure_defaults(*, workspace_id: int) -> int:
    """Create the default badges the workspace does not have yet (by slug), with their names
    in every language; a second call creates nothing. Returns how many were created."""
    have = set(Badge.objects.filter(workspace_id=workspace_id).values_list("slug", flat=True))
    missing = [badge for badge in DEFAULT_BADGES if badge.slug not in have]
    if not missing:
        return 0
    rows = Badge.objects.bulk_create(
        [
            Badge(
                workspace_id=workspace_id,
                slug=badge.slug,
                name=badge.name,
                names=translated_names(badge.name),
                description=badge.description,
                rule=badge.rule,
                threshold=badge.threshold,
                symbol=badge.symbol,
            )
            for badge in missing
        ],
        ignore_conflicts=True,
    )
    return len(rows)


def _workspace_badges(workspace_id: int) -> list[Badge]:
    """The workspace's badges, creating the defaults the first time they are needed."""
    badges = list(Badge.objects.filter(workspace_id=workspace_id))
    if not {badge.slug for badge in badges} >= DEFAULT_SLUGS:
        badges_ensure_defaults(workspace_id=workspace_id)
        badges = list(Badge.objects.filter(workspace_id=workspace_id))
    return badges


# --------------------------------------------------------------------------- awarding


def _award(
    workspace_id: int,
    awards: Iterable[tuple[Badge, int, str]],
    now: dt.datetime,
    *,
    granted_by: Any = None,
    note: str = "",
) -> list[MemberBadge]:
    """Give (badge, member id, period) to whoever does not hold it yet and tell them."""
    wanted = {(badge.pk, member_id, period): badge for badge, member_id, period in awards}
    if not wanted:
        return []
    held = set(
        MemberBadge.objects.filter(
            workspace_id=workspace_id,
            badge_id__in={badge_id for badge_id, _m, _p in wanted},
            member_id__in=sorted({member_id for _b, member_id, _p in wanted}),
            period__in={period for _b, _m, period in wanted},
        ).values_list("badge_id", "member_id", "period")
    )
    fresh = [(key, badge) for key, badge in wanted.items() if key not in held]
    rows = [
        MemberBadge(
            workspace_id=workspace_id,
            member_id=member_id,
            badge_id=badge_id,
            period=period,
            awarded_at=now,
            granted_by=granted_by if getattr(granted_by, "is_authenticated", False) else None,
            note=note[:200],
        )
        for (badge_id, member_id, period), _badge in fresh
    ]
    # A concurrent award of the same (member, badge, period) is skipped by the unique key;
    # the notification's key keeps the member from being told twice.
    MemberBadge.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    rewards_notify(
        workspace_id=workspace_id,
        items=[
            (
                member_id,
                f"badge:{badge_id}:{period}" if period else f"badge:{badge_id}",
                {"what": "badge", "badge": badge.name, "slug": badge.slug},
            )
            for (badge_id, member_id, period), badge in fresh
        ],
        now=now,
    )
    return rows


def _members_live(workspace_id: int, member_ids: Iterable[int]) -> list[int]:
    """These members that are neither merged nor erased (ids, sorted)."""
    return sorted(
        Member.objects.filter(
            workspace_id=workspace_id,
            pk__in=sorted(set(member_ids)),
            merged_into__isnull=True,
            erased_at__isnull=True,
        ).values_list("pk", flat=True)
    )


def badges_activity_check(
    *, workspace_id: int, member_ids: Iterable[int], now: dt.datetime | None = None
) -> int:
    """Award the activity badges (first answer, accepted answers, verified reviews, events)
    these members now reach, counting all their activities of those kinds in one GROUP BY
    (per 5,000 members). Returns how many badges were awarded now."""
    now = now or timezone.now()
    ids = sorted(set(member_ids))
    if not ids:
        return 0
    badges = [
        badge
        for badge in _workspace_badges(workspace_id)
        if badge.enabled and badge.rule in ACTIVITY_RULES
    ]
    if not badges:
        return 0
    return sum(
        _activity_awards(workspace_id, badges, ids[start : start + CHUNK], now)
        for start in range(0, len(ids), CHUNK)
    )


def _activity_awards(
    workspace_id: int, badges: Sequence[Badge], ids: Sequence[int], now: dt.datetime
) -> int:
    counts = (
        Activity.objects.filter(
            workspace_id=workspace_id,
            member_id__in=ids,
            kind__in=sorted(BADGE_KINDS),
            member__merged_into__isnull=True,
            member__erased_at__isnull=True,
        )
        .values("member_id")
        .annotate(
            answers=Count("id", filter=Q(kind=ANSWER)),
            verified=Count("id", filter=Q(kind=REVIEW, properties__verified=True)),
            events=Count("id", filter=Q(kind=ATTENDANCE)),
        )
        .order_by()
        .values_list("member_id", "answers", "verified", "events")
    )
    # Which column of a count row each rule compares with its threshold.
    measure: dict[str, int] = {
        Rule.FIRST_ANSWER: 1,
        Rule.ACCEPTED_ANSWERS: 1,
        Rule.VERIFIED_REVIEWER: 2,
        Rule.EVENT_REGULAR: 3,
    }
    awards: list[tuple[Badge, int, str]] = []
    for row in counts:
        for badge in badges:
            # The first answer badge is reached by one answer, whatever its threshold says.
            needed = 1 if badge.rule == Rule.FIRST_ANSWER else max(badge.threshold, 1)
            if row[measure[badge.rule]] >= needed:
                awards.append((badge, row[0], ""))
    return len(_award(workspace_id, awards, now))


def badges_referrals_check(
    *, workspace_id: int, member_ids: Iterable[int], now: dt.datetime | None = None
) -> int:
    """Award the referral badges these advocates now reach (their rewarded referrals, one
    GROUP BY). For the referral code to call after a referral is rewarded. Returns how many
    badges were awarded now."""
    now = now or timezone.now()
    ids = sorted(set(member_ids))
    badges = [
        badge
        for badge in _workspace_badges(workspace_id)
        if badge.enabled and badge.rule == Rule.REFERRALS
    ]
    if not ids or not badges:
        return 0
    return sum(
        _referral_awards(workspace_id, badges, ids[start : start + CHUNK], now)
        for start in range(0, len(ids), CHUNK)
    )


def _referral_awards(
    workspace_id: int, badges: Sequence[Badge], ids: Sequence[int], now: dt.datetime
) -> int:
    counts = (
        Referral.objects.filter(
            workspace_id=workspace_id, advocate_id__in=ids, status=Referral.Status.REWARDED
        )
        .values("advocate_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("advocate_id", "n")
    )
    live = set(_members_live(workspace_id, ids))
    awards = [
        (badge, advocate_id, "")
        for advocate_id, n in counts
        for badge in badges
        if advocate_id in live and n >= max(badge.threshold, 1)
    ]
    return len(_award(workspace_id, awards, now))


def month_period(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def top_contributors_award(
    *, workspace_id: int, month: dt.date, now: dt.datetime | None = None
) -> int:
    """Award the monthly top contributor badge to the month's three members with the most
    activity weight (daily rollups; ties by the earlier member), once per month: a month
    already awarded is left alone. Returns how many were awarded now."""
    now = now or timezone.now()
    start = month.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    period = month_period(start)
    badge = next(
        (
            badge
            for badge in _workspace_badges(workspace_id)
            if badge.enabled and badge.rule == Rule.TOP_CONTRIBUTOR
        ),
        None,
    )
    if badge is None:
        return 0
    if MemberBadge.objects.filter(workspace_id=workspace_id, badge=badge, period=period).exists():
        return 0
    top = list(
        MemberDailyRollup.objects.filter(
            workspace_id=workspace_id,
            day__gte=start,
            day__lt=end,
            member__merged_into__isnull=True,
            member__erased_at__isnull=True,
        )
        .values("member_id")
        .annotate(weight=Sum("weight_sum"))
        .filter(weight__gt=0)
        .order_by("-weight", "member_id")
        .values_list("member_id", flat=True)[: max(badge.threshold, 1)]
    )
    return len(_award(workspace_id, [(badge, member_id, period) for member_id in top], now))


# --------------------------------------------------------------------------- staff


def member_find(*, workspace: Workspace, text: str) -> Member | None:
    """A live member of the workspace by id or email address (an email identity, else the
    member's account email); None if nobody matches."""
    value = text.strip()
    live = Member.objects.filter(
        workspace=workspace, merged_into__isnull=True, erased_at__isnull=True
    )
    if value.isdigit():
        return live.filter(pk=int(value)).first()
    if "@" not in value:
        return None
    by_identity = Identity.objects.filter(
        workspace=workspace, kind=IdentityKind.EMAIL, value=value.lower()
    ).values("member_id")
    return (
        live.filter(pk__in=by_identity).order_by("pk").first()
        or live.filter(user__email__iexact=value).order_by("pk").first()
    )


def badge_grant(
    *, badge: Badge, member: Member, actor: Any, note: str = "", now: dt.datetime | None = None
) -> MemberBadge:
    """The team gives a member a badge (any but the monthly one); the member is told and the
    grant audited. Raises BadgeError when it cannot be given or is already held."""
    now = now or timezone.now()
    if badge.workspace_id != member.workspace_id:
        raise BadgeError({"member": _("No such member in this workspace.")})
    if member.merged_into_id is not None or member.erased_at is not None:
        raise BadgeError({"member": _("This member was merged or erased.")})
    if badge.rule == Rule.TOP_CONTRIBUTOR:
        raise BadgeError({"badge": _("The top contributor badge is awarded every month.")})
    if len(note) > 200:
        raise BadgeError({"note": _("Keep the note to 200 characters.")})
    with transaction.atomic():
        rows = _award(
            badge.workspace_id, [(badge, member.pk, "")], now, granted_by=actor, note=note
        )
        if not rows:
            raise BadgeError({"member": _("This member already holds the badge.")})
        audit_record(
            workspace=badge.workspace,
            actor=actor,
            action="loyalty.badge_granted",
            target=badge,
            data={"member": member.pk, "badge": badge.slug, "note": note},
        )
        return MemberBadge.objects.get(
            workspace_id=badge.workspace_id, member=member, badge=badge, period=""
        )


def badge_revoke(*, badge: Badge, member: Member, actor: Any, note: str = "") -> int:
    """The team takes a badge back from a member (every period of it); audited. Raises
    BadgeError when the member does not hold it. Returns how many holdings were removed."""
    if badge.workspace_id != member.workspace_id:
        raise BadgeError({"member": _("No such member in this workspace.")})
    with transaction.atomic():
        removed, _by_model = MemberBadge.objects.filter(
            workspace_id=badge.workspace_id, member=member, badge=badge
        ).delete()
        if not removed:
            raise BadgeError({"member": _("This member does not hold the badge.")})
        audit_record(
            workspace=badge.workspace,
            actor=actor,
            action="loyalty.badge_revoked",
            target=badge,
            data={"member": member.pk, "badge": badge.slug, "note": note[:200]},
        )
    return removed


def _badge_errors(workspace: Workspace, data: BadgeIn, badge: Badge | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    name = data.name.strip()
    others = Badge.objects.filter(workspace=workspace)
    if badge is not None:
        others = others.exclude(pk=badge.pk)
    if not name:
        errors["name"] = _("Give the badge a name.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("Keep the name to %(n)s characters.") % {"n": NAME_MAX}
    elif others.annotate(low=Lower("name")).filter(low=name.lower()).exists():
        errors["name"] = _("Another badge already has this name.")
    if not data.symbol.strip() or len(data.symbol.strip()) > SYMBOL_MAX:
        errors["symbol"] = _("Give a symbol of 1 to %(n)s characters (an emoji or a letter).") % {
            "n": SYMBOL_MAX
        }
    if len(data.description) > DESCRIPTION_MAX:
        errors["description"] = _("Keep the description to %(n)s characters.") % {
            "n": DESCRIPTION_MAX
        }
    in_range = 1 <= data.threshold <= THRESHOLD_MAX
    if badge is not None and badge.rule in THRESHOLD_RULES and not in_range:
        errors["threshold"] = _("Give a number from 1 to %(n)s.") % {"n": THRESHOLD_MAX}
    for language, value in data.names.items():
        key = f"name_{language.replace('-', '_')}"
        if language not in NAME_LANGUAGES:
            errors[key] = _("Names can be given in Italian, Spanish and Chinese.")
        elif len(value.strip()) > NAME_MAX:
            errors[key] = _("Keep the name to %(n)s characters.") % {"n": NAME_MAX}
    return errors


def _free_slug(workspace: Workspace, name: str) -> str:
    base = (slugify(name) or "badge")[:32]
    taken = set(
        Badge.objects.filter(workspace=workspace, slug__startswith=base).values_list(
            "slug", flat=True
        )
    )
    slug, n = base, 1
    while slug in taken or slug in DEFAULT_SLUGS:
        n += 1
        slug = f"{base}-{n}"
    return slug


def badge_create(*, workspace: Workspace, actor: Any, data: BadgeIn) -> Badge:
    """Add a badge the team grants by hand (rule "manual"); audited. Raises BadgeError."""
    with transaction.atomic():
        errors = _badge_errors(workspace, data, None)
        if errors:
            raise BadgeError(errors)
        badge = Badge.objects.create(
            workspace=workspace,
            slug=_free_slug(workspace, data.name),
            name=data.name.strip(),
            names={k: v.strip() for k, v in data.names.items() if v.strip()},
            description=data.description.strip(),
            rule=Rule.MANUAL,
            symbol=data.symbol.strip(),
            enabled=data.enabled,
        )
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.badge_created",
            target=badge,
            data={"name": badge.name, "slug": badge.slug},
        )
    return badge


def badge_update(*, workspace: Workspace, actor: Any, badge: Badge, data: BadgeIn) -> Badge:
    """Change a badge's name, names, symbol, description, whether it is awarded, and for
    counting rules how many it needs; audited. Raises BadgeError."""
    if badge.workspace_id != workspace.pk:
        raise BadgeError({"badge": _("No such badge.")})
    with transaction.atomic():
        errors = _badge_errors(workspace, data, badge)
        if errors:
            raise BadgeError(errors)
        badge.name = data.name.strip()
        badge.names = {k: v.strip() for k, v in data.names.items() if v.strip()}
        badge.symbol = data.symbol.strip()
        badge.description = data.description.strip()
        badge.enabled = data.enabled
        if badge.rule in THRESHOLD_RULES:
            badge.threshold = data.threshold
        badge.save()
        audit_record(
            workspace=workspace,
            actor=actor,
            action="loyalty.badge_updated",
            target=badge,
            data={"name": badge.name, "enabled": badge.enabled, "threshold": badge.threshold},
        )
    return badge


# --------------------------------------------------------------------------- reading


def badges_for_members(
    *, workspace_id: int, member_ids: Iterable[int], language: str
) -> dict[int, list[BadgeView]]:
    """The enabled badges of these members, for lists of names (posts): each badge once
    (its latest period), oldest award first, in `language`. One query."""
    ids = sorted(set(member_ids))
    found: dict[int, list[BadgeView]] = {}
    if not ids:
        return found
    rows = (
        MemberBadge.objects.filter(
            workspace_id=workspace_id, member_id__in=ids, badge__enabled=True
        )
        .order_by("member_id", "awarded_at", "pk")
        .values_list(
            "member_id",
            "badge__slug",
            "badge__name",
            "badge__names",
            "badge__symbol",
            "badge__description",
            "period",
            "awarded_at",
        )
    )
    for member_id, slug, name, names, symbol, description, period, awarded_at in rows:
        views = found.setdefault(member_id, [])
        view = BadgeView(
            slug=slug,
            name=str((names or {}).get(language) or name),
            symbol=symbol,
            period=period,
            description=_description(slug, description),
            awarded_at=awarded_at,
        )
        same = next((i for i, seen in enumerate(views) if seen.slug == slug), None)
        if same is None:
            views.append(view)
        else:
            views[same] = view
    return found


def member_badges(*, member: Member, language: str) -> list[BadgeView]:
    """Every badge the member holds (each month of a monthly one), for their profile,
    oldest first. One query."""
    rows = (
        MemberBadge.objects.filter(
            workspace_id=member.workspace_id, member=member, badge__enabled=True
        )
        .select_related("badge")
        .order_by("awarded_at", "pk")
    )
    return [
        BadgeView(
            slug=row.badge.slug,
            name=row.badge.name_in(language),
            symbol=row.badge.symbol,
            period=row.period,
            description=_description(row.badge.slug, row.badge.description),
            awarded_at=row.awarded_at,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class BadgeRow:
    badge: Badge
    holders: int


def badges_overview(*, workspace: Workspace) -> list[BadgeRow]:
    """The workspace's badges (defaults created on first look) with how many members hold
    each. Two queries once the defaults exist."""
    badges = _workspace_badges(workspace.pk)
    counts = dict(
        MemberBadge.objects.filter(workspace=workspace)
        .values_list("badge_id")
        .annotate(n=Count("member_id", distinct=True))
        .order_by()
    )
    return [BadgeRow(badge=badge, holders=int(counts.get(badge.pk, 0))) for badge in badges]


def badge_holders(*, badge: Badge, limit: int = 50) -> Sequence[MemberBadge]:
    """The latest holders of a badge, with their members loaded (one query)."""
    return list(
        MemberBadge.objects.filter(workspace_id=badge.workspace_id, badge=badge)
        .select_related("member")
        .order_by("-awarded_at", "-pk")[:limit]
    )
