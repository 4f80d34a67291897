"""Atom feeds of the community's threads, for feed readers and aggregators.

A feed reader does not sign in, and a feed may be cached and shared by proxies, so feeds
always answer as a visitor would see the community: public spaces only, whoever asks.
"""

from __future__ import annotations

from typing import Any

from django.contrib.syndication.views import Feed
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape
from django.utils.translation import gettext as _

from circolo.core.models import Workspace

from .markdown import excerpt
from .models import Post, Space, Thread
from .selectors import readable_threads, space_readable

FEED_ITEMS = 30


class _Scope:
    def __init__(self, workspace: Workspace, space: Space | None) -> None:
        self.workspace = workspace
        self.space = space


class ThreadsFeed(Feed):
    """The latest threads of the community, or of one space."""

    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, slug: str, space_slug: str = "") -> _Scope:
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise Http404
        space = None
        if space_slug:
            space = Space.objects.filter(workspace=workspace, slug=space_slug).first()
            if space is None or not space_readable(space, None):
                raise Http404
        return _Scope(workspace, space)

    def title(self, obj: _Scope) -> str:
        if obj.space is not None:
            return f"{obj.space.name} · {obj.workspace.name}"
        return _("%(name)s community") % {"name": obj.workspace.name}

    def link(self, obj: _Scope) -> str:
        if obj.space is not None:
            return reverse("community:space", args=[obj.workspace.slug, obj.space.slug])
        return reverse("community:home", args=[obj.workspace.slug])

    def subtitle(self, obj: _Scope) -> str:
        return obj.space.description if obj.space is not None else ""

    def items(self, obj: _Scope) -> list[Thread]:
        threads = readable_threads(obj.workspace.pk, None)
        if obj.space is not None:
            threads = threads.filter(space=obj.space)
        rows = list(threads.select_related("author", "space").order_by("-created_at")[:FEED_ITEMS])
        openings = {
            post.thread_id: post
            for post in Post.objects.filter(thread__in=rows, number=1, hidden_at__isnull=True).only(
                "thread_id", "body"
            )
        }
        for thread in rows:
            opening = openings.get(thread.pk)
            thread.feed_summary = excerpt(opening.body, 400) if opening else ""  # type: ignore[attr-defined]
            thread.feed_link = reverse("community:thread", args=[obj.workspace.slug, thread.pk])  # type: ignore[attr-defined]
        return rows

    def item_title(self, item: Thread) -> str:
        return item.title

    def item_description(self, item: Thread) -> str:
        # Atom's summary is HTML: the plain-text excerpt is escaped so that text which looks
        # like markup stays text in the reader.
        return escape(str(getattr(item, "feed_summary", "")))

    def item_link(self, item: Thread) -> str:
        return str(getattr(item, "feed_link", ""))

    def item_pubdate(self, item: Thread) -> Any:
        return item.created_at

    def item_updateddate(self, item: Thread) -> Any:
        return item.last_posted_at

    def item_author_name(self, item: Thread) -> str:
        return item.author.display_name or _("A member")

    def item_categories(self, item: Thread) -> list[str]:
        return list(item.tags)
