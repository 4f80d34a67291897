"""Writing many new ledger and earning rows fast: COPY on PostgreSQL, bulk_create on SQLite.

The ORM's bulk_create spends most of its time preparing values (about 70 us a row); the
set-based earning of a chunk of 5,000 orders writes some 25,000 rows, so on PostgreSQL the
ids are taken from the table's sequence in one query and the rows are streamed with COPY.
Callers hold a transaction; a duplicate key fails the COPY like it fails an INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def rows_insert(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Insert `rows` (values in `columns` order: database column names) into the model's
    table; returns the new ids in row order. JSON values are given as Python objects."""
    if not rows:
        return []
    table = model._meta.db_table
    json_columns = {
        field.column for field in model._meta.concrete_fields if isinstance(field, models.JSONField)
    }
    if connection.vendor != "postgresql":
        names = {field.column: field.attname for field in model._meta.concrete_fields}
        created = model._default_manager.bulk_create(
            [model(**{names[c]: v for c, v in zip(columns, row, strict=True)}) for row in rows],
            batch_size=2000,
        )
        return [row.pk for row in created]
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(rows)],
        )
        ids = [int(found[0]) for found in cursor.fetchall()]
        encode = [index for index, column in enumerate(columns) if column in json_columns]
        with cursor.copy(f"COPY {table} (id, {', '.join(columns)}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                values = list(row)
                for index in encode:
                    values[index] = json.dumps(values[index])
                copy.write_row((pk, *values))
    return ids


def rows_update(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Set `columns` (database column names) of existing rows: each row is (id, *values).
    One UPDATE ... FROM unnest per call on PostgreSQL, one prepared UPDATE run over the rows
    on SQLite; Django's bulk_update builds a CASE per row and column (slow for thousands)."""
    if not rows:
        return
    table = model._meta.db_table
    fields = {field.column: field for field in model._meta.concrete_fields}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [fields[column].db_type(connection) for column in columns]
            assignments = ", ".join(f"{column} = v.{column}" for column in columns)
            arrays = ", ".join(f"%s::{kind}[]" for kind in types)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments}"
                f" FROM unnest(%s::bigint[], {arrays}) AS v(id, {', '.join(columns)})"
                " WHERE t.id = v.id",
                [[row[0] for row in rows]]
                + [[row[index + 1] for row in rows] for index in range(len(columns))],
            )
        else:
            adapt = [
                (lambda v, f=fields[c]: f.get_db_prep_value(v, connection, prepared=False))
                for c in columns
            ]
            cursor.executemany(
                f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in columns)} WHERE id = %s",
                [(*(adapt[i](row[i + 1]) for i in range(len(columns))), row[0]) for row in rows],
            )
