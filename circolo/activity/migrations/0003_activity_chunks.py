"""Handlers claim chunks of activities instead of single rows (Activity.handled_at goes)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import Max, Min


def unhandled_into_chunks(apps, schema_editor):
    """Activities still unhandled become one unhandled chunk per workspace (the sweep runs
    them); handled ones keep chunk NULL, which counts as handled."""
    Activity = apps.get_model("activity", "Activity")
    ActivityChunk = apps.get_model("activity", "ActivityChunk")
    pending = Activity.objects.filter(handled_at__isnull=True)
    for row in pending.values("workspace_id").annotate(
        first=Min("id"), last=Max("id"), size=models.Count("id")
    ):
        chunk = ActivityChunk.objects.create(
            workspace_id=row["workspace_id"],
            first_id=row["first"],
            last_id=row["last"],
            size=row["size"],
            created_at=django.utils.timezone.now(),
        )
        pending.filter(workspace_id=row["workspace_id"]).update(chunk_id=chunk.pk)


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0002_drop_covered_fk_indexes"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ActivityChunk",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("first_id", models.BigIntegerField(default=0)),
                ("last_id", models.BigIntegerField(default=0)),
                ("size", models.IntegerField(default=0)),
                ("created_at", models.DateTimeField()),
                ("handled_at", models.DateTimeField(blank=True, null=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="core.workspace",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["workspace", "id"], name="chunk_ws"),
                    models.Index(
                        condition=models.Q(("handled_at__isnull", True)),
                        fields=["created_at"],
                        name="chunk_unhandled",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="activity",
            name="chunk",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="activity.activitychunk",
            ),
        ),
        migrations.RunPython(unhandled_into_chunks, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="activity", name="activity_unhandled"),
        migrations.RemoveField(model_name="activity", name="handled_at"),
    ]
