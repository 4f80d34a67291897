"""What the team plans and what members upload: scheduled threads and images."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from circolo.core.models import Workspace
from circolo.people.models import Member

from .forum import ContentKind, Post, Space, Thread


class ScheduledThread(models.Model):
    """A team thread written now and published at `publish_at` by the scheduler; the
    content calendar shows these per week with their share of promotion."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    kind = models.CharField(max_length=10, default=Thread.Kind.DISCUSSION)
    tags = models.JSONField(default=list, blank=True)
    content_kind = models.CharField(
        _("content"), max_length=10, choices=ContentKind.choices, default=ContentKind.VALUE
    )
    pinned = models.BooleanField(_("pinned"), default=False)
    announcement = models.BooleanField(_("announcement"), default=False)
    publish_at = models.DateTimeField(_("publish at"))
    published_thread = models.OneToOneField(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "publish_at"], name="sched_ws_publish")]


def upload_path(instance: Upload, filename: str) -> str:
    # The stored name is the content hash: no user-chosen name reaches the file system.
    name = f"{instance.sha256}.{instance.extension}"
    return f"community/{instance.workspace_id}/{instance.sha256[:2]}/{name}"


class Upload(models.Model):
    """An image a member uploaded for a post: re-encoded without metadata, resized to fit
    the largest size the community shows."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(
        Post, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    file = models.FileField(upload_to=upload_path, max_length=200)
    sha256 = models.CharField(max_length=64)
    extension = models.CharField(max_length=5)
    content_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    original_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sha256"], name="uniq_upload_hash"),
        ]
