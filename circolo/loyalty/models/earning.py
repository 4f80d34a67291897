"""What orders earned (to approve, void and claw back exactly), expiry warnings, disputes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .ledger import Movement


class OrderEarning(models.Model):
    """The points a paid order earned, pending until `approve_after`. Its lines say how the
    points were split, so that a refund takes back exactly what its lines earned."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        VOID = "void", _("Void")

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.RESTRICT, related_name="+")
    # commerce.Order's id (no foreign key: the ledger outlives a deleted store).
    order_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # Net merchandise the points were computed on (minor units) and the points it earned.
    base_minor = models.BigIntegerField()
    points = models.BigIntegerField()
    # Points taken back by refunds so far (from pending before approval, after it from the
    # member's points).
    clawed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    approve_after = models.DateTimeField()
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "order_id"], name="uniq_order_earning")
        ]
        indexes = [
            models.Index(
                fields=["approve_after"],
                name="order_earning_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["member", "created_at"], name="order_earning_member"),
        ]


class LineEarning(models.Model):
    """One order line's share of its order's points."""

    id = models.BigAutoField(primary_key=True)
    earning = models.ForeignKey(OrderEarning, on_delete=models.CASCADE, related_name="lines")
    # commerce.OrderLine's id.
    line_id = models.BigIntegerField()
    base_minor = models.BigIntegerField()
    points = models.BigIntegerField()
    clawed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["earning", "line_id"], name="uniq_line_earning")
        ]


class ExpiryWarning(models.Model):
    """A warning sent before points expire: once per member, last-activity day and lead."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    expires_on = models.DateField()
    days_before = models.PositiveSmallIntegerField()
    points = models.BigIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "expires_on", "days_before"], name="uniq_expiry_warning"
            )
        ]


class Dispute(models.Model):
    """A member's objection to a movement; staff accept it (with a correcting movement) or
    reject it, with a note the member reads."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.RESTRICT, related_name="+")
    movement = models.ForeignKey(Movement, on_delete=models.RESTRICT, related_name="+")
    message = models.TextField(_("what is wrong"))
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(_("answer"), blank=True)
    correction = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["movement"],
                condition=models.Q(status="open"),
                name="uniq_open_dispute",
            )
        ]
        indexes = [models.Index(fields=["workspace", "status", "created_at"], name="dispute_ws")]
