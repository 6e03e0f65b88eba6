"""The keyset walker: one walk over an encrypted column, with compare-and-swap writes.

Key rotation (:mod:`mcfields.rotation`) and adoption (:mod:`mcfields.adoption`,
the ``EncryptColumn``/``DecryptColumn`` migration operations) are the same
job with a different rule for each value, so they share this walk and differ
only in their :class:`Policy`:

* rows are read in primary-key order with keyset pagination
  (``WHERE pk > last ORDER BY pk LIMIT batch``), never OFFSET, so a table
  of any size is walked in constant memory and a rerun after a crash costs
  no more than the rows left;
* column values are read raw (no ``from_db_value``, no ``Sealed``): the
  policy decides what each value is, and the field's storage codec
  (``field.storage``) is the only thing that knows its stored form;
* for every non-NULL value the policy returns the value to write, or
  :data:`KEEP`;
* writes are compare-and-swap, ``UPDATE t SET col = new WHERE pk = %s AND
  col = old`` (``executemany`` per column), in one transaction per batch:
  a row the application changed since it was read is not overwritten but
  re-read and decided again, up to ``max_retries`` times, then left for a
  rerun (:attr:`ColumnStats.gave_up`);
* everything is counted into a :class:`ColumnStats` per column; a value the
  policy cannot handle is a :class:`Failure` naming model, field, pk and key
  id, never the plaintext.

``shard=Shard(k, n)`` restricts a walk to the rows of shard *k* of *n* (see
:class:`Shard`); ``write=False`` walks and decides without writing (dry
runs, checks and the read-only pre-scan of adoption).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import IntegrityError, connections, models, transaction
from django.db.models import ExpressionWrapper, F

from .binding import pk_text, pk_value_type
from .contract import EncryptedColumn
from .exceptions import MCFieldsError
from .search import column_index, index_of
from .storage import Storage

__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_MAX_RETRIES", "KEEP", "Column", "ColumnStats",
    "Failure", "Policy", "Shard", "Walker", "integer_pk",
]

#: Rows read, decided and written per transaction.
DEFAULT_BATCH_SIZE = 1000
#: How many times a row that lost a compare-and-swap race is re-read.
DEFAULT_MAX_RETRIES = 5
#: Largest ``pk IN (...)`` list sent at once (SQLite's historic 999 limit).
_IN_CHUNK = 900


class _Keep:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<mcfields KEEP>"


#: What :meth:`Policy.decide` returns for a value that stays as it is (not
#: None: None can be a value to write).
KEEP: Any = _Keep()


# --------------------------------------------------------------------------
# Small value types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``.

    Integer primary keys go to shard ``pk mod n`` (Python's ``%``, computed
    in SQL as ``((pk % n) + n) % n``, which cannot overflow); any other
    primary key goes to ``crc32(canonical pk text) % n``.  The assignment
    depends only on the pk and ``count``, so ``count`` independent
    processes cover every row exactly once.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard must be K/N with 1 <= K <= N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        head, sep, tail = text.partition("/")
        try:
            if not sep:
                raise ValueError
            index, count = int(head), int(tail)
        except ValueError:
            raise ValueError(f"shard must look like K/N (e.g. 2/4), got {text!r}") from None
        return cls(index, count)

    @property
    def remainder(self) -> int:
        return self.index - 1

    def owns_text(self, pk_str: str) -> bool:
        """Assignment for non-integer pks (crc32 of the canonical pk text)."""
        return zlib.crc32(pk_str.encode("utf-8")) % self.count == self.remainder

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Failure:
    """A value a policy could not handle; it was left untouched."""

    model: str
    field: str
    pk: Any
    key_id: str | None
    reason: str

    def __str__(self) -> str:
        key = self.key_id if self.key_id is not None else "?"
        return f"{self.model}.{self.field} pk={self.pk!r} key id {key}: {self.reason}"


@dataclass
class ColumnStats:
    """What one walk did to one column (policies add their own counts)."""

    model: str
    field: str
    #: Non-NULL values read (each value counted once, retries excluded).
    scanned: int = 0
    null: int = 0
    #: Values written (or, with ``write=False``, that would have been).
    written: int = 0
    #: Compare-and-swap lost to a concurrent write, then re-read.
    retried: int = 0
    #: Rows deleted between read and write (nothing left to do).
    vanished: int = 0
    #: Rows left for a rerun after losing ``max_retries`` races in a row.
    gave_up: list[Any] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    #: Blind indexes (searchable fields) found missing or under another key
    #: or normalisation than the current ones, as first read.
    index_stale: int = 0
    #: Blind indexes written (or, with ``write=False``, that would have been).
    indexed: int = 0

    @property
    def label(self) -> str:
        return f"{self.model}.{self.field}"

    @property
    def failed(self) -> int:
        return len(self.failures)

    def fail(self, pk: Any, key_id: str | None, reason: str) -> None:
        self.failures.append(Failure(self.model, self.field, pk, key_id, reason))


@dataclass
class Column:
    """An encrypted column during one walk."""

    field: EncryptedColumn
    stats: ColumnStats
    #: Annotation name of the raw value in the walk's queries.
    alias: str
    #: The compare-and-swap UPDATE.
    update_sql: str
    #: Searchable fields, when the walk keeps blind indexes: the companion
    #: field, its annotation name, and the compare-and-swap UPDATEs that
    #: write value and index together, or the index alone.
    index: Any = None
    index_alias: str | None = None
    update_both_sql: str = ""
    update_index_sql: str = ""


class Policy(Protocol):
    """What a walk does with each value: rotation and adoption implement it."""

    def decide(self, column: Column, pk: Any, raw: Any, attempt: int) -> Any:
        """The column value to write for the non-NULL stored value ``raw`` of
        row ``pk``, or :data:`KEEP`; counts its own outcome (skipped,
        failures...) into ``column.stats``.  ``attempt`` is 0 on the first
        read and counts the re-reads after lost compare-and-swap races."""
        ...

    def db_param(self, column: Column, new: Any, connection: Any) -> Any:
        """The query parameter that writes ``new`` (a result of :meth:`decide`)."""
        ...

    def landed(self, column: Column, pk: Any, current: Any, new: Any) -> bool:
        """Whether the value now stored in row ``pk`` (``current``, raw) is
        the write of ``new``: asked only when a batch's compare-and-swap did
        not apply to every row, to tell the rows it did from the losers."""
        ...


# --------------------------------------------------------------------------
# The walker
# --------------------------------------------------------------------------


@dataclass
class _Write:
    pk: Any
    old: Any
    new: Any
    #: The blind index to write, or KEEP.
    index: Any = KEEP


_MISSING = object()


def integer_pk(model: type[models.Model]) -> bool:
    """True when the rows of ``model``'s table are keyed by an integer."""
    return pk_value_type(model._meta.pk) is int


def _raw_output(storage: Storage) -> models.Field:
    # A plain field of the storage's column type (TextField, BinaryField):
    # no from_db_value, so the stored value arrives as the driver returns it.
    field_class: type[models.Field] = getattr(models, storage.internal_type)
    return field_class()


def _normalized(raw: Any) -> Any:
    # PostgreSQL hands bytea out as memoryview: compare and decode bytes.
    return bytes(raw) if isinstance(raw, (memoryview, bytearray)) else raw


class Walker:
    """Walks tables in pk order and applies ``policy`` to every value."""

    def __init__(
        self,
        policy: Policy,
        *,
        using: str = "default",
        batch_size: int = DEFAULT_BATCH_SIZE,
        write: bool = True,
        shard: Shard | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        after_read: Callable[[type[models.Model], list[Any]], None] | None = None,
        indexes: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.policy = policy
        self.using = using
        self.connection = connections[using]
        self.batch_size = batch_size
        self.write = write
        self.shard = shard
        self.max_retries = max_retries
        #: Test seam: called with (model, pks) after rows are read and decided
        #: and before they are written (also for re-reads after lost races,
        #: and when nothing is written), e.g. to race an application write.
        self.after_read = after_read
        #: Keep the blind indexes of searchable fields current: a missing
        #: index, or one under another key, is recomputed from the value
        #: (that will be) stored and written with compare-and-swap on the
        #: value; with ``write=False`` they are only counted.
        self.indexes = indexes

    # -- setup ---------------------------------------------------------------

    def columns(self, model: type[models.Model],
                fields: Sequence[tuple[EncryptedColumn, ColumnStats]]) -> list[Column]:
        """The walk's view of ``fields`` of ``model``'s table, counting into
        the given stats."""
        quote = self.connection.ops.quote_name
        meta = model._meta
        table, pk_col = quote(meta.db_table), quote(meta.pk.column)
        columns = []
        for i, (fld, stats) in enumerate(fields):
            col = quote(fld.column)
            where = f"WHERE {pk_col} = %s AND {col} = %s"
            column = Column(
                field=fld,
                stats=stats,
                alias=f"_mcf_walk_{i}",
                update_sql=f"UPDATE {table} SET {col} = %s {where}",
            )
            index_field = getattr(fld, "index_field", None) if self.indexes else None
            if index_field is not None:
                idx = quote(index_field.column)
                column.index = index_field
                column.index_alias = f"_mcf_walk_{i}_index"
                column.update_both_sql = f"UPDATE {table} SET {col} = %s, {idx} = %s {where}"
                column.update_index_sql = f"UPDATE {table} SET {idx} = %s {where}"
            columns.append(column)
        return columns

    @staticmethod
    def _aliases(columns: Sequence[Column]) -> list[str]:
        """What a walk reads per row after the pk: each column's value, then
        the blind index of each column that has one."""
        return [c.alias for c in columns] + [c.index_alias for c in columns if c.index_alias]

    def _base(self, model: type[models.Model], columns: Sequence[Column]) -> models.QuerySet:
        qs = model._base_manager.db_manager(self.using).all()
        # Read the raw column: the wrapper's output field has no converters,
        # so neither from_db_value nor the descriptor sees the value.
        raw = {
            c.alias: ExpressionWrapper(
                F(c.field.attname), output_field=_raw_output(c.field.storage)
            )
            for c in columns
        }
        for c in columns:
            if c.index_alias is not None:
                raw[c.index_alias] = ExpressionWrapper(F(c.index.attname),
                                                       output_field=models.TextField())
        return qs.annotate(**raw)

    def _in_shard(self, qs: models.QuerySet, integer: bool) -> models.QuerySet:
        if self.shard is None or not integer:
            return qs
        # ((pk % n) + n) % n: SQL's % truncates toward zero, so pk % n lies in
        # (-n, n) and adding n cannot overflow even for pk = -2**63, where the
        # former abs(pk) % n overflowed a 64-bit integer (PostgreSQL "bigint out
        # of range", SQLite "integer overflow") and so broke every shard.  The
        # result equals Python's pk % n: every row lands in exactly one shard.
        # For negative pks this differs from abs(pk) % n (mcfields <= 0.1.0), so
        # all shards of one run must run the same mcfields version.
        n = self.shard.count
        bucket = ExpressionWrapper(((F("pk") % n) + n) % n, output_field=models.BigIntegerField())
        return qs.annotate(_mcf_walk_shard=bucket).filter(_mcf_walk_shard=self.shard.remainder)

    def rows_in_scope(self, model: type[models.Model]) -> int:
        """Rows of ``model`` this walk covers (an estimate when sharded on a
        non-integer pk, whose shards are assigned in Python)."""
        integer = integer_pk(model)
        total = self._in_shard(model._base_manager.db_manager(self.using).all(), integer).count()
        if self.shard is not None and not integer:
            total = -(-total // self.shard.count)
        return total

    # -- the walk --------------------------------------------------------------

    def walk(self, model: type[models.Model], columns: Sequence[Column],
             on_batch: Callable[[list[Any]], None] | None = None) -> int:
        """Apply the policy to every row of ``model`` in scope; ``on_batch``
        is called with the pks of each batch once it is committed.  Returns
        the number of rows walked."""
        rows_done = 0
        for rows in self.batches(model, columns):
            self.process(model, columns, rows)
            rows_done += len(rows)
            if on_batch is not None:
                on_batch([r[0] for r in rows])
        return rows_done

    def batches(self, model: type[models.Model],
                columns: Sequence[Column]) -> Iterator[list[tuple[Any, ...]]]:
        """Keyset pagination in pk order; yields lists of (pk, raw values...).

        Each batch is read only after the previous one has been processed,
        so it sees what was committed meanwhile."""
        integer = integer_pk(model)
        base = self._base(model, columns)
        scoped = self._in_shard(base, integer).order_by("pk")
        aliases = self._aliases(columns)
        hashed = self.shard is not None and not integer
        last: Any = None
        while True:
            qs = scoped if last is None else scoped.filter(pk__gt=last)
            if not hashed:
                rows = list(qs.values_list("pk", *aliases)[: self.batch_size])
                if not rows:
                    return
                last = rows[-1][0]
                yield rows
                continue
            # Non-integer pk and sharding: scan the pk column, keep our rows,
            # then read their values.
            assert self.shard is not None
            pks = list(qs.values_list("pk", flat=True)[: self.batch_size * self.shard.count])
            if not pks:
                return
            last = pks[-1]
            mine = [pk for pk in pks if self.shard.owns_text(pk_text(pk))]
            if mine:
                yield self._read(model, columns, mine)

    def _read(self, model: type[models.Model], columns: Sequence[Column],
              pks: Sequence[Any]) -> list[tuple[Any, ...]]:
        base = self._base(model, columns)
        aliases = self._aliases(columns)
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(pks), _IN_CHUNK):
            chunk = pks[i : i + _IN_CHUNK]
            rows.extend(base.filter(pk__in=chunk).order_by("pk").values_list("pk", *aliases))
        return rows

    # -- one batch -------------------------------------------------------------

    def process(self, model: type[models.Model], columns: Sequence[Column],
                rows: list[tuple[Any, ...]]) -> None:
        """Decide every value of ``rows`` and write the changes.

        The first decisions are made outside the transaction (they are the
        slow part: opening and sealing); the writes, and the re-reads and
        re-writes of rows that lost a race, are one transaction, so an
        exception (a policy's, an interrupt) leaves the whole batch as it was.
        """
        writes = self._decide(columns, rows, 0)
        self._after_read(model, rows)
        if not self.write or not any(writes):
            return
        with transaction.atomic(using=self.using):
            self._settle(model, columns, writes, 0)

    def _after_read(self, model: type[models.Model], rows: list[tuple[Any, ...]]) -> None:
        if self.after_read is not None:
            self.after_read(model, [r[0] for r in rows])

    def _decide(self, columns: Sequence[Column], rows: list[tuple[Any, ...]],
                attempt: int) -> list[list[_Write]]:
        writes: list[list[_Write]] = [[] for _ in columns]
        # Row position of each column's blind index (after all the values).
        index_at: list[int | None] = []
        position = 1 + len(columns)
        for column in columns:
            index_at.append(position if column.index_alias else None)
            position += 1 if column.index_alias else 0
        for row in rows:
            pk = row[0]
            for i, column in enumerate(columns):
                raw = _normalized(row[i + 1])
                stats = column.stats
                if raw is None:
                    if attempt == 0:
                        stats.null += 1
                    continue
                if attempt == 0:
                    stats.scanned += 1
                failed = stats.failed
                new = self.policy.decide(column, pk, raw, attempt)
                index = KEEP
                at = index_at[i]
                if at is not None and stats.failed == failed:
                    index = self._decide_index(column, pk, raw, row[at], new, attempt)
                if new is KEEP and index is KEEP:
                    continue
                if self.write:
                    writes[i].append(_Write(pk, raw, new, index))
                else:
                    stats.written += new is not KEEP
                    stats.indexed += index is not KEEP
        return writes

    def _decide_index(self, column: Column, pk: Any, raw: Any, stored: Any, new: Any,
                      attempt: int) -> Any:
        """The blind index to write next to the value that will be stored
        (``new``, or ``raw`` when it stays), or KEEP when ``stored`` is
        current.  Without writing, stale indexes are counted, nothing opened."""
        fld = column.field
        if column_index(fld).is_current(stored):
            return KEEP
        if attempt == 0:
            column.stats.index_stale += 1
        if not self.write:
            return None  # counted as "would write"; nothing is opened
        try:
            value = fld.open_for_pk(raw if new is KEEP else new, pk)
            return index_of(fld, value)
        except MCFieldsError as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            column.stats.fail(pk, None, f"blind index not rebuilt: {reason}")
            return KEEP
        finally:
            value = None  # error reports print every frame's locals

    def _settle(self, model: type[models.Model], columns: Sequence[Column],
                writes: list[list[_Write]], attempt: int) -> None:
        losers = self._write(model, columns, writes)
        for column, pks in zip(columns, losers, strict=True):
            if not pks:
                continue
            column.stats.retried += len(pks)
            if attempt >= self.max_retries:
                column.stats.gave_up.extend(pks)
                continue
            # Re-read the rows whose column changed under us and decide again;
            # the concurrent value may need nothing (e.g. already current).
            rows = self._read(model, [column], pks)
            again = self._decide([column], rows, attempt + 1)
            self._after_read(model, rows)
            if any(again):
                self._settle(model, [column], again, attempt + 1)

    def _write(self, model: type[models.Model], columns: Sequence[Column],
               writes: list[list[_Write]]) -> list[list[Any]]:
        """Compare-and-swap the writes; per column, the pks whose write did
        not apply because the column no longer held the value read."""
        connection = self.connection
        pk_field = model._meta.pk
        losers: list[list[Any]] = [[] for _ in columns]
        with connection.cursor() as cursor:
            for i, column in enumerate(columns):
                storage = column.field.storage
                # One statement per kind of write: value, value and index,
                # index alone (all compare-and-swap on the value).
                groups: dict[str, list[_Write]] = {}
                for w in writes[i]:
                    if w.index is KEEP:
                        kind = column.update_sql
                    elif w.new is KEEP:
                        kind = column.update_index_sql
                    else:
                        kind = column.update_both_sql
                    groups.setdefault(kind, []).append(w)
                for sql, batch in groups.items():
                    params = [
                        (*([] if w.new is KEEP else
                           [self.policy.db_param(column, w.new, connection)]),
                         *([] if w.index is KEEP else [w.index]),
                         pk_field.get_db_prep_value(w.pk, connection),
                         storage.db_param(w.old, connection))
                        for w in batch
                    ]
                    if sql == column.update_sql:
                        cursor.executemany(sql, params)
                        matched = cursor.rowcount
                    else:
                        batch, matched = self._write_indexed(cursor, column, sql, batch, params)
                    if matched == len(batch):
                        for w in batch:
                            self._count(column, w)
                        continue
                    # Some rows changed (or vanished) since they were read:
                    # find which by reading back what is there now.
                    now = {r[0]: r[1] for r in
                           self._read(model, [column], [w.pk for w in batch])}
                    for w in batch:
                        current = _normalized(now.get(w.pk, _MISSING))
                        if current is _MISSING:
                            column.stats.vanished += 1  # deleted concurrently
                        elif current is not None and (
                            current == w.old if w.new is KEEP
                            else self.policy.landed(column, w.pk, current, w.new)
                        ):
                            self._count(column, w)
                        else:
                            losers[i].append(w.pk)
        return losers

    def _write_indexed(self, cursor: Any, column: Column, sql: str, batch: list[_Write],
                       params: list[tuple[Any, ...]]) -> tuple[list[_Write], int]:
        """Writes that include a blind index, which may be ``UNIQUE``: a
        value that another row already holds (back-filling a column with
        duplicates) fails that row alone, reported, instead of the batch."""
        try:
            with transaction.atomic(using=self.using):
                cursor.executemany(sql, params)
                return batch, cursor.rowcount
        except IntegrityError:
            pass
        kept: list[_Write] = []
        matched = 0
        for write, row in zip(batch, params, strict=True):
            try:
                with transaction.atomic(using=self.using):
                    cursor.execute(sql, row)
            except IntegrityError:
                column.stats.fail(write.pk, None, "blind index not written: another row "
                                  "holds the same value and the field is unique")
                continue
            kept.append(write)
            matched += cursor.rowcount
        return kept, matched

    @staticmethod
    def _count(column: Column, write: _Write) -> None:
        column.stats.written += write.new is not KEEP
        column.stats.indexed += write.index is not KEEP
