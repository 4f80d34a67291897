"""Referral codes, clicks, referrals (with their fraud review) and ambassadors."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .ledger import Movement
from .rewards import Redemption


class ReferralCode(models.Model):
    """A member's referral code: it makes their link (/c/<slug>/rewards/invite/<code>/) and can
    be typed at checkout."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=40)
    # An ambassador's personal code (chosen, shareable) or the member's generated one.
    personal = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "code"], name="uniq_referral_code")
        ]
        indexes = [models.Index(fields=["member"], name="referral_code_member")]


class ReferralClick(models.Model):
    """Someone opened a referral link: the visitor (a cookie) and a hash of their address."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    code = models.ForeignKey(ReferralCode, on_delete=models.CASCADE, related_name="clicks")
    visitor = models.CharField(max_length=40)
    address_hash = models.CharField(max_length=64, blank=True)
    clicked_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "visitor", "clicked_at"], name="click_visitor")
        ]


class Referral(models.Model):
    """A friend who came through a member's link or code, from the claim to the payout.

    claimed: the friend has their first-order reward; ordered: their first order is in its
    return window; rewarded: the advocate was paid; review: a fraud check stopped it (staff
    decide); rejected, lapsed (no order within the window) and void (order cancelled or
    refunded) pay nothing.
    """

    class Status(models.TextChoices):
        CLAIMED = "claimed", _("Friend joined")
        ORDERED = "ordered", _("First order in its return window")
        REWARDED = "rewarded", _("Rewarded")
        REVIEW = "review", _("Waiting for review")
        REJECTED = "rejected", _("Rejected")
        LAPSED = "lapsed", _("No order in time")
        VOID = "void", _("Order cancelled or refunded")

    class Via(models.TextChoices):
        LINK = "link", _("Link")
        CODE = "code", _("Code")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    advocate = models.ForeignKey(Member, on_delete=models.RESTRICT, related_name="+")
    friend = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    code = models.ForeignKey(ReferralCode, on_delete=models.RESTRICT, related_name="referrals")
    via = models.CharField(max_length=4, choices=Via.choices)
    # The friend's email as given and normalised (case, dots and plus-tags where the
    # provider ignores them): the same person twice is one key.
    friend_email = models.CharField(max_length=320)
    friend_email_key = models.CharField(max_length=320)
    address_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CLAIMED)
    # Why a fraud check sent it to review: [{"check": "same_address", "detail": "..."}].
    flags = models.JSONField(default=list, blank=True)
    friend_redemption = models.ForeignKey(
        Redemption, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # commerce.Order's id of the friend's first order.
    order_id = models.BigIntegerField(null=True, blank=True)
    qualify_after = models.DateTimeField(null=True, blank=True)
    advocate_movement = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    claimed_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-claimed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "friend_email_key"], name="uniq_referral_friend"
            )
        ]
        indexes = [
            models.Index(fields=["advocate", "claimed_at"], name="referral_advocate"),
            models.Index(fields=["workspace", "status", "claimed_at"], name="referral_ws_status"),
            models.Index(fields=["workspace", "address_hash", "claimed_at"], name="referral_addr"),
        ]


class Ambassador(models.Model):
    """A member in the ambassador program: applied or invited, then approved by staff."""

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        INVITED = "invited", _("Invited")
        APPROVED = "approved", _("Ambassador")
        DECLINED = "declined", _("Declined")
        ENDED = "ended", _("Ended")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices)
    # What the member wrote when applying, or the team's invitation.
    message = models.TextField(blank=True)
    code = models.ForeignKey(
        ReferralCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    perks = models.TextField(_("perks"), blank=True)
    # 100 = points as earned; ambassadors may earn more.
    multiplier_percent = models.PositiveSmallIntegerField(default=100)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["workspace", "status"], name="ambassador_ws_status")]
