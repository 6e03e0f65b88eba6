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
