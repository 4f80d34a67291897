"""The operator's commands: `circolo demo`, `circolo serve`, `circolo worker` / `beat`."""

from __future__ import annotations

import http.client
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from circolo import cli
from circolo.activity.models import Activity
from circolo.commerce.models import Order
from circolo.core.management.commands import demo as demo_command
from circolo.core.management.commands.serve import (
    bind_address,
    options_from_arguments,
    server_options,
)
from circolo.core.models import Role, Workspace, WorkspaceRole
from circolo.demo.loyalty import FRIEND_DOMAIN
from circolo.demo.services import ANALYST_EMAIL, OWNER_EMAIL, demo_totp_code
from circolo.demo.texts import STORE_SLUG
from circolo.people.models import Member

ROOT = Path(__file__).resolve().parents[3]
SMALL_DEMO = ("--no-serve", "--members", "50", "--activities", "300")


@pytest.fixture(autouse=True)
def quick_demo(settings):
    """Handlers in this process (even with REDIS_URL set); cheap password hashing."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _password(output: str, email: str) -> str:
    match = re.search(rf"{re.escape(email)}\s+password (\S+)", output)
    assert match, output
    return match.group(1)


# --------------------------------------------------------------------------- circolo demo


@pytest.mark.django_db
def test_demo_creates_the_store_its_logins_and_data():
    output = _demo(*SMALL_DEMO)

    workspace = Workspace.objects.get(slug=STORE_SLUG)
    # The demo's customers; the rewards program adds the friends they invited.
    customers = Member.objects.filter(workspace=workspace).exclude(
        identities__value__endswith=f"@{FRIEND_DOMAIN}"
    )
    assert customers.count() == 50
    # The plan's orders and refunds became the shop's books (imported from CSV), whose
    # activities (placed, paid, fulfilled, refunded) the commerce services recorded.
    assert Activity.objects.filter(workspace=workspace, source="demo").count() < 300
    assert Activity.objects.filter(workspace=workspace, source="commerce").exists()
    assert Order.objects.filter(workspace=workspace).exists()
    owner = WorkspaceRole.objects.get(workspace=workspace, role=Role.OWNER).user
    assert owner.email == OWNER_EMAIL
    assert EmailAddress.objects.filter(user=owner, email=OWNER_EMAIL, verified=True).exists()
    assert Authenticator.objects.filter(user=owner, type=Authenticator.Type.TOTP).exists()
    analyst = WorkspaceRole.objects.get(workspace=workspace, user__email=ANALYST_EMAIL)
    assert analyst.role == Role.ANALYST
    assert not Authenticator.objects.filter(user=analyst.user).exists()
    assert f"/w/{STORE_SLUG}/" in output
    assert "otpauth://totp/" in output


@pytest.mark.django_db
def test_the_printed_logins_sign_in():
    output = _demo(*SMALL_DEMO)

    analyst = Client()
    response = analyst.post(
        "/accounts/login/",
        {"login": ANALYST_EMAIL, "password": _password(output, ANALYST_EMAIL)},
    )
    assert response.status_code == 302
    assert analyst.get(f"/w/{STORE_SLUG}/members/").status_code == 200

    owner = Client()
    response = owner.post(
        "/accounts/login/", {"login": OWNER_EMAIL, "password": _password(output, OWNER_EMAIL)}
    )
    assert response.status_code == 302 and "2fa/authenticate" in response["Location"]
    secret = re.search(r"^\s+([A-Z2-7]{32})$", output, re.MULTILINE)
    assert secret
    code, _valid = demo_totp_code(secret=secret.group(1))
    response = owner.post(response["Location"], {"code": code})
    assert response.status_code == 302
    assert owner.get(f"/w/{STORE_SLUG}/settings/").status_code == 200


@pytest.mark.django_db
def test_demo_again_reuses_the_data_and_reset_starts_over():
    _demo(*SMALL_DEMO)
    first = Workspace.objects.get(slug=STORE_SLUG)

    output = _demo(*SMALL_DEMO)
    assert "already there" in output
    assert Workspace.objects.get(slug=STORE_SLUG).pk == first.pk
    count = Activity.objects.filter(workspace=first).count()
    assert count > 250

    _demo(*SMALL_DEMO, "--reset")
    fresh = Workspace.objects.get(slug=STORE_SLUG)
    assert fresh.pk != first.pk
    assert Activity.objects.filter(workspace=fresh).count() == count
    assert not Activity.objects.filter(workspace_id=first.pk).exists()


@pytest.mark.django_db
def test_totp_code_prints_the_current_code():
    with pytest.raises(CommandError):
        _demo("--totp-code")
    output = _demo(*SMALL_DEMO)
    secret = re.search(r"^\s+([A-Z2-7]{32})$", output, re.MULTILINE)
    assert secret
    printed = _demo("--totp-code")
    assert printed.split()[0] in {
        demo_totp_code(secret=secret.group(1), at=time.time() + step)[0] for step in (-30, 0, 30)
    }


@pytest.mark.django_db
def test_demo_serves_after_generating(monkeypatch):
    started: dict[str, object] = {}

    def fake_run_server(options, *, on_ready=None):
        started["options"] = options
        assert on_ready is not None
        on_ready()

    monkeypatch.setattr(demo_command, "run_server", fake_run_server)
    output = _demo("--members", "20", "--activities", "50", "--port", "8123")
    assert started["options"]["bind"] == ["127.0.0.1:8123"]
    assert f"http://127.0.0.1:8123/w/{STORE_SLUG}/" in output
    assert ANALYST_EMAIL in output


def test_demo_prints_an_address_a_browser_can_open():
    address = demo_command._browser_address
    assert address("127.0.0.1:8000", "/w/x/") == "http://127.0.0.1:8000/w/x/"
    assert address("0.0.0.0:8080", "/w/x/") == "http://127.0.0.1:8080/w/x/"
    assert address("[::]:8080", "/") == "http://127.0.0.1:8080/"
    assert address("[::1]:8080", "/") == "http://[::1]:8080/"
    assert address("unix:/run/c.sock", "/w/x/").startswith("unix:/run/c.sock")


@pytest.mark.django_db
def test_demo_rejects_bad_sizes():
    with pytest.raises(CommandError):
        _demo("--no-serve", "--members", "0")


# --------------------------------------------------------------------------- circolo serve


def test_server_options_defaults(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    options = options_from_arguments({})
    assert options["bind"] == ["127.0.0.1:8000"]
    assert options["workers"] == 2
    assert options["worker_class"] == "sync"
    assert options["accesslog"] == "-"


def test_server_options_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("WEB_THREADS", "4")
    options = options_from_arguments({"host": "::1", "port": 9000})
    assert options["bind"] == ["[::1]:9000"]
    assert (options["workers"], options["threads"], options["worker_class"]) == (5, 4, "gthread")
    options = options_from_arguments(
        {"bind": ["unix:/tmp/c.sock", "0.0.0.0:80"], "workers": 1, "no_access_log": True}
    )
    assert options["bind"] == ["unix:/tmp/c.sock", "0.0.0.0:80"]
    assert options["workers"] == 1 and options["accesslog"] is None


def test_server_options_refuse_nonsense(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(CommandError, match="WEB_CONCURRENCY"):
        options_from_arguments({})
    with pytest.raises(CommandError):
        server_options(binds=["x:1"], workers=0, threads=1, timeout=30, access_log=True)
    assert bind_address("example.org", 80) == "example.org:80"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["CIRCOLO_DATA_DIR"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _circolo() -> list[str]:
    return [sys.executable, "-c", "from circolo.cli import main; main()"]


def test_serve_answers_and_stops_cleanly(tmp_path):
    """The real server in a subprocess: static files through WhiteNoise, pages through Django.

    Its data folder is empty (no migrations): the pages asked for need no database.
    """
    env = _subprocess_env(tmp_path)
    port = _free_port()
    server = subprocess.Popen(
        [*_circolo(), "serve", "--port", str(port), "--workers", "1", "--no-access-log"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/static/circolo/app.css")
                response = connection.getresponse()
                assert response.status == 200
                assert b"{" in response.read()
                break
            except ConnectionRefusedError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.1)
        else:
            pytest.fail("circolo serve did not answer")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status in {200, 302}  # the welcome page, or on to sign in
        response.read()
        connection.request("GET", "/static/circolo/no-such-file.css")
        assert connection.getresponse().status == 404
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=40)[0].decode()
    assert server.returncode == 0, output
    assert f"Listening at: http://127.0.0.1:{port}" in output


# --------------------------------------------------------------------------- worker and beat


def test_celery_commands_get_circolo_defaults(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    assert cli._celery_argv(["worker"]) == ["worker", "--loglevel", "info"]
    assert cli._celery_argv(["worker", "-l", "debug", "-Q", "x"]) == [
        "worker", "-l", "debug", "-Q", "x",
    ]  # fmt: skip
    beat = cli._celery_argv(["beat"])
    assert beat[:3] == ["beat", "--loglevel", "info"]
    assert beat[-2:] == ["--schedule", str(tmp_path / "celerybeat-schedule")]
    assert "--schedule" not in cli._celery_argv(["beat", "--schedule=/x/s"])[1:-1]


def test_worker_without_redis_says_what_is_missing(settings):
    settings.REDIS_URL = ""
    with pytest.raises(SystemExit, match="REDIS_URL"):
        cli.main(["worker"])


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a local Redis)")
def test_worker_connects_to_redis_and_stops(tmp_path):
    env = _subprocess_env(tmp_path)
    env["REDIS_URL"] = os.environ["REDIS_URL"]
    # A queue of its own: the worker must not take tasks meant for the tests' workers.
    queue = f"cli-test-{os.getpid()}"
    worker = subprocess.Popen(
        [*_circolo(), "worker", "-Q", queue, "--concurrency", "1", "--without-mingle",
         "--without-gossip", "--without-heartbeat"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert worker.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = worker.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            if " ready." in line:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        rest = worker.communicate(timeout=30)[0].decode()
    output = "".join(lines) + rest
    assert "Connected to redis://" in output, output
    assert " ready." in output, output
    assert worker.returncode == 0, output
