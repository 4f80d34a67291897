"""Import a CSV or JSONL file of customers, products or orders into a store.

    circolo import_commerce 3 orders orders_export.csv --dry-run
    circolo import_commerce 3 orders orders_export.csv --skip-bad-rows
    circolo import_commerce 3 customers people.jsonl --mapping '{"email": "mail"}'

The same steps as the web pages: store the file, map the columns (suggested from the header
unless --mapping gives them), dry run, run. An unfinished import of the same file (same
SHA-256) into the same store is resumed instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from circolo.commerce.imports.mapping import KINDS, MappingError
from circolo.commerce.imports.reading import FileError
from circolo.commerce.imports.runner import (
    BATCH_ROWS,
    ImportFailure,
    check_summary,
    import_check,
    import_create,
    import_map,
    import_run,
    import_start,
    is_checking,
    job_fields,
    job_options,
    unfinished_job,
)
from circolo.commerce.models import ImportJob, ImportRowError, Store

READ_CHUNK = 1024 * 1024
PROBLEMS_SHOWN = 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _mapping_arg(raw: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """--mapping: JSON text or @file.json; {"fields": {...}, "options": {...}} or fields only."""
    text = Path(raw[1:]).read_text(encoding="utf-8") if raw.startswith("@") else raw
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CommandError(f"--mapping is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CommandError('--mapping must be a JSON object such as {"email": "Email"}')
    if "fields" in data:
        return dict(data["fields"]), dict(data.get("options") or {})
    return data, None


class Command(BaseCommand):
    help = "Import a CSV or JSONL file of customers, products or orders into a store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store_id", type=int, help="id of the store to import into")
        parser.add_argument("kind", choices=KINDS, help="what the file holds")
        parser.add_argument("file", type=Path, help="the CSV or JSONL file")
        parser.add_argument(
            "--mapping",
            help='columns of the fields as JSON ({"field": "column"}) or @file.json; '
            "default: suggested from the header",
        )
        parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="import the good rows when some are bad (every bad row is reported)",
        )
        parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.select_related("workspace").filter(pk=options["store_id"]).first()
        if store is None:
            raise CommandError(f"no store with id {options['store_id']}")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no file at {path}")
        self.show_progress = not options["no_progress"]
        kind = options["kind"]
        try:
            job = self._job(store, kind, path, options.get("mapping"))
            if job.status in (ImportJob.Status.RUNNING, ImportJob.Status.FAILED):
                self.stdout.write(
                    f"Resuming import #{job.pk} of {job.file_name} after row {job.rows_done:,}."
                )
            else:
                if job.status == ImportJob.Status.MAPPING or is_checking(job):
                    job = self._check(job)
                self._report_check(job)
                if options["dry_run"]:
                    self.stdout.write("Dry run: nothing was written.")
                    return
                job = import_start(job=job, skip_bad_rows=options["skip_bad_rows"], actor=None)
            job = self._run(job, options["batch_rows"])
        except (FileError, ImportFailure) as error:
            raise CommandError(error.message) from None
        except MappingError as error:
            lines = "\n".join(f"  {field}: {message}" for field, message in error.errors.items())
            raise CommandError(f"the mapping cannot be used:\n{lines}") from None
        self._report_run(job)

    def _job(self, store: Store, kind: str, path: Path, mapping: str | None) -> ImportJob:
        job = unfinished_job(store=store, kind=kind, sha256=_sha256(path))
        if job is not None and job.status in (ImportJob.Status.RUNNING, ImportJob.Status.FAILED):
            return job
        if job is None:
            job = import_create(
                store=store,
                kind=kind,
                file_name=path.name,
                chunks=_chunks(path),
                size=path.stat().st_size,
                actor=None,
            )
            self.stdout.write(f"Import #{job.pk}: {path.name} ({job.file_format}).")
        elif mapping is None and job.status == ImportJob.Status.CHECKED:
            self.stdout.write(f"Import #{job.pk} of this file was checked already.")
            return job
        if mapping is not None:
            fields, given_options = _mapping_arg(mapping)
            chosen = given_options if given_options is not None else job_options(job)
            return import_map(job=job, mapping=fields, options={**job_options(job), **chosen})
        self.stdout.write("Columns (suggested from the header):")
        for field, column in job_fields(job).items():
            self.stdout.write(f"  {field:<20} <- {column}")
        return import_map(job=job, mapping=job_fields(job), options=job_options(job))

    def _bar(self, total: int, label: str) -> tqdm[Any]:
        return tqdm(
            total=total or None,
            unit=" rows",
            unit_scale=True,
            desc=label,
            disable=not self.show_progress,
        )

    def _check(self, job: ImportJob) -> ImportJob:
        with self._bar(job.total_rows, "dry run") as bar:

            def moved(current: ImportJob) -> None:
                done = int((current.created or {}).get("checked", current.total_rows))
                bar.total = max(bar.total or 0, done)
                bar.update(done - bar.n)

            return import_check(job_id=job.pk, progress=moved)

    def _report_check(self, job: ImportJob) -> None:
        summary = check_summary(job)
        self.stdout.write(
            f"Dry run: {summary['rows']:,} rows, {summary['ok']:,} good, {summary['bad']:,} bad "
            f"({summary['problems']:,} problems)."
        )
        problems = ImportRowError.objects.filter(job=job, dry_run=True).order_by("line", "pk")
        for problem in problems[:PROBLEMS_SHOWN]:
            self.stdout.write(f"  line {problem.line}, {problem.field or '-'}: {problem.reason}")
        if summary["problems"] > PROBLEMS_SHOWN:
            self.stdout.write(f"  … and {summary['problems'] - PROBLEMS_SHOWN:,} more.")

    def _run(self, job: ImportJob, batch_rows: int) -> ImportJob:
        with self._bar(job.total_rows, "import") as bar:
            bar.update(job.rows_done)

            def moved(current: ImportJob) -> None:
                bar.total = max(bar.total or 0, current.rows_done)
                bar.update(current.rows_done - bar.n)

            return import_run(job_id=job.pk, batch_rows=batch_rows, progress=moved)

    def _report_run(self, job: ImportJob) -> None:
        counts = ", ".join(f"{count:,} {outcome}" for outcome, count in (job.created or {}).items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Import #{job.pk} {job.status}: {job.rows_ok:,} rows imported, "
                f"{job.rows_bad:,} bad rows skipped" + (f"; {counts}." if counts else ".")
            )
        )
