"""`circolo serve`: the production web server (gunicorn), also used by `circolo demo`.

Gunicorn runs in this process through its Python API, so the same settings (read from the
environment by circolo.settings) apply to the master and to every worker. Static files are
served by WhiteNoise from inside the application; put a proxy (nginx, Caddy, a load balancer)
in front for TLS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from gunicorn.app.base import BaseApplication

from circolo.core.background import start_in_process_beat

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
_SHM = "/dev/shm"  # noqa: S108 - gunicorn only keeps its per-worker heartbeat files there


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise CommandError(f"{name} must be a whole number, not {raw!r}") from exc


def bind_address(host: str, port: int) -> str:
    """gunicorn's bind string for a host and port (IPv6 hosts in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def server_options(
    *,
    binds: list[str],
    workers: int,
    threads: int,
    timeout: int,
    access_log: bool,
    forwarded_allow_ips: str | None = None,
) -> dict[str, Any]:
    """The gunicorn settings `circolo serve` runs with."""
    if workers < 1 or threads < 1:
        raise CommandError("--workers and --threads must be at least 1")
    if timeout < 1:
        raise CommandError("--timeout must be at least 1 second")
    options: dict[str, Any] = {
        "bind": binds,
        "workers": workers,
        "threads": threads,
        # More than one thread per worker switches gunicorn to its threaded worker.
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": min(timeout, 30),
        "keepalive": 5,
        "errorlog": "-",
        "accesslog": "-" if access_log else None,
        "proc_name": "circolo",
        # A restart now and then bounds the memory a long-lived worker can collect.
        "max_requests": 10_000,
        "max_requests_jitter": 1_000,
    }
    # Workers' heartbeat files in memory rather than on a possibly slow disk (gunicorn's advice).
    if os.path.isdir(_SHM):
        options["worker_tmp_dir"] = _SHM
    if forwarded_allow_ips:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    return options


class _Server(BaseApplication):
    """gunicorn configured from a dict, loading circolo.wsgi in each worker."""

    def __init__(self, options: dict[str, Any], on_ready: Callable[[], None] | None) -> None:
        self.options = options
        self.on_ready = on_ready
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)
        # gunicorn >= 24 opens a control socket in the home folder by default; Circolo is
        # managed through its process manager, and two servers on one machine would collide.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)
        # Without Redis there is no Celery beat: each worker plays the schedule itself.
        self.cfg.set("post_worker_init", lambda worker: start_in_process_beat())
        if self.on_ready is not None:
            announce = self.on_ready
            self.cfg.set("when_ready", lambda server: announce())

    def load(self) -> Any:
        from circolo.wsgi import application

        return application


def run_server(options: dict[str, Any], *, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM); `on_ready` runs once the sockets listen."""
    # Workers are forked from this process: none of them may inherit an open database
    # connection (SQLite and psycopg connections must not cross a fork).
    connections.close_all()
    # WhiteNoise warns about a missing STATIC_ROOT; before `collectstatic` it is just empty.
    # On a read-only install the files are still found through the app finders.
    with contextlib.suppress(OSError):
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    _Server(options, on_ready).run()


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn with WhiteNoise for static files). Defaults: "
        "127.0.0.1:8000, WEB_CONCURRENCY workers (2), WEB_THREADS threads per worker (1)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_server_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run_server(options_from_arguments(options))


def add_server_arguments(parser: CommandParser) -> None:
    """The options `circolo serve` and `circolo demo` share."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="Interface to listen on.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on.")
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="host:port or unix:/path (repeatable); overrides --host and --port.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes (default: WEB_CONCURRENCY, else 2).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="Threads per worker (default: WEB_THREADS, else 1).",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="Seconds before a silent worker is restarted (default: WEB_TIMEOUT, else 30).",
    )
    parser.add_argument("--no-access-log", action="store_true", help="Do not log every request.")
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="Proxies whose X-Forwarded-* headers are trusted (gunicorn's FORWARDED_ALLOW_IPS).",
    )


def options_from_arguments(options: dict[str, Any]) -> dict[str, Any]:
    """Turn parsed command options (and the WEB_* environment) into gunicorn settings."""
    binds = list(options.get("bind") or []) or [
        bind_address(options.get("host") or DEFAULT_HOST, options.get("port") or DEFAULT_PORT)
    ]
    workers = options.get("workers")
    threads = options.get("threads")
    timeout = options.get("timeout")
    return server_options(
        binds=binds,
        workers=workers if workers is not None else _env_int("WEB_CONCURRENCY", 2),
        threads=threads if threads is not None else _env_int("WEB_THREADS", 1),
        timeout=timeout if timeout is not None else _env_int("WEB_TIMEOUT", 30),
        access_log=not options.get("no_access_log", False),
        forwarded_allow_ips=options.get("forwarded_allow_ips"),
    )
