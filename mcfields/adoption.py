"""Sealing a column that holds plaintext in place, and opening it back.

The service behind the migration operations in :mod:`mcfields.operations`:
:class:`AdoptionPolicy` on the keyset walker of :mod:`mcfields.walker`
(primary-key order, keyset pagination, compare-and-swap writes, the walk
``rotate_keys`` uses).  For each non-NULL value it decides what it is **by
authenticating it**, never by its shape alone:

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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, models, transaction
from django.db.models import Value
from django.db.models.functions import Cast
from django.db.models.sql import Query

from . import conf
from .contract import EncryptedColumn
from .crypto import key_id_of
from .exceptions import DecryptionError, MCFieldsError, ValueTooLargeError
from .walker import KEEP, Column, ColumnStats, Failure, Walker

__all__ = [
    "DEFAULT_BATCH_SIZE", "SEAL", "UNSEAL", "AdoptionPolicy", "ColumnConversionError",
    "ConversionReport", "classify", "convert_column",
]

SEAL = "seal"
UNSEAL = "unseal"
DEFAULT_BATCH_SIZE = 500
#: Re-reads of a row that keeps losing compare-and-swap races before it is
#: left for a rerun.
_MAX_RETRIES = 5
#: Failures listed in an error message.
_SHOWN = 20


class ColumnConversionError(MCFieldsError):
    """The column could not be converted (ambiguous values, values that do
    not convert, or rows that kept changing); the message names model,
    field, pk and key id of each."""


@dataclass
class ConversionReport(ColumnStats):
    """What one conversion did to one column (the walk's counts and these)."""

    direction: str = SEAL
    #: Already in the target form (sealed when sealing, plain when opening).
    already_done: int = 0
    #: Well-formed envelopes that do not open for their row: never converted.
    ambiguous: list[Failure] = field(default_factory=list)
    #: Batches committed.
    batches: int = 0

    @property
    def converted(self) -> int:
        return self.written

    @property
    def contended(self) -> list[Any]:
        """Rows still changing after the compare-and-swap retries."""
        return self.gave_up

    def summary(self) -> str:
        verb = "sealed" if self.direction == SEAL else "opened"
        done = "already sealed" if self.direction == SEAL else "already plaintext"
        left = len(self.ambiguous) + len(self.failures) + len(self.contended)
        return (
            f"{self.label}: {self.scanned} values scanned, {self.converted} {verb}, "
            f"{self.already_done} {done}, {self.null} NULL, {left} left untouched"
        )


def classify(
    fld: EncryptedColumn, raw: Any, pk: Any, *, unknown_key_ids_are_plaintext: bool = False
) -> tuple[str, Any]:
    """``("sealed", value)``, ``("plain", raw)`` or ``("ambiguous", Failure)``
    for the non-NULL stored value ``raw`` of row ``pk``."""
    try:
        return "sealed", fld.open_for_pk(raw, pk)
    except DecryptionError as exc:
        reason = exc.reason
    try:
        key_id = key_id_of(fld.storage.decode(raw))
    except DecryptionError:
        return "plain", raw  # not even shaped like an envelope
    if unknown_key_ids_are_plaintext and not conf.get_keyring().knows(key_id):
        return "plain", raw
    return "ambiguous", Failure(fld.model._meta.label, fld.name, pk, key_id.hex(), reason)


class AdoptionPolicy:
    """Seal a plaintext column in place (``SEAL``) or open it back (``UNSEAL``).

    Sealing: the stored plaintext becomes the base field's value (through
    ``from_db_value`` and ``to_python``, as a plain field would load it) and
    is sealed with ``field.seal_for_pk``, which applies the size cap.
    Opening: the value is written in the base field's database form
    (``get_db_prep_save``), which the column holds until the ``AlterField``
    back casts it.  ``collect=True`` (the read-only pre-scan) records
    ambiguous and unconvertible values instead of raising at the first.
    """

    def __init__(self, direction: str, connection: Any, *,
                 unknown_key_ids_are_plaintext: bool = False, collect: bool = False) -> None:
        if direction not in (SEAL, UNSEAL):
            raise ValueError(f"direction must be {SEAL!r} or {UNSEAL!r}")
        self.direction = direction
        self.connection = connection
        self.unknown_key_ids_are_plaintext = unknown_key_ids_are_plaintext
        self.collect = collect

    def _classify(self, fld: EncryptedColumn, raw: Any, pk: Any) -> tuple[str, Any]:
        return classify(fld, raw, pk,
                        unknown_key_ids_are_plaintext=self.unknown_key_ids_are_plaintext)

    def decide(self, column: Column, pk: Any, raw: Any, attempt: int) -> Any:
        report: ConversionReport = column.stats  # type: ignore[assignment]
        fld = column.field
        kind, found = self._classify(fld, raw, pk)
        if kind == "ambiguous":
            report.ambiguous.append(found)
            if self.collect:
                return KEEP
            # Written after the pre-scan: raising here rolls this batch back;
            # earlier batches are correctly converted.
            raise _ambiguous_error(
                report, written=f"This batch was rolled back; {report.batches} earlier "
                                "batch(es) stay converted and a rerun resumes.")
        if self.direction == UNSEAL:
            if kind == "plain":
                report.already_done += 1
                return KEEP
            return found
        if kind == "sealed":
            report.already_done += 1
            return KEEP
        try:
            return fld.seal_for_pk(self._value_of(fld, raw), pk)
        except (TypeError, ValueError, ValidationError, DatabaseError) as exc:
            # Never the message of a conversion error: Django's quote the value.
            reason = str(exc) if isinstance(exc, ValueTooLargeError) else (
                f"the stored plaintext is not a valid {type(fld.base_field).__name__} value "
                f"({type(exc).__name__})"
            )
        report.fail(pk, None, reason)
        if self.collect:
            return KEEP
        raise _unconvertible_error(report, written="This batch was rolled back.")

    def _value_of(self, fld: EncryptedColumn, raw: Any) -> Any:
        """The base field's value of a stored plaintext.

        After the ``AlterField`` the column holds the text the database cast
        the old column's values to ("42", "2026-12-02", JSON text...), which
        the base field reads as a plain field would.  Where it cannot (a
        PostgreSQL boolean becomes "true"/"false", which ``to_python`` does
        not accept), the database that wrote the text casts it back.
        """
        base = fld.base_field
        try:
            return base.to_python(self._from_db(base, raw))
        except (TypeError, ValueError, ValidationError):
            if not isinstance(raw, str):
                raise
        return base.to_python(self._from_db(base, self._cast_in_db(base, raw)))

    def _from_db(self, base: models.Field, value: Any) -> Any:
        from_db_value = getattr(base, "from_db_value", None)
        if from_db_value is None:
            return value
        return from_db_value(value, None, self.connection)

    def _cast_in_db(self, base: models.Field, text: str) -> Any:
        connection = self.connection
        cast = Cast(Value(text, output_field=models.TextField()), output_field=base)
        query = Query(None)
        resolved = cast.resolve_expression(query)
        sql, params = query.get_compiler(connection=connection).compile(resolved)
        # A savepoint: a failed cast must not abort a migration's transaction.
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            (value,) = cursor.fetchone()
        for convert in connection.ops.get_db_converters(resolved):
            value = convert(value, resolved, connection)
        return value

    def db_param(self, column: Column, new: Any, connection: Any) -> Any:
        if self.direction == SEAL:
            return column.field.storage.db_param(new, connection)
        return column.field.base_field.get_db_prep_save(new, connection)

    def landed(self, column: Column, pk: Any, current: Any, new: Any) -> bool:
        if self.direction == SEAL:
            return bool(current == new)  # random nonces: only this write stores it
        # The database may hold the written value in another form ("42" for
        # 42): what counts is that the row now holds plaintext.
        return self._classify(column.field, current, pk)[0] == "plain"


def _listed(found: list[Failure]) -> str:
    shown = "; ".join(f"pk={f.pk!r} key id {f.key_id or '?'}: {f.reason}"
                      for f in found[:_SHOWN])
    more = "" if len(found) <= _SHOWN else f"; and {len(found) - _SHOWN} more"
    return shown + more


def _ambiguous_error(report: ConversionReport, *, written: str) -> ColumnConversionError:
    found = report.ambiguous
    return ColumnConversionError(
        f"{report.label}: {len(found)} value(s) are mcfields envelopes that "
        f"do not open for their row under the configured keys, so they are neither "
        f"plaintext nor sealed values of this column ({_listed(found)}). {written} Put the "
        "key with that id back into MCFIELDS_KEYS (anywhere after the first), or fix or "
        "clear those rows, then run the migration again (docs/ADOPTING.md)."
    )


def _unconvertible_error(report: ConversionReport, *, written: str) -> ColumnConversionError:
    found = report.failures
    return ColumnConversionError(
        f"{report.label}: {len(found)} value(s) cannot be sealed ({_listed(found)}). "
        f"{written} Fix or clear those rows (or raise MCFIELDS_MAX_VALUE_SIZE), then run "
        "the migration again (docs/ADOPTING.md)."
    )


def convert_column(
    model: type[models.Model],
    fld: EncryptedColumn,
    *,
    direction: str,
    using: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_batch: Callable[[ConversionReport], None] | None = None,
    unknown_key_ids_are_plaintext: bool = False,
) -> ConversionReport:
    """Seal (``SEAL``) or open (``UNSEAL``) every value of ``fld`` in place.

    A read-only pre-scan comes first: if any value is ambiguous (a
    well-formed envelope that does not open for its row) or, when sealing,
    cannot be sealed (not a value of the base field, over the size cap),
    nothing is written and :class:`ColumnConversionError` names each one.
    Then the keyset walker converts batch by batch, each in its own
    transaction (inside an atomic migration the batches become savepoints
    of the migration's transaction); a value that turned ambiguous since the
    pre-scan raises inside its batch, which is rolled back.  Rows that kept
    changing under concurrent writes are left for a rerun and reported with
    ``ColumnConversionError`` at the end.
    """
    connection = connections[using]
    options = {"unknown_key_ids_are_plaintext": unknown_key_ids_are_plaintext}

    # Pass 1, read only: stop before the first write if any value is ambiguous.
    scan = ConversionReport(model._meta.label, fld.name, direction=direction)
    scanner = Walker(AdoptionPolicy(direction, connection, collect=True, **options),
                     using=using, batch_size=batch_size, write=False)
    scanner.walk(model, scanner.columns(model, [(fld, scan)]))
    if scan.ambiguous:
        raise _ambiguous_error(scan, written="Nothing was written.")
    if scan.failures:
        raise _unconvertible_error(scan, written="Nothing was written.")

    # Pass 2: convert, batch by batch.
    report = ConversionReport(model._meta.label, fld.name, direction=direction)
    # Sealing also fills the blind index of a searchable field; opening
    # leaves it (the column stops being searchable with the field).
    walker = Walker(AdoptionPolicy(direction, connection, **options), using=using,
                    batch_size=batch_size, max_retries=_MAX_RETRIES,
                    indexes=direction == SEAL)

    def batch_done(pks: list[Any]) -> None:
        report.batches += 1
        if after_batch is not None:
            after_batch(report)

    walker.walk(model, walker.columns(model, [(fld, report)]), on_batch=batch_done)
    if report.contended:
        shown = ", ".join(repr(pk) for pk in report.contended[:_SHOWN])
        more = "" if len(report.contended) <= _SHOWN else \
            f" and {len(report.contended) - _SHOWN} more"
        raise ColumnConversionError(
            f"{report.summary()}. Rows left untouched because they kept changing under "
            f"concurrent writes; run the migration again: pk {shown}{more}"
        )
    return report
