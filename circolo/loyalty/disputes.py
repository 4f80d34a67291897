"""Disputes: a member objects to one of their movements, the team answers.

Accepting with points posts a correction of its own (the ledger is never edited): points
from the issuance account to the member, or back, keyed "dispute:<id>" so answering twice
cannot pay twice. The member is told either way; every answer is audited.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.community.notifications import notify
from circolo.core.audit import audit_record
from circolo.core.models import Workspace
from circolo.loyalty import ledger
from circolo.loyalty.models import Dispute, Movement, Reason
from circolo.loyalty.rules import MAX_POINTS
from circolo.people.models import Member

MESSAGE_MAX = 2000
RESOLUTION_MAX = 2000


class DisputeError(ValueError):
    """A dispute that cannot be opened or answered as asked; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def dispute_open(*, member: Member, movement: Movement | int, message: str) -> Dispute:
    """Open a dispute about one of the member's own movements (DisputeError: another
    member's or unknown movement "not found", an empty or too long message, or one already
    open about it)."""
    movement_id = movement.pk if isinstance(movement, Movement) else movement
    row = Movement.objects.filter(
        workspace_id=member.workspace_id, member=member, pk=movement_id
    ).first()
    if row is None:
        raise DisputeError("movement", _("There is no such movement in your history."))
    text = message.strip()
    if not text:
        raise DisputeError("message", _("Tell the team what is wrong."))
    if len(text) > MESSAGE_MAX:
        raise DisputeError(
            "message", _("Use at most %(limit)s characters.") % {"limit": MESSAGE_MAX}
        )
    if Dispute.objects.filter(movement=row, status=Dispute.Status.OPEN).exists():
        raise DisputeError("movement", _("A question about this movement is already open."))
    try:
        with transaction.atomic():
            return Dispute.objects.create(
                workspace_id=member.workspace_id,
                member=member,
                movement=row,
                message=text,
                created_at=timezone.now(),
            )
    except IntegrityError:
        # The same question sent twice at once: the unique open dispute stopped the second.
        raise DisputeError(
            "movement", _("A question about this movement is already open.")
        ) from None


def dispute_resolve(
    *, dispute: Dispute, actor: Any, accept: bool, resolution: str, points: int = 0
) -> Dispute:
    """Answer an open dispute: accept (with `points` != 0, a correction movement: positive
    gives the member points, negative takes them) or reject, with an answer the member
    reads. The member is notified; the answer is audited. DisputeError for an empty answer,
    points out of range or points on a rejection, or a dispute already answered."""
    text = resolution.strip()
    if not text:
        raise DisputeError("resolution", _("Write the answer the member will read."))
    if len(text) > RESOLUTION_MAX:
        raise DisputeError(
            "resolution", _("Use at most %(limit)s characters.") % {"limit": RESOLUTION_MAX}
        )
    if not -MAX_POINTS <= points <= MAX_POINTS:
        raise DisputeError(
            "points",
            _("Give from %(low)s to %(high)s points.") % {"low": -MAX_POINTS, "high": MAX_POINTS},
        )
    if points and not accept:
        raise DisputeError("points", _("Points are given only when you accept."))
    with transaction.atomic():
        row = Dispute.objects.select_for_update().filter(pk=dispute.pk).first()
        if row is None or row.status != Dispute.Status.OPEN:
            raise DisputeError("dispute", _("This question was answered already."))
        now = timezone.now()
        if accept and points:
            member = ledger.member_account(row.member_id)
            source, target = (ledger.ISSUANCE, member) if points > 0 else (member, ledger.ISSUANCE)
            key = f"dispute:{row.pk}"
            ledger.movements_post(
                workspace_id=row.workspace_id,
                items=[
                    ledger.transfer(
                        key=key,
                        reason=Reason.DISPUTE,
                        member_id=row.member_id,
                        source=source,
                        target=target,
                        points=abs(points),
                        reverses_id=row.movement_id,
                        actor_id=actor.pk if getattr(actor, "is_authenticated", False) else None,
                        details={"dispute": row.pk, "points": points},
                    )
                ],
                now=now,
            )
            row.correction = Movement.objects.get(workspace_id=row.workspace_id, key=key)
        row.status = Dispute.Status.ACCEPTED if accept else Dispute.Status.REJECTED
        row.resolution = text
        row.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
        row.resolved_at = now
        row.save()
        audit_record(
            workspace=Workspace.objects.get(pk=row.workspace_id),
            actor=actor,
            action="loyalty.dispute.accept" if accept else "loyalty.dispute.reject",
            target=row,
            data={"movement": row.movement_id, "points": points, "member": row.member_id},
        )
        # In the same transaction: the member is told exactly when the answer is kept.
        notify(
            recipient=row.member,
            kind="rewards",
            key=f"dispute:{row.pk}",
            data={"what": "dispute", "status": row.status},
            now=now,
        )
    return row


# --------------------------------------------------------------------------- reading


def member_disputes(*, member: Member) -> QuerySet[Dispute]:
    """The member's disputes, newest first, with their movements."""
    return Dispute.objects.filter(workspace_id=member.workspace_id, member=member).select_related(
        "movement", "correction"
    )


def disputes_open(*, workspace: Workspace) -> QuerySet[Dispute]:
    """The workspace's open disputes, oldest first (answered in turn)."""
    return (
        Dispute.objects.filter(workspace=workspace, status=Dispute.Status.OPEN)
        .select_related("member", "movement")
        .order_by("created_at", "pk")
    )


def disputes_answered(*, workspace: Workspace, limit: int = 20) -> list[Dispute]:
    """The latest answered disputes of the workspace."""
    return list(
        Dispute.objects.filter(workspace=workspace)
        .exclude(status=Dispute.Status.OPEN)
        .select_related("member", "movement", "correction", "resolved_by")
        .order_by("-resolved_at", "-pk")[:limit]
    )
