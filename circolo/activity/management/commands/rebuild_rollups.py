"""`circolo rebuild_rollups [--workspace SLUG]`: rollups and scores recomputed from scratch."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from circolo.activity.rollups import REBUILD_STEPS, rollups_rebuild
from circolo.core.models import Workspace


class Command(BaseCommand):
    help = "Recompute daily rollups, member rollups and member scores from the activity table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", metavar="SLUG", help="only this workspace")

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = Workspace.objects.order_by("slug")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"No workspace with the address {options['workspace']!r}.")
        count = 0
        for workspace in workspaces.iterator():
            with tqdm(
                total=len(REBUILD_STEPS),
                desc=workspace.slug,
                unit="step",
                file=sys.stderr,
                disable=options["verbosity"] == 0,
            ) as bar:

                def advance(step: str, bar: tqdm[Any] = bar) -> None:
                    bar.set_postfix_str(step)
                    bar.update()

                rollups_rebuild(workspace=workspace, progress=advance)
            count += 1
        if options["verbosity"]:
            self.stdout.write(f"Rebuilt rollups of {count} workspace(s).")
