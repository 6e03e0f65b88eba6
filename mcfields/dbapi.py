"""Running mcfields' own small statements straight on the DB-API connection."""

from __future__ import annotations

from typing import Any


def driver_connection(connection: Any) -> Any | None:
    """The DB-API connection itself when nothing observes queries (no
    ``execute_wrapper``, no query log), else None (use Django's cursor).

    Django's cursor wrapper costs more than a small statement itself (about
    14 µs against 2 µs on SQLite), and these statements run on every save.
    """
    if connection.execute_wrappers or connection.queries_logged:
        return None
    if connection.connection is None:
        # ensure_connection() is async_unsafe-checked: about 3 µs per call.
        connection.ensure_connection()
    return connection.connection
