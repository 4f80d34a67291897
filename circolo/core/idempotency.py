"""Idempotent writes: a repeat of a request sent with the same Idempotency-Key gets the first
response back instead of doing the work twice.

The record is claimed (inserted with no status) before the work starts and committed at
once, so a concurrent duplicate finds it and is told the first one is still in progress.
Only successful (2xx) responses are kept: after an error the key is released so the client
can fix the request and retry with the same key. Keys live for 24 hours.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from ninja.decorators import decorate_view
from ninja.utils import contribute_operation_callback

from circolo.core.models import IdempotencyRecord, Workspace

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
METHODS = frozenset({"POST", "PATCH", "PUT"})
RETENTION = dt.timedelta(hours=24)
# A claim with no response after this long belongs to a request that died half way
# (a killed worker): the key may be taken over instead of answering 409 for a day.
ABANDONED_AFTER = dt.timedelta(minutes=5)

_REQUEST_ATTR = "_circolo_idempotency_record"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Claimed:
    """The key is ours: do the work, then idempotency_complete() or idempotency_release()."""

    record: IdempotencyRecord


@dataclass(frozen=True)
class Replay:
    """The same request was answered before: send this back."""

    status_code: int
    body: bytes


@dataclass(frozen=True)
class InProgress:
    """The same key is being processed by another request right now."""


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request (method, path or body)."""


ClaimOutcome = Claimed | Replay | InProgress | Mismatch


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; JSON bodies are canonicalised, so key order and spacing
    do not make two equal requests differ."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    digest.update(method.upper().encode("ascii"))
    digest.update(b"\x00")
    digest.update(path.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(canonical)
    return digest.hexdigest()


def idempotency_claim(
    *, workspace: Workspace, key: str, method: str, path: str, request_hash: str
) -> ClaimOutcome:
    """Claim `key` for this request, or say why not (replay, in progress, mismatch).

    The claim is its own (committed) write, so concurrent duplicates see it.
    """
    now = timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    workspace=workspace,
                    key=key,
                    method=method[:8],
                    path=path[:512],
                    request_hash=request_hash,
                )
            return Claimed(record)
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(workspace=workspace, key=key).first()
        if existing is None:
            continue  # purged between our insert and our read: try again
        if existing.created_at < now - RETENTION:
            # Expired but not yet purged: the key is free again.
            IdempotencyRecord.objects.filter(
                pk=existing.pk, created_at=existing.created_at
            ).delete()
            continue
        if existing.request_hash != request_hash:
            return Mismatch()
        if existing.status_code is None:
            if existing.created_at < now - ABANDONED_AFTER:
                taken = IdempotencyRecord.objects.filter(
                    pk=existing.pk, status_code__isnull=True, created_at=existing.created_at
                ).update(created_at=now)
                if taken:
                    existing.created_at = now
                    return Claimed(existing)
            return InProgress()
        return Replay(status_code=existing.status_code, body=bytes(existing.response_body or b""))
    return InProgress()


def idempotency_complete(*, record: IdempotencyRecord, status_code: int, body: bytes) -> None:
    """Store the response of a claimed request for replays."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=body
    )


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Give the key back (the request failed): a retry with the same key runs again."""
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def idempotency_purge(*, older_than: dt.timedelta = RETENTION) -> int:
    """Delete records created more than `older_than` ago; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _error(status: int, detail: str, errors: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail, "errors": errors or {}}, status=status)


def _finish_run(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Wraps the whole ninja operation run (auth, parsing, view, rendering) to store the
    rendered response of a claimed request, or release the claim when it failed."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = run(request, *args, **kwargs)
        except BaseException:
            record = request.__dict__.pop(_REQUEST_ATTR, None)
            if record is not None:
                idempotency_release(record=record)
            raise
        record = request.__dict__.pop(_REQUEST_ATTR, None)
        if record is not None:
            if 200 <= response.status_code < 300 and isinstance(response, HttpResponse):
                idempotency_complete(
                    record=record, status_code=response.status_code, body=response.content
                )
            else:
                idempotency_release(record=record)
        return response

    return wrapper


def idempotent(view_func: F) -> F:
    """Make a ninja write operation honour the Idempotency-Key header.

    Put it below the router decorator. `request.auth` must carry a `workspace` (keys are
    scoped to it). A replay answers the stored response with "Idempotent-Replayed: true";
    the same key with another request answers 422; while the first is running, 409.
    """

    @functools.wraps(view_func)
    def operation(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None or request.method not in METHODS:
            return view_func(request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > KEY_MAX_LENGTH:
            message = gettext("Use between 1 and %(limit)d characters.") % {"limit": KEY_MAX_LENGTH}
            return _error(400, gettext("Invalid Idempotency-Key header."), {HEADER: message})
        workspace: Workspace = request.auth.workspace  # type: ignore[attr-defined]
        method = request.method or "POST"
        path = request.get_full_path()
        outcome = idempotency_claim(
            workspace=workspace,
            key=key,
            method=method,
            path=path,
            request_hash=request_fingerprint(method=method, path=path, body=request.body),
        )
        if isinstance(outcome, Replay):
            replay = HttpResponse(
                outcome.body, status=outcome.status_code, content_type="application/json"
            )
            replay[REPLAYED_HEADER] = "true"
            return replay
        if isinstance(outcome, InProgress):
            return _error(409, gettext("A request with this key is in progress."))
        if isinstance(outcome, Mismatch):
            return _error(
                422,
                gettext(
                    "This Idempotency-Key was already used for a different request;"
                    " use a new key for a new request."
                ),
                {HEADER: gettext("Already used with a different request body.")},
            )
        request.__dict__[_REQUEST_ATTR] = outcome.record
        return view_func(request, *args, **kwargs)

    decorate_view(_finish_run)(operation)
    contribute_operation_callback(operation, _document_header)
    return operation  # type: ignore[return-value]


HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": KEY_MAX_LENGTH},
    "description": gettext_noop(
        "Any unique string: a repeat with the same key returns the first answer."
    ),
}


def _document_header(operation: Any) -> None:
    """Add the Idempotency-Key header to the operation's OpenAPI parameters."""
    extra = dict(operation.openapi_extra or {})
    extra["parameters"] = [*extra.get("parameters", []), HEADER_DOC]
    operation.openapi_extra = extra
