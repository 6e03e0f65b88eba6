"""Sealing a column that holds plaintext in place, and opening it back.

The service behind the migration operations in :mod:`mcfields.operations`.
It walks a table in primary-key order (keyset pagination), and for each
non-NULL value decides what it is **by authenticating it**, never by its
shape alone:

* it opens as an envelope bound to this row and column under a configured
  key: it is sealed (skipped when sealing, opened when unsealing);
* it does not open and is not a well-formed envelope either: it is
  plaintext (sealed when sealing, skipped when unsealing);
* it does not open but is a well-formed envelope (version 1, complete
  header, nonce and MAC, in the column's stored form), *whatever its key
  id*: it is *ambiguous*.  It may be a value sealed under a key that is not
  configured here (another environment, a key removed too early), a value
  moved from another row, a tampered value, or plaintext that happens to
  look like an envelope.  Sealing it again would make the application read
  an envelope as data; opening "back" to it would pass an envelope off as
  plaintext.  So the run stops before writing anything (see below).

Ambiguous values stop the run, and the safest point to stop is before the
first write: a read-only pre-scan classifies every value first and raises
:class:`ColumnConversionError` (model, field, pk and key id of each) if any
is ambiguous, so the column is left exactly as it was.  A value that turns
ambiguous after the pre-scan (written concurrently) stops the run inside its
batch, whose transaction is rolled back; earlier batches hold correctly
converted values and a rerun resumes after the value is dealt with.

``unknown_key_ids_are_plaintext=True`` is the one escape hatch, for binary
columns whose plaintext may begin with byte 0x01 (1 in 256 random blobs):
values shaped like an envelope under a key id that is *not* configured are
then treated as plaintext.  Values under a configured key id that fail to
open stay ambiguous either way.

Plaintext cannot pass for a sealed value: that would take a valid Poly1305
tag for this row under one of our keys. So rerunning after a crash never
seals a value twice and never skips one, for text and binary columns alike.

Writes are compare-and-swap (``UPDATE … WHERE pk = %s AND col = old``): a
row that the application changed meanwhile is re-read and classified again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    """The column could not be converted (ambiguous values, or rows that kept
    changing); the message names model, field, pk and key id of each."""


@dataclass(frozen=True)
class Ambiguous:
    """A well-formed envelope that does not open for its row; never converted."""

    pk: Any
    key_id: str
    reason: str

    def __str__(self) -> str:
        return f"pk={self.pk!r} key id {self.key_id}: {self.reason}"


@dataclass
class ConversionReport:
    model: str
    field: str
    direction: str
    scanned: int = 0
    converted: int = 0
    already_done: int = 0
    null: int = 0
    ambiguous: list[Ambiguous] = field(default_factory=list)
    #: Rows still changing after _MAX_ROUNDS compare-and-swap attempts.
    contended: list[Any] = field(default_factory=list)
    batches: int = 0

    def summary(self) -> str:
        verb = "sealed" if self.direction == SEAL else "opened"
        done = "already sealed" if self.direction == SEAL else "already plaintext"
        return (
            f"{self.model}.{self.field}: {self.scanned} values scanned, {self.converted} "
            f"{verb}, {self.already_done} {done}, {self.null} NULL, "
            f"{len(self.ambiguous) + len(self.contended)} left untouched"
        )


def classify(
    fld: Any, raw: Any, pk: Any, *, unknown_key_ids_are_plaintext: bool = False
) -> tuple[str, Any]:
    """``("sealed", plaintext)``, ``("plain", raw)`` or ``("ambiguous", Ambiguous)``."""
    try:
        return "sealed", fld.open_for_pk(raw, pk)
    except DecryptionError as exc:
        reason = exc.reason
    try:
        key_id = key_id_of(fld._to_envelope(raw))
    except DecryptionError:
        return "plain", raw  # not even shaped like an envelope
    if unknown_key_ids_are_plaintext and not conf.get_keyring().knows(key_id):
        return "plain", raw
    return "ambiguous", Ambiguous(pk, key_id.hex(), reason)


def _ambiguous_error(report: ConversionReport, *, written: str) -> ColumnConversionError:
    found = report.ambiguous
    shown = "; ".join(str(a) for a in found[:20])
    more = "" if len(found) <= 20 else f"; and {len(found) - 20} more"
    return ColumnConversionError(
        f"{report.model}.{report.field}: {len(found)} value(s) are mcfields envelopes that "
        f"do not open for their row under the configured keys, so they are neither "
        f"plaintext nor sealed values of this column ({shown}{more}). {written} Put the "
        "key with that id back into MCFIELDS_KEYS (anywhere after the first), or fix or "
        "clear those rows, then run the migration again (docs/ADOPTING.md)."
    )


def convert_column(
    model: type[models.Model],
    fld: Any,
    *,
    direction: str,
    using: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_batch: Callable[[ConversionReport], None] | None = None,
    unknown_key_ids_are_plaintext: bool = False,
) -> ConversionReport:
    """Seal (``SEAL``) or open (``UNSEAL``) every value of ``fld`` in place.

    A read-only pre-scan comes first: if any value is ambiguous (a
    well-formed envelope that does not open for its row), nothing is written
    and :class:`ColumnConversionError` names each one.  Then each batch runs
    in its own transaction (inside an atomic migration the batches become
    savepoints of the migration's transaction); a value that turned
    ambiguous since the pre-scan raises inside its batch, which is rolled
    back.  Rows that kept changing under concurrent writes are left for a
    rerun and reported with ``ColumnConversionError`` at the end.
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

    def param(value: Any) -> Any:
        return connection.Database.Binary(value) if is_binary else value

    def kind_of(raw: Any, pk: Any) -> tuple[str, Any]:
        return classify(fld, raw, pk, unknown_key_ids_are_plaintext=unknown_key_ids_are_plaintext)

    def target(raw: Any, pk: Any) -> tuple[str, Any]:
        """What to write for ``raw`` (None: nothing to do)."""
        kind, value = kind_of(raw, pk)
        if kind == "ambiguous":
            return kind, value
        if direction == SEAL:
            if kind == "sealed":
                return "done", None
            return "convert", fld.seal_for_pk(value, pk)
        if kind == "plain":
            return "done", None
        return "convert", value

    def batches() -> Iterator[list[tuple[Any, Any]]]:
        last: Any = None
        while True:
            with connection.cursor() as cursor:
                if last is None:
                    cursor.execute(first, [batch_size])
                else:
                    cursor.execute(after, [last, batch_size])
                rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    # Pass 1, read only: stop before the first write if any value is ambiguous.
    scan = ConversionReport(meta.label, fld.name, direction)
    for rows in batches():
        for db_pk, raw in rows:
            if raw is None:
                continue
            pk = meta.pk.to_python(db_pk)
            kind, found = kind_of(bytes(raw) if isinstance(raw, memoryview) else raw, pk)
            if kind == "ambiguous":
                scan.ambiguous.append(found)
    if scan.ambiguous:
        raise _ambiguous_error(scan, written="Nothing was written.")

    # Pass 2: convert, batch by batch.
    report = ConversionReport(meta.label, fld.name, direction)
    for rows in batches():
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
                        # Appeared after the pre-scan: raising here rolls this
                        # batch back; earlier batches are correctly converted.
                        report.ambiguous.append(new)
                        raise _ambiguous_error(
                            report,
                            written=f"This batch was rolled back; {report.batches} earlier "
                                    "batch(es) stay converted and a rerun resumes.",
                        )
                    if kind == "done":
                        report.already_done += 1
                        break
                    cursor.execute(update, [param(new), db_pk, param(raw)])
                    if cursor.rowcount == 1:
                        report.converted += 1
                        break
                    # Lost a race with a concurrent write: classify again.
                    cursor.execute(reread, [db_pk])
                    found_row = cursor.fetchone()
                    if found_row is None:
                        break  # row deleted meanwhile
                    raw = found_row[0]
                else:
                    report.contended.append(pk)
        report.batches += 1
        if after_batch is not None:
            after_batch(report)
    if report.contended:
        shown = ", ".join(repr(pk) for pk in report.contended[:20])
        more = "" if len(report.contended) <= 20 else f" and {len(report.contended) - 20} more"
        raise ColumnConversionError(
            f"{report.summary()}. Rows left untouched because they kept changing under "
            f"concurrent writes; run the migration again: pk {shown}{more}"
        )
    return report
