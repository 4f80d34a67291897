"""Members (one person in one workspace), their identities, and merges between members."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace


class Member(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    languages = models.JSONField(_("languages"), default=list, blank=True)
    city = models.CharField(_("city"), max_length=120, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    consent_email = models.BooleanField(_("email marketing consent"), default=False)
    consent_profiling = models.BooleanField(_("personalisation consent"), default=False)
    first_seen = models.DateTimeField(_("first seen"), null=True, blank=True)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)
    # Set when this member was merged into another; merged members are hidden from lists.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "display_name"]),
            models.Index(fields=["workspace", "last_seen"]),
        ]

    def __str__(self) -> str:
        return self.display_name or f"#{self.pk}"


class MemberTag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="uniq_member_tag")]
        indexes = [models.Index(fields=["workspace", "tag"])]


class IdentityKind(models.TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    CUSTOMER_ID = "customer_id", _("Store customer id")
    SOCIAL = "social", _("Social account")
    HANDLE = "handle", _("Handle")
    EXTERNAL_ID = "external_id", _("External id")


class Identity(models.Model):
    """One way we know a member: (channel, kind, normalised value)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(_("channel"), max_length=40)
    kind = models.CharField(_("kind"), max_length=16, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=320)
    verified = models.BooleanField(_("verified"), default=False)
    source = models.CharField(_("source"), max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "kind", "value"], name="uniq_identity"
            )
        ]
        indexes = [models.Index(fields=["workspace", "kind", "value"])]

    def __str__(self) -> str:
        return f"{self.channel}:{self.kind}:{self.value}"


class MergeSuggestion(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # Stored with member_a.pk < member_b.pk so one pair has one suggestion.
    member_a = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    member_b = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    reasons = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member_a", "member_b"], name="uniq_merge_pair"),
        ]
        indexes = [models.Index(fields=["workspace", "status"])]


class MergeRecord(models.Model):
    """One merge: what moved from `merged` to `survivor`, so that it can be undone exactly."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    survivor = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    identity_ids = models.JSONField(default=list)
    activity_ids = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    suggestion = models.ForeignKey(
        MergeSuggestion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
