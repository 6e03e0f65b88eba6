"""Helpers for the typed-field tests (SQLite and PostgreSQL): read a column
as the database holds it, with plain SQL, and open it with the crypto API
alone, so a test sees the stored bytes rather than what the field says."""

from __future__ import annotations

import os
from typing import Any

from django.db import connection
from django.db.models import Model

from mcfields.conf import get_keyring
from mcfields.crypto import binding, from_text

ON_POSTGRES = os.environ.get("MCFIELDS_TEST_DB") == "postgres"


def raw(model: type[Model], field_name: str, pk: Any) -> Any:
    """The column value as stored (str, bytes or None)."""
    field = model._meta.get_field(field_name)
    meta = field.model._meta
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(field.column)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s",
            [meta.pk.get_db_prep_value(pk, connection)],
        )
        row = cursor.fetchone()
    assert row is not None, f"no row {pk!r} in {meta.db_table}"
    value = row[0]
    return bytes(value) if isinstance(value, memoryview) else value


def sealed_bytes(model: type[Model], field_name: str, pk: Any) -> bytes:
    """The plaintext bytes sealed in a column, opened with the crypto API
    (not through the field) for the row's canonical pk."""
    field = model._meta.get_field(field_name)
    stored = raw(model, field_name, pk)
    envelope = from_text(stored) if isinstance(stored, str) else bytes(stored)
    return get_keyring().open(envelope, binding(field.binding_label, str(pk)))
