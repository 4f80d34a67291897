"""The community's public pages, on the brand's own site: /c/<workspace>/...

Visitors read public spaces; signed-in members also members-only spaces and the segments
they belong to. Anything a viewer may not read is a 404, never a 403, so its existence does
not leak. Writing needs a sign-in; the first write joins the member to the community.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from circolo.core.models import Workspace
from circolo.loyalty.badges import badges_for_members
from circolo.people.models import Member

from .drafts import draft_discard, draft_for, draft_key
from .events import events_upcoming
from .follows import bookmarked_post_ids, is_following
from .forms import PollForm, ReplyForm, ThreadForm
from .models import CommunityProfile, Flag, Post, Reaction, Space, Thread
from .notifications import quote_markdown
from .pagecache import page_cache_seconds, thread_posts_key
from .polls import poll_create, poll_for_thread
from .reading import read_time_record, thread_view_record
from .safety import sanction_active
from .selectors import (
    member_is_staff,
    member_moderates,
    readable_spaces,
    space_readable,
    verified_owners,
)
from .services import (
    CommunityError,
    RateLimited,
    answer_accept,
    member_for_user,
    post_edit,
    post_flag,
    reaction_add,
    reaction_remove,
    reply_create,
    thread_create,
)
from .uploads import attach_image

THREADS_PER_PAGE = 30
POSTS_PER_PAGE = 200


def _workspace(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise Http404
    return workspace


def _viewer(request: HttpRequest, workspace: Workspace) -> Member | None:
    """The signed-in visitor's member; signing in and opening the community joins it. A
    sanctioned member is shown why on the page; a suspended one reads as a visitor."""
    if not request.user.is_authenticated:
        return None
    member = member_for_user(workspace=workspace, user=request.user)
    sanction = sanction_active(member)
    if sanction is not None:
        request.community_sanction = sanction  # type: ignore[attr-defined]
        if sanction.kind == "suspend":
            return None
    return member


def _space(workspace: Workspace, space_slug: str, viewer: Member | None) -> Space:
    space = Space.objects.filter(workspace=workspace, slug=space_slug).first()
    if space is None or not space_readable(space, viewer):
        raise Http404
    return space


def _thread(workspace: Workspace, thread_id: int, viewer: Member | None) -> Thread:
    thread = (
        Thread.objects.filter(workspace=workspace, pk=thread_id)
        .select_related("space", "space__parent", "author")
        .first()
    )
    if thread is None or not space_readable(thread.space, viewer):
        raise Http404
    if thread.hidden_at is not None and not member_is_staff(viewer):
        raise Http404
    return thread


def community_home(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    spaces = readable_spaces(workspace.pk, viewer)
    recent = (
        Thread.objects.filter(space__in=spaces, hidden_at__isnull=True)
        .select_related("space", "author")
        .order_by("-last_posted_at")[:20]
    )
    announcements = list(
        Thread.objects.filter(space__in=spaces, hidden_at__isnull=True, announcement=True)
        .select_related("space", "author")
        .order_by("-created_at")[:5]
    )
    return render(
        request,
        "community/home.html",
        {
            "community": workspace,
            "spaces": spaces,
            "events": events_upcoming(spaces=spaces),
            "threads": recent,
            "announcements": announcements,
            "viewer": viewer,
        },
    )


def space_detail(request: HttpRequest, slug: str, space_slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    space = _space(workspace, space_slug, viewer)
    threads = Thread.objects.filter(space=space).select_related("author")
    if not member_is_staff(viewer):
        threads = threads.filter(hidden_at__isnull=True)
    unanswered = request.GET.get("show") == "unanswered"
    if unanswered:
        threads = threads.filter(kind=Thread.Kind.QUESTION, accepted_post__isnull=True)
    page = Paginator(threads.order_by("-pinned", "-last_posted_at"), THREADS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "community/space.html",
        {
            "community": workspace,
            "space": space,
            "page": page,
            "unanswered": unanswered,
            "viewer": viewer,
            "following": is_following(viewer, space=space),
        },
    )


def thread_new(request: HttpRequest, slug: str, space_slug: str) -> HttpResponse:
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    viewer = member_for_user(workspace=workspace, user=request.user)
    space = _space(workspace, space_slug, viewer)
    draft = draft_for(member=viewer, key=draft_key(space))
    initial = {"title": draft.title, "body": draft.body} if draft else {}
    form = ThreadForm(request.POST or None, initial=initial)
    poll_form = PollForm(request.POST or None)
    if not member_is_staff(viewer):
        del form.fields["content_kind"]
    status = 200
    if request.method == "POST":
        if form.is_valid() and poll_form.is_valid():
            try:
                poll_args = poll_form.checked(workspace.time_zone)
                thread = thread_create(
                    space=space,
                    author=viewer,
                    kind=form.cleaned_data["kind"],
                    title=form.cleaned_data["title"],
                    body=attach_image(request, viewer, form.cleaned_data["body"]),
                    tags=form.tag_list(),
                    skus=form.sku_list(),
                    content_kind=form.cleaned_data.get("content_kind", ""),
                )
                if poll_args is not None:
                    poll_create(thread=thread, author=viewer, **poll_args)
            except RateLimited as error:
                form.add_error(None, error.message)
                response = render(
                    request,
                    "community/thread_new.html",
                    {
                        "community": workspace,
                        "space": space,
                        "form": form,
                        "poll_form": poll_form,
                        "viewer": viewer,
                    },
                    status=429,
                )
                response["Retry-After"] = str(error.retry_after)
                return response
            except CommunityError as error:
                if error.field in poll_form.fields:
                    poll_form.add_error(error.field, error.message)
                else:
                    form.add_error(
                        error.field if error.field in form.fields else None, error.message
                    )
            else:
                draft_discard(member=viewer, key=draft_key(space))
                return redirect("community:thread", slug=slug, thread_id=thread.pk)
        status = 400
    return render(
        request,
        "community/thread_new.html",
        {
            "community": workspace,
            "space": space,
            "form": form,
            "poll_form": poll_form,
            "viewer": viewer,
        },
        status=status,
    )


def _thread_context(
    request: HttpRequest, workspace: Workspace, thread: Thread, viewer: Member | None
) -> dict[str, Any]:
    """Everything the thread page shows, in a fixed number of queries whatever the replies."""
    staff_viewer = member_is_staff(viewer)
    posts_query = (
        Post.objects.filter(thread=thread)
        .select_related("author", "author__community")
        .order_by("number")
    )
    if not staff_viewer:
        posts_query = posts_query.filter(hidden_at__isnull=True)
    page = Paginator(posts_query, POSTS_PER_PAGE).get_page(request.GET.get("page"))
    posts = list(page.object_list)
    ids = [post.pk for post in posts]
    counts: dict[int, dict[str, int]] = {}
    for post_id, emoji, n in (
        Reaction.objects.filter(post_id__in=ids)
        .values_list("post_id", "emoji")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts.setdefault(post_id, {})[emoji] = n
    mine: set[tuple[int, str]] = set()
    if viewer is not None:
        mine = set(
            Reaction.objects.filter(post_id__in=ids, member=viewer).values_list("post_id", "emoji")
        )
    owners = verified_owners(thread, {post.author_id for post in posts})
    # Every author's badges in one query (visitors' cached copies may be 30 s old).
    badges = badges_for_members(
        workspace_id=workspace.pk,
        member_ids={post.author_id for post in posts},
        language=get_language() or "en",
    )
    draft = draft_for(member=viewer, key=draft_key(thread))
    space_moderator = member_moderates(viewer, thread.space, staff=staff_viewer)
    can_accept = viewer is not None and (viewer.pk == thread.author_id or space_moderator)
    # Addresses made once and filled per post: a page of 200 posts would otherwise resolve
    # hundreds of URLs.
    profile_url = reverse("community:profile", args=[workspace.slug, "HANDLE"])
    react_url = reverse("community:react", args=[workspace.slug, 0])
    rows = []
    for post in posts:
        reactions = [
            {
                "emoji": value,
                "label": label,
                "count": counts.get(post.pk, {}).get(value, 0),
                "mine": (post.pk, value) in mine,
            }
            for value, label in Reaction.Emoji.choices
        ]
        profile = _profile_of(post)
        rows.append(
            {
                "post": post,
                "owner": post.author_id in owners,
                "badges": badges.get(post.author_id, ()),
                "accepted": post.pk == thread.accepted_post_id,
                # A visitor sees only the reactions someone gave; a member can give any.
                "reactions": reactions if viewer else [r for r in reactions if r["count"]],
                "profile_url": profile_url.replace("HANDLE", quote(profile.handle, safe=""))
                if profile
                else "",
                "react_url": react_url.replace("/p/0/", f"/p/{post.pk}/"),
            }
        )
    return {
        "community": workspace,
        "thread": thread,
        "space": thread.space,
        "rows": rows,
        "page": page,
        "viewer": viewer,
        "can_accept": can_accept and thread.kind == Thread.Kind.QUESTION,
        "staff_viewer": staff_viewer,
        "poll": poll_for_thread(thread=thread, viewer=viewer, staff=staff_viewer),
        "can_manage": space_moderator,
        "flag_reasons": Flag.Reason.choices,
        "reply_form": ReplyForm(initial=_reply_initial(request, workspace, thread, posts, draft)),
        "draft_key": draft_key(thread),
        "following": is_following(viewer, thread=thread),
        "bookmarked": bookmarked_post_ids(viewer, ids),
    }


def _profile_of(post: Post) -> CommunityProfile | None:
    """The author's profile, loaded with the post (no query); None if they have none."""
    try:
        return post.author.community
    except ObjectDoesNotExist:
        return None


def _reply_initial(
    request: HttpRequest, workspace: Workspace, thread: Thread, posts: list[Post], draft: Any
) -> dict[str, str] | None:
    """The reply box's text: the quote the member asked for (?quote=<post number>) after
    their draft, if any."""
    text = draft.body if draft else ""
    number = request.GET.get("quote", "")
    if number.isdigit():
        quoted = next((post for post in posts if post.number == int(number)), None)
        if quoted is not None and quoted.hidden_at is None:
            url = reverse("community:thread", args=[workspace.slug, thread.pk])
            block = quote_markdown(post=quoted, url=f"{url}#post-{quoted.number}")
            text = f"{text.rstrip()}\n\n{block}" if text.strip() else block
    return {"body": text} if text else None


def thread_detail(request: HttpRequest, slug: str, thread_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    thread = _thread(workspace, thread_id, viewer)
    if viewer is None and not request.user.is_authenticated and page_cache_seconds() > 0:
        return _thread_page_anonymous(request, workspace, thread)
    context = _thread_context(request, workspace, thread, viewer)
    if viewer is not None:
        numbers = [row["post"].number for row in context["rows"]]
        thread_view_record(member=viewer, thread=thread, numbers=numbers)
    return render(request, "community/thread.html", context)


def _thread_page_anonymous(
    request: HttpRequest, workspace: Workspace, thread: Thread
) -> HttpResponse:
    """A visitor's thread page: the posts from the shared cache (pagecache), the page
    around them rendered as usual."""
    key = thread_posts_key(thread, page=request.GET.get("page", "1"), language=get_language() or "")
    posts_html = cache.get(key)
    if posts_html is None:
        context = _thread_context(request, workspace, thread, None)
        posts_html = render_to_string("community/_posts.html", context, request)
        cache.set(key, posts_html, page_cache_seconds())
    else:
        context = {
            "community": workspace,
            "thread": thread,
            "space": thread.space,
            "poll": poll_for_thread(thread=thread, viewer=None, staff=False),
            "viewer": None,
        }
    # Our own template's output, cached as text: marked safe again, never user input.
    context["posts_html"] = mark_safe(posts_html)  # noqa: S308
    return render(request, "community/thread.html", context)


@require_POST
def thread_read(request: HttpRequest, slug: str, thread_id: int) -> HttpResponse:
    """The thread page's ping while it is visible: add `seconds` of reading time (capped;
    see community.reading). 204; nothing is kept for a visitor."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    thread = _thread(workspace, thread_id, viewer)
    if viewer is None:
        return HttpResponse(status=204)
    try:
        seconds = int(request.POST.get("seconds", ""))
        read_time_record(member=viewer, thread=thread, seconds=seconds)
    except CommunityError as error:
        return HttpResponse(f"{error.field}: {error.message}", status=400)
    except ValueError:
        return HttpResponse(_("seconds: give a whole number of seconds."), status=400)
    return HttpResponse(status=204)


@require_POST
def reply_post(request: HttpRequest, slug: str, thread_id: int) -> HttpResponse:
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("community:thread", args=[slug, thread_id]))
    viewer = member_for_user(workspace=workspace, user=request.user)
    thread = _thread(workspace, thread_id, viewer)
    form = ReplyForm(request.POST)
    if form.is_valid():
        retry_after = None
        try:
            body = attach_image(request, viewer, form.cleaned_data["body"])
            post = reply_create(thread=thread, author=viewer, body=body)
        except RateLimited as error:
            form.add_error("body", error.message)
            retry_after = error.retry_after
        except CommunityError as error:
            form.add_error(error.field if error.field == "image" else "body", error.message)
        else:
            draft_discard(member=viewer, key=draft_key(thread))
            url = reverse("community:thread", args=[slug, thread.pk])
            return redirect(f"{url}#post-{post.number}")
    context = _thread_context(request, workspace, thread, viewer)
    context["reply_form"] = form
    if form.is_bound and retry_after is not None:
        response = render(request, "community/thread.html", context, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    return render(request, "community/thread.html", context, status=400)


def _post_action(
    request: HttpRequest, slug: str, post_id: int, act: Callable[[Post, Thread, Member], None]
) -> HttpResponse:
    """A signed-in member's action on a post they can see; back to the post afterwards, or
    400 with the reason the action was refused."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        raise Http404
    post = Post.objects.filter(workspace=workspace, pk=post_id).first()
    if post is None:
        raise Http404
    thread = _thread(workspace, post.thread_id, viewer)
    if post.hidden_at is not None and not member_is_staff(viewer):
        raise Http404
    try:
        act(post, thread, viewer)
    except CommunityError as error:
        return HttpResponse(error.message, status=400)
    return redirect(f"{reverse('community:thread', args=[slug, thread.pk])}#post-{post.number}")


@require_POST
def post_react(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    emoji = request.POST.get("emoji", "")

    def toggle(post: Post, _thread: Thread, member: Member) -> None:
        if Reaction.objects.filter(post=post, member=member, emoji=emoji).exists():
            reaction_remove(post=post, member=member, emoji=emoji)
        else:
            reaction_add(post=post, member=member, emoji=emoji)

    return _post_action(request, slug, post_id, toggle)


@require_POST
def post_accept(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    def accept(post: Post, thread: Thread, member: Member) -> None:
        answer_accept(thread=thread, post=post, actor=member)

    return _post_action(request, slug, post_id, accept)


@require_POST
def post_flag_view(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    def flag(post: Post, _thread: Thread, member: Member) -> None:
        post_flag(
            post=post,
            member=member,
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
        )
        messages.success(request, _("Thank you: the moderators will look at this post."))

    return _post_action(request, slug, post_id, flag)


def post_edit_view(request: HttpRequest, slug: str, post_id: int) -> HttpResponse:
    """Edit a post's text (its author, staff or the space's moderators); the earlier text is
    kept in the post's history."""
    workspace = _workspace(slug)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    viewer = _viewer(request, workspace)
    post = Post.objects.filter(workspace=workspace, pk=post_id).select_related("thread").first()
    if post is None or viewer is None:
        raise Http404
    thread = _thread(workspace, post.thread_id, viewer)
    if post.hidden_at is not None and not member_is_staff(viewer):
        raise Http404
    form = ReplyForm(request.POST or None, initial={"body": post.body})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                body = attach_image(request, viewer, form.cleaned_data["body"])
                post_edit(post=post, editor=viewer, body=body)
            except CommunityError as error:
                form.add_error(error.field if error.field == "image" else "body", error.message)
            else:
                url = reverse("community:thread", args=[slug, thread.pk])
                return redirect(f"{url}#post-{post.number}")
        status = 400
    return render(
        request,
        "community/post_edit.html",
        {"community": workspace, "thread": thread, "post": post, "form": form},
        status=status,
    )
