"""`circolo demo`: migrate, create the demo store with its logins and data, then serve it.

Operator output stays in English like Django's own commands (commands run untranslated).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from circolo.core.catalogs import compile_catalogs
from circolo.core.management.commands.serve import (
    add_server_arguments,
    options_from_arguments,
    run_server,
)
from circolo.demo.generator import (
    PHASE_ACTIVITIES,
    PHASE_MEMBERS,
    PHASE_ORDERS,
    DemoSummary,
    demo_generate,
    demo_generated,
)
from circolo.demo.services import (
    DemoLogin,
    demo_analyst_ensure,
    demo_owner_ensure,
    demo_owner_totp_secret,
    demo_totp_code,
    demo_workspace_prepare,
)

_PHASE_LABELS = {
    PHASE_MEMBERS: "customers ",
    PHASE_ACTIVITIES: "activities",
    PHASE_ORDERS: "orders    ",
}


class Command(BaseCommand):
    help = (
        "Set up the demo store Bottega Aurora (migrate, logins, data in four languages) and "
        "run the server. Safe to run again: the data of a seed is only added once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=2000, help="Customers (2000).")
        parser.add_argument("--activities", type=int, default=50_000, help="Activities (50000).")
        parser.add_argument("--months", type=int, default=18, help="Months of history (18).")
        parser.add_argument("--seed", type=int, default=7, help="Random seed (7).")
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo workspace and start over."
        )
        parser.add_argument("--no-serve", action="store_true", help="Generate the data and exit.")
        parser.add_argument(
            "--totp-code",
            action="store_true",
            help="Only print the demo owner's current two-factor code.",
        )
        add_server_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["totp_code"]:
            self._print_totp_code()
            return
        for name in ("members", "activities", "months"):
            if options[name] < (0 if name == "activities" else 1):
                raise CommandError(f"--{name} is too small")
        server = None if options["no_serve"] else options_from_arguments(options)
        verbosity = options["verbosity"]

        self._say("Preparing the database", verbosity)
        call_command("migrate", interactive=False, verbosity=0)
        compile_catalogs(settings.LOCALE_PATHS)

        owner, owner_login = demo_owner_ensure()
        workspace, _created = demo_workspace_prepare(owner=owner, reset=options["reset"])
        analyst_login = demo_analyst_ensure(workspace=workspace)

        if demo_generated(
            workspace=workspace,
            members=options["members"],
            activities=options["activities"],
            seed=options["seed"],
        ):
            self._say(
                f"The demo data of seed {options['seed']} is already there (--reset starts over).",
                verbosity,
            )
        else:
            self._say(
                f"Generating {options['members']:,} customers and"
                f" {options['activities']:,} activities for {workspace.name}",
                verbosity,
            )
            # One log line per handled chunk would tear the progress bars apart.
            logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
            summary = demo_generate(
                workspace=workspace,
                members=options["members"],
                activities=options["activities"],
                months=options["months"],
                seed=options["seed"],
                progress=_ProgressBars(enabled=verbosity > 0),
            )
            if verbosity:
                self._print_summary(summary)
            if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
                self._say(
                    "REDIS_URL is set: rollups and scores are computed by `circolo worker`;"
                    " start one if none is running.",
                    verbosity,
                )

        path = f"/w/{workspace.slug}/"
        if server is None:
            self._print_logins(
                address=path, owner=owner_login, analyst=analyst_login, verbosity=verbosity
            )
            return
        address = _browser_address(server["bind"][0], path)
        self._say("Starting the server (Ctrl-C stops it)", verbosity)

        def announce() -> None:
            self._print_logins(
                address=address, owner=owner_login, analyst=analyst_login, verbosity=verbosity
            )

        run_server(server, on_ready=announce)

    def _say(self, message: str, verbosity: int) -> None:
        if verbosity:
            self.stdout.write(self.style.MIGRATE_HEADING(f"==> {message}"))

    def _print_summary(self, summary: DemoSummary) -> None:
        languages = ", ".join(
            f"{lang} {count:,}" for lang, count in sorted(summary.languages.items())
        )
        self.stdout.write(
            f"    {summary.members:,} customer records ({summary.members_created:,} new;"
            f" languages: {languages})\n"
            f"    {summary.twins} customers planted twice -> {summary.suggestions}"
            " pending merge suggestions\n"
            f"    {summary.activities_created:,} new activities of {len(summary.kinds)} kind(s)"
            f" ({summary.activities_duplicate:,} already there)\n"
            f"    {summary.orders:,} orders and {summary.refunds:,} refunds imported into the"
            f" shop from CSV\n"
            f"    {summary.threads:,} community threads with replies, in"
            f" {summary.seconds:.1f} s in all"
        )
        if summary.loyalty is not None:
            program = summary.loyalty
            referrals = ", ".join(f"{k} {v}" for k, v in sorted(program.referrals.items()))
            self.stdout.write(
                f"    rewards program: {program.tiers} tiers ({program.members_in_tiers:,}"
                f" members in them), {program.badges:,} badges, referrals ({referrals}),"
                f" {program.ambassadors} ambassadors, {program.redemptions} rewards redeemed"
            )

    def _print_logins(
        self, *, address: str, owner: DemoLogin, analyst: DemoLogin, verbosity: int
    ) -> None:
        if not verbosity:
            return
        code, valid_for = demo_totp_code(secret=owner.totp_secret)
        following, _ = demo_totp_code(secret=owner.totp_secret, at=time.time() + valid_for)
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS(f"Circolo demo: {address}  (sign in with one of these)"))
        write("")
        write(f"  Owner    {owner.email}  password {owner.password}")
        write("           owners must use two-factor: add this key to an authenticator app")
        write(f"           {owner.totp_secret}")
        write(f"           (or open {owner.totp_uri})")
        write(f"           or type the code {code} (valid {valid_for} s more, then {following});")
        write("           a fresh code any time: .venv/bin/circolo demo --totp-code")
        write(f"  Analyst  {analyst.email}  password {analyst.password}")
        write("           a read-only look around, no second factor")
        write("")
        sys.stdout.flush()

    def _print_totp_code(self) -> None:
        secret = demo_owner_totp_secret()
        if secret is None:
            raise CommandError("No demo owner yet: run `circolo demo` first.")
        code, valid_for = demo_totp_code(secret=secret)
        self.stdout.write(f"{code}  (valid {valid_for} s more)")


def _browser_address(bind: str, path: str) -> str:
    """Where a browser on this machine reaches the server bound to `bind`."""
    if bind.startswith(("unix:", "fd://")):
        return f"{bind} (behind your proxy) {path}"
    host, _, port = bind.rpartition(":")
    # Listening on every interface: this machine itself is 127.0.0.1 (an allowed host by
    # default; other machines need their name in ALLOWED_HOSTS).
    if host in {"0.0.0.0", "[::]", ""}:  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    return f"http://{host}:{port}{path}"


class _ProgressBars:
    """One tqdm bar per generation phase, fed by demo_generate's progress callback."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, tqdm[Any]] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(phase)
        if bar is None:
            bar = self.bars[phase] = tqdm(
                total=total,
                desc=f"    {_PHASE_LABELS.get(phase, phase)}",
                unit="",
                unit_scale=True,
                dynamic_ncols=True,
                mininterval=0.25,
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
