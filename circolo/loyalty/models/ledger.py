"""The points ledger: accounts and double-entry movements, append-only.

A movement moves points between accounts; its entries sum to zero. Rows are written once and
never changed or deleted; a correction is a new movement. Each account keeps its balance as a
running total updated in the movement's transaction, and `ledger.ledger_verify` checks it
against the entries at any time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member


class Account(models.Model):
    class Kind(models.TextChoices):
        # A member's spendable points (may go below zero after a clawback).
        MEMBER = "member", _("Points")
        # A member's points waiting for the return window of their order.
        PENDING = "pending", _("Pending points")
        # The program's side of every earning: goes negative by what was ever issued.
        ISSUANCE = "issuance", _("Issued")
        REDEMPTION = "redemption", _("Redeemed")
        EXPIRY = "expiry", _("Expired")

    MEMBER_KINDS = (Kind.MEMBER, Kind.PENDING)

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind"],
                condition=models.Q(member__isnull=True),
                name="uniq_program_account",
            ),
            models.UniqueConstraint(
                fields=["member", "kind"],
                condition=models.Q(member__isnull=False),
                name="uniq_member_account",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "kind", "balance"])]


class Reason(models.TextChoices):
    ORDER = "order", _("Order")
    ORDER_APPROVED = "order_approved", _("Return window passed")
    ORDER_VOIDED = "order_voided", _("Order cancelled")
    REFUND = "refund", _("Refund")
    ACTION = "action", _("Community")
    ACTION_REMOVED = "action_removed", _("Post removed")
    ACTION_RESTORED = "action_restored", _("Post restored")
    BONUS = "bonus", _("Bonus")
    REFERRAL = "referral", _("Referral")
    REDEMPTION = "redemption", _("Reward")
    REDEMPTION_REFUNDED = "redemption_refunded", _("Reward refunded")
    EXPIRY = "expiry", _("Expiry")
    ADJUSTMENT = "adjustment", _("Adjustment by the team")
    DISPUTE = "dispute", _("Dispute resolved")
    MERGE = "merge", _("Accounts merged")


class Movement(models.Model):
    """One move of points between accounts (its entries sum to zero), once per key."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # The member the movement is about (every movement touches at most one member).
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    # The earn rule that paid (order, post, accepted_answer, ...): daily caps count by it.
    rule = models.CharField(max_length=30, blank=True)
    # Makes posting twice a no-op: "order:<id>", "activity:<id>", "redeem:<id>", ...
    key = models.CharField(max_length=120)
    # What it came from, by id (not a foreign key: the ledger outlives its sources).
    activity_id = models.BigIntegerField(null=True, blank=True)
    order_id = models.BigIntegerField(null=True, blank=True)
    # Points that left or reached the member (positive), for lists and explanations.
    points = models.BigIntegerField()
    # Values for the explanation in the member's language (order number, rule, reward...).
    details = models.JSONField(default=dict, blank=True)
    # The movement this one corrects or takes back, if any.
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="uniq_movement_key")
        ]
        indexes = [
            models.Index(fields=["member", "id"], name="movement_member"),
            models.Index(fields=["member", "rule", "occurred_at"], name="movement_member_rule"),
            models.Index(fields=["workspace", "reason", "created_at"], name="movement_ws_reason"),
            models.Index(
                fields=["workspace", "order_id"],
                name="movement_order",
                condition=models.Q(order_id__isnull=False),
            ),
        ]


class Entry(models.Model):
    """One leg of a movement: `amount` points into (positive) or out of an account."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    movement = models.ForeignKey(Movement, on_delete=models.RESTRICT, related_name="entries")
    account = models.ForeignKey(
        Account, on_delete=models.RESTRICT, related_name="entries", db_index=False
    )
    amount = models.BigIntegerField()

    class Meta:
        verbose_name_plural = "entries"
        indexes = [models.Index(fields=["account", "id"], name="entry_account")]
