"""Polls inside threads: single or multiple choice, an optional close date, and when the
results show."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .forum import Thread


class Poll(models.Model):
    class Results(models.TextChoices):
        ALWAYS = "always", _("Always")
        VOTED = "voted", _("After voting")
        CLOSED = "closed", _("When the poll closes")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    thread = models.OneToOneField(Thread, on_delete=models.CASCADE, related_name="poll")
    question = models.CharField(_("question"), max_length=200)
    multiple = models.BooleanField(_("several answers allowed"), default=False)
    # With multiple choice: the most options one member may pick (None: any number).
    max_choices = models.PositiveSmallIntegerField(null=True, blank=True)
    closes_at = models.DateTimeField(_("closes"), null=True, blank=True)
    results = models.CharField(max_length=10, choices=Results.choices, default=Results.VOTED)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.question


class PollOption(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=120)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "position"], name="uniq_poll_option_pos"),
        ]


class PollVote(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    option = models.ForeignKey(PollOption, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["option", "member"], name="uniq_poll_vote"),
        ]
        indexes = [models.Index(fields=["poll", "member"], name="pollvote_poll_member")]
