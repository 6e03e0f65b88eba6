"""Helpers for the typed-field tests (SQLite and PostgreSQL): read a column
as the database holds it, with plain SQL, and open it with the crypto API
alone, so a test sees the stored bytes rather than what the field says."""

from __future__ import annotations

import os
from typing import Any

from django.db.models import Model

from mcfields.conf import get_keyring
from mcfields.crypto import binding, from_text
from tests.databases import stored_value

ON_POSTGRES = os.environ.get("MCFIELDS_TEST_DB") == "postgres"


def raw(model: type[Model], field_name: str, pk: Any) -> Any:
    """The column value as stored (str, bytes or None)."""
    return stored_value(model, field_name, pk)


def sealed_bytes(model: type[Model], field_name: str, pk: Any) -> bytes:
    """The plaintext bytes sealed in a column, opened with the crypto API
    (not through the field) for the row's canonical pk."""
    field = model._meta.get_field(field_name)
    stored = raw(model, field_name, pk)
    envelope = from_text(stored) if isinstance(stored, str) else bytes(stored)
    return get_keyring().open(envelope, binding(field.binding_label, str(pk)))
