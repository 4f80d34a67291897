"""Fail when a translation catalog misses or fuzzes a string."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from circolo.core.catalogs import catalog_gaps


class Command(BaseCommand):
    help = "Check that the it, es and zh-hans catalogs translate every string."

    def handle(self, *args: Any, **options: Any) -> None:
        gaps = catalog_gaps(settings.LOCALE_PATHS)
        if gaps:
            raise CommandError("untranslated strings:\n" + "\n".join(gaps[:50]))
        self.stdout.write("catalogs complete")
