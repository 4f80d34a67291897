"""Member data export and erasure (GDPR), and the privacy requests that ask for them.

An export gathers every piece of personal data held about a member: the profile (and the
profiles merged into it), identities, tags, score, activities, earlier requests, and the
sections other apps register with `register_export_section` (commerce adds orders).

An erasure removes the personal data and keeps the anonymous facts: the member row stays,
blank, so activity counts, rollups and order totals still add up. Identities, tags and merge
suggestions go; activities keep kind, channel, time and weight but lose their properties;
stored exports are dropped; audit entries about the member lose their text values. Other
apps erase their part through `register_eraser` (commerce scrubs orders), so people never
imports them. Erasing twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.activity.dialect import lock_workspace_rollups
from circolo.activity.models import Activity
from circolo.activity.selectors import member_score
from circolo.activity.services import activities_anonymise
from circolo.core.audit import audit_record
from circolo.core.models import AuditLog, Workspace
from circolo.people.models import (
    DataRequest,
    Identity,
    IdentityKind,
    Member,
    MemberTag,
    MergeSuggestion,
)
from circolo.people.normalise import InputError

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "circolo.member_export"
EXPORT_VERSION = 1
REASON_MAX_LENGTH = 200
REFERENCE_MAX_LENGTH = 200
SOURCE_MAX_LENGTH = 20
# What replaces erased text in audit entries and in the reason of an erasure.
ERASED = "[erased]"
# Personal strings shorter than this are not searched for in free text (too many false hits).
SCRUB_MIN_LENGTH = 3
# Audit data keys whose text names a kind of thing, never a person: kept when redacting.
AUDIT_KEPT_KEYS = frozenset({"source", "channel", "kind"})
# Members merged into members merged into ... : a chain longer than this is a data error.
MERGE_DEPTH_MAX = 20
# Keys of the export that people fills itself; sections of other apps take other names.
CORE_SECTIONS = frozenset(
    {
        "format",
        "version",
        "generated_at",
        "workspace",
        "member",
        "merged_profiles",
        "identities",
        "tags",
        "score",
        "activities",
        "data_requests",
    }
)


class PrivacyError(InputError):
    """A privacy request that cannot be carried out; `field` names the input at fault."""


@dataclass(frozen=True)
class DataSubject:
    """The person a request is about: a live member plus every member merged into it, and
    their identities as held when the request started (erasers run before these go)."""

    workspace: Workspace
    member: Member
    member_ids: tuple[int, ...]
    identities: tuple[Identity, ...]

    @property
    def emails(self) -> tuple[str, ...]:
        return tuple(i.value for i in self.identities if i.kind == IdentityKind.EMAIL)

    @property
    def phones(self) -> tuple[str, ...]:
        return tuple(i.value for i in self.identities if i.kind == IdentityKind.PHONE)


# An export section returns a JSON-serialisable value: fn(*, subject: DataSubject) -> Any.
ExportSection = Callable[..., Any]
# An eraser removes its app's personal data and returns what it changed as counts:
# fn(*, subject: DataSubject) -> dict[str, int]. It runs inside the erasure's transaction.
Eraser = Callable[..., dict[str, int]]

_EXPORT_SECTIONS: dict[str, ExportSection] = {}
_ERASERS: list[Eraser] = []


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def register_export_section(name: str, fn: ExportSection) -> None:
    """Add `fn`'s result to every member export under `name`. Registering the same function
    again is a no-op; another function under a taken name is a ValueError."""
    if name in CORE_SECTIONS:
        raise ValueError(f"export section name {name!r} is reserved")
    known = _EXPORT_SECTIONS.get(name)
    if known is not None and _qualname(known) != _qualname(fn):
        raise ValueError(f"export section {name!r} is already registered by {_qualname(known)}")
    _EXPORT_SECTIONS[name] = fn


def register_eraser(fn: Eraser) -> None:
    """Run `fn` in every member erasure, before identities are deleted. Idempotent."""
    name = _qualname(fn)
    _ERASERS[:] = [known for known in _ERASERS if _qualname(known) != name]
    _ERASERS.append(fn)


# --------------------------------------------------------------------------- subject


def _subject(member: Member, *, lock: bool = False) -> DataSubject:
    """The data subject of a live member; PrivacyError for a merged one."""
    if member.merged_into_id is not None:
        raise PrivacyError(
            "member",
            _("This member was merged into #%(id)s: make the request on that member.")
            % {"id": member.merged_into_id},
        )
    workspace = member.workspace
    ids = [member.pk]
    frontier = [member.pk]
    for _depth in range(MERGE_DEPTH_MAX):
        merged = Member.objects.filter(workspace=workspace, merged_into_id__in=frontier)
        if lock:
            merged = merged.select_for_update()
        frontier = [
            pk for pk in merged.order_by("pk").values_list("pk", flat=True) if pk not in ids
        ]
        if not frontier:
            break
        ids.extend(frontier)
    identities = tuple(
        Identity.objects.filter(workspace=workspace, member_id__in=ids).order_by(
            "kind", "channel", "value", "pk"
        )
    )
    return DataSubject(
        workspace=workspace, member=member, member_ids=tuple(ids), identities=identities
    )


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- export


def _profile(member: Member) -> dict[str, Any]:
    return {
        "id": member.pk,
        "display_name": member.display_name,
        "city": member.city,
        "country": member.country,
        "languages": list(member.languages or []),
        "consent_email": member.consent_email,
        "consent_profiling": member.consent_profiling,
        "first_seen": _time(member.first_seen),
        "last_seen": _time(member.last_seen),
        "created_at": _time(member.created_at),
        "erased_at": _time(member.erased_at),
        "account_email": member.user.email if member.user is not None else None,
    }


def member_export(*, member: Member) -> dict[str, Any]:
    """Every piece of personal data held about a live member, as a JSON-serialisable dict
    (times in ISO 8601). PrivacyError for a merged member."""
    subject = _subject(member)
    workspace = subject.workspace
    profiles = {
        m.pk: m
        for m in Member.objects.filter(workspace=workspace, pk__in=subject.member_ids)
        .select_related("user")
        .order_by("pk")
    }
    score = member_score(member=member)
    activities = (
        Activity.objects.filter(workspace=workspace, member_id__in=subject.member_ids)
        .order_by("occurred_at", "id")
        .values_list(
            "kind", "channel", "occurred_at", "weight", "source", "source_id", "properties"
        )
    )
    requests = DataRequest.objects.filter(
        workspace=workspace, member_id__in=subject.member_ids
    ).order_by("requested_at", "pk")
    export: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": _time(timezone.now()),
        "workspace": {"name": workspace.name, "slug": workspace.slug},
        "member": _profile(profiles[member.pk]),
        "merged_profiles": [_profile(m) for pk, m in profiles.items() if pk != member.pk],
        "identities": [
            {
                "channel": i.channel,
                "kind": i.kind,
                "value": i.value,
                "verified": i.verified,
                "source": i.source,
                "created_at": _time(i.created_at),
            }
            for i in subject.identities
        ],
        "tags": sorted(
            set(
                MemberTag.objects.filter(
                    workspace=workspace, member_id__in=subject.member_ids
                ).values_list("tag", flat=True)
            )
        ),
        "score": {
            "love": round(score.love, 2),
            "level": score.level,
            "last_active": _time(score.last_active),
            "activity_count": score.activity_count,
        },
        "activities": [
            {
                "kind": kind,
                "channel": channel,
                "occurred_at": _time(occurred_at),
                "weight": weight,
                "source": source,
                "source_id": source_id,
                "properties": properties,
            }
            for kind, channel, occurred_at, weight, source, source_id, properties in (
                activities.iterator(chunk_size=2000)
            )
        ],
        "data_requests": [
            {
                "kind": r.kind,
                "source": r.source,
                "status": r.status,
                "requested_at": _time(r.requested_at),
                "completed_at": _time(r.completed_at),
            }
            for r in requests
        ],
    }
    for name, section in sorted(_EXPORT_SECTIONS.items()):
        export[name] = section(subject=subject)
    return export


# --------------------------------------------------------------------------- erasure


@dataclass
class Erasure:
    """What an erasure changed. `first` is False when the member had been erased before."""

    member: Member
    first: bool
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.first or any(self.counts.values())


def _clean_reason(reason: Any) -> str:
    text = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not text:
        raise PrivacyError("reason", _("Say why the data is erased (for the audit log)."))
    if len(text) > REASON_MAX_LENGTH:
        raise PrivacyError(
            "reason",
            _("A reason has at most %(limit)d characters.") % {"limit": REASON_MAX_LENGTH},
        )
    return text


def _personal_strings(subject: DataSubject, members: Iterable[Member]) -> list[str]:
    """The member's names, places and identity values, longest first, for scrubbing text."""
    found = {i.value for i in subject.identities}
    for member in members:
        found.update({member.display_name, member.city})
        found.update(part for part in member.display_name.split())
    return sorted(
        (s for s in found if len(s.strip()) >= SCRUB_MIN_LENGTH), key=lambda s: (-len(s), s)
    )


def _scrub(text: str, strings: Sequence[str]) -> str:
    for value in strings:
        text = re.sub(re.escape(value), ERASED, text, flags=re.IGNORECASE)
    return text


def _redacted(value: Any) -> Any:
    """The same JSON shape with every text value replaced (numbers, flags, ids and the
    words of AUDIT_KEPT_KEYS stay)."""
    if isinstance(value, str):
        return ERASED if value else value
    if isinstance(value, dict):
        return {
            key: item if key in AUDIT_KEPT_KEYS and isinstance(item, str) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _audit_redact(workspace: Workspace, member_ids: Sequence[int]) -> int:
    """Text values of audit entries about these members (names, identity values) replaced."""
    entries = AuditLog.objects.filter(
        workspace=workspace,
        target_type=Member._meta.label_lower,
        target_id__in=[str(pk) for pk in member_ids],
    ).exclude(action="member.erase")
    changed = []
    for entry in entries:
        redacted = _redacted(entry.data)
        if redacted != entry.data:
            entry.data = redacted
            changed.append(entry)
    AuditLog.objects.bulk_update(changed, ["data"], batch_size=500)
    return len(changed)


def _blank_profiles(members: Sequence[Member], now: dt.datetime) -> int:
    """Personal fields of the members blanked; returns how many had any left. The country
    stays: on its own it names nobody and keeps totals by country right."""
    blank = {
        "display_name": "",
        "name_key": "",
        "city": "",
        "languages": [],
        "consent_email": False,
        "consent_profiling": False,
        "user": None,
    }
    dirty = [
        m
        for m in members
        if m.display_name
        or m.name_key
        or m.city
        or m.languages
        or m.consent_email
        or m.consent_profiling
        or m.user_id is not None
        or m.erased_at is None
    ]
    ids = [m.pk for m in dirty]
    if ids:
        Member.objects.filter(pk__in=ids).update(**blank, updated_at=now)
        Member.objects.filter(pk__in=ids, erased_at__isnull=True).update(erased_at=now)
    return len(dirty)


def member_erase(*, member: Member, actor: Any, reason: str) -> Erasure:
    """Erase a live member's personal data (and that of the members merged into it), keep the
    anonymous facts; audited without personal data. Idempotent. PrivacyError on bad input."""
    reason_text = _clean_reason(reason)
    workspace = member.workspace
    with transaction.atomic():
        # Merges and activity handlers take the rollup lock before member rows: same order.
        lock_workspace_rollups(workspace.pk)
        locked = Member.objects.select_for_update().get(workspace=workspace, pk=member.pk)
        subject = _subject(locked, lock=True)
        ids = list(subject.member_ids)
        members = list(Member.objects.filter(workspace=workspace, pk__in=ids).order_by("pk"))
        scrubbed_reason = _scrub(reason_text, _personal_strings(subject, members))
        first = locked.erased_at is None
        now = timezone.now()

        counts: dict[str, int] = {}
        for eraser in list(_ERASERS):
            for key, number in eraser(subject=subject).items():
                counts[key] = counts.get(key, 0) + number
        counts["profiles"] = _blank_profiles(members, now)
        _total, deleted = Identity.objects.filter(workspace=workspace, member_id__in=ids).delete()
        counts["identities"] = deleted.get(Identity._meta.label, 0)
        _total, deleted = MemberTag.objects.filter(workspace=workspace, member_id__in=ids).delete()
        counts["tags"] = deleted.get(MemberTag._meta.label, 0)
        _total, deleted = MergeSuggestion.objects.filter(
            Q(member_a_id__in=ids) | Q(member_b_id__in=ids), workspace=workspace
        ).delete()
        counts["merge_suggestions"] = deleted.get(MergeSuggestion._meta.label, 0)
        counts["activities"] = activities_anonymise(workspace=workspace, member_ids=ids)
        counts["exports"] = DataRequest.objects.filter(
            workspace=workspace, member_id__in=ids, export__isnull=False
        ).update(export=None)
        counts["audit_entries"] = _audit_redact(workspace, ids)

        erasure = Erasure(member=locked, first=first, counts=counts)
        if erasure.changed:
            audit_record(
                workspace=workspace,
                actor=actor,
                action="member.erase",
                target=locked,
                data={
                    "reason": scrubbed_reason,
                    "again": not first,
                    "merged_members": len(ids) - 1,
                    **counts,
                },
            )
    member.refresh_from_db()
    erasure.member = member
    return erasure


# --------------------------------------------------------------------------- requests


def _clean_source(source: str) -> str:
    value = source.strip().lower() if isinstance(source, str) else ""
    if not value or len(value) > SOURCE_MAX_LENGTH:
        raise PrivacyError(
            "source",
            _("Name who asked in 1 to %(limit)d characters.") % {"limit": SOURCE_MAX_LENGTH},
        )
    return value


def _clean_reference(reference: str) -> str:
    value = reference.strip() if isinstance(reference, str) else ""
    if len(value) > REFERENCE_MAX_LENGTH:
        raise PrivacyError(
            "external_reference",
            _("A reference has at most %(limit)d characters.") % {"limit": REFERENCE_MAX_LENGTH},
        )
    return value


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _run(request: DataRequest, work: Callable[[DataRequest], None]) -> DataRequest:
    """Carry out a pending request: done when `work` returns, failed (kept, logged) when it
    raises; the error is raised again for the caller to report."""
    try:
        with transaction.atomic():
            work(request)
            request.status = DataRequest.Status.DONE
            request.completed_at = timezone.now()
            request.save(update_fields=["status", "completed_at", "export", "summary"])
    except Exception as error:
        logger.exception("privacy request %s failed", request.pk)
        request.status = DataRequest.Status.FAILED
        request.completed_at = timezone.now()
        request.error = f"{error.__class__.__name__}: {error}"[:2000]
        DataRequest.objects.filter(pk=request.pk).update(
            status=request.status, completed_at=request.completed_at, error=request.error
        )
        raise
    return request


def _pending(
    *,
    workspace: Workspace,
    member: Member | None,
    kind: str,
    source: str,
    actor: Any,
    external_reference: str,
) -> DataRequest:
    return DataRequest.objects.create(
        workspace=workspace,
        member=member,
        kind=kind,
        source=_clean_source(source),
        requested_at=timezone.now(),
        requested_by=_user(actor),
        external_reference=_clean_reference(external_reference),
    )


def data_request_export(
    *,
    member: Member,
    actor: Any,
    source: str = DataRequest.SOURCE_STAFF,
    external_reference: str = "",
) -> DataRequest:
    """Record an export request for a live member and produce its export; audited."""
    _subject(member)  # a merged member is refused before anything is recorded
    request = _pending(
        workspace=member.workspace,
        member=member,
        kind=DataRequest.Kind.EXPORT,
        source=source,
        actor=actor,
        external_reference=external_reference,
    )

    def work(req: DataRequest) -> None:
        req.export = member_export(member=member)
        req.summary = {
            "activities": len(req.export["activities"]),
            "identities": len(req.export["identities"]),
        }
        audit_record(
            workspace=member.workspace,
            actor=actor,
            action="member.export",
            target=member,
            data={"request_id": req.pk, "source": req.source},
        )

    return _run(request, work)


def data_request_erase(
    *,
    member: Member,
    actor: Any,
    reason: str,
    source: str = DataRequest.SOURCE_STAFF,
    external_reference: str = "",
) -> DataRequest:
    """Record an erasure request for a live member and erase it (see member_erase). The
    reference is kept without the member's names and identity values."""
    _clean_reason(reason)
    subject = _subject(member)
    members = Member.objects.filter(workspace=member.workspace, pk__in=subject.member_ids)
    request = _pending(
        workspace=member.workspace,
        member=member,
        kind=DataRequest.Kind.ERASE,
        source=source,
        actor=actor,
        external_reference=_scrub(
            _clean_reference(external_reference), _personal_strings(subject, members)
        ),
    )

    def work(req: DataRequest) -> None:
        erasure = member_erase(member=member, actor=actor, reason=reason)
        req.summary = {"again": not erasure.first, **erasure.counts}

    return _run(request, work)


def data_request_record(
    *,
    workspace: Workspace,
    kind: str,
    source: str,
    summary: dict[str, Any],
    actor: Any = None,
    external_reference: str = "",
) -> DataRequest:
    """Record a request that is about no member here (a customer we hold nothing about, a
    whole shop's erasure) as done, with its summary (counts and flags, no personal data)."""
    if kind not in DataRequest.Kind.values:
        raise PrivacyError("kind", _("Choose export or erasure."))
    request = _pending(
        workspace=workspace,
        member=None,
        kind=kind,
        source=source,
        actor=actor,
        external_reference=external_reference,
    )

    def work(req: DataRequest) -> None:
        req.summary = dict(summary)

    return _run(request, work)


def data_request_export_read(*, data_request: DataRequest, actor: Any) -> dict[str, Any]:
    """The export a done request holds, for download; audited. PrivacyError when there is
    none (an erasure, a failed request, or an export dropped when the member was erased)."""
    if data_request.kind != DataRequest.Kind.EXPORT or data_request.export is None:
        raise PrivacyError("export", _("This request has no export to download."))
    audit_record(
        workspace=data_request.workspace,
        actor=actor,
        action="data_request.download",
        target=data_request,
        data={"member_id": data_request.member_id},
    )
    export: dict[str, Any] = data_request.export
    return export


def data_requests(*, workspace: Workspace, member: Member | None = None) -> QuerySet[DataRequest]:
    """The workspace's privacy requests, newest first (only `member`'s when given)."""
    rows = (
        DataRequest.objects.filter(workspace=workspace)
        .select_related("member", "requested_by")
        .defer("export")
        # Whether there is an export to download, without reading the export itself.
        .annotate(
            has_export=ExpressionWrapper(Q(export__isnull=False), output_field=BooleanField())
        )
    )
    if member is not None:
        rows = rows.filter(member=member)
    return rows.order_by("-requested_at", "-pk")
