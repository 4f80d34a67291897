"""Runs in a separate OS process (multiprocessing 'spawn') for the concurrency tests.

Only the standard library is imported at module level: Django is set up inside the child,
pointed at the parent's test database.
"""

from __future__ import annotations

import os
from typing import Any


def record_batch(database_url: str, workspace_id: int, specs: list[dict[str, Any]]) -> int:
    """Record `specs` in bulk, then each one singly; returns how many this process created."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "circolo.settings")
    import datetime as dt

    import django

    django.setup()
    from django.db import connection

    from circolo.activity.services import ActivityIn, activity_record, activity_record_bulk
    from circolo.core.models import Workspace
    from circolo.people.models import Member

    workspace = Workspace.objects.get(pk=workspace_id)
    items = [
        ActivityIn(
            member_id=spec["member_id"],
            kind=spec["kind"],
            channel="community",
            occurred_at=dt.datetime.fromisoformat(spec["when"]),
            source="race",
            source_id=spec["source_id"],
        )
        for spec in specs
    ]
    created = len(activity_record_bulk(workspace=workspace, items=items).created)
    members = {member.pk: member for member in Member.objects.filter(workspace=workspace)}
    for item in items[::20]:
        _, was_created = activity_record(
            workspace=workspace,
            member=members[item.member_id],
            kind=item.kind,
            channel=item.channel,
            occurred_at=item.occurred_at,
            source=item.source,
            source_id=item.source_id,
        )
        created += was_created
    connection.close()
    return created
