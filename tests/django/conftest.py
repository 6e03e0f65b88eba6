"""Fixtures for the field-layer tests (run on SQLite and PostgreSQL).

The helpers read columns with plain SQL, never through the fields, so a
test can tell what the database really holds.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model

from mcfields.crypto import Keyring, binding, from_text

ON_POSTGRES = os.environ.get("MCFIELDS_TEST_DB") == "postgres"


def raw_value(model: type[Model], field_name: str, pk: Any) -> Any:
    """The column value as stored (str, bytes or None), read with plain SQL."""
    field = model._meta.get_field(field_name)
    table_model = field.model  # the table that holds the column (inheritance)
    meta = table_model._meta
    qn = connection.ops.quote_name
    pk_param = meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(field.column)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s",
            [pk_param],
        )
        row = cursor.fetchone()
    assert row is not None, f"no row {pk!r} in {meta.db_table}"
    value = row[0]
    return bytes(value) if isinstance(value, memoryview) else value


def set_raw_value(model: type[Model], field_name: str, pk: Any, value: Any) -> None:
    """Overwrite a column with plain SQL (to move or tamper with a value)."""
    field = model._meta.get_field(field_name)
    meta = field.model._meta
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        table, column, pk_column = qn(meta.db_table), qn(field.column), qn(meta.pk.column)
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s",
            [value, meta.pk.get_db_prep_value(pk, connection)],
        )
        assert cursor.rowcount == 1


def envelope_of(stored: str | bytes) -> bytes:
    return from_text(stored) if isinstance(stored, str) else bytes(stored)


def open_stored(ring: Keyring, stored: str | bytes, label: str, pk: str) -> bytes:
    """Open a stored value with the crypto API alone (independent of the fields)."""
    return ring.open(envelope_of(stored), binding(label, pk))


@pytest.fixture
def ring() -> Keyring:
    from mcfields.conf import get_keyring

    return get_keyring()


def count_rows(model: type[Model]) -> int:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {qn(model._meta.db_table)}")
        return int(cursor.fetchone()[0])
