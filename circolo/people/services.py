"""Writes on members: resolve incoming identities, edit, tag, suggest, merge and undo merges.

Resolution: identities are normalised; a stored *verified* identity equal to an incoming one
joins its member (emails and phones match on any channel, other kinds on the same channel);
otherwise the very same (channel, kind, value) row joins; otherwise a new member is created.
Whatever only looks like the same person (a shared unverified email or phone, the same name
and city, ...) becomes a MergeSuggestion with a score and its reasons, for a person to decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.services import activities_reassign
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.people.models import (
    Identity,
    IdentityKind,
    Member,
    MemberTag,
    MergeReason,
    MergeRecord,
    MergeSuggestion,
)
from circolo.people.normalise import (
    CITY_MAX_LENGTH,
    DISPLAY_NAME_MAX_LENGTH,
    IdentityError,
    InputError,
    MemberError,
    clean_country,
    clean_languages,
    clean_text,
    name_key,
    normalise_identity,
    normalise_tag,
)
from circolo.people.signals import identities_moved

__all__ = [
    "IdentityError",
    "IdentityIn",
    "InputError",
    "MemberAttrs",
    "MemberError",
    "MergeError",
    "Resolution",
    "identity_add",
    "member_create",
    "member_merge",
    "member_resolve",
    "member_tag_add",
    "member_tag_remove",
    "member_update",
    "merge_suggestion_accept",
    "merge_suggestion_reject",
    "merge_undo",
]

CHANNEL_MAX_LENGTH = 40
SOURCE_MAX_LENGTH = 40
# Kinds that name one person whatever channel they came from.
CROSS_CHANNEL_KINDS = frozenset({IdentityKind.EMAIL.value, IdentityKind.PHONE.value})
# How much each reason alone says that two members are one person.
REASON_SCORES: dict[str, float] = {
    MergeReason.SAME_VERIFIED_IDENTITY: 0.95,
    MergeReason.SAME_EMAIL: 0.9,
    MergeReason.SAME_PHONE: 0.85,
    MergeReason.SAME_IDENTITY: 0.8,
    MergeReason.SAME_NAME_CITY: 0.6,
    MergeReason.SAME_NAME_EMAIL_LOCAL: 0.5,
}
# Members with the same name looked at per resolution: bounds the work for common names.
NAME_CANDIDATES_MAX = 25
# A concurrent writer can take an identity between our lookup and our insert: start again.
RESOLVE_ATTEMPTS = 3
# Row ids per UPDATE ... WHERE id IN (...): stays under SQLite's bound on parameters.
ID_BATCH = 1000
UPDATABLE_FIELDS = frozenset(
    {"display_name", "city", "country", "languages", "consent_email", "consent_profiling"}
)


class MergeError(ValueError):
    """A merge, undo or suggestion decision that cannot be done; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IdentityIn:
    channel: str
    kind: str
    value: str
    verified: bool = False
    source: str = ""


@dataclass(frozen=True)
class MemberAttrs:
    display_name: str = ""
    city: str = ""
    country: str = ""
    languages: tuple[str, ...] = ()


@dataclass
class Resolution:
    member: Member
    created: bool
    suggestions: list[MergeSuggestion] = field(default_factory=list)


class _IdentityTaken(Exception):
    """Another transaction stored one of our identities after we looked: resolve again."""


Reason = dict[str, str]


# --------------------------------------------------------------------------- resolution


def member_resolve(
    *,
    workspace: Workspace,
    identities: Sequence[IdentityIn],
    attrs: MemberAttrs | None = None,
    seen_at: dt.datetime | None = None,
) -> Resolution:
    """The member these identities belong to (joined or created), with the suggestions raised.

    Raises IdentityError / MemberError on bad input. Safe under concurrent calls.
    """
    clean_attrs = _clean_attrs(attrs or MemberAttrs())
    seen = _aware(seen_at, "seen_at") if seen_at is not None else timezone.now()
    clean = _clean_identities(identities, default_region=clean_attrs.country or None)
    lost: _IdentityTaken | None = None
    for _attempt in range(RESOLVE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _resolve_once(workspace, clean, clean_attrs, seen)
        except _IdentityTaken as race:
            lost = race
    # Only a storm of writers on the same identities gets here; the caller may retry later.
    raise IntegrityError("identities kept changing while resolving") from lost


@dataclass(frozen=True)
class ResolveItem:
    """One person to resolve with member_resolve_many: what member_resolve takes."""

    identities: Sequence[IdentityIn]
    attrs: MemberAttrs = field(default_factory=MemberAttrs)
    seen_at: dt.datetime | None = None


def member_resolve_many(*, workspace: Workspace, items: Sequence[ResolveItem]) -> list[Resolution]:
    """member_resolve for many people, in one transaction, with the outcome of calling it for
    each in turn: one Resolution per item, in order.

    People whom no stored identity and no earlier item names are created in bulk (a few
    statements for the whole batch instead of a dozen each); the others (returning people,
    or a second record of someone earlier in the batch) go through member_resolve one by one
    after them, and so join what the bulk step created. Merge suggestions by name are raised
    as member_resolve raises them: each new member against the members that existed before it.
    The same suggestions come back, though a pair may come back on its other item.
    Raises what member_resolve raises, for the first item that fails.
    """
    if len(items) == 1:  # nothing to batch: the lookups below would only come first
        only = items[0]
        return [
            member_resolve(
                workspace=workspace,
                identities=only.identities,
                attrs=only.attrs,
                seen_at=only.seen_at,
            )
        ]
    results: list[Resolution | None] = [None] * len(items)
    with transaction.atomic():
        fresh = _fresh_items(workspace, items)
        if fresh:
            try:
                with transaction.atomic():
                    for index, resolution in _members_bulk_new(workspace, fresh):
                        results[index] = resolution
            except IntegrityError:
                # A concurrent writer stored one of these identities meanwhile.
                results = [None] * len(items)
        for index, item in enumerate(items):
            if results[index] is None:
                results[index] = member_resolve(
                    workspace=workspace,
                    identities=item.identities,
                    attrs=item.attrs,
                    seen_at=item.seen_at,
                )
    return [result for result in results if result is not None]


_Fresh = tuple[int, list[IdentityIn], MemberAttrs, dt.datetime]


def _identity_key(ident: IdentityIn | Identity) -> tuple[str, ...]:
    # Emails and phones name a person on any channel, other kinds on their own.
    if ident.kind in CROSS_CHANNEL_KINDS:
        return (ident.kind, ident.value)
    return (ident.channel, ident.kind, ident.value)


def _fresh_items(workspace: Workspace, items: Sequence[ResolveItem]) -> list[_Fresh]:
    """The items that would create a new member with nothing to join: valid, and none of
    their identities stored or given by an earlier item."""
    cleaned: list[tuple[list[IdentityIn], MemberAttrs, dt.datetime] | None] = []
    cross: dict[str, set[str]] = {}
    own: dict[tuple[str, str], set[str]] = {}
    for item in items:
        try:
            attrs = _clean_attrs(item.attrs)
            seen = _aware(item.seen_at, "seen_at") if item.seen_at is not None else timezone.now()
            clean = _clean_identities(item.identities, default_region=attrs.country or None)
        except InputError:
            cleaned.append(None)  # member_resolve raises it in its turn
            continue
        cleaned.append((clean, attrs, seen))
        for ident in clean:
            if ident.kind in CROSS_CHANNEL_KINDS:
                cross.setdefault(ident.kind, set()).add(ident.value)
            else:
                own.setdefault((ident.channel, ident.kind), set()).add(ident.value)
    taken: set[tuple[str, ...]] = set()
    base = Identity.objects.filter(workspace=workspace)
    lookups = [(base.filter(kind=kind), values) for kind, values in cross.items()]
    lookups += [
        (base.filter(channel=channel, kind=kind), values) for (channel, kind), values in own.items()
    ]
    for queryset, values in lookups:
        ordered = sorted(values)
        for start in range(0, len(ordered), ID_BATCH):
            chunk = ordered[start : start + ID_BATCH]
            for channel, kind, value in queryset.filter(value__in=chunk).values_list(
                "channel", "kind", "value"
            ):
                taken.add(_identity_key(IdentityIn(channel=channel, kind=kind, value=value)))
    fresh: list[_Fresh] = []
    for index, entry in enumerate(cleaned):
        if entry is None:
            continue
        clean, attrs, seen = entry
        keys = {_identity_key(ident) for ident in clean}
        if not keys & taken:
            fresh.append((index, clean, attrs, seen))
        taken |= keys  # a later record of the same person joins this one, one by one
    return fresh


def _members_bulk_new(
    workspace: Workspace, fresh: Sequence[_Fresh]
) -> list[tuple[int, Resolution]]:
    members = [
        Member(
            workspace=workspace,
            display_name=attrs.display_name,
            name_key=name_key(attrs.display_name),
            city=attrs.city,
            country=attrs.country,
            languages=list(attrs.languages),
            first_seen=seen,
            last_seen=seen,
        )
        for _index, _clean, attrs, seen in fresh
    ]
    Member.objects.bulk_create(members)
    Identity.objects.bulk_create(
        [
            Identity(
                workspace=workspace,
                member=member,
                channel=ident.channel,
                kind=ident.kind,
                value=ident.value,
                verified=ident.verified,
                source=ident.source,
            )
            for member, (_index, clean, _attrs, _seen) in zip(members, fresh, strict=True)
            for ident in clean
        ]
    )
    # Name suggestions, as member_resolve makes them: against the members that were there
    # before each new one (lower ids). One query finds who has a namesake at all.
    keys = sorted({member.name_key for member in members if member.name_key})
    lowest: dict[str, int] = {}
    for start in range(0, len(keys), ID_BATCH):
        for key, pk in (
            Member.objects.filter(
                workspace=workspace,
                name_key__in=keys[start : start + ID_BATCH],
                merged_into__isnull=True,
            )
            .values_list("name_key")
            .annotate(first=Min("pk"))
        ):
            lowest[key] = pk
    resolved: list[tuple[int, Resolution]] = []
    for member, (index, _clean, _attrs, _seen) in zip(members, fresh, strict=True):
        suggestions: list[MergeSuggestion] = []
        if member.name_key and lowest.get(member.name_key, member.pk) < member.pk:
            pending: dict[int, tuple[Member, list[Reason]]] = {}
            for other, reason in _name_reasons(workspace, member, before=member.pk):
                _add_reason(pending, other, reason)
            suggestions = [
                made
                for other, reasons in pending.values()
                if (made := _suggest(workspace, member, other, reasons)) is not None
            ]
        resolved.append((index, Resolution(member=member, created=True, suggestions=suggestions)))
    return resolved


def _resolve_once(
    workspace: Workspace, clean: list[IdentityIn], attrs: MemberAttrs, seen: dt.datetime
) -> Resolution:
    rows = _matching_identities(workspace, clean)
    owners = _live_owners(workspace, rows)
    incoming = {(ident.channel, ident.kind, ident.value) for ident in clean}
    # A stored verified identity decides; else only the very same row (channel, kind, value).
    verified = _oldest_first({owners[row.member_id] for row in rows if row.verified})
    exact = _oldest_first(
        {owners[row.member_id] for row in rows if (row.channel, row.kind, row.value) in incoming}
    )
    joined = verified[0] if verified else exact[0] if exact else None

    if joined is None:
        member = _member_new(
            workspace=workspace,
            display_name=attrs.display_name,
            city=attrs.city,
            country=attrs.country,
            languages=list(attrs.languages),
            first_seen=seen,
            last_seen=seen,
        )
        created, details_changed = True, True
    else:
        member = Member.objects.select_for_update(no_key=True).get(
            workspace=workspace, pk=joined.pk
        )
        created = False
        details_changed = _absorb(member, attrs, seen)

    new_emails = _attach(workspace, member, clean, rows)

    pending: dict[int, tuple[Member, list[Reason]]] = {}
    for row in rows:
        other = owners[row.member_id]
        if other.pk != member.pk:
            _add_reason(pending, other, _identity_reason(row))
    if details_changed or new_emails:
        for other, reason in _name_reasons(workspace, member):
            _add_reason(pending, other, reason)
    suggestions = [
        suggestion
        for other, reasons in pending.values()
        if (suggestion := _suggest(workspace, member, other, reasons)) is not None
    ]
    return Resolution(member=member, created=created, suggestions=suggestions)


def _clean_identities(
    identities: Sequence[IdentityIn], *, default_region: str | None
) -> list[IdentityIn]:
    if not identities:
        raise IdentityError("identities", _("Give at least one identity."))
    merged: dict[tuple[str, str, str], IdentityIn] = {}
    for index, raw in enumerate(identities):
        try:
            ident = _clean_identity(raw, default_region=default_region)
        except IdentityError as error:
            raise IdentityError(error.field, error.message, index=index) from None
        key = (ident.channel, ident.kind, ident.value)
        seen = merged.get(key)
        if seen is not None:
            ident = IdentityIn(
                channel=ident.channel,
                kind=ident.kind,
                value=ident.value,
                verified=seen.verified or ident.verified,
                source=seen.source or ident.source,
            )
        merged[key] = ident
    return list(merged.values())


def _clean_identity(raw: IdentityIn, *, default_region: str | None) -> IdentityIn:
    channel = raw.channel.strip().lower() if isinstance(raw.channel, str) else ""
    if not channel:
        raise IdentityError("channel", _("Enter the channel the identity comes from."))
    if len(channel) > CHANNEL_MAX_LENGTH:
        raise IdentityError(
            "channel",
            _("A channel has at most %(limit)d characters.") % {"limit": CHANNEL_MAX_LENGTH},
        )
    source = raw.source.strip() if isinstance(raw.source, str) else ""
    if len(source) > SOURCE_MAX_LENGTH:
        raise IdentityError(
            "source",
            _("A source has at most %(limit)d characters.") % {"limit": SOURCE_MAX_LENGTH},
        )
    kind = raw.kind.strip().lower() if isinstance(raw.kind, str) else ""
    value = normalise_identity(kind, raw.value, default_region)
    return IdentityIn(
        channel=channel, kind=kind, value=value, verified=bool(raw.verified), source=source
    )


def _clean_attrs(attrs: MemberAttrs) -> MemberAttrs:
    return MemberAttrs(
        display_name=clean_text(attrs.display_name, "display_name", DISPLAY_NAME_MAX_LENGTH),
        city=clean_text(attrs.city, "city", CITY_MAX_LENGTH),
        country=clean_country(attrs.country),
        languages=tuple(clean_languages(attrs.languages)),
    )


def _aware(value: Any, field_name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise MemberError(field_name, _("Give a date and time with its time zone."))
    return value


def _matching_identities(workspace: Workspace, clean: Sequence[IdentityIn]) -> list[Identity]:
    """Stored identities equal to incoming ones (emails/phones on any channel), with members."""
    # The workspace sits inside every OR term, and only there, so that each term probes an
    # identity index (with an outer workspace filter SQLite walks the workspace's identities).
    query = Q()
    by_kind: dict[str, set[str]] = {}
    for ident in clean:
        if ident.kind in CROSS_CHANNEL_KINDS:
            by_kind.setdefault(ident.kind, set()).add(ident.value)
        else:
            query |= Q(
                workspace=workspace, channel=ident.channel, kind=ident.kind, value=ident.value
            )
    for kind, values in by_kind.items():
        query |= Q(workspace=workspace, kind=kind, value__in=sorted(values))
    if not query:
        return []
    return list(Identity.objects.filter(query).select_related("member").order_by("pk"))


def _live_owners(workspace: Workspace, rows: Iterable[Identity]) -> dict[int, Member]:
    """member_id -> the member that is live now (following merges, which normally moved it)."""
    owners: dict[int, Member] = {}
    for row in rows:
        member = row.member
        hops = 0
        while member.merged_into_id is not None and hops < 20:
            member = Member.objects.get(workspace=workspace, pk=member.merged_into_id)
            hops += 1
        owners[row.member_id] = member
    return owners


def _oldest_first(members: Iterable[Member]) -> list[Member]:
    return sorted(members, key=lambda member: (member.created_at, member.pk))


def _absorb(member: Member, attrs: MemberAttrs, seen: dt.datetime) -> bool:
    """Fold what we just heard into a known member; True when its name or city changed."""
    changed: set[str] = set()
    if member.first_seen is None or seen < member.first_seen:
        member.first_seen = seen
        changed.add("first_seen")
    if member.last_seen is None or seen > member.last_seen:
        member.last_seen = seen
        changed.add("last_seen")
    languages = list(member.languages or [])
    for language in attrs.languages:
        if language not in languages:
            languages.append(language)
    if languages != (member.languages or []):
        member.languages = languages
        changed.add("languages")
    for name in ("display_name", "city", "country"):
        if not getattr(member, name) and getattr(attrs, name):
            setattr(member, name, getattr(attrs, name))
            changed.add(name)
    if changed:
        member.save(update_fields=[*changed, "updated_at"])
    return bool(changed & {"display_name", "city"})


def _attach(
    workspace: Workspace, member: Member, clean: Sequence[IdentityIn], rows: Sequence[Identity]
) -> bool:
    """Store the identities not known yet on `member`; True when an email was added."""
    known = {(row.channel, row.kind, row.value): row for row in rows}
    new_email = False
    for ident in clean:
        row = known.get((ident.channel, ident.kind, ident.value))
        if row is None:
            try:
                with transaction.atomic():
                    Identity.objects.create(
                        workspace=workspace,
                        member=member,
                        channel=ident.channel,
                        kind=ident.kind,
                        value=ident.value,
                        verified=ident.verified,
                        source=ident.source,
                    )
            except IntegrityError as error:
                raise _IdentityTaken from error
            new_email = new_email or ident.kind == IdentityKind.EMAIL
        elif row.member_id == member.pk and ident.verified and not row.verified:
            Identity.objects.filter(workspace=workspace, pk=row.pk).update(verified=True)
            row.verified = True
    return new_email


# --------------------------------------------------------------------------- suggestions


def _identity_reason(row: Identity) -> Reason:
    if row.verified:
        code = MergeReason.SAME_VERIFIED_IDENTITY
    elif row.kind == IdentityKind.EMAIL:
        code = MergeReason.SAME_EMAIL
    elif row.kind == IdentityKind.PHONE:
        code = MergeReason.SAME_PHONE
    else:
        code = MergeReason.SAME_IDENTITY
    detail = row.value if row.kind in CROSS_CHANNEL_KINDS else f"{row.channel}: {row.value}"
    return {"code": str(code), "detail": detail}


def _name_reasons(
    workspace: Workspace, member: Member, *, before: int | None = None
) -> list[tuple[Member, Reason]]:
    """Members with the same name and the same city, or the same email user on another domain
    (`before`: only members with a lower id, that is, created earlier)."""
    if not member.name_key:
        return []
    namesakes = Member.objects.filter(
        workspace=workspace, name_key=member.name_key, merged_into__isnull=True
    ).exclude(pk=member.pk)
    if before is not None:
        namesakes = namesakes.filter(pk__lt=before)
    candidates = list(namesakes.order_by("pk")[:NAME_CANDIDATES_MAX])
    if not candidates:
        return []
    emails: dict[int, set[tuple[str, str]]] = {}
    # The members were selected in this workspace already; a workspace term here would make
    # SQLite walk the workspace's email identities instead of probing by member.
    for member_id, value in Identity.objects.filter(
        kind=IdentityKind.EMAIL,
        member_id__in=[member.pk, *(candidate.pk for candidate in candidates)],
    ).values_list("member_id", "value"):
        local, _at, domain = value.rpartition("@")
        emails.setdefault(member_id, set()).add((local, domain))
    own_emails = emails.get(member.pk, set())
    city = name_key(member.city)
    found: list[tuple[Member, Reason]] = []
    for candidate in candidates:
        # The detail names the older of the two, so that the same fact found from either
        # side is one reason, not two (the suggestion's score counts each reason once).
        older = candidate if candidate.pk < member.pk else member
        if city and name_key(candidate.city) == city:
            detail = f"{older.display_name}, {older.city}"
            found.append((candidate, {"code": MergeReason.SAME_NAME_CITY.value, "detail": detail}))
        shared = sorted(
            {
                local
                for local, domain in emails.get(candidate.pk, set())
                for own_local, own_domain in own_emails
                if local == own_local and domain != own_domain
            }
        )
        if shared:
            detail = f"{older.display_name}, {shared[0]}@…"
            found.append(
                (candidate, {"code": MergeReason.SAME_NAME_EMAIL_LOCAL.value, "detail": detail})
            )
    return found


def _add_reason(
    pending: dict[int, tuple[Member, list[Reason]]], other: Member, reason: Reason
) -> None:
    if other.merged_into_id is not None:
        return
    _member, reasons = pending.setdefault(other.pk, (other, []))
    if reason not in reasons:
        reasons.append(reason)


def suggestion_score(reasons: Sequence[Reason]) -> float:
    """Independent reasons combined: 1 - product of (1 - score of each), two decimals."""
    doubt = 1.0
    for reason in reasons:
        doubt *= 1.0 - REASON_SCORES.get(reason.get("code", ""), 0.0)
    return round(min(1.0 - doubt, 0.99), 2)


def _suggest(
    workspace: Workspace, member: Member, other: Member, reasons: list[Reason]
) -> MergeSuggestion | None:
    """Create or strengthen the pair's pending suggestion; a decided pair is left as decided."""
    if member.pk == other.pk or not reasons:
        return None
    first, second = sorted((member, other), key=lambda m: m.pk)
    suggestion, created = MergeSuggestion.objects.get_or_create(
        workspace=workspace,
        member_a=first,
        member_b=second,
        defaults={"score": suggestion_score(reasons), "reasons": reasons},
    )
    if created:
        return suggestion
    if suggestion.status != MergeSuggestion.Status.PENDING:
        return None
    combined = list(suggestion.reasons)
    combined.extend(reason for reason in reasons if reason not in combined)
    if combined != suggestion.reasons:
        suggestion.reasons = combined
        suggestion.score = suggestion_score(combined)
        suggestion.save(update_fields=["reasons", "score"])
    return suggestion


# --------------------------------------------------------------------------- member edits


def member_create(
    *,
    workspace: Workspace,
    display_name: str = "",
    city: str = "",
    country: str = "",
    languages: Sequence[str] = (),
    consent_email: bool = False,
    consent_profiling: bool = False,
    first_seen: dt.datetime | None = None,
    last_seen: dt.datetime | None = None,
    actor: Any = None,
) -> Member:
    """A new member with cleaned fields (MemberError on bad ones); audited when `actor` is given."""
    now = timezone.now()
    first = _aware(first_seen, "first_seen") if first_seen is not None else now
    last = _aware(last_seen, "last_seen") if last_seen is not None else first
    member = _member_new(
        workspace=workspace,
        display_name=clean_text(display_name, "display_name", DISPLAY_NAME_MAX_LENGTH),
        city=clean_text(city, "city", CITY_MAX_LENGTH),
        country=clean_country(country),
        languages=clean_languages(languages),
        consent_email=_flag(consent_email, "consent_email"),
        consent_profiling=_flag(consent_profiling, "consent_profiling"),
        first_seen=first,
        last_seen=max(first, last),
    )
    if actor is not None:
        audit_record(workspace=workspace, actor=actor, action="member.create", target=member)
    return member


def _member_new(*, workspace: Workspace, **fields: Any) -> Member:
    return Member.objects.create(workspace=workspace, **fields)


def _flag(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise MemberError(field_name, _("Choose yes or no."))
    return value


def member_update(*, member: Member, actor: Any, **fields: Any) -> Member:
    """Change a member's name, city, country, languages or consent flags; audited.

    Raises MemberError naming the first field that cannot be stored.
    """
    cleaners = {
        "display_name": lambda v: clean_text(v, "display_name", DISPLAY_NAME_MAX_LENGTH),
        "city": lambda v: clean_text(v, "city", CITY_MAX_LENGTH),
        "country": clean_country,
        "languages": clean_languages,
        "consent_email": lambda v: _flag(v, "consent_email"),
        "consent_profiling": lambda v: _flag(v, "consent_profiling"),
    }
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in UPDATABLE_FIELDS:
            raise MemberError(name, _("“%(field)s” cannot be changed here.") % {"field": name})
        cleaned[name] = cleaners[name](value)
    changes = {
        name: [getattr(member, name), value]
        for name, value in cleaned.items()
        if getattr(member, name) != value
    }
    if not changes:
        return member
    with transaction.atomic():
        for name, (_before, after) in changes.items():
            setattr(member, name, after)
        member.save(update_fields=[*changes, "updated_at"])
        audit_record(
            workspace=member.workspace,
            actor=actor,
            action="member.update",
            target=member,
            data={"changes": changes},
        )
    return member


def member_tag_add(*, member: Member, tag: str, actor: Any) -> MemberTag:
    """Tag the member (tag normalised; MemberError when empty or too long); audited when new."""
    clean = normalise_tag(tag)
    with transaction.atomic():
        row, created = MemberTag.objects.get_or_create(
            member=member, tag=clean, defaults={"workspace_id": member.workspace_id}
        )
        if created:
            audit_record(
                workspace=member.workspace,
                actor=actor,
                action="member.tag_add",
                target=member,
                data={"tag": clean},
            )
    return row


def member_tag_remove(*, member: Member, tag: str, actor: Any) -> bool:
    """Remove a tag from the member; True when it was there (and the removal audited)."""
    clean = normalise_tag(tag)
    with transaction.atomic():
        deleted, _rows = MemberTag.objects.filter(
            workspace_id=member.workspace_id, member=member, tag=clean
        ).delete()
        if deleted:
            audit_record(
                workspace=member.workspace,
                actor=actor,
                action="member.tag_remove",
                target=member,
                data={"tag": clean},
            )
    return bool(deleted)


def identity_add(*, member: Member, identity: IdentityIn, actor: Any) -> Identity:
    """Give the member one more identity (normalised), raising suggestions it implies; audited.

    IdentityError when the value is bad or the identity belongs to another member.
    """
    if member.merged_into_id is not None:
        raise MemberError(
            "member", _("This member was merged into another one: add identities there.")
        )
    workspace = member.workspace
    clean = _clean_identities([identity], default_region=member.country or None)[0]
    key = {"channel": clean.channel, "kind": clean.kind, "value": clean.value}
    with transaction.atomic():
        # get_or_create inserts in a savepoint and reads the winner's row on a unique clash.
        row, created = Identity.objects.get_or_create(
            workspace=workspace,
            **key,
            defaults={"member": member, "verified": clean.verified, "source": clean.source},
        )
        if row.member_id != member.pk:
            raise IdentityError("value", _("This identity already belongs to another member."))
        if not created:
            if clean.verified and not row.verified:
                row.verified = True
                row.save(update_fields=["verified"])
            return row
        audit_record(
            workspace=workspace,
            actor=actor,
            action="identity.add",
            target=member,
            data={"identity_id": row.pk, **key, "verified": row.verified},
        )
        rows = _matching_identities(workspace, [clean])
        owners = _live_owners(workspace, rows)
        pending: dict[int, tuple[Member, list[Reason]]] = {}
        for other_row in rows:
            other = owners[other_row.member_id]
            if other.pk != member.pk:
                _add_reason(pending, other, _identity_reason(other_row))
        if clean.kind == IdentityKind.EMAIL:
            for other, reason in _name_reasons(workspace, member):
                _add_reason(pending, other, reason)
        for other, reasons in pending.values():
            _suggest(workspace, member, other, reasons)
    return row


# --------------------------------------------------------------------------- merges


def member_merge(
    *,
    workspace: Workspace,
    survivor: Member,
    merged: Member,
    actor: Any,
    suggestion: MergeSuggestion | None = None,
) -> MergeRecord:
    """Fold `merged` into `survivor` (identities, activities, tags, seen dates); audited.

    Everything moved is recorded on the returned MergeRecord so merge_undo can put it back.
    Raises MergeError when the pair cannot be merged, Member.DoesNotExist outside the workspace.
    """
    if survivor.pk == merged.pk:
        raise MergeError(_("A member cannot be merged into itself."))
    pair = [survivor.pk, merged.pk]
    with transaction.atomic():
        before = {m.pk: m for m in Member.objects.filter(workspace=workspace, pk__in=pair)}
        if len(before) != 2:
            raise Member.DoesNotExist("Member not found in this workspace.")
        _check_mergeable(before.values())
        # activities_reassign takes the workspace's rollup lock, which must come before row
        # locks on members (handlers take it, then write member rows).
        activity_ids = activities_reassign(
            workspace=workspace, from_member_id=merged.pk, to_member_id=survivor.pk
        )
        locked = {
            m.pk: m
            for m in Member.objects.select_for_update()
            .filter(workspace=workspace, pk__in=pair)
            .order_by("pk")
        }
        keep, gone = locked[survivor.pk], locked[merged.pk]
        # A merge that committed before we held the lock rolls all of this back.
        _check_mergeable((keep, gone))
        linked = _pair_suggestion(workspace, keep, gone, suggestion)

        identity_ids = list(
            Identity.objects.filter(workspace=workspace, member=gone)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _move_identities(workspace, identity_ids, to_member=keep)
        have = set(MemberTag.objects.filter(member=keep).values_list("tag", flat=True))
        added_tags = sorted(
            set(MemberTag.objects.filter(member=gone).values_list("tag", flat=True)) - have
        )
        MemberTag.objects.bulk_create(
            [MemberTag(workspace=workspace, member=keep, tag=tag) for tag in added_tags]
        )
        changes = _fold_member(keep, gone, original=before[keep.pk])
        gone.merged_into = keep
        gone.save(update_fields=["merged_into", "updated_at"])

        now = timezone.now()
        if linked is not None:
            linked.status = MergeSuggestion.Status.ACCEPTED
            linked.decided_at = now
            linked.decided_by = _user(actor)
            linked.save(update_fields=["status", "decided_at", "decided_by"])
        identities_moved.send(
            sender=Member, workspace_id=workspace.pk, member_ids=[keep.pk, gone.pk]
        )
        record = MergeRecord.objects.create(
            workspace=workspace,
            survivor=keep,
            merged=gone,
            identity_ids=identity_ids,
            activity_ids=[int(pk) for pk in activity_ids],
            tags=added_tags,
            survivor_changes=changes,
            suggestion=linked,
            merged_by=_user(actor),
        )
        audit_record(
            workspace=workspace,
            actor=actor,
            action="member.merge",
            target=keep,
            data={
                "merged_id": gone.pk,
                "record_id": record.pk,
                "suggestion_id": linked.pk if linked is not None else None,
                "identities": len(identity_ids),
                "activities": len(record.activity_ids),
                "tags_added": added_tags,
            },
        )
    survivor.refresh_from_db()
    merged.refresh_from_db()
    return record


def _check_mergeable(members: Iterable[Member]) -> None:
    for member in members:
        if member.merged_into_id is not None:
            raise MergeError(
                _("%(name)s was already merged into another member.") % {"name": member}
            )


def _pair_suggestion(
    workspace: Workspace, keep: Member, gone: Member, given: MergeSuggestion | None
) -> MergeSuggestion | None:
    """The suggestion to mark accepted: the given one (must be pending), else a pending one."""
    first, second = sorted((keep.pk, gone.pk))
    pair = MergeSuggestion.objects.select_for_update().filter(
        workspace=workspace, member_a_id=first, member_b_id=second
    )
    if given is not None:
        found = pair.filter(pk=given.pk).first()
        if found is None:
            raise MergeError(_("This suggestion is about other members."))
        if found.status != MergeSuggestion.Status.PENDING:
            raise MergeError(_("This suggestion was already decided."))
        return found
    return pair.filter(status=MergeSuggestion.Status.PENDING).first()


def _move_identities(workspace: Workspace, ids: Sequence[int], *, to_member: Member) -> None:
    for start in range(0, len(ids), ID_BATCH):
        Identity.objects.filter(workspace=workspace, pk__in=ids[start : start + ID_BATCH]).update(
            member=to_member
        )


def _fold_member(keep: Member, gone: Member, *, original: Member) -> dict[str, list[Any]]:
    """Earliest first_seen, latest last_seen, the account link if the survivor has none.

    `original` is the survivor as read before activities moved (which may widen its dates).
    """
    changes: dict[str, list[Any]] = {}
    first = _earliest(keep.first_seen, gone.first_seen)
    if first != original.first_seen:
        changes["first_seen"] = [_json_time(original.first_seen), _json_time(first)]
    keep.first_seen = first
    last = _latest(keep.last_seen, gone.last_seen)
    if last != original.last_seen:
        changes["last_seen"] = [_json_time(original.last_seen), _json_time(last)]
    keep.last_seen = last
    if gone.user_id is not None and keep.user_id is None:
        changes["user_id"] = [None, gone.user_id]
        keep.user_id = gone.user_id
        gone.user_id = None
        gone.save(update_fields=["user", "updated_at"])
    keep.save(update_fields=["first_seen", "last_seen", "user", "updated_at"])
    return changes


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def _json_time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def merge_undo(*, record: MergeRecord, actor: Any) -> None:
    """Put back exactly what `record` moved; audited.

    MergeError when it was already undone or the survivor has since been merged elsewhere.
    """
    workspace = record.workspace
    with transaction.atomic():
        locked_record = MergeRecord.objects.select_for_update().get(
            workspace=workspace, pk=record.pk
        )
        if locked_record.undone_at is not None:
            raise MergeError(_("This merge was already undone."))
        pair = [locked_record.survivor_id, locked_record.merged_id]
        current = {m.pk: m for m in Member.objects.filter(workspace=workspace, pk__in=pair)}
        _check_undoable(locked_record, current)
        # Rollup lock (inside activities_reassign) before member row locks, as in member_merge.
        activity_ids = [int(pk) for pk in locked_record.activity_ids]
        if activity_ids:
            activities_reassign(
                workspace=workspace,
                from_member_id=locked_record.survivor_id,
                to_member_id=locked_record.merged_id,
                activity_ids=activity_ids,
            )
        members = {
            m.pk: m
            for m in Member.objects.select_for_update()
            .filter(workspace=workspace, pk__in=pair)
            .order_by("pk")
        }
        _check_undoable(locked_record, members)
        keep, gone = members[locked_record.survivor_id], members[locked_record.merged_id]

        identity_ids = [int(pk) for pk in locked_record.identity_ids]
        for start in range(0, len(identity_ids), ID_BATCH):
            Identity.objects.filter(
                workspace=workspace, member=keep, pk__in=identity_ids[start : start + ID_BATCH]
            ).update(member=gone)
        if locked_record.tags:
            MemberTag.objects.filter(
                workspace=workspace, member=keep, tag__in=locked_record.tags
            ).delete()
        _unfold_member(keep, gone, locked_record.survivor_changes)
        gone.merged_into = None
        gone.save(update_fields=["merged_into", "user", "updated_at"])
        identities_moved.send(
            sender=Member, workspace_id=workspace.pk, member_ids=[keep.pk, gone.pk]
        )

        now = timezone.now()
        locked_record.undone_at = now
        locked_record.undone_by = _user(actor)
        locked_record.save(update_fields=["undone_at", "undone_by"])
        if locked_record.suggestion_id is not None:
            MergeSuggestion.objects.filter(
                workspace=workspace, pk=locked_record.suggestion_id
            ).update(status=MergeSuggestion.Status.PENDING, decided_at=None, decided_by=None)
        audit_record(
            workspace=workspace,
            actor=actor,
            action="member.merge_undo",
            target=keep,
            data={
                "merged_id": gone.pk,
                "record_id": locked_record.pk,
                "identities": len(identity_ids),
                "activities": len(locked_record.activity_ids),
                "tags_removed": list(locked_record.tags),
            },
        )
    record.refresh_from_db()


def _check_undoable(record: MergeRecord, members: dict[int, Member]) -> None:
    keep, gone = members[record.survivor_id], members[record.merged_id]
    if keep.merged_into_id is not None:
        raise MergeError(
            _("%(survivor)s has since been merged into another member: undo that merge first.")
            % {"survivor": keep}
        )
    if gone.merged_into_id != keep.pk:
        raise MergeError(_("This merge no longer matches the members: it cannot be undone."))


def _unfold_member(keep: Member, gone: Member, changes: dict[str, list[Any]]) -> None:
    """Restore each survivor field the merge set, unless it changed again since."""
    updated: list[str] = []
    for name in ("first_seen", "last_seen"):
        if name in changes:
            before, after = changes[name]
            if _json_time(getattr(keep, name)) == after:
                setattr(keep, name, _parse_time(before))
                updated.append(name)
    if "user_id" in changes:
        before, after = changes["user_id"]
        if keep.user_id == after:
            keep.user_id = before
            gone.user_id = after
            updated.append("user")
    if updated:
        keep.save(update_fields=[*updated, "updated_at"])


def merge_suggestion_accept(
    *, suggestion: MergeSuggestion, actor: Any, survivor: Member | None = None
) -> MergeRecord:
    """Merge the suggested pair; `survivor` (one of the two, default the older member_a)
    keeps everything. Audited."""
    if survivor is None or survivor.pk == suggestion.member_a_id:
        keep, gone = suggestion.member_a, suggestion.member_b
    elif survivor.pk == suggestion.member_b_id:
        keep, gone = suggestion.member_b, suggestion.member_a
    else:
        raise MergeError(_("The member to keep must be one of the suggested pair."))
    with transaction.atomic():
        record = member_merge(
            workspace=suggestion.workspace,
            survivor=keep,
            merged=gone,
            actor=actor,
            suggestion=suggestion,
        )
        audit_record(
            workspace=suggestion.workspace,
            actor=actor,
            action="merge_suggestion.accept",
            target=suggestion,
            data={"record_id": record.pk},
        )
    suggestion.refresh_from_db()
    return record


def merge_suggestion_reject(*, suggestion: MergeSuggestion, actor: Any) -> None:
    """Mark the suggestion rejected so it is not raised again; audited."""
    with transaction.atomic():
        locked = MergeSuggestion.objects.select_for_update().get(
            workspace=suggestion.workspace, pk=suggestion.pk
        )
        if locked.status != MergeSuggestion.Status.PENDING:
            raise MergeError(_("This suggestion was already decided."))
        locked.status = MergeSuggestion.Status.REJECTED
        locked.decided_at = timezone.now()
        locked.decided_by = _user(actor)
        locked.save(update_fields=["status", "decided_at", "decided_by"])
        audit_record(
            workspace=suggestion.workspace,
            actor=actor,
            action="merge_suggestion.reject",
            target=locked,
            data={"member_a": locked.member_a_id, "member_b": locked.member_b_id},
        )
    suggestion.refresh_from_db()


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
