"""Fixtures for the write-path tests (run on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.db.models import Model
from django.test import override_settings

import mcfields.preallocate
from mcfields.conf import get_keyring
from mcfields.crypto import Keyring, binding, from_text
from tests.databases import stored_value


class PrimaryReplicaRouter:
    """Reads from ``replica``, writes to ``default`` (the usual setup)."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        return "replica"

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


@pytest.fixture
def replica_router() -> Iterator[None]:
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.PrimaryReplicaRouter"]):
        yield


@pytest.fixture
def two_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Database-assigned pks take the general path (INSERT, then bind)."""
    monkeypatch.setattr(mcfields.preallocate, "ENABLED", False)


@pytest.fixture
def ring() -> Keyring:
    return get_keyring()


def stored(model: type[Model], field_name: str, pk: Any, using: str = "default") -> Any:
    """The column value as the database holds it (plain SQL), or KeyError."""
    return stored_value(model, field_name, pk, using)


def opens(ring: Keyring, value: Any, label: str, pk: Any) -> bytes:
    """Open a stored value with the crypto API alone."""
    envelope = from_text(value) if isinstance(value, str) else bytes(value)
    return ring.open(envelope, binding(label, str(pk)))


def rows(model: type[Model], using: str = "default") -> int:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(model._meta.db_table)}")
        return int(cursor.fetchone()[0])
