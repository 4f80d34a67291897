"""The `circolo` command: demo, serve, worker, beat, migrate, plus every Django command.

`circolo worker` and `circolo beat` start Celery (they need REDIS_URL); everything else is a
Django management command (`circolo demo`, `circolo serve`, `circolo migrate`, ...).
"""

from __future__ import annotations

import os
import sys


def _has_option(args: list[str], *names: str) -> bool:
    return any(arg == name or arg.startswith(f"{name}=") for arg in args for name in names)


def _celery_argv(args: list[str]) -> list[str]:
    """Celery's argv for `worker` / `beat` with Circolo's defaults filled in."""
    command, rest = args[0], args[1:]
    extra: list[str] = []
    if not _has_option(rest, "-l", "--loglevel"):
        extra += ["--loglevel", "info"]
    if command == "beat" and not _has_option(rest, "-s", "--schedule"):
        # Beat keeps its last-run times in a file: in the data folder, not where it started.
        from django.conf import settings

        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        extra += ["--schedule", str(settings.DATA_DIR / "celerybeat-schedule")]
    return [command, *extra, *rest]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "circolo.settings")
    if args[:1] in (["worker"], ["beat"]):
        from django.conf import settings

        if not settings.REDIS_URL:
            sys.exit(
                f"circolo {args[0]} needs REDIS_URL (e.g. redis://127.0.0.1:6379/0). Without"
                " it, background work already runs inside the web process."
            )
        from circolo.celery import app

        app.start(argv=_celery_argv(args))
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(["circolo", *args])


if __name__ == "__main__":
    main()
