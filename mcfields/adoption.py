"""Sealing a column that holds plaintext in place, and opening it back.

The service behind the migration operations in :mod:`mcfields.operations`.
It walks a table in primary-key order (keyset pagination), and for each
non-NULL value decides what it is **by authenticating it**, never by its
shape alone:

* it opens as an envelope bound to this row and column under a configured
  key: it is sealed (skipped when sealing, opened when unsealing);
* it does not open and does not look like an envelope either: it is
  plaintext (sealed when sealing, skipped when unsealing);
* it does not open but looks like an envelope of ours: it
  is *ambiguous*: a tampered or moved envelope, or plaintext that happens to
  look like one (a complete version-1 envelope, in the column's stored form,
  naming a configured key id). It is reported and left exactly as it is, and the
  operation fails at the end so the migration is not recorded as applied.

Plaintext cannot pass for a sealed value: that would take a valid Poly1305
tag for this row under one of our keys. So rerunning after a crash never
seals a value twice and never skips one, for text and binary columns alike.

Writes are compare-and-swap (``UPDATE … WHERE pk = %s AND col = old``): a
row that the application changed meanwhile is re-read and classified again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models, transaction

from . import conf
from .crypto import key_id_of
from .exceptions import DecryptionError, MCFieldsError

SEAL = "seal"
UNSEAL = "unseal"
DEFAULT_BATCH_SIZE = 500
_MAX_ROUNDS = 5


class ColumnConversionError(MCFieldsError):
    """Some values could not be converted; they were left untouched."""


@dataclass
class ConversionReport:
    model: str
    field: str
    direction: str
    scanned: int = 0
    converted: int = 0
    already_done: int = 0
    null: int = 0
    ambiguous: list[Any] = field(default_factory=list)
    batches: int = 0

    def summary(self) -> str:
        verb = "sealed" if self.direction == SEAL else "opened"
        done = "already sealed" if self.direction == SEAL else "already plaintext"
        return (
            f"{self.model}.{self.field}: {self.scanned} values scanned, {self.converted} "
            f"{verb}, {self.already_done} {done}, {self.null} NULL, "
            f"{len(self.ambiguous)} left untouched"
        )


def _looks_like_envelope(fld: Any, raw: Any) -> bool:
    """A complete version-1 envelope naming a configured key (not a proof)."""
    try:
        envelope = fld._to_envelope(raw)
        key_id = key_id_of(envelope)
    except DecryptionError:
        return False
    return conf.get_keyring().knows(key_id)


def classify(fld: Any, raw: Any, pk: Any) -> tuple[str, Any]:
    """``("sealed", plaintext)``, ``("plain", raw)`` or ``("ambiguous", None)``."""
    try:
        return "sealed", fld.open_for_pk(raw, pk)
    except DecryptionError:
        if _looks_like_envelope(fld, raw):
            return "ambiguous", None
        return "plain", raw


def convert_column(
    model: type[models.Model],
    fld: Any,
    *,
    direction: str,
    using: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_batch: Callable[[ConversionReport], None] | None = None,
) -> ConversionReport:
    """Seal (``SEAL``) or open (``UNSEAL``) every value of ``fld`` in place.

    Each batch runs in its own transaction; inside an atomic migration the
    batches become savepoints of the migration's transaction.
    Raises :class:`ColumnConversionError` at the end if any value was
    ambiguous; every other row has been converted by then.
    """
    if direction not in (SEAL, UNSEAL):
        raise ValueError(f"direction must be {SEAL!r} or {UNSEAL!r}")
    connection = connections[using]
    qn = connection.ops.quote_name
    meta = model._meta
    table, pk_col, col = qn(meta.db_table), qn(meta.pk.column), qn(fld.column)
    first = f"SELECT {pk_col}, {col} FROM {table} ORDER BY {pk_col} LIMIT %s"
    after = f"SELECT {pk_col}, {col} FROM {table} WHERE {pk_col} > %s ORDER BY {pk_col} LIMIT %s"
    reread = f"SELECT {col} FROM {table} WHERE {pk_col} = %s"
    update = f"UPDATE {table} SET {col} = %s WHERE {pk_col} = %s AND {col} = %s"
    is_binary = isinstance(fld, models.BinaryField)
    report = ConversionReport(meta.label, fld.name, direction)

    def param(value: Any) -> Any:
        return connection.Database.Binary(value) if is_binary else value

    def target(raw: Any, pk: Any) -> tuple[str, Any]:
        """What to write for ``raw`` (None: nothing to do)."""
        kind, value = classify(fld, raw, pk)
        if kind == "ambiguous":
            return kind, None
        if direction == SEAL:
            if kind == "sealed":
                return "done", None
            return "convert", fld.seal_for_pk(value, pk)
        if kind == "plain":
            return "done", None
        return "convert", value

    last: Any = None
    while True:
        with connection.cursor() as cursor:
            if last is None:
                cursor.execute(first, [batch_size])
            else:
                cursor.execute(after, [last, batch_size])
            rows = cursor.fetchall()
        if not rows:
            break
        with transaction.atomic(using=using), connection.cursor() as cursor:
            for db_pk, raw in rows:
                pk = meta.pk.to_python(db_pk)
                report.scanned += 1
                for _ in range(_MAX_ROUNDS):
                    if raw is None:
                        report.null += 1
                        break
                    if isinstance(raw, memoryview):
                        raw = bytes(raw)
                    kind, new = target(raw, pk)
                    if kind == "ambiguous":
                        report.ambiguous.append(pk)
                        break
                    if kind == "done":
                        report.already_done += 1
                        break
                    cursor.execute(update, [param(new), db_pk, param(raw)])
                    if cursor.rowcount == 1:
                        report.converted += 1
                        break
                    # Lost a race with a concurrent write: classify again.
                    cursor.execute(reread, [db_pk])
                    found = cursor.fetchone()
                    if found is None:
                        break  # row deleted meanwhile
                    raw = found[0]
                else:
                    report.ambiguous.append(pk)
        last = rows[-1][0]
        report.batches += 1
        if after_batch is not None:
            after_batch(report)
    if report.ambiguous:
        shown = ", ".join(repr(pk) for pk in report.ambiguous[:20])
        more = "" if len(report.ambiguous) <= 20 else f" and {len(report.ambiguous) - 20} more"
        raise ColumnConversionError(
            f"{report.summary()}. Rows left untouched (they look like mcfields envelopes "
            f"but do not open for their row under any configured key): pk {shown}{more}"
        )
    return report
