"""The anonymous page cache of thread pages.

Visitors who are not signed in all see the same posts, so the expensive part of a thread
page (its posts, reactions and badges: the queries and the rendering) is kept in the cache
for a short while and shared. The page around it (header, forms, the CSRF token) is still
rendered per request. The key holds the thread's last post time and a version bumped by
every change to its posts (edits, moderation, reactions), so a change shows at once where
the cache is shared (Redis); with a per-process cache the entry's lifetime bounds how long
another process can show the older posts.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from .models import Thread


def page_cache_seconds() -> int:
    return int(getattr(settings, "CIRCOLO_COMMUNITY_PAGE_CACHE_SECONDS", 30))


def _version_key(thread_id: int) -> str:
    return f"community:thread-version:{thread_id}"


def thread_changed(thread_id: int) -> None:
    """Something on the thread's page changed: cached copies of its posts are stale."""
    key = _version_key(thread_id)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 2, None)


def thread_posts_key(thread: Thread, *, page: str, language: str) -> str:
    version = cache.get(_version_key(thread.pk)) or 1
    return ":".join(
        (
            "community:thread-posts",
            str(thread.pk),
            str(int(thread.last_posted_at.timestamp() * 1_000_000)),
            str(thread.accepted_post_id or 0),
            str(version),
            page[:12],
            language,
        )
    )
