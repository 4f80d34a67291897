"""Members (one person in one workspace), their identities, and merges between members."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.normalise import name_key


class Member(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    # The display name folded for matching (case, accents, punctuation): kept by save(); code
    # that bulk-creates members sets it with people.normalise.name_key().
    name_key = models.CharField(max_length=200, blank=True, editable=False)
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
    # Set when the member's personal data was erased (people.privacy.member_erase): the row
    # stays, anonymous, so that activity counts, rollups and order totals keep adding up.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "display_name"]),
            models.Index(fields=["workspace", "last_seen"]),
            models.Index(fields=["workspace", "name_key"], name="member_ws_name_key"),
        ]

    def __str__(self) -> str:
        return self.display_name or f"#{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_key = name_key(self.display_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "display_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_key"}
        super().save(*args, **kwargs)


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


class MergeReason(models.TextChoices):
    """Why two members look like one person (MergeSuggestion.reasons[i]["code"])."""

    SAME_VERIFIED_IDENTITY = (
        "same_verified_identity",
        _("Verified identities of both arrived together"),
    )
    SAME_EMAIL = "same_email", _("Same email address")
    SAME_PHONE = "same_phone", _("Same phone number")
    SAME_IDENTITY = "same_identity", _("Same account on the same channel")
    SAME_NAME_CITY = "same_name_city", _("Same name and city")
    SAME_NAME_EMAIL_LOCAL = "same_name_email_local", _("Same name and email user on another domain")


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

    def reason_labels(self) -> list[tuple[str, str]]:
        """(translated label, detail) per reason, for pages; unknown codes show as themselves."""
        labels = dict(MergeReason.choices)
        return [
            (
                str(labels.get(reason.get("code", ""), reason.get("code", ""))),
                reason.get("detail", ""),
            )
            for reason in self.reasons
        ]


class MergeRecord(models.Model):
    """One merge: what moved from `merged` to `survivor`, so that it can be undone exactly."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    survivor = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    identity_ids = models.JSONField(default=list)
    activity_ids = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    # Survivor fields the merge changed: {field: [before, after]} (JSON values); undo puts
    # `before` back where the field still holds `after`.
    survivor_changes = models.JSONField(default=dict)
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


class DataRequest(models.Model):
    """One privacy request (a data export or an erasure) and how it ended; rows are only added.

    `export` holds the member export a done export request produced, until the member is
    erased. `summary` holds counts and flags only, never personal data.
    """

    class Kind(models.TextChoices):
        EXPORT = "export", _("Data export")
        ERASE = "erase", _("Erasure")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    # Who asked: staff on the privacy page, or a store platform through its privacy webhooks
    # (the platform's name: "shopify", "woocommerce", ...).
    SOURCE_STAFF = "staff"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="data_requests"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=20)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    requested_at = models.DateTimeField(_("requested at"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    export = models.JSONField(null=True, blank=True)
    # The requester's own reference (a ticket number, the shop's id for a shop erasure).
    external_reference = models.CharField(_("reference"), max_length=200, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["workspace", "requested_at"], name="data_request_ws_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def source_label(self) -> str:
        if self.source == self.SOURCE_STAFF:
            return str(_("Staff"))
        return self.source.capitalize()
