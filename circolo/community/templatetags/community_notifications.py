"""The notification bell in the community pages' header: one count query per page."""

from __future__ import annotations

from typing import Any

from django import template

from ..notifications import unread_count

register = template.Library()


@register.inclusion_tag("community/_bell.html", takes_context=True)
def notification_bell(context: template.Context) -> dict[str, Any]:
    """The bell with the viewer's unread count (the page gives `community` and `viewer`)."""
    viewer = context.get("viewer")
    return {
        "community": context.get("community"),
        "unread": unread_count(viewer) if viewer is not None else 0,
    }
