"""Loyalty reactions to other apps' events."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from circolo.community.signals import post_removed, post_restored
from circolo.loyalty.actions import post_points_remove, post_points_restore


@receiver(post_removed, dispatch_uid="loyalty.post_points_remove")
def _post_removed(sender: Any, *, workspace_id: int, post_id: int, **extra: Any) -> None:
    post_points_remove(
        workspace_id=workspace_id, post_id=post_id, moderator_id=extra.get("moderator_user_id")
    )


@receiver(post_restored, dispatch_uid="loyalty.post_points_restore")
def _post_restored(sender: Any, *, workspace_id: int, post_id: int, **extra: Any) -> None:
    post_points_restore(
        workspace_id=workspace_id, post_id=post_id, moderator_id=extra.get("moderator_user_id")
    )
