"""Helpers shared by the admin tests (test client and browser): raw SQL
reads of stored columns, moving ciphertext between rows, and a scan of every
table for a plaintext."""

from __future__ import annotations

from typing import Any

from django.db import connection


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def raw_values(model: Any, pk: Any, *field_names: str) -> tuple:
    """The stored column values of one row, read with plain SQL."""
    opts = model._meta
    cols = ", ".join(_q(opts.get_field(n).column) for n in field_names)
    sql = f"SELECT {cols} FROM {_q(opts.db_table)} WHERE {_q(opts.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [opts.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    assert row is not None, f"no row {pk!r} in {opts.db_table}"
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)


def move_values(model: Any, src_pk: Any, dst_pk: Any, *field_names: str) -> None:
    """Copy the stored ciphertext of ``src`` into row ``dst`` (a moved value)."""
    values = raw_values(model, src_pk, *field_names)
    opts = model._meta
    sets = ", ".join(f"{_q(opts.get_field(n).column)} = %s" for n in field_names)
    sql = f"UPDATE {_q(opts.db_table)} SET {sets} WHERE {_q(opts.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, opts.pk.get_db_prep_value(dst_pk, connection)])
        assert cursor.rowcount == 1


def every_stored_value() -> list[tuple[str, Any]]:
    """(table, value) for every non-NULL cell of every table in the database."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {_q(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if value is not None:
                        found.append((table, value))
    return found


def tables_containing(needle: str | bytes) -> set[str]:
    """Tables where some cell contains ``needle`` (as text or UTF-8 bytes)."""
    raw = needle.encode() if isinstance(needle, str) else needle
    text = needle if isinstance(needle, str) else None
    hits = set()
    for table, value in every_stored_value():
        if isinstance(value, memoryview):
            value = bytes(value)
        if isinstance(value, (bytes, bytearray)):
            if raw in value:
                hits.add(table)
        elif isinstance(value, str):
            if (text is not None and text in value) or raw in value.encode("utf-8", "replace"):
                hits.add(table)
    return hits
