"""Notifications: what a member is told, in the app and by email."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .forum import Post, Thread


class Notification(models.Model):
    class Kind(models.TextChoices):
        REPLY = "reply", _("Replies to my threads")
        MENTION = "mention", _("Mentions of me")
        QUOTE = "quote", _("Quotes of my posts")
        ACCEPTED = "accepted", _("My answer was accepted")
        REACTION = "reaction", _("Reactions to my posts")
        FOLLOWED_THREAD = "followed_thread", _("New posts in threads I follow")
        FOLLOWED_SPACE = "followed_space", _("New threads in spaces I follow")
        FOLLOWED_MEMBER = "followed_member", _("New posts by members I follow")
        ASK_OWNERS = "ask_owners", _("Questions about products I own")
        EVENT = "event", _("Events I am going to")
        MODERATION = "moderation", _("Moderators' decisions about my posts")
        TRUST = "trust", _("Changes to my trust level")
        REWARDS = "rewards", _("My points, rewards and badges")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What the notification is about; a notification about something the recipient can no
    # longer read is never shown or mailed (read rights are checked when it is shown).
    actor = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    thread = models.ForeignKey(Thread, null=True, blank=True, on_delete=models.CASCADE)
    post = models.ForeignKey(Post, null=True, blank=True, on_delete=models.CASCADE)
    event = models.ForeignKey(
        "community.Event", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    # Makes telling twice a no-op: (recipient, key) is unique, e.g. "mention:<post id>".
    key = models.CharField(max_length=80)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Email(models.TextChoices):
        PENDING = "pending", _("Waiting for the next mail")
        SENT = "sent", _("Mailed")
        SKIPPED = "skipped", _("Not mailed")

    email = models.CharField(max_length=10, choices=Email.choices, default=Email.PENDING)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="uniq_notification_key"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notif_recipient_recent"),
            models.Index(fields=["workspace", "email"], name="notif_ws_email"),
        ]
