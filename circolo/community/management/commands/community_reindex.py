"""`circolo community_reindex [--workspace SLUG]`: the community search index rebuilt from
the posts (all workspaces, or one). Safe to run at any time and any number of times."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from circolo.community.search import search_rebuild
from circolo.core.models import Workspace


class Command(BaseCommand):
    help = "Rebuild the community search index from the posts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", metavar="SLUG", help="only this workspace")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace_id = None
        if options["workspace"]:
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace with the address {options['workspace']!r}.")
            workspace_id = workspace.pk
        started = time.perf_counter()
        written = search_rebuild(workspace_id=workspace_id)
        self.stdout.write(f"Indexed {written:,} posts in {time.perf_counter() - started:.1f} s.")
