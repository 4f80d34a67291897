"""Reading import files: CSV or JSONL, streamed row by row with the line each row starts on.

The layout of a file (format, text encoding, CSV delimiter) is worked out once, when it is
stored, and kept with the job: reading it again later (a resumed run) reads it the same way.
Spreadsheet exports come in UTF-8 with or without a byte-order mark, UTF-16, or Windows-1252
(Excel in Italy and Spain), with commas, semicolons or tabs between cells.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

CSV, JSONL = "csv", "jsonl"
FORMATS = (CSV, JSONL)
EXTENSIONS = {
    ".csv": CSV,
    ".tsv": CSV,
    ".txt": CSV,
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".json": JSONL,
}
DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
SAMPLE_LINES = 50
# JSONL: the columns offered for mapping are the keys met in this many first rows.
JSONL_COLUMN_ROWS = 1000
COPY_CHUNK = 1024 * 1024

csv.field_size_limit(16 * 1024 * 1024)


class FileError(ValueError):
    """A file that cannot be read as an import at all; `message` says why (translated)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Layout:
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": list(self.columns),
        }

    @classmethod
    def from_json(cls, file_format: str, data: dict[str, Any]) -> Layout:
        return cls(
            format=file_format,
            encoding=str(data.get("encoding") or "utf-8"),
            delimiter=str(data.get("delimiter") or ","),
            columns=tuple(data.get("columns") or ()),
        )


@dataclass(frozen=True)
class RawRow:
    """One row of the file: the line it starts on, its cells by column, or why it is unreadable."""

    line: int
    values: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Stored:
    path: Path
    sha256: str
    size: int
    encoding: str


# --------------------------------------------------------------------------- storing


def file_store(chunks: Iterable[bytes], folder: Path, *, suffix: str, max_bytes: int) -> Stored:
    """Write an upload under `folder` as <sha256><suffix>, hashing it and finding its text
    encoding on the way. FileError when it is larger than `max_bytes` or empty."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = True
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise FileError(
                        _("The file is larger than %(limit)s MB.")
                        % {"limit": f"{max_bytes / 1_000_000:,.0f}"}
                    )
                digest.update(chunk)
                if len(head) < 4:
                    head += chunk[:4]
                if is_utf8:
                    try:
                        utf8.decode(chunk)
                    except UnicodeDecodeError:
                        is_utf8 = False
                out.write(chunk)
            if is_utf8:
                try:
                    utf8.decode(b"", final=True)
                except UnicodeDecodeError:
                    is_utf8 = False
        if size == 0:
            raise FileError(_("The file is empty."))
        sha = digest.hexdigest()
        target = folder / f"{sha}{suffix}"
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return Stored(path=target, sha256=sha, size=size, encoding=_encoding(head, is_utf8))


def _encoding(head: bytes, is_utf8: bool) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # Not UTF-8: the Windows code page spreadsheets in Western Europe save in.
    return "utf-8" if is_utf8 else "cp1252"


def _open_text(path: Path, encoding: str) -> Any:
    # cp1252 leaves five bytes undefined: show them as U+FFFD rather than fail the file.
    errors = "replace" if encoding == "cp1252" else "strict"
    return open(path, encoding=encoding, errors=errors, newline="")


def format_of(file_name: str, path: Path, encoding: str) -> str:
    """CSV or JSONL, by the file's extension or else by its first character."""
    extension = Path(file_name).suffix.lower()
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    with _open_text(path, encoding) as text:
        start = text.read(SAMPLE_BYTES).lstrip()
    return JSONL if start.startswith("{") else CSV


def layout_detect(path: Path, *, file_format: str, encoding: str) -> Layout:
    """The file's layout: delimiter (CSV) and the columns offered for mapping.

    FileError when the file is not text in its encoding or has no columns.
    """
    try:
        if file_format == JSONL:
            return Layout(format=JSONL, encoding=encoding, columns=_jsonl_columns(path, encoding))
        with _open_text(path, encoding) as text:
            sample = text.read(SAMPLE_BYTES)
        delimiter = _sniff_delimiter(sample)
        layout = Layout(format=CSV, encoding=encoding, delimiter=delimiter)
        return Layout(
            format=CSV,
            encoding=encoding,
            delimiter=delimiter,
            columns=tuple(_csv_header(path, layout)),
        )
    except UnicodeDecodeError:
        raise FileError(
            _("The file is not text in %(encoding)s.") % {"encoding": encoding}
        ) from None


def _sniff_delimiter(sample: str) -> str:
    """The candidate that splits the first lines into the same number (>1) of cells most often."""
    lines = sample.splitlines()[:SAMPLE_LINES]
    if len(lines) > 1 and len(sample) >= SAMPLE_BYTES:
        lines = lines[:-1]  # the last line of a cut sample may be cut too
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        rows = [row for row in csv.reader(lines, delimiter=delimiter) if row]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(row) == width for row in rows) / len(rows), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _column_names(raw: list[str]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(raw, start=1):
        name = " ".join(cell.replace("\ufeff", "").split()) or _("Column %(n)d") % {"n": index}
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name} ({count})")
    return names


def _csv_header(path: Path, layout: Layout) -> list[str]:
    with _open_text(path, layout.encoding) as text:
        for row in csv.reader(text, delimiter=layout.delimiter):
            if any(cell.strip() for cell in row):
                return _column_names(row)
    raise FileError(_("The file has no header row with column names."))


def _jsonl_columns(path: Path, encoding: str) -> tuple[str, ...]:
    columns: dict[str, None] = {}
    seen = 0
    with _open_text(path, encoding) as text:
        for raw in text:
            if not raw.strip():
                continue
            seen += 1
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if isinstance(data, dict):
                columns.update(dict.fromkeys(flatten(data)))
            if seen >= JSONL_COLUMN_ROWS:
                break
    if not columns:
        raise FileError(_("No line of the file is a JSON object: it has no fields to import."))
    return tuple(columns)


# --------------------------------------------------------------------------- rows


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A JSON object as text cells: nested objects become "outer.inner" columns, lists of
    plain values a comma-separated cell, null an empty cell."""
    cells: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            cells.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            if all(not isinstance(item, dict | list) for item in value):
                cells[name] = ", ".join(_cell(item) for item in value)
            else:
                cells[name] = json.dumps(value, ensure_ascii=False)
        else:
            cells[name] = _cell(value)
    return cells


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def rows_read(path: Path, layout: Layout, *, start: int = 0) -> Iterator[RawRow]:
    """The data rows of the file from row `start` on (0: the first after the header).

    Blank lines are not rows. A row that cannot be read (malformed JSON, more cells than
    columns) comes with `error` set and still counts as a row.
    """
    try:
        if layout.format == JSONL:
            yield from _jsonl_rows(path, layout, start)
        else:
            yield from _csv_rows(path, layout, start)
    except UnicodeDecodeError:
        raise FileError(
            _("The file is not text in %(encoding)s.") % {"encoding": layout.encoding}
        ) from None
    except csv.Error as error:
        raise FileError(_("The file cannot be read as CSV: %(error)s") % {"error": error}) from None


def _csv_rows(path: Path, layout: Layout, start: int) -> Iterator[RawRow]:
    columns = layout.columns
    width = len(columns)
    with _open_text(path, layout.encoding) as text:
        reader = csv.reader(text, delimiter=layout.delimiter)
        previous_end = 0
        header_seen = False
        index = 0
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if not header_seen:
                header_seen = True
                continue
            index += 1
            if index <= start:
                continue
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                yield RawRow(
                    line=line,
                    error=_("This row has %(cells)d cells; the header has %(columns)d.")
                    % {"cells": len(cells), "columns": width},
                )
                continue
            yield RawRow(line=line, values=dict(zip(columns, cells, strict=False)))


def _jsonl_rows(path: Path, layout: Layout, start: int) -> Iterator[RawRow]:
    with _open_text(path, layout.encoding) as text:
        index = 0
        for line, raw in enumerate(text, start=1):
            if not raw.strip():
                continue
            index += 1
            if index <= start:
                continue
            try:
                data = json.loads(raw)
            except ValueError as error:
                yield RawRow(
                    line=line, error=_("This line is not valid JSON: %(error)s") % {"error": error}
                )
                continue
            if not isinstance(data, dict):
                yield RawRow(line=line, error=_("This line is not a JSON object."))
                continue
            yield RawRow(line=line, values=flatten(data))


def rows_sample(path: Path, layout: Layout, *, size: int = 200) -> list[RawRow]:
    """The first `size` rows, for suggesting the mapping and showing examples."""
    sample = []
    for row in rows_read(path, layout):
        sample.append(row)
        if len(sample) >= size:
            break
    return sample


def rows_estimate(path: Path, layout: Layout) -> int:
    """About how many rows the file has (line breaks, less the CSV header), read fast for a
    progress bar before the dry run counts them exactly; 0 when it cannot tell."""
    if layout.encoding == "utf-16":
        return 0
    count = 0
    last = b"\n"
    with open(path, "rb") as raw:
        while chunk := raw.read(COPY_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        count += 1
    return max(count - (1 if layout.format == CSV else 0), 0)
