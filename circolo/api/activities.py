"""Activities: record one, record a batch, list with filters; the kind registry."""

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import pydantic
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import AwareDatetime, ConfigDict, Field, SkipValidation

from circolo.activity import services as activity
from circolo.activity.selectors import activity_list, kind_weights
from circolo.api.auth import request_workspace, scoped
from circolo.api.errors import (
    WRITE_ERRORS,
    ApiError,
    ErrorOut,
    error_responses,
    invalid,
    pydantic_message,
)
from circolo.api.members import IDENTITIES_MAX, IdentityIn, identity_errors
from circolo.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Ordering, keyset_page
from circolo.core.idempotency import idempotent
from circolo.core.models import Workspace
from circolo.people import services as people
from circolo.people.models import Member
from circolo.people.normalise import normalise_identity
from circolo.people.selectors import member_get, member_list

router = Router(tags=["activities"])

NEWEST_FIRST = Ordering("-occurred_at", "occurred_at", "datetime", descending=True)


# --------------------------------------------------------------------------- schemas


class ActivityIn(Schema):
    """One activity; name the member by `member_id` or by `identities` (resolved to a member)."""

    model_config = ConfigDict(extra="forbid")

    member_id: int | None = Field(
        None, description=gettext_noop("A member of this workspace (or give identities).")
    )
    identities: list[IdentityIn] | None = Field(
        None,
        min_length=1,
        max_length=IDENTITIES_MAX,
        description=gettext_noop(
            "Who did it, when the member id is not known: resolved like POST /members."
        ),
    )
    kind: str = Field(description=gettext_noop("A kind from GET /kinds, e.g. post, order."))
    channel: str = Field(description=gettext_noop("Where it happened, e.g. forum, shopify."))
    occurred_at: dt.datetime = Field(
        description=gettext_noop("When, with a time zone; at most 24 hours in the future.")
    )
    source: str = Field(description=gettext_noop("The system that reports it (≤ 40 characters)."))
    source_id: str = Field(
        description=gettext_noop(
            "Its id in that system (≤ 200 characters): (source, source_id) is recorded once."
        )
    )
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description=gettext_noop("Small JSON object, at most 16 KB."),
    )


class ActivityRecordedOut(Schema):
    status: Literal["created", "duplicate"] = Field(
        description=gettext_noop(
            "created: recorded now (201); duplicate: (source, source_id) was recorded before (200)."
        )
    )
    id: int
    member_id: int


class BatchIn(Schema):
    items: list[SkipValidation[ActivityIn]] = Field(
        description=gettext_noop(
            "Up to CIRCOLO_API_BATCH_LIMIT (10,000) activities; each is checked on its own."
        )
    )


class BatchItemOut(Schema):
    index: int = Field(description=gettext_noop("Position of the item in `items`."))
    status: Literal["created", "duplicate", "rejected"]
    id: int | None = None
    member_id: int | None = None
    errors: dict[str, str] | None = None


class BatchOut(Schema):
    results: list[BatchItemOut]
    created: int
    duplicates: int
    rejected: int


class BatchRejectedOut(BatchOut):
    """Every item was rejected."""

    detail: str
    errors: dict[str, str] = Field(description=gettext_noop('Field errors as "items.3.kind".'))


class ActivityOut(Schema):
    id: int
    member_id: int
    kind: str
    channel: str
    occurred_at: dt.datetime
    weight: int
    properties: dict[str, Any]
    source: str
    source_id: str
    created_at: dt.datetime


class ActivityPage(Schema):
    items: list[ActivityOut]
    next_cursor: str | None = Field(
        description=gettext_noop("Pass as `cursor` for the next page; null on the last page.")
    )


class ActivityFilters(Schema):
    member_id: int | None = None
    kind: str | None = None
    channel: str | None = None
    source: str | None = None
    since: AwareDatetime | None = Field(
        None, description=gettext_noop("Occurred at or after this time.")
    )
    until: AwareDatetime | None = Field(
        None, description=gettext_noop("Occurred before this time.")
    )
    cursor: str | None = Field(None, description=gettext_noop("next_cursor of the previous page."))
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=gettext_noop("Page size."))


class KindOut(Schema):
    key: str
    label: str
    default_weight: int
    weight: int = Field(description=gettext_noop("This workspace's weight for the kind."))


# --------------------------------------------------------------------------- helpers


def _service_item(payload: ActivityIn, member_id: int) -> activity.ActivityIn:
    return activity.ActivityIn(
        member_id=member_id,
        kind=payload.kind,
        channel=payload.channel,
        occurred_at=payload.occurred_at,
        source=payload.source,
        source_id=payload.source_id,
        properties=payload.properties,
    )


def _who_errors(payload: ActivityIn) -> dict[str, str]:
    if (payload.member_id is None) == (payload.identities is None):
        return {"member_id": gettext("Give either member_id or identities (one of them).")}
    return {}


def _member_not_found() -> dict[str, str]:
    return {"member_id": gettext("Member not found in this workspace.")}


def _identity_key(identities: Sequence[IdentityIn]) -> tuple[tuple[str, ...], ...]:
    """The same person named the same way gives the same key (values normalised when valid)."""
    parts = set()
    for identity in identities:
        kind = identity.kind.strip().lower()
        try:
            value = normalise_identity(kind, identity.value)
        except people.IdentityError:
            value = identity.value.strip()
        parts.add(
            (identity.channel.strip().lower(), kind, value, str(identity.verified), identity.source)
        )
    return tuple(sorted(parts))


def _item_errors(error: pydantic.ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for detail in error.errors():
        name = ".".join(str(part) for part in detail["loc"]) or "item"
        fields.setdefault(name, pydantic_message(dict(detail)))
    return fields


def _live_member_ids(workspace: Workspace, ids: set[int]) -> set[int]:
    """Which of `ids` are live (unmerged) members of the workspace: one query."""
    if not ids:
        return set()
    members = member_list(workspace=workspace, sort="name").filter(pk__in=ids)
    return set(members.values_list("pk", flat=True))


# --------------------------------------------------------------------------- operations


@router.post(
    "/activities",
    response={200: ActivityRecordedOut, 201: ActivityRecordedOut, **error_responses(*WRITE_ERRORS)},
    summary=gettext_noop("Record an activity"),
    description=gettext_noop(
        "Records one activity (201); a repeat of its (source, source_id) changes nothing and"
        " answers 200 with status duplicate and the existing id."
        " Accepts an Idempotency-Key header."
    ),
    **scoped("activities:write"),
)
@idempotent
def activities_create(request: HttpRequest, payload: ActivityIn) -> Status[dict[str, Any]]:
    workspace = request_workspace(request)
    errors = _who_errors(payload)
    if errors:
        raise invalid(errors)
    errors = activity.activity_validate(
        workspace=workspace, item=_service_item(payload, payload.member_id or 0)
    )
    if payload.identities is not None:
        errors.pop("member_id", None)  # resolved below, once the rest is known to be valid
    elif "member_id" in errors:
        errors.update(_member_not_found())
    if errors:
        raise invalid(errors)
    # One transaction: a member created for identities is not kept if recording fails.
    with transaction.atomic():
        if payload.identities is not None:
            try:
                member = people.member_resolve(
                    workspace=workspace,
                    identities=[identity.to_service() for identity in payload.identities],
                    seen_at=min(payload.occurred_at, timezone.now()),
                ).member
            except people.InputError as error:
                raise invalid(identity_errors(error)) from None
        else:
            try:
                member = member_get(workspace=workspace, member_id=payload.member_id or 0)
            except Member.DoesNotExist:
                raise invalid(_member_not_found()) from None
        try:
            row, created = activity.activity_record(
                workspace=workspace,
                member=member,
                kind=payload.kind,
                channel=payload.channel,
                occurred_at=payload.occurred_at,
                source=payload.source,
                source_id=payload.source_id,
                properties=payload.properties,
            )
        except activity.ActivityValidationError as error:
            raise invalid(error.errors) from None
    body = {
        "status": "created" if created else "duplicate",
        "id": row.pk,
        "member_id": row.member_id,
    }
    return Status(201 if created else 200, body)


@router.post(
    "/activities/batch",
    response={
        **error_responses(*WRITE_ERRORS, 413),
        200: BatchOut,
        400: BatchRejectedOut,
    },
    summary=gettext_noop("Record a batch of activities"),
    description=gettext_noop(
        "Checks every item on its own: valid items are recorded in one go (created or"
        " duplicate), invalid ones are reported with their errors and nothing of them is"
        " written. 200 when at least one item was accepted, 400 when none was, or when the"
        " batch holds more items than the limit. Accepts an Idempotency-Key header."
    ),
    **scoped("activities:write"),
)
@idempotent
def activities_batch(request: HttpRequest, payload: BatchIn) -> Status[dict[str, Any]]:
    workspace = request_workspace(request)
    raw_items: list[Any] = payload.items
    limit = settings.CIRCOLO_API_BATCH_LIMIT
    if len(raw_items) > limit:
        raise ApiError(
            400,
            gettext("A batch holds at most %(limit)d activities; this one has %(count)d.")
            % {"limit": limit, "count": len(raw_items)},
            {"items": gettext("At most %(limit)d items.") % {"limit": limit}},
        )
    if not raw_items:
        raise invalid({"items": gettext("Give at least one activity.")})

    rejected: dict[int, dict[str, str]] = {}
    parsed: dict[int, ActivityIn] = {}
    for index, raw in enumerate(raw_items):
        try:
            item = ActivityIn.model_validate(raw)
        except pydantic.ValidationError as error:
            rejected[index] = _item_errors(error)
            continue
        who = _who_errors(item)
        if who:
            rejected[index] = who
        else:
            parsed[index] = item

    # Everything but the member is checked first, so no member is created for a bad item.
    positions = sorted(parsed)
    checks = activity.activities_validate(
        workspace=workspace,
        items=[_service_item(parsed[i], parsed[i].member_id or 0) for i in positions],
    )
    live = _live_member_ids(
        workspace, {item.member_id for item in parsed.values() if item.member_id is not None}
    )
    for check_index, position in enumerate(positions):
        item = parsed[position]
        errors = dict(checks.get(check_index, {}))
        errors.pop("member_id", None)
        if item.member_id is not None and item.member_id not in live:
            errors.update(_member_not_found())
        if errors:
            rejected[position] = errors
            del parsed[position]

    # Items naming the same identities resolve once.
    groups: dict[tuple[tuple[str, ...], ...], list[int]] = {}
    for position, item in parsed.items():
        if item.identities is not None:
            groups.setdefault(_identity_key(item.identities), []).append(position)

    results: list[dict[str, Any]] = [{} for _ in raw_items]
    with transaction.atomic():
        member_of: dict[int, int] = {
            position: item.member_id
            for position, item in parsed.items()
            if item.member_id is not None
        }
        now = timezone.now()
        for group in groups.values():
            first = parsed[group[0]]
            assert first.identities is not None
            seen_at = min(max(parsed[p].occurred_at for p in group), now)
            try:
                member = people.member_resolve(
                    workspace=workspace,
                    identities=[identity.to_service() for identity in first.identities],
                    seen_at=seen_at,
                ).member
            except people.InputError as error:
                for position in group:
                    rejected[position] = identity_errors(error)
                continue
            for position in group:
                member_of[position] = member.pk
        accepted = sorted(member_of)
        bulk = activity.activity_record_bulk(
            workspace=workspace,
            items=[_service_item(parsed[p], member_of[p]) for p in accepted],
        )
    created = set(bulk.created)
    for bulk_index, position in enumerate(accepted):
        results[position] = {
            "index": position,
            "status": "created" if bulk_index in created else "duplicate",
            "id": bulk.ids[bulk_index],
            "member_id": member_of[position],
        }
    for position, errors in rejected.items():
        results[position] = {"index": position, "status": "rejected", "errors": errors}

    body: dict[str, Any] = {
        "results": results,
        "created": len(bulk.created),
        "duplicates": len(bulk.duplicates),
        "rejected": len(rejected),
    }
    if accepted:
        return Status(200, body)
    body["detail"] = gettext("No activity was accepted; see the errors of each item.")
    body["errors"] = {
        f"items.{position}.{field}": message
        for position, errors in sorted(rejected.items())
        for field, message in errors.items()
    }
    return Status(400, body)


@router.get(
    "/activities",
    response={200: ActivityPage, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
    summary=gettext_noop("List activities"),
    description=gettext_noop("Activities of the workspace, newest first, one page at a time."),
    **scoped("activities:read"),
)
def activities_list(request: HttpRequest, filters: Query[ActivityFilters]) -> dict[str, Any]:
    activities = activity_list(
        workspace=request_workspace(request),
        member_id=filters.member_id,
        kind=filters.kind,
        channel=filters.channel,
        source=filters.source,
        since=filters.since,
        until=filters.until,
    )
    rows, next_cursor = keyset_page(
        activities,
        ordering=NEWEST_FIRST,
        cursor=filters.cursor,
        limit=filters.limit,
        value_of=lambda row: row.occurred_at,
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.get(
    "/kinds",
    response={200: list[KindOut], 401: ErrorOut, 403: ErrorOut},
    summary=gettext_noop("List activity kinds"),
    description=gettext_noop("Every activity kind with its default weight and this workspace's."),
    **scoped("activities:read"),
)
def kinds_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "key": view.kind,
            "label": view.label,
            "default_weight": view.default_weight,
            "weight": view.weight,
        }
        for view in kind_weights(workspace=request_workspace(request))
    ]
