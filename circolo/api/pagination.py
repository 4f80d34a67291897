"""Cursor (keyset) pagination: stable under inserts, one indexed range scan per page.

A page is ordered by (sort value, id) with NULL values last in both directions. The cursor
is an opaque url-safe string holding the sort name and the last row's (value, id); the
next page starts strictly after it, so walking the pages visits every row exactly once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from django.db.models import F, Model, Q, QuerySet
from django.utils.translation import gettext

from circolo.api.errors import invalid

ValueKind = Literal["text", "number", "datetime"]
M = TypeVar("M", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Ordering:
    """A sort: the ordered field (model field or annotation), its type and direction."""

    name: str
    field: str
    kind: ValueKind
    descending: bool


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any
    pk: int


def _encode_value(value: Any, kind: ValueKind) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return value.isoformat()
    if kind == "number":
        return float(value)
    return str(value)


def _decode_value(raw: Any, kind: ValueKind) -> Any:
    if raw is None:
        return None
    if kind == "datetime":
        if not isinstance(raw, str):
            raise ValueError(raw)
        moment = dt.datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            raise ValueError(raw)
        return moment
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(raw)
        return float(raw)
    if not isinstance(raw, str):
        raise ValueError(raw)
    return raw


def cursor_encode(*, ordering: Ordering, value: Any, pk: int) -> str:
    payload = json.dumps(
        [ordering.name, _encode_value(value, ordering.kind), pk], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")


def cursor_decode(raw: str, *, ordering: Ordering) -> Cursor:
    """The cursor in `raw`; a 400 naming "cursor" when it is damaged or from another sort."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        name, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if name != ordering.name or isinstance(pk, bool) or not isinstance(pk, int):
            raise ValueError(raw)
        return Cursor(sort=name, value=_decode_value(value, ordering.kind), pk=pk)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise invalid(
            {
                "cursor": gettext(
                    "Invalid cursor: pass the next_cursor of the previous page unchanged,"
                    " with the same sort."
                )
            }
        ) from None


def _after(ordering: Ordering, cursor: Cursor) -> Q:
    """Rows strictly after the cursor in (value NULLS LAST, id) order."""
    field, value, pk = ordering.field, cursor.value, cursor.pk
    id_after = Q(pk__lt=pk) if ordering.descending else Q(pk__gt=pk)
    if value is None:
        return Q(**{f"{field}__isnull": True}) & id_after
    beyond = Q(**{f"{field}__lt": value}) if ordering.descending else Q(**{f"{field}__gt": value})
    return beyond | (Q(**{field: value}) & id_after) | Q(**{f"{field}__isnull": True})


def keyset_page(
    queryset: QuerySet[M],
    *,
    ordering: Ordering,
    cursor: str | None,
    limit: int,
    value_of: Callable[[M], Any],
) -> tuple[list[M], str | None]:
    """One page of `queryset` in `ordering` after `cursor`, and the cursor of the next page."""
    expression = F(ordering.field)
    if ordering.descending:
        order = [expression.desc(nulls_last=True), F("pk").desc()]
    else:
        order = [expression.asc(nulls_last=True), F("pk").asc()]
    queryset = queryset.order_by(*order)
    if cursor:
        queryset = queryset.filter(_after(ordering, cursor_decode(cursor, ordering=ordering)))
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, cursor_encode(ordering=ordering, value=value_of(last), pk=last.pk)
