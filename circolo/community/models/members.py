"""What the community keeps about each member: profile and trust level, reading, follows,
bookmarks and drafts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .forum import Post, Space, Thread


class CommunityProfile(models.Model):
    """A member's public face in the community and their standing (trust level).

    Made when the member first joins or writes. `handle` is what others type after "@".
    """

    class TrustLevel(models.IntegerChoices):
        NEW = 0, _("New")
        BASIC = 1, _("Basic")
        MEMBER = 2, _("Member")
        REGULAR = 3, _("Regular")
        LEADER = 4, _("Leader")

    class Digest(models.TextChoices):
        OFF = "off", _("No digest")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="community")
    handle = models.CharField(_("handle"), max_length=40)
    bio = models.TextField(_("about me"), max_length=1000, blank=True)
    # Off by default: what a member bought is theirs to show.
    show_products = models.BooleanField(_("show the products I own"), default=False)
    trust_level = models.IntegerField(choices=TrustLevel.choices, default=TrustLevel.NEW)
    # Set by staff: the level stays where they put it (leaders are only ever appointed).
    trust_locked = models.BooleanField(default=False)
    trust_changed_at = models.DateTimeField(null=True, blank=True)
    # Reading, kept as the member reads (community.trust reads these, not the raw visits).
    read_seconds = models.IntegerField(default=0)
    posts_read = models.IntegerField(default=0)
    threads_entered = models.IntegerField(default=0)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Email: kinds of notification the member turned off by mail, and the digest they want.
    email_muted = models.JSONField(default=list, blank=True)
    digest = models.CharField(max_length=10, choices=Digest.choices, default=Digest.WEEKLY)
    last_mailed_at = models.DateTimeField(null=True, blank=True)
    last_digest_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "handle"], name="uniq_profile_handle"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"


class MemberVisit(models.Model):
    """One day on which a member visited, with what they read that day (trust levels count
    days visited over the last 100 days)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    read_seconds = models.IntegerField(default=0)
    posts_read = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "day"], name="uniq_visit_day"),
        ]


class ThreadView(models.Model):
    """How far a member has read a thread: the highest post number seen."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="+")
    last_read_number = models.IntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "thread"], name="uniq_thread_view"),
        ]


class Follow(models.Model):
    """A member follows a thread, a space or another member, and is told of what is new
    there. Exactly one target is set."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(Thread, null=True, blank=True, on_delete=models.CASCADE)
    space = models.ForeignKey(Space, null=True, blank=True, on_delete=models.CASCADE)
    followed = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="followers"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(thread__isnull=False, space__isnull=True, followed__isnull=True)
                    | Q(thread__isnull=True, space__isnull=False, followed__isnull=True)
                    | Q(thread__isnull=True, space__isnull=True, followed__isnull=False)
                ),
                name="follow_one_target",
            ),
            models.UniqueConstraint(
                fields=["member", "thread"], condition=Q(thread__isnull=False), name="uniq_f_thr"
            ),
            models.UniqueConstraint(
                fields=["member", "space"], condition=Q(space__isnull=False), name="uniq_f_space"
            ),
            models.UniqueConstraint(
                fields=["member", "followed"],
                condition=Q(followed__isnull=False),
                name="uniq_f_member",
            ),
        ]


class Bookmark(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "post"], name="uniq_bookmark"),
        ]


class Draft(models.Model):
    """Text a member started and has not posted yet, kept per place: "space:<id>" for a new
    thread there, "thread:<id>" for a reply."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=40)
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "key"], name="uniq_draft_key"),
        ]
