"""Trust and safety: watched words and sanctions (silence, suspend)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member


class WatchedWord(models.Model):
    """A word or phrase the team watches for in new posts, and what happens on a match.
    `*` in a word matches any letters (spam* matches spammer)."""

    class Action(models.TextChoices):
        BLOCK = "block", _("Block: the post is refused")
        APPROVE = "approve", _("Require approval: hidden until a moderator approves")
        CENSOR = "censor", _("Censor: the word is replaced by ■■■")
        FLAG = "flag", _("Flag: published, and put in the moderation queue")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    word = models.CharField(_("word or phrase"), max_length=100)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "word"], name="uniq_watched_word"),
        ]
        ordering = ["action", "word"]

    def __str__(self) -> str:
        return self.word


class Sanction(models.Model):
    """A moderator's silence (may read, may not post) or suspension (may not sign in to the
    community) of a member, with the reason the member is shown, until `ends_at`."""

    class Kind(models.TextChoices):
        SILENCE = "silence", _("Silenced")
        SUSPEND = "suspend", _("Suspended")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.CharField(_("reason"), max_length=500)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "kind", "ends_at"], name="sanction_active")]
