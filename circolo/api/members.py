"""Members and identities: list, get, create (by identity resolution), update, add identities."""

import datetime as dt
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict, Field, field_validator

from circolo.activity.scores import level_of, love_now
from circolo.activity.selectors import member_score
from circolo.api.auth import request_workspace, scoped
from circolo.api.errors import WRITE_ERRORS, ErrorOut, error_responses, invalid
from circolo.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Ordering, keyset_page
from circolo.core.idempotency import idempotent
from circolo.people import services as people
from circolo.people.models import Identity, Member
from circolo.people.selectors import member_get, member_list

router = Router(tags=["members"])

SortKey = Literal[
    "name", "-name", "love", "-love", "last_active", "-last_active", "first_seen", "-first_seen"
]
ORDERINGS: dict[str, Ordering] = {
    "name": Ordering("name", "name_key", "text", descending=False),
    "-name": Ordering("-name", "name_key", "text", descending=True),
    "love": Ordering("love", "love_growth", "number", descending=False),
    "-love": Ordering("-love", "love_growth", "number", descending=True),
    "last_active": Ordering("last_active", "last_active", "datetime", descending=False),
    "-last_active": Ordering("-last_active", "last_active", "datetime", descending=True),
    "first_seen": Ordering("first_seen", "first_seen", "datetime", descending=False),
    "-first_seen": Ordering("-first_seen", "first_seen", "datetime", descending=True),
}
IDENTITIES_MAX = 50
# Identity sub-fields an IdentityError can name; anything else is about the value.
_IDENTITY_FIELDS = {"channel", "kind", "value", "source"}

LEVEL_DESCRIPTION = gettext_noop(
    "Activity level: one of inactive, casual, regular, core, champion."
)


# --------------------------------------------------------------------------- schemas


class IdentityIn(Schema):
    """One way we know a person."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        description=gettext_noop("Where the identity comes from, e.g. shopify, forum, email.")
    )
    kind: str = Field(
        description=gettext_noop("One of email, phone, customer_id, social, handle, external_id.")
    )
    value: str = Field(
        description=gettext_noop(
            "The value; emails are lower-cased, phones must be in international form (+39…)."
        )
    )
    verified: bool = Field(
        False,
        description=gettext_noop(
            "True when the source proved the person owns it; verified identities join members."
        ),
    )
    source: str = Field("", description=gettext_noop("The system that told us, optional."))

    def to_service(self) -> people.IdentityIn:
        return people.IdentityIn(
            channel=self.channel,
            kind=self.kind,
            value=self.value,
            verified=self.verified,
            source=self.source,
        )


class IdentityOut(Schema):
    id: int
    channel: str
    kind: str
    value: str
    verified: bool
    source: str
    created_at: dt.datetime


class MemberOut(Schema):
    id: int
    display_name: str
    city: str
    country: str
    languages: list[str]
    consent_email: bool
    consent_profiling: bool
    tags: list[str]
    love: float = Field(description=gettext_noop("Engagement score, decaying 0.9 per month."))
    level: str = Field(description=LEVEL_DESCRIPTION)
    last_active: dt.datetime | None
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class MemberDetailOut(MemberOut):
    activity_count: int
    identities: list[IdentityOut]


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None = Field(
        description=gettext_noop("Pass as `cursor` for the next page; null on the last page.")
    )


class MemberFilters(Schema):
    q: str = Field("", description=gettext_noop("Search in names and identity values."))
    tag: str = Field("", description=gettext_noop("Only members with this tag."))
    level: Literal["", "inactive", "casual", "regular", "core", "champion"] = Field(
        "", description=LEVEL_DESCRIPTION
    )
    active_within_days: int | None = Field(
        None, ge=0, le=36500, description=gettext_noop("Only members active in the last N days.")
    )
    sort: SortKey = Field("-love", description=gettext_noop("Sort order; - means descending."))
    cursor: str | None = Field(None, description=gettext_noop("next_cursor of the previous page."))
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=gettext_noop("Page size."))


class MemberCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    identities: list[IdentityIn] = Field(
        min_length=1,
        max_length=IDENTITIES_MAX,
        description=gettext_noop("At least one identity; they resolve to a known member if any."),
    )
    display_name: str = ""
    city: str = ""
    country: str = Field("", description=gettext_noop("ISO 3166 two-letter code."))
    languages: list[str] = Field(
        default_factory=list, description=gettext_noop("Language codes such as en, zh-hans.")
    )


class SuggestionOut(Schema):
    id: int
    member_a_id: int
    member_b_id: int
    score: float
    reasons: list[dict[str, str]]


class MemberResolvedOut(Schema):
    status: Literal["created", "matched"] = Field(
        description=gettext_noop(
            "created: a new member (201); matched: the identities joined a known member (200)."
        )
    )
    member: MemberDetailOut
    merge_suggestions: list[SuggestionOut] = Field(
        description=gettext_noop("Members that may be the same person, for a person to decide.")
    )


def _not_nullable(schema: dict[str, Any], model: Any = None) -> None:
    """JSON schema: fields typed "X | None" only to tell "not sent"; null is refused."""
    for details in schema.get("properties", {}).values():
        options = details.get("anyOf")
        if options:
            kept = [option for option in options if option.get("type") != "null"]
            if len(kept) == 1:
                del details["anyOf"]
                details.update(kept[0])
                details.pop("default", None)


class MemberUpdateIn(Schema):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable)

    # None only marks "not sent" (unsent fields are left out); an explicit null is refused.
    display_name: str | None = None
    city: str | None = None
    country: str | None = Field(None, description=gettext_noop("ISO 3166 two-letter code."))
    languages: list[str] | None = None
    consent_email: bool | None = None
    consent_profiling: bool | None = None
    tags: list[str] | None = Field(
        None, description=gettext_noop("The member's complete list of tags (replaces it).")
    )

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(gettext("This field cannot be null."))
        return value


# --------------------------------------------------------------------------- helpers


def _tags(member: Member) -> list[str]:
    return sorted(tag.tag for tag in member.tags.all())


def member_out(member: Member, *, now: dt.datetime) -> dict[str, Any]:
    """A member annotated by member_list (love_growth, last_active) as MemberOut data."""
    growth = getattr(member, "love_growth", None)
    love = love_now(growth, now) if growth is not None else 0.0
    return {
        "id": member.pk,
        "display_name": member.display_name,
        "city": member.city,
        "country": member.country,
        "languages": list(member.languages or []),
        "consent_email": member.consent_email,
        "consent_profiling": member.consent_profiling,
        "tags": _tags(member),
        "love": round(love, 4),
        "level": level_of(love),
        "last_active": getattr(member, "last_active", None),
        "first_seen": member.first_seen,
        "last_seen": member.last_seen,
        "created_at": member.created_at,
        "updated_at": member.updated_at,
    }


def member_detail(member: Member) -> dict[str, Any]:
    """MemberDetailOut data (score, tags and identities read here: three small queries)."""
    score = member_score(member=member)
    identities = list(member.identities.order_by("pk"))
    data = member_out(member, now=timezone.now())
    data.update(
        love=round(score.love, 4),
        level=score.level,
        last_active=score.last_active,
        activity_count=score.activity_count,
        identities=identities,
    )
    return data


def identity_errors(error: people.InputError) -> dict[str, str]:
    """Field errors of a people service, with identity errors placed at identities.<i>.<field>."""
    if isinstance(error, people.IdentityError) and error.index is not None:
        sub = error.field if error.field in _IDENTITY_FIELDS else "value"
        return {f"identities.{error.index}.{sub}": error.message}
    return {error.field: error.message}


def _get(request: HttpRequest, member_id: int) -> Member:
    """The member of the key's workspace, or 404 (other workspaces' ids included)."""
    return member_get(workspace=request_workspace(request), member_id=member_id)


# --------------------------------------------------------------------------- operations


@router.get(
    "/members",
    response={200: MemberPage, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
    summary=gettext_noop("List members"),
    description=gettext_noop(
        "Live members of the workspace, filtered and sorted, one page at a time."
    ),
    **scoped("members:read"),
)
def members_list(request: HttpRequest, filters: Query[MemberFilters]) -> dict[str, Any]:
    ordering = ORDERINGS[filters.sort]
    members = member_list(
        workspace=request_workspace(request),
        q=filters.q,
        tag=filters.tag,
        level=filters.level,
        active_within_days=filters.active_within_days,
        sort=filters.sort,
    ).prefetch_related("tags")
    rows, next_cursor = keyset_page(
        members,
        ordering=ordering,
        cursor=filters.cursor,
        limit=filters.limit,
        value_of=lambda member: getattr(member, ordering.field),
    )
    now = timezone.now()
    return {"items": [member_out(member, now=now) for member in rows], "next_cursor": next_cursor}


@router.get(
    "/members/{member_id}",
    response={200: MemberDetailOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary=gettext_noop("Get a member"),
    description=gettext_noop("One member with score, tags and identities."),
    **scoped("members:read"),
)
def members_get(request: HttpRequest, member_id: int) -> dict[str, Any]:
    return member_detail(_get(request, member_id))


@router.post(
    "/members",
    response={200: MemberResolvedOut, 201: MemberResolvedOut, **error_responses(*WRITE_ERRORS)},
    summary=gettext_noop("Create or match a member"),
    description=gettext_noop(
        "Resolves the identities: a verified or identical known identity joins its member"
        " (200, status matched); otherwise a new member is created (201, status created)."
        " Accepts an Idempotency-Key header."
    ),
    **scoped("members:write"),
)
@idempotent
def members_create(request: HttpRequest, payload: MemberCreateIn) -> Status[dict[str, Any]]:
    try:
        resolution = people.member_resolve(
            workspace=request_workspace(request),
            identities=[identity.to_service() for identity in payload.identities],
            attrs=people.MemberAttrs(
                display_name=payload.display_name,
                city=payload.city,
                country=payload.country,
                languages=tuple(payload.languages),
            ),
        )
    except people.InputError as error:
        raise invalid(identity_errors(error)) from None
    body = {
        "status": "created" if resolution.created else "matched",
        "member": member_detail(resolution.member),
        "merge_suggestions": resolution.suggestions,
    }
    return Status(201 if resolution.created else 200, body)


@router.patch(
    "/members/{member_id}",
    response={200: MemberDetailOut, **error_responses(*WRITE_ERRORS, 404)},
    summary=gettext_noop("Update a member"),
    description=gettext_noop(
        "Changes only the fields sent; `tags` replaces the member's tags."
        " Accepts an Idempotency-Key header."
    ),
    **scoped("members:write"),
)
@idempotent
def members_update(request: HttpRequest, member_id: int, payload: MemberUpdateIn) -> dict[str, Any]:
    api_key = request.auth  # type: ignore[attr-defined]
    member = _get(request, member_id)
    fields = payload.model_dump(exclude_unset=True)
    replace_tags = "tags" in fields
    tags = fields.pop("tags", None)
    try:
        with transaction.atomic():
            if fields:
                member = people.member_update(member=member, actor=api_key, **fields)
            if replace_tags:
                _tags_replace(member, tags, actor=api_key)
    except people.InputError as error:
        field = "tags" if error.field == "tag" else error.field
        raise invalid({field: error.message}) from None
    return member_detail(member)


def _tags_replace(member: Member, tags: list[str] | None, *, actor: Any) -> None:
    """Make the member's tags exactly `tags` (one audited service call per change)."""
    if tags is None:
        raise people.MemberError("tags", gettext("Give a list of tags."))
    current = set(_tags(member))
    wanted: set[str] = set()
    for tag in tags:
        wanted.add(people.member_tag_add(member=member, tag=tag, actor=actor).tag)
    for tag in sorted(current - wanted):
        people.member_tag_remove(member=member, tag=tag, actor=actor)


@router.get(
    "/members/{member_id}/identities",
    response={200: list[IdentityOut], 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary=gettext_noop("List a member's identities"),
    **scoped("members:read"),
)
def identities_list(request: HttpRequest, member_id: int) -> list[Identity]:
    return list(_get(request, member_id).identities.order_by("pk"))


@router.post(
    "/members/{member_id}/identities",
    response={201: IdentityOut, **error_responses(*WRITE_ERRORS, 404)},
    summary=gettext_noop("Add an identity to a member"),
    description=gettext_noop(
        "Stores the identity (normalised) on the member; 400 when it belongs to another member."
        " Accepts an Idempotency-Key header."
    ),
    **scoped("members:write"),
)
@idempotent
def identities_add(request: HttpRequest, member_id: int, payload: IdentityIn) -> Status[Identity]:
    member = _get(request, member_id)
    try:
        row = people.identity_add(
            member=member,
            identity=payload.to_service(),
            actor=request.auth,  # type: ignore[attr-defined]
        )
    except people.InputError as error:
        field = error.field if error.field in _IDENTITY_FIELDS else "value"
        raise invalid({field: error.message}) from None
    return Status(201, row)
