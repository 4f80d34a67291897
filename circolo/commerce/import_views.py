"""File import pages of a store: upload, column mapping, dry-run report, run with progress.

Every page needs Perm.MANAGE_STORES; another workspace's store or job is a 404. Forms post
to their own URL and redirect; the progress bars are polled with htmx (every second) and
the same pages work without JavaScript (reload them). The dry run and the run are
background tasks, scheduled after the request commits; without Celery they run on the
process's background thread, so no request waits for a large file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from circolo.commerce.import_tasks import import_check_task, import_run_task
from circolo.commerce.imports.mapping import (
    DECIMAL_COMMA,
    DECIMAL_POINT,
    MappingError,
    Target,
    targets,
)
from circolo.commerce.imports.reading import FileError, Layout, rows_sample
from circolo.commerce.imports.runner import (
    ImportFailure,
    import_check_begin,
    import_create,
    import_map,
    import_start,
    is_checking,
    job_fields,
    job_options,
    job_path,
    max_bytes,
)
from circolo.commerce.models import ImportJob, ImportRowError, Platform, Store
from circolo.core.background import enqueue_on_commit
from circolo.core.permissions import Perm
from circolo.core.web import WorkspaceRequest, workspace_view

ERRORS_PAGE_SIZE = 50
JOBS_SHOWN = 20
EXAMPLES_PER_COLUMN = 3
# The pages a job's state belongs on.
RUN_STATES = (ImportJob.Status.RUNNING, ImportJob.Status.DONE, ImportJob.Status.FAILED)
OUTCOME_LABELS = {
    "created": gettext_lazy("created"),
    "updated": gettext_lazy("updated"),
    "unchanged": gettext_lazy("already up to date"),
    "stale": gettext_lazy("older than what is stored (kept the newer)"),
    "resolved": gettext_lazy("customers matched or added"),
    "empty": gettext_lazy("rows naming nobody"),
}


# --------------------------------------------------------------------------- forms


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("The file holds"), choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV (comma, semicolon or tab separated, with a header row) or JSONL (one JSON "
            "object per line). Shopify's customer, product and order exports work as they are."
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s MB.") % {"limit": f"{limit / 1_000_000:,.0f}"}
            )
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return upload


FIELD_PREFIX = "field_"


class MappingForm(forms.Form):
    """One select of the file's columns per field of the kind, and the cell options."""

    decimal = forms.ChoiceField(
        label=gettext_lazy("Decimal separator"),
        choices=[
            (DECIMAL_POINT, gettext_lazy("Point: 1,234.50")),
            (DECIMAL_COMMA, gettext_lazy("Comma: 1.234,50")),
        ],
    )
    dates = forms.ChoiceField(
        label=gettext_lazy("Dates are written"),
        choices=[
            ("dmy", gettext_lazy("Day first: 31/12/2025")),
            ("mdy", gettext_lazy("Month first: 12/31/2025")),
            ("ymd", gettext_lazy("Year first: 2025-12-31")),
        ],
        help_text=gettext_lazy("Times in ISO form (2025-12-31T18:30:00Z) are always understood."),
    )
    time_zone = forms.CharField(
        label=gettext_lazy("Time zone of times without one"),
        max_length=64,
        help_text=gettext_lazy("Such as Europe/Rome or UTC."),
    )

    def __init__(self, *args: Any, kind: str, columns: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", _("— not in the file —")), *((column, column) for column in columns)]
        self.targets = targets(kind)
        for target in self.targets:
            self.fields[FIELD_PREFIX + target.name] = forms.ChoiceField(
                label=str(target.label),
                choices=choices,
                required=False,
                help_text=str(target.help),
            )

    def target_rows(self) -> list[tuple[Target, forms.BoundField]]:
        return [(target, self[FIELD_PREFIX + target.name]) for target in self.targets]

    def mapping(self) -> dict[str, str]:
        return {
            target.name: self.cleaned_data.get(FIELD_PREFIX + target.name) or ""
            for target in self.targets
        }

    def options(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in ("decimal", "dates", "time_zone")}

    def add_mapping_errors(self, error: MappingError) -> None:
        for name, message in error.errors.items():
            key = name if name in ("decimal", "dates", "time_zone") else FIELD_PREFIX + name
            self.add_error(key if key in self.fields else None, message)


class StartForm(forms.Form):
    skip_bad_rows = forms.BooleanField(
        label=gettext_lazy("Import the good rows and skip the bad ones"),
        required=False,
        help_text=gettext_lazy("Every bad row stays listed in the report."),
    )


# --------------------------------------------------------------------------- helpers


def _store(request: WorkspaceRequest, store_id: int) -> Store:
    store = Store.objects.filter(workspace=request.workspace, pk=store_id).first()
    if store is None:
        raise Http404(_("No such store."))
    return store


def _job(request: WorkspaceRequest, store: Store, job_id: int) -> ImportJob:
    job = (
        ImportJob.objects.filter(workspace=request.workspace, store=store, pk=job_id)
        .select_related("store")
        .first()
    )
    if job is None:
        raise Http404(_("No such import."))
    return job


def _url(name: str, request: WorkspaceRequest, store: Store, *args: Any) -> str:
    return reverse(f"commerce:imports:{name}", args=[request.workspace.slug, store.pk, *args])


def _is_htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not getattr(htmx, "history_restore_request", False)


def _context(request: WorkspaceRequest, store: Store, **extra: Any) -> dict[str, Any]:
    platform = store.platform
    return {
        "store": store,
        "platform_label": str(Platform(platform).label)
        if platform in Platform.values
        else platform,
        "can_manage": True,
        "current": "imports",
        **extra,
    }


def _errors_page(request: HttpRequest, job: ImportJob, *, dry_run: bool) -> Any:
    errors = ImportRowError.objects.filter(job=job, dry_run=dry_run).order_by("line", "pk")
    return Paginator(errors, ERRORS_PAGE_SIZE).get_page(request.GET.get("page"))


def _page_for(request: WorkspaceRequest, store: Store, job: ImportJob) -> str:
    """Where a job's current state is shown."""
    if job.status in RUN_STATES:
        return _url("run", request, store, job.pk)
    if job.status == ImportJob.Status.CHECKED or is_checking(job):
        return _url("report", request, store, job.pk)
    return _url("mapping", request, store, job.pk)


def _percent(done: int, total: int) -> int:
    if total <= 0:
        return 0
    return min(100, done * 100 // total)


def _progress_context(job: ImportJob) -> dict[str, Any]:
    if is_checking(job):
        done = int((job.created or {}).get("checked", 0))
        return {"phase": "check", "done": done, "total": job.total_rows,
                "percent": _percent(done, job.total_rows)}  # fmt: skip
    return {"phase": "run", "done": job.rows_done, "total": job.total_rows,
            "percent": _percent(job.rows_done, job.total_rows)}  # fmt: skip


def _outcomes(job: ImportJob) -> list[tuple[str, int]]:
    counts = job.created or {}
    return [(str(OUTCOME_LABELS.get(key, key)), int(value)) for key, value in counts.items()
            if key in OUTCOME_LABELS]  # fmt: skip


# --------------------------------------------------------------------------- pages


@workspace_view(Perm.MANAGE_STORES)
def import_list(request: WorkspaceRequest, store_id: int) -> HttpResponse:
    """The store's imports, newest first, and the upload form (POST: upload a file)."""
    store = _store(request, store_id)
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_create(
                    store=store,
                    kind=form.cleaned_data["kind"],
                    file_name=upload.name or "upload",
                    chunks=upload.chunks(),
                    size=upload.size,
                    actor=request.user,
                )
            except (FileError, ImportFailure) as error:
                form.add_error("file", error.message)
            else:
                messages.success(request, _("File received. Check which column holds which field."))
                return HttpResponseRedirect(_url("mapping", request, store, job.pk))
        status = 400
    jobs = list(ImportJob.objects.filter(workspace=request.workspace, store=store)[:JOBS_SHOWN])
    rows = [
        {"job": job, "url": _page_for(request, store, job), "started": job.status in RUN_STATES}
        for job in jobs
    ]
    return render(
        request,
        "commerce/import_list.html",
        _context(request, store, form=form, rows=rows, limit_mb=max_bytes() // 1_000_000),
        status=status,
    )


@workspace_view(Perm.MANAGE_STORES)
def import_mapping(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """Which column holds which field (suggested from the header); POST saves it and starts
    the dry run."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    if job.status in RUN_STATES:
        return HttpResponseRedirect(_url("run", request, store, job.pk))
    layout = Layout.from_json(job.file_format, job.mapping.get("file", {}))
    initial: dict[str, Any] = {FIELD_PREFIX + name: column
                               for name, column in job_fields(job).items()}  # fmt: skip
    initial.update(job_options(job))
    form = MappingForm(request.POST or None, kind=job.kind, columns=layout.columns, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = import_map(job=job, mapping=form.mapping(), options=form.options())
                job = import_check_begin(job=job)
            except MappingError as error:
                form.add_mapping_errors(error)
            except ImportFailure as error:
                messages.error(request, error.message)
                return HttpResponseRedirect(_page_for(request, store, job))
            else:
                enqueue_on_commit(import_check_task, job.pk, detach=True)
                return HttpResponseRedirect(_url("report", request, store, job.pk))
        status = 400
    examples = _examples(job, layout)
    return render(
        request,
        "commerce/import_mapping.html",
        _context(request, store, job=job, form=form, columns=examples),
        status=status,
    )


def _examples(job: ImportJob, layout: Layout) -> list[dict[str, Any]]:
    """Each column of the file with a few of its first non-empty values."""
    try:
        sample = rows_sample(job_path(job), layout, size=100)
    except (FileError, OSError):
        sample = []
    values: dict[str, list[str]] = {column: [] for column in layout.columns}
    for row in sample:
        for column, cell in row.values.items():
            found = values.get(column)
            if found is not None and cell.strip() and len(found) < EXAMPLES_PER_COLUMN:
                found.append(cell.strip()[:60])
    return [{"name": column, "examples": values[column]} for column in layout.columns]


@workspace_view(Perm.MANAGE_STORES)
def import_report(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """The dry run: under way (a progress bar), or its counts and every problem found."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    if job.status == ImportJob.Status.MAPPING and not is_checking(job):
        if job.error:
            messages.error(request, job.error)
        return HttpResponseRedirect(_url("mapping", request, store, job.pk))
    context = _context(
        request,
        store,
        job=job,
        checking=is_checking(job),
        progress=_progress_context(job),
        page=_errors_page(request, job, dry_run=True),
        start_form=StartForm(),
        can_start=job.status == ImportJob.Status.CHECKED and job.total_rows > 0,
    )
    return render(request, "commerce/import_report.html", context)


def _spreadsheet_safe(text: str) -> str:
    """Cells quote the file's own values: one starting like a formula is shown, not run."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@workspace_view(Perm.MANAGE_STORES)
def import_report_csv(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponseBase:
    """Every problem of the dry run (or, with ?of=run, of the run) as CSV: line, column, reason."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    dry_run = request.GET.get("of") != "run"
    rows = (
        ImportRowError.objects.filter(job=job, dry_run=dry_run)
        .order_by("line", "pk")
        .values_list("line", "field", "reason")
    )

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow([_("line"), _("column"), _("reason")])
        for line, column, reason in rows.iterator(chunk_size=2000):
            yield writer.writerow([line, _spreadsheet_safe(column), _spreadsheet_safe(reason)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    which = "dry-run" if dry_run else "run"
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-{which}-problems.csv"'
    return response


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def import_start_view(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """Start the run after the dry run (refused while it found bad rows, unless the person
    chose to skip them)."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    form = StartForm(request.POST)
    form.is_valid()
    try:
        job = import_start(
            job=job,
            skip_bad_rows=bool(form.cleaned_data.get("skip_bad_rows")),
            actor=request.user,
        )
    except ImportFailure as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(_page_for(request, store, job))
    enqueue_on_commit(import_run_task, job.pk, detach=True)
    return HttpResponseRedirect(_url("run", request, store, job.pk))


@workspace_view(Perm.MANAGE_STORES)
def import_run_page(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """The run: a progress bar while it goes, then what it created and every bad row."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    if job.status not in RUN_STATES:
        return HttpResponseRedirect(_page_for(request, store, job))
    context = _context(
        request,
        store,
        job=job,
        progress=_progress_context(job),
        outcomes=_outcomes(job),
        page=_errors_page(request, job, dry_run=False),
    )
    return render(request, "commerce/import_run.html", context)


@workspace_view(Perm.MANAGE_STORES)
@require_POST
def import_resume(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """Resume a run that stopped: it goes on after the last committed batch."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    if job.status not in (ImportJob.Status.RUNNING, ImportJob.Status.FAILED):
        messages.error(request, _("Only a run that stopped can be resumed."))
    else:
        enqueue_on_commit(import_run_task, job.pk, detach=True)
        messages.success(
            request, _("The import goes on from row %(row)d.") % {"row": job.rows_done + 1}
        )
    return HttpResponseRedirect(_page_for(request, store, job))


@workspace_view(Perm.MANAGE_STORES)
def import_progress(request: WorkspaceRequest, store_id: int, job_id: int) -> HttpResponse:
    """The progress bar alone (htmx polls it); once the work is over, the page reloads."""
    store = _store(request, store_id)
    job = _job(request, store, job_id)
    active = is_checking(job) or job.status == ImportJob.Status.RUNNING
    if not active:
        url = _page_for(request, store, job)
        if _is_htmx(request):
            return HttpResponseClientRedirect(url)
        return HttpResponseRedirect(url)
    return render(
        request,
        "commerce/import_progress.html",
        _context(request, store, job=job, progress=_progress_context(job)),
    )
