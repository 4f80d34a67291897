"""Badges earned from the activity stream: answers accepted, reviews, events attended."""

from __future__ import annotations

from collections.abc import Sequence

from circolo.activity.handlers import HandledActivity, activity_handler, batch_columns
from circolo.loyalty.badges import BADGE_KINDS, badges_activity_check


@activity_handler(kinds=BADGE_KINDS)
def loyalty_badges(*, workspace_id: int, activities: Sequence[HandledActivity]) -> None:
    # Only who acted matters: their totals are counted in SQL, never row by row here.
    member_ids = batch_columns(activities)[0]
    badges_activity_check(workspace_id=workspace_id, member_ids=member_ids)
