"""Compile the gettext catalogs (.po -> .mo) in pure Python, so no system gettext is needed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from circolo.core.catalogs import compile_catalogs


class Command(BaseCommand):
    help = "Compile Circolo's translation catalogs (.po to .mo); only stale ones are rebuilt."

    def handle(self, *args: Any, **options: Any) -> None:
        built = compile_catalogs(settings.LOCALE_PATHS)
        self.stdout.write(f"compiled {len(built)} catalog(s)")
