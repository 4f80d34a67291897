"""Background work of file imports: the dry run and the run of one job (tasks take ids)."""

from __future__ import annotations

import logging

from celery import shared_task

from circolo.commerce.imports.reading import FileError
from circolo.commerce.imports.runner import ImportFailure, import_check, import_run
from circolo.commerce.models import ImportJob

logger = logging.getLogger(__name__)


@shared_task
def import_check_task(job_id: int) -> str:
    """Dry-run one job (again: a repeat replaces the report). Returns the job's status."""
    if not ImportJob.objects.filter(pk=job_id).exists():
        return "missing"
    try:
        return import_check(job_id=job_id).status
    except (FileError, ImportFailure) as error:
        # Kept on the job (its error) and shown on its page.
        logger.warning("dry run of import %s stopped: %s", job_id, error)
        return "failed"


@shared_task
def import_run_task(job_id: int) -> str:
    """Run or resume one started job; a done job is left alone, a job another worker runs
    is left to it. A failure is kept on the job (failed, error) for the person to resume."""
    if not ImportJob.objects.filter(pk=job_id).exists():
        return "missing"
    try:
        return import_run(job_id=job_id).status
    except Exception:
        # import_run logged it and marked the job failed with the reason; resuming is a click.
        return ImportJob.Status.FAILED
