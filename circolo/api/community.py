"""The community over the API: spaces, threads and their posts, writing threads and replies.

Reads answer what a given member may read (`as_member`), or what any visitor may read when
it is left out: a private space's threads are a 404 to the API exactly as on the pages, so
a storefront widget that shows threads to a shopper can never show more than they may see.
Writes post as a member of the key's workspace, through the same services as the pages.
"""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext, gettext_noop
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict, Field

from circolo.api.auth import request_workspace, scoped
from circolo.api.errors import WRITE_ERRORS, ApiError, ErrorOut, error_responses, invalid, not_found
from circolo.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Ordering, keyset_page
from circolo.community import services as community
from circolo.community.models import Post, Space, Thread
from circolo.community.selectors import member_is_staff, readable_spaces, readable_threads
from circolo.core.idempotency import idempotent
from circolo.people.models import Member

router = Router(tags=["community"])

AS_MEMBER = gettext_noop(
    "Answer as this member would see it (their spaces); left out, as a visitor who is not"
    " signed in (public spaces only)."
)
THREAD_ORDER = Ordering("-last_posted_at", "last_posted_at", "datetime", descending=True)
POSTS_MAX = 500


class SpaceOut(Schema):
    id: int
    slug: str
    name: str
    description: str
    language: str
    visibility: str
    parent: str | None


class ThreadOut(Schema):
    id: int
    space: str
    kind: str
    title: str
    tags: list[str]
    skus: list[str]
    author_id: int
    reply_count: int
    solved: bool
    pinned: bool
    closed: bool
    created_at: dt.datetime
    last_posted_at: dt.datetime


class PostOut(Schema):
    id: int
    number: int
    author_id: int
    body: str
    html: str = Field(description=gettext_noop("The sanitised HTML rendering of `body`."))
    staff: bool
    accepted: bool
    created_at: dt.datetime
    edited_at: dt.datetime | None


class ThreadDetailOut(ThreadOut):
    posts: list[PostOut]


class ThreadPage(Schema):
    items: list[ThreadOut]
    next_cursor: str | None


class ThreadFilters(Schema):
    as_member: int | None = Field(None, description=AS_MEMBER)
    space: str = Field("", description=gettext_noop("Only threads in this space (its slug)."))
    tag: str = Field("", description=gettext_noop("Only threads with this tag."))
    kind: Literal["", "discussion", "question"] = ""
    cursor: str | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class ThreadIn(Schema):
    model_config = ConfigDict(extra="forbid")

    member_id: int = Field(description=gettext_noop("The member who writes the thread."))
    space: str = Field(description=gettext_noop("The space's slug."))
    title: str
    body: str = Field(description=gettext_noop("Markdown."))
    kind: Literal["discussion", "question"] = "discussion"
    tags: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)


class ReplyIn(Schema):
    model_config = ConfigDict(extra="forbid")

    member_id: int = Field(description=gettext_noop("The member who replies."))
    body: str = Field(description=gettext_noop("Markdown."))


def _member(request: HttpRequest, member_id: int | None, field: str) -> Member | None:
    if member_id is None:
        return None
    member = Member.objects.filter(
        workspace=request_workspace(request), pk=member_id, merged_into__isnull=True
    ).first()
    if member is None:
        raise invalid({field: gettext("No such member in this workspace.")})
    return member


def _thread_out(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.pk,
        "space": thread.space.slug,
        "kind": thread.kind,
        "title": thread.title,
        "tags": thread.tags,
        "skus": thread.skus,
        "author_id": thread.author_id,
        "reply_count": thread.reply_count,
        "solved": thread.accepted_post_id is not None,
        "pinned": thread.pinned,
        "closed": thread.closed,
        "created_at": thread.created_at,
        "last_posted_at": thread.last_posted_at,
    }


def _post_out(post: Post, thread: Thread) -> dict[str, Any]:
    return {
        "id": post.pk,
        "number": post.number,
        "author_id": post.author_id,
        "body": post.body,
        "html": post.html,
        "staff": post.staff,
        "accepted": post.pk == thread.accepted_post_id,
        "created_at": post.created_at,
        "edited_at": post.edited_at,
    }


def _community_error(error: community.CommunityError) -> ApiError:
    if isinstance(error, community.NotFound):
        return not_found()
    if isinstance(error, community.RateLimited):
        return ApiError(
            429,
            error.message,
            {"body": error.message},
            headers={"Retry-After": str(error.retry_after)},
        )
    return invalid({error.field or "body": error.message})


@router.get(
    "/community/spaces",
    response={200: list[SpaceOut], 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
    summary=gettext_noop("List spaces"),
    description=gettext_noop("The community's spaces the member (or a visitor) may read."),
    **scoped("community:read"),
)
def spaces_list(
    request: HttpRequest, as_member: int | None = Query(None, description=AS_MEMBER)
) -> list[dict[str, Any]]:
    viewer = _member(request, as_member, "as_member")
    return [
        {
            "id": space.pk,
            "slug": space.slug,
            "name": space.name,
            "description": space.description,
            "language": space.language,
            "visibility": space.visibility,
            "parent": space.parent.slug if space.parent else None,
        }
        for space in readable_spaces(request_workspace(request).pk, viewer)
    ]


@router.get(
    "/community/threads",
    response={200: ThreadPage, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
    summary=gettext_noop("List threads"),
    description=gettext_noop("Threads the member (or a visitor) may read, latest activity first."),
    **scoped("community:read"),
)
def threads_list(request: HttpRequest, filters: Query[ThreadFilters]) -> dict[str, Any]:
    viewer = _member(request, filters.as_member, "as_member")
    threads = readable_threads(request_workspace(request).pk, viewer).select_related("space")
    if filters.space:
        threads = threads.filter(space__slug=filters.space)
    if filters.kind:
        threads = threads.filter(kind=filters.kind)
    if filters.tag:
        threads = threads.filter(tags__icontains=f'"{filters.tag}"')
    rows, next_cursor = keyset_page(
        threads,
        ordering=THREAD_ORDER,
        cursor=filters.cursor,
        limit=filters.limit,
        value_of=lambda thread: thread.last_posted_at,
    )
    if filters.tag:
        rows = [thread for thread in rows if filters.tag in thread.tags]
    return {"items": [_thread_out(thread) for thread in rows], "next_cursor": next_cursor}


@router.get(
    "/community/threads/{thread_id}",
    response={200: ThreadDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary=gettext_noop("Get a thread"),
    description=gettext_noop("A thread with its visible posts (the first 500)."),
    **scoped("community:read"),
)
def threads_get(
    request: HttpRequest,
    thread_id: int,
    as_member: int | None = Query(None, description=AS_MEMBER),
) -> dict[str, Any]:
    viewer = _member(request, as_member, "as_member")
    thread = (
        readable_threads(request_workspace(request).pk, viewer)
        .select_related("space")
        .filter(pk=thread_id)
        .first()
    )
    if thread is None:
        raise not_found()
    posts = Post.objects.filter(thread=thread).order_by("number")
    if not member_is_staff(viewer):
        posts = posts.filter(hidden_at__isnull=True)
    body = _thread_out(thread)
    body["posts"] = [_post_out(post, thread) for post in posts[:POSTS_MAX]]
    return body


@router.post(
    "/community/threads",
    response={201: ThreadOut, **error_responses(*WRITE_ERRORS, 404, 429)},
    summary=gettext_noop("Start a thread"),
    description=gettext_noop(
        "A new thread written by a member, checked as on the pages (who may post where,"
        " limits, watched words). Accepts an Idempotency-Key header."
    ),
    **scoped("community:write"),
)
@idempotent
def threads_create(request: HttpRequest, payload: ThreadIn) -> Status[dict[str, Any]]:
    author = _member(request, payload.member_id, "member_id")
    assert author is not None
    space = Space.objects.filter(workspace=request_workspace(request), slug=payload.space).first()
    if space is None:
        raise invalid({"space": gettext("No such space.")})
    try:
        thread = community.thread_create(
            space=space,
            author=author,
            title=payload.title,
            body=payload.body,
            kind=payload.kind,
            tags=payload.tags,
            skus=payload.skus,
        )
    except community.CommunityError as error:
        raise _community_error(error) from None
    return Status(201, _thread_out(thread))


@router.post(
    "/community/threads/{thread_id}/replies",
    response={201: PostOut, **error_responses(*WRITE_ERRORS, 404, 429)},
    summary=gettext_noop("Reply to a thread"),
    description=gettext_noop("A member's reply. Accepts an Idempotency-Key header."),
    **scoped("community:write"),
)
@idempotent
def replies_create(
    request: HttpRequest, thread_id: int, payload: ReplyIn
) -> Status[dict[str, Any]]:
    author = _member(request, payload.member_id, "member_id")
    assert author is not None
    thread = (
        Thread.objects.filter(workspace=request_workspace(request), pk=thread_id)
        .select_related("space")
        .first()
    )
    if thread is None:
        raise not_found()
    try:
        post = community.reply_create(thread=thread, author=author, body=payload.body)
    except community.CommunityError as error:
        raise _community_error(error) from None
    return Status(201, _post_out(post, thread))
