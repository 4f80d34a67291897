"""Import jobs: store the file, choose the mapping, check it (dry run), run it (resumable).

A job moves mapping -> checked (the dry run) -> running -> done (or failed, then resumed).
The dry run reads the whole file and writes only its report (ImportRowError, dry_run=True).
A run writes in batches of whole records; each batch's records, its report rows and the
job's counters (rows_done is the resume point) commit in one transaction, so a run stopped
anywhere resumes where it stopped. The writes are idempotent upserts: importing a file a
second time changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from circolo.commerce.bulk import customers_upsert_bulk, orders_upsert_bulk, products_upsert_bulk
from circolo.commerce.imports import mapping as fields
from circolo.commerce.imports.reading import (
    EXTENSIONS,
    FileError,
    Layout,
    file_store,
    format_of,
    layout_detect,
    rows_estimate,
    rows_read,
    rows_sample,
)
from circolo.commerce.imports.rows import Batch, Group, Problem, batches_read, groups_read
from circolo.commerce.models import ImportJob, ImportRowError, Store
from circolo.commerce.schema import CustomerIn, OrderIn, PayloadError, ProductIn
from circolo.core.audit import audit_record

logger = logging.getLogger(__name__)

# Rows per batch of a run: one transaction each (whole orders, so a few more at times).
BATCH_ROWS = 2_000
# Rows read by the dry run between two saves of its progress and report.
CHECK_ROWS = 10_000
ERRORS_BATCH = 2_000
DEFAULT_MAX_BYTES = 500 * 1000 * 1000

Progress = Callable[[ImportJob], None]


class ImportFailure(ValueError):
    """An import that cannot go on; `message` says why, for the person who started it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def max_bytes() -> int:
    return int(getattr(settings, "CIRCOLO_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def import_folder(workspace_id: int) -> Path:
    return Path(settings.DATA_DIR) / "imports" / str(workspace_id)


def job_path(job: ImportJob) -> Path:
    """Where the job's file is: kept relative to the data directory, which may move."""
    return Path(settings.DATA_DIR) / job.file_path


def _forget(path: Path) -> None:
    """Remove a stored upload that no job uses (one that could not be read)."""
    relative = str(path.relative_to(settings.DATA_DIR))
    if not ImportJob.objects.filter(file_path=relative).exists():
        path.unlink(missing_ok=True)


def file_release(job: ImportJob) -> bool:
    """Delete the job's uploaded file once no unfinished job needs it: a finished import
    keeps its report and counts, not a copy of the customers' data. True when deleted."""
    if (
        ImportJob.objects.filter(file_path=job.file_path)
        .exclude(status=ImportJob.Status.DONE)
        .exists()
    ):
        return False
    path = job_path(job)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _layout(job: ImportJob) -> Layout:
    return Layout.from_json(job.file_format, job.mapping.get("file", {}))


def job_fields(job: ImportJob) -> dict[str, str]:
    return dict(job.mapping.get("fields", {}))


def job_options(job: ImportJob) -> dict[str, str]:
    return dict(job.mapping.get("options", {}))


def is_checking(job: ImportJob) -> bool:
    """A dry run is under way (or was cut short and must be started again)."""
    return job.status == ImportJob.Status.MAPPING and "check" in (job.created or {})


# --------------------------------------------------------------------------- create and map


def import_create(
    *,
    store: Store,
    kind: str,
    file_name: str,
    chunks: Iterable[bytes],
    actor: Any,
    size: int | None = None,
) -> ImportJob:
    """Store an uploaded file under DATA_DIR/imports/<workspace>/<sha256>.<format> and open a
    job for it with a suggested mapping. FileError (nothing kept) when it is too large, empty
    or not a readable CSV/JSONL file; ImportFailure for an unknown kind."""
    if kind not in fields.KINDS:
        raise ImportFailure(_("Choose what the file holds: customers, products or orders."))
    limit = max_bytes()
    if size is not None and size > limit:
        raise FileError(
            _("The file is larger than %(limit)s MB.") % {"limit": f"{limit / 1_000_000:,.0f}"}
        )
    folder = import_folder(store.workspace_id)
    suffix = EXTENSIONS.get(Path(file_name).suffix.lower(), "")
    stored = file_store(
        chunks, folder, suffix=f".{suffix}" if suffix else ".upload", max_bytes=limit
    )
    path = stored.path
    try:
        file_format = format_of(file_name, path, stored.encoding)
        if path.suffix != f".{file_format}":
            target = path.with_suffix(f".{file_format}")
            path.replace(target)
            path = target
        layout = layout_detect(path, file_format=file_format, encoding=stored.encoding)
        sample = rows_sample(path, layout)
    except (FileError, OSError):
        _forget(path)
        raise
    mapping = fields.mapping_suggest(kind, layout.columns)
    options = fields.options_suggest(mapping, sample, time_zone=store.workspace.time_zone)
    with transaction.atomic():
        job = ImportJob.objects.create(
            workspace_id=store.workspace_id,
            store=store,
            kind=kind,
            file_name=Path(file_name).name[:255],
            file_path=str(path.relative_to(settings.DATA_DIR)),
            file_sha256=stored.sha256,
            file_format=file_format,
            mapping={"fields": mapping, "options": options, "file": layout.as_json()},
            total_rows=rows_estimate(path, layout),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            workspace=store.workspace,
            actor=actor,
            action="import.create",
            target=job,
            data={"store": store.pk, "kind": kind, "file": job.file_name, "sha256": stored.sha256},
        )
    return job


def import_map(*, job: ImportJob, mapping: dict[str, Any], options: dict[str, Any]) -> ImportJob:
    """Set which column holds which field and how cells are written. MappingError naming each
    wrong field; ImportFailure once the import has started. A new mapping needs a new dry run."""
    if job.status not in (ImportJob.Status.MAPPING, ImportJob.Status.CHECKED):
        raise ImportFailure(_("The import has started: its mapping can no longer change."))
    columns = _layout(job).columns
    clean, clean_options = fields.mapping_clean(job.kind, columns, mapping, options)
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in (ImportJob.Status.MAPPING, ImportJob.Status.CHECKED):
            raise ImportFailure(_("The import has started: its mapping can no longer change."))
        locked.mapping = {**locked.mapping, "fields": clean, "options": clean_options}
        locked.status = ImportJob.Status.MAPPING
        locked.created = {}
        locked.rows_ok = locked.rows_bad = locked.rows_done = 0
        locked.save(update_fields=["mapping", "status", "created", "rows_ok", "rows_bad",
                                   "rows_done"])  # fmt: skip
        ImportRowError.objects.filter(job=locked).delete()
    return locked


def _groups(job: ImportJob, *, start: int) -> Iterable[Group]:
    path = job_path(job)
    if not path.exists():
        raise ImportFailure(_("The uploaded file is no longer on the server: upload it again."))
    return groups_read(
        job.kind,
        rows_read(path, _layout(job), start=start),
        job_fields(job),
        job_options(job),
        store_currency=job.store.currency,
    )


def _errors_save(job: ImportJob, problems: Iterable[Problem], *, dry_run: bool) -> None:
    ImportRowError.objects.bulk_create(
        (
            ImportRowError(
                workspace_id=job.workspace_id,
                job=job,
                dry_run=dry_run,
                line=problem.line,
                field=problem.field[:100],
                reason=problem.reason,
            )
            for problem in problems
        ),
        batch_size=ERRORS_BATCH,
    )


# --------------------------------------------------------------------------- dry run


def import_check_begin(*, job: ImportJob) -> ImportJob:
    """Mark a dry run as asked for (the page shows it under way) before it is scheduled."""
    if job.status not in (ImportJob.Status.MAPPING, ImportJob.Status.CHECKED):
        raise ImportFailure(_("The import has started: there is nothing left to check."))
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        locked.status = ImportJob.Status.MAPPING
        locked.created = {"check": "", "checked": 0}
        locked.save(update_fields=["status", "created"])
    return locked


def import_check(*, job_id: int, progress: Progress | None = None) -> ImportJob:
    """The dry run: read every row as the run would, report each problem (line, column,
    reason) as ImportRowError(dry_run=True), count rows, good and bad. Writes nothing else.

    Idempotent: starting it again discards the previous report; a dry run overtaken by a
    newer one stops at its next save.
    """
    job = ImportJob.objects.select_related("store", "store__workspace").get(pk=job_id)
    if job.status not in (ImportJob.Status.MAPPING, ImportJob.Status.CHECKED):
        return job
    token = uuid.uuid4().hex
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        locked.status = ImportJob.Status.MAPPING
        locked.created = {"check": token, "checked": 0}
        locked.rows_ok = locked.rows_bad = locked.rows_done = 0
        locked.error = ""
        locked.save(update_fields=["status", "created", "rows_ok", "rows_bad", "rows_done",
                                   "error"])  # fmt: skip
        ImportRowError.objects.filter(job=locked, dry_run=True).delete()
    job.created = locked.created
    rows = ok = bad = 0
    problems: list[Problem] = []
    try:
        for batch in batches_read(iter(_groups(job, start=0)), batch_rows=CHECK_ROWS):
            for group in batch.groups:
                rows += len(group.lines)
                if group.ok:
                    ok += len(group.lines)
                else:
                    bad += len(group.lines)
                    problems.extend(group.problems)
            if not _check_save(job, token, problems, rows, ok, bad, final=False):
                return job
            problems = []
            if progress is not None:
                progress(job)
    except (FileError, ImportFailure) as error:
        _check_fail(job, token, error.message)
        raise
    _check_save(job, token, problems, rows, ok, bad, final=True)
    if progress is not None:
        progress(job)
    return job


def _check_save(
    job: ImportJob, token: str, problems: list[Problem], rows: int, ok: int, bad: int, *,
    final: bool,
) -> bool:  # fmt: skip
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if (locked.created or {}).get("check") != token:
            return False  # a newer dry run (or a new mapping) took over
        _errors_save(locked, problems, dry_run=True)
        locked.rows_ok, locked.rows_bad = ok, bad
        if final:
            locked.status = ImportJob.Status.CHECKED
            locked.total_rows = rows
            locked.created = {}
        else:
            locked.created = {"check": token, "checked": rows}
        locked.save(update_fields=["rows_ok", "rows_bad", "status", "total_rows", "created"])
    job.rows_ok, job.rows_bad, job.status = locked.rows_ok, locked.rows_bad, locked.status
    job.total_rows, job.created = locked.total_rows, locked.created
    return True


def _check_fail(job: ImportJob, token: str, message: str) -> None:
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if (locked.created or {}).get("check") == token:
            locked.created = {}
            locked.error = message
            locked.save(update_fields=["created", "error"])


def check_summary(job: ImportJob) -> dict[str, int]:
    """Counts of the last dry run (rows, good, bad, problems), for pages and the CLI."""
    return {
        "rows": job.total_rows,
        "ok": job.rows_ok,
        "bad": job.rows_bad,
        "problems": ImportRowError.objects.filter(job=job, dry_run=True).count(),
    }


# --------------------------------------------------------------------------- run


def _dry_run_first() -> str:
    return _("Run the dry run first: it checks every row before anything is written.")


def import_start(*, job: ImportJob, skip_bad_rows: bool, actor: Any) -> ImportJob:
    """Start the run after a dry run. Refused while the dry run found bad rows, unless the
    person chose to import the good rows only (every bad row is still reported)."""
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJob.Status.CHECKED:
            raise ImportFailure(_dry_run_first())
        if locked.rows_bad and not skip_bad_rows:
            raise ImportFailure(
                _("The dry run found %(count)d bad rows. Correct the file and upload it again, "
                  "or choose to import only the good rows.") % {"count": locked.rows_bad}
            )  # fmt: skip
        locked.skip_bad_rows = skip_bad_rows
        locked.status = ImportJob.Status.RUNNING
        locked.rows_done = locked.rows_ok = locked.rows_bad = 0
        locked.created = {}
        locked.error = ""
        locked.save()
        ImportRowError.objects.filter(job=locked, dry_run=False).delete()
        audit_record(
            workspace=locked.workspace,
            actor=actor,
            action="import.start",
            target=locked,
            data={"kind": locked.kind, "file": locked.file_name, "skip_bad_rows": skip_bad_rows},
        )
    return locked


def import_run(
    *, job_id: int, batch_rows: int = BATCH_ROWS, progress: Progress | None = None
) -> ImportJob:
    """Run (or resume) a started import: from row rows_done to the end, a batch per
    transaction. A failure is kept on the job (status failed, error) and raised; running
    again resumes after the last committed batch. A done job is left alone."""
    job = ImportJob.objects.select_related("store", "store__workspace").get(pk=job_id)
    if job.status == ImportJob.Status.DONE:
        return job
    if job.status not in (ImportJob.Status.RUNNING, ImportJob.Status.FAILED):
        raise ImportFailure(_dry_run_first())
    if job.status == ImportJob.Status.FAILED:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, error="")
        job.status, job.error = ImportJob.Status.RUNNING, ""
    try:
        for batch in batches_read(iter(_groups(job, start=job.rows_done)), batch_rows=batch_rows):
            if not _batch_commit(job, batch):
                return job  # another worker runs this job: it carries on
            if progress is not None:
                progress(job)
    except Exception as error:
        message = error.message if isinstance(error, ImportFailure | FileError) else str(error)
        logger.exception("import %s stopped at row %s", job.pk, job.rows_done)
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
            status=ImportJob.Status.FAILED,
            error=message[:2000] or error.__class__.__name__,
        )
        raise
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == ImportJob.Status.RUNNING and locked.rows_done == job.rows_done:
            locked.status = ImportJob.Status.DONE
            locked.total_rows = locked.rows_done
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "total_rows", "finished_at"])
        job = locked
    if job.status == ImportJob.Status.DONE:
        file_release(job)
    if progress is not None:
        progress(job)
    return job


def _write(store: Store, kind: str, records: list[Any]) -> list[str]:
    """The batch's records through the batched writers (orders merge their lines: one
    order's rows may sit in several batches)."""
    if not records:
        return []
    if kind == fields.ORDERS:
        orders: list[OrderIn] = records
        return orders_upsert_bulk(store=store, orders=orders, merge_lines=True)
    if kind == fields.PRODUCTS:
        products: list[ProductIn] = records
        return products_upsert_bulk(store=store, products=products)
    customers: list[CustomerIn] = records
    return customers_upsert_bulk(store=store, customers=customers)


def _write_isolating(
    job: ImportJob, good: list[Group]
) -> tuple[list[str], list[Group], list[Problem]]:
    """The batch written at once; when the database side refuses a record (a customer that
    cannot be resolved), each record alone, so the others still go in."""
    records = [group.record for group in good]
    try:
        with transaction.atomic():
            return _write(job.store, job.kind, records), good, []
    except PayloadError:
        pass
    outcomes: list[str] = []
    written: list[Group] = []
    problems: list[Problem] = []
    for group in good:
        try:
            with transaction.atomic():
                outcomes += _write(job.store, job.kind, [group.record])
            written.append(group)
        except PayloadError as error:
            problems.extend(Problem(line, error.field, error.message) for line in group.lines)
    return outcomes, written, problems


def _batch_commit(job: ImportJob, batch: Batch) -> bool:
    good = [group for group in batch.groups if group.ok]
    problems = [problem for group in batch.groups for problem in group.problems]
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJob.Status.RUNNING or locked.rows_done != job.rows_done:
            return False
        outcomes, written, refused = _write_isolating(job, good)
        problems.extend(refused)
        if problems and not job.skip_bad_rows:
            first = min(problems, key=lambda p: p.line)
            raise ImportFailure(
                _("Line %(line)d, %(field)s: %(reason)s")
                % {"line": first.line, "field": first.field or "-", "reason": first.reason}
            )
        _errors_save(locked, problems, dry_run=False)
        counts = dict(locked.created or {})
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
        ok_rows = sum(len(group.lines) for group in written)
        locked.rows_done += batch.rows
        locked.rows_ok += ok_rows
        locked.rows_bad += batch.rows - ok_rows
        locked.created = counts
        locked.total_rows = max(locked.total_rows, locked.rows_done)
        locked.save(update_fields=["rows_done", "rows_ok", "rows_bad", "created", "total_rows"])
    job.rows_done, job.rows_ok, job.rows_bad = locked.rows_done, locked.rows_ok, locked.rows_bad
    job.created, job.total_rows = locked.created, locked.total_rows
    return True


def unfinished_job(*, store: Store, kind: str, sha256: str) -> ImportJob | None:
    """The latest import of this very file into this store that has not finished."""
    return (
        ImportJob.objects.filter(
            workspace_id=store.workspace_id, store=store, kind=kind, file_sha256=sha256
        )
        .exclude(status=ImportJob.Status.DONE)
        .order_by("-created_at", "-pk")
        .first()
    )
