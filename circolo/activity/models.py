"""The activity stream, its per-workspace kind weights, daily rollups and member scores."""

from __future__ import annotations

from django.db import models

from circolo.core.models import Workspace
from circolo.people.models import Member


class Activity(models.Model):
    """Something a member did. Unique per workspace on (source, source_id): recording it twice
    is a no-op."""

    id = models.BigAutoField(primary_key=True)
    # No single-column FK indexes: the composite indexes below start with these columns, and
    # every extra index slows the bulk insert and the handlers' claim.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    weight = models.IntegerField()
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=40)
    source_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # The chunk the activity was recorded in: handlers claim whole chunks, never single rows,
    # so recording writes each row once. NULL: recorded (and handled) before chunks existed.
    chunk = models.ForeignKey(
        "ActivityChunk",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name_plural = "activities"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "source", "source_id"], name="uniq_activity_source"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "occurred_at"], name="activity_ws_time"),
            models.Index(fields=["member", "occurred_at"], name="activity_member_time"),
            models.Index(fields=["workspace", "kind", "occurred_at"], name="activity_ws_kind_time"),
        ]


class ActivityChunk(models.Model):
    """The new activities of one recording call, handled together exactly once.

    Its activities have ids from `first_id` to `last_id` (not every id in between: other
    recorders may interleave) and point back with `Activity.chunk`. `handled_at` is set in the
    transaction that runs the handlers on them, so each activity is handled once.
    """

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    first_id = models.BigIntegerField(default=0)
    last_id = models.BigIntegerField(default=0)
    size = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "id"], name="chunk_ws"),
            models.Index(
                fields=["created_at"],
                name="chunk_unhandled",
                condition=models.Q(handled_at__isnull=True),
            ),
        ]


class KindWeight(models.Model):
    """A workspace's own weight for an activity kind (defaults live in the kind registry)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=40)
    weight = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind"], name="uniq_kind_weight")
        ]


class DailyRollup(models.Model):
    """Activities per workspace x day x kind x channel, maintained incrementally."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    kind = models.CharField(max_length=40)
    channel = models.CharField(max_length=40)
    count = models.BigIntegerField(default=0)
    weight_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "kind", "channel"], name="uniq_daily_rollup"
            )
        ]


class MemberDailyRollup(models.Model):
    """Activities per member x day, the base for active-member counts and scores."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    count = models.BigIntegerField(default=0)
    weight_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "day"], name="uniq_member_daily_rollup")
        ]
        # Covers the dashboard's distinct-member counts per day: an index-only scan.
        indexes = [
            models.Index(fields=["workspace", "day", "member"], name="member_rollup_ws_day_member")
        ]


class MemberScore(models.Model):
    """Member "love": sum of weight x 0.9^(months since activity).

    Stored as `growth` = sum of weight x (1/0.9)^(months from EPOCH to activity), so adding an
    activity is one addition and love now = growth x 0.9^(months from EPOCH to now).
    """

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, primary_key=True, related_name="score"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    growth = models.FloatField(default=0.0)
    activity_count = models.BigIntegerField(default=0)
    last_active = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "growth"], name="score_ws_growth"),
            models.Index(fields=["workspace", "last_active"], name="score_ws_last_active"),
        ]
