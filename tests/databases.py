"""Databases the tests reach directly and share with subprocesses: the
PostgreSQL server's parameters (libpq variables, defaulting to what
.ci/postgres.sh creates) and a DB-API handle on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any


def pg_params(name: str | None) -> dict[str, Any]:
    return {
        "host": os.environ.get("PGHOST", "localhost"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "mcfields"),
        "password": os.environ.get("PGPASSWORD", "mcfields"),
        "dbname": name,
    }


@dataclass
class DirectDB:
    """A database reachable from this process (DB-API) and from subprocesses."""

    vendor: str
    env: dict[str, str]
    sqlite_path: str | None = None
    pg_name: str | None = None
    _conns: list[Any] = field(default_factory=list)

    def connect(self) -> Any:
        if self.vendor == "sqlite":
            conn = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        else:
            import psycopg

            conn = psycopg.connect(**pg_params(self.pg_name), autocommit=True)
        self._conns.append(conn)
        return conn

    def sql(self, text: str) -> str:
        return text.replace("%s", "?") if self.vendor == "sqlite" else text

    def execute(self, conn: Any, text: str, params: tuple[Any, ...] = ()) -> Any:
        cur = conn.cursor()
        cur.execute(self.sql(text), params)
        return cur

    def executemany(self, conn: Any, text: str, rows: list[tuple[Any, ...]]) -> None:
        cur = conn.cursor()
        if self.vendor == "sqlite":
            cur.execute("BEGIN")
            cur.executemany(self.sql(text), rows)
            cur.execute("COMMIT")
        else:
            with conn.transaction():
                cur.executemany(text, rows)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns.clear()


def stored_value(model: Any, field_name: str, pk: Any, using: str = "default") -> Any:
    """A column's value as the database holds it (str, bytes or None), read
    with plain SQL from the table that declares the field, by that table's
    pk; KeyError when there is no such row."""
    from django.db import connections

    field = model._meta.get_field(field_name)
    meta = field.model._meta
    connection = connections[using]
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(field.column)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s",
            [meta.pk.get_db_prep_value(pk, connection)],
        )
        row = cursor.fetchone()
    if row is None:
        raise KeyError(f"no row {pk!r} in {meta.db_table}")
    value = row[0]
    return bytes(value) if isinstance(value, memoryview) else value
