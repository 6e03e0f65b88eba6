"""A database-assigned pk, known before the INSERT, on SQLite.

With a pk from ``AutoField``/``BigAutoField``, the value cannot be bound to a
row whose pk the database has not chosen yet; the general path
(:mod:`mcfields.saving`) inserts a placeholder and writes the sealed value
with a second statement in the same transaction.  On SQLite the pk the
database would choose can be read first: Django creates these columns as
``INTEGER PRIMARY KEY AUTOINCREMENT``, whose next value is one more than the
largest ever used (``sqlite_sequence``, or the largest rowid).  The row is
then sealed for that pk and inserted with it, in one statement, as for a
UUID pk.

Another connection may take the same pk between the read and the INSERT.
The INSERT then fails on the primary key (SQLite undoes just that
statement), and the save is retried with the next pk; nothing is ever
stored under a pk it was not sealed for.  After a few lost races, or when
anything about the table is unexpected, the caller falls back to the
general path.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError

from .compat import SaveTableCall, database_errors, driver_connection

#: Switched off by tests that exercise the general two-statement path.
ENABLED = True
#: Returned when pre-allocation does not apply; the caller falls back.
FALLBACK = object()
_TRIES = 5


def applies(connection: Any, meta: Any) -> bool:
    return ENABLED and connection.vendor == "sqlite" and meta.pk is meta.auto_field


def _query(connection: Any, sql: str, params: tuple[Any, ...]) -> Any:
    driver = driver_connection(connection)
    if driver is not None:
        with database_errors(connection):
            return driver.execute(sql.replace("%s", "?"), params).fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def next_pk(connection: Any, meta: Any) -> int:
    """The pk SQLite's AUTOINCREMENT would give the next row of ``meta``'s table."""
    table = connection.ops.quote_name(meta.db_table)
    # ORDER BY ... LIMIT 1 reads the end of the rowid b-tree; max(rowid) in a
    # subquery would scan the table.
    row = _query(
        connection,
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "
        f"coalesce((SELECT rowid FROM {table} ORDER BY rowid DESC LIMIT 1), 0)) + 1",
        (meta.db_table,),
    )
    return int(row[0])


def _taken(connection: Any, meta: Any, pk: int) -> bool:
    qn = connection.ops.quote_name
    sql = f"SELECT 1 FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s"
    return _query(connection, sql, (pk,)) is not None


def insert(call: SaveTableCall, meta: Any, connection: Any) -> Any:
    """Run Django's ``_save_table`` as an INSERT with a pre-allocated pk.

    Returns its result, or :data:`FALLBACK` when the caller should use the
    general path instead.
    """
    instance = call.instance
    attname = meta.pk.attname
    for _ in range(_TRIES):
        pk = next_pk(connection, meta)
        setattr(instance, attname, pk)
        try:
            # force_insert: Django would otherwise try an UPDATE first.
            return call(force_insert=True)
        except IntegrityError:
            setattr(instance, attname, None)
            if not _taken(connection, meta, pk):
                raise  # another constraint failed, not our pk
        except BaseException:
            setattr(instance, attname, None)
            raise
    return FALLBACK
