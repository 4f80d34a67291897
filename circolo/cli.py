"""The `circolo` command: demo, serve, worker, beat, migrate, plus every Django command."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "circolo.settings")
    if args[:1] in (["worker"], ["beat"]):
        from circolo.celery import app

        extra = ["-l", "info"] if "-l" not in args and "--loglevel" not in args else []
        app.start(argv=[args[0], *extra, *args[1:]])
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(["circolo", *args])


if __name__ == "__main__":
    main()
