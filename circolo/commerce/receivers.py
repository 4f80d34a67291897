"""Commerce reactions to other apps' events."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from circolo.commerce.services import orders_follow_identities
from circolo.people.signals import identities_moved


@receiver(identities_moved, dispatch_uid="commerce.orders_follow_identities")
def _orders_follow(sender: Any, *, workspace_id: int, member_ids: list[int], **_: Any) -> None:
    orders_follow_identities(workspace_id=workspace_id, member_ids=member_ids)
