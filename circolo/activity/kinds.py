"""The registry of activity kinds and their default weights; workspaces override weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from circolo.activity.models import KindWeight
from circolo.core.models import Workspace

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Bounds of a workspace's own weight for a kind (kind_weight_set enforces them).
WEIGHT_MIN = 0
WEIGHT_MAX = 1000


@dataclass(frozen=True)
class ActivityKind:
    key: str
    label: StrOrPromise
    default_weight: int


KINDS: dict[str, ActivityKind] = {
    kind.key: kind
    for kind in (
        ActivityKind("post", _("Post"), 5),
        ActivityKind("reply", _("Reply"), 3),
        ActivityKind("reaction_given", _("Reaction given"), 1),
        ActivityKind("reaction_received", _("Reaction received"), 1),
        ActivityKind("accepted_answer", _("Accepted answer"), 10),
        ActivityKind("review", _("Review"), 8),
        ActivityKind("order", _("Order"), 10),
        ActivityKind("order_paid", _("Order paid"), 0),
        ActivityKind("order_fulfilled", _("Order fulfilled"), 0),
        ActivityKind("order_cancelled", _("Order cancelled"), 0),
        ActivityKind("refund", _("Refund"), 0),
        ActivityKind("referral", _("Referral"), 10),
        ActivityKind("event_rsvp", _("Event RSVP"), 2),
        ActivityKind("event_attendance", _("Event attendance"), 6),
        ActivityKind("idea", _("Idea"), 5),
        ActivityKind("idea_milestone", _("Idea reached a milestone"), 10),
        ActivityKind("vote", _("Vote"), 1),
        ActivityKind("poll_vote", _("Poll vote"), 1),
        ActivityKind("support_message", _("Support message"), 2),
        ActivityKind("mention", _("Mention"), 1),
        ActivityKind("signup", _("Sign-up"), 1),
        ActivityKind("social_follow", _("Social follow"), 1),
        ActivityKind("flag", _("Flag"), 0),
    )
}


def kind_label(kind: str) -> str:
    """The translated label of a kind; an unknown key (e.g. a retired kind) shows as itself."""
    registered = KINDS.get(kind)
    return str(registered.label) if registered is not None else kind


def weights_for(*, workspace: Workspace) -> dict[str, int]:
    """Weight per kind for the workspace: registry defaults overlaid by its KindWeight rows."""
    weights = {key: kind.default_weight for key, kind in KINDS.items()}
    for kind, weight in KindWeight.objects.filter(workspace=workspace).values_list(
        "kind", "weight"
    ):
        if kind in weights:
            weights[kind] = weight
    return weights
