"""Shared set-up of the benchmarks: a fresh database per run, dropped at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable


def configure(db: str, *, database: str, prefix: str) -> Callable[[], None]:
    """Point Django at a fresh SQLite file or PostgreSQL database `database`, with tasks in
    process; returns the cleanup to run at the end. Call before django.setup()."""
    os.environ.pop("REDIS_URL", None)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ["DJANGO_SETTINGS_MODULE"] = "circolo.settings"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    folder = tempfile.mkdtemp(prefix=prefix)
    os.environ["CIRCOLO_DATA_DIR"] = folder
    if db == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        return lambda: shutil.rmtree(folder, ignore_errors=True)

    import psycopg

    server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.execute(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = f"{server}/{database}"

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
        shutil.rmtree(folder, ignore_errors=True)

    return drop
