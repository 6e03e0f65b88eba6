"""The walk over one table: read in pk order, re-seal, compare-and-swap."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, transaction
from django.db.models import ExpressionWrapper, F

from ..binding import pk_text
from ..crypto import (
    Keyring,
    binding,
    from_text,
    key_id_of,
    to_text,
)
from ..exceptions import DecryptionError
from .report import Failure, FieldStats, Mode, Progress, Report, Shard
from .scope import (
    Target,
    _integer_pk,
    _is_text_field,
)

#: Rows read, re-sealed and written per transaction.
DEFAULT_BATCH_SIZE = 1000
#: How many times a row that lost a compare-and-swap race is re-read.
DEFAULT_MAX_RETRIES = 5
#: Largest ``pk IN (...)`` list sent at once (SQLite's historic 999 limit).
_IN_CHUNK = 900


# --------------------------------------------------------------------------
# The rotator
# --------------------------------------------------------------------------


@dataclass
class _Column:
    """Per-field state during one run."""

    field: models.Field
    alias: str
    label: str
    is_text: bool
    sql: str
    stats: FieldStats


@dataclass
class _Write:
    pk: Any
    old_db: Any
    new_db: Any


class Rotator:
    """One run of rotation, dry run or check over a list of targets."""

    def __init__(
        self,
        *,
        keyring: Keyring | None = None,
        using: str = "default",
        batch_size: int = DEFAULT_BATCH_SIZE,
        mode: str = Mode.ROTATE,
        shard: Shard | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        progress: Callable[[Progress], None] | None = None,
        after_read: Callable[[type[models.Model], list[Any]], None] | None = None,
    ) -> None:
        if mode not in Mode.ALL:
            raise ValueError(f"unknown mode {mode!r}")
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if keyring is None:
            from ..conf import get_keyring

            keyring = get_keyring()
        self.keyring = keyring
        self.primary_id = keyring.primary.key_id
        self.using = using
        self.connection = connections[using]
        self.batch_size = batch_size
        self.mode = mode
        self.shard = shard
        self.max_retries = max_retries
        self.progress = progress
        #: Test seam: called with (model, pks) after each batch is read and
        #: before it is written (every mode), e.g. to race an application write.
        self.after_read = after_read

    # -- public ------------------------------------------------------------

    def run(self, targets: Iterable[Target]) -> Report:
        targets = list(targets)
        report = Report(self.mode, self.primary_id.hex(), self.shard,
                        open_only_key_ids=[k.id_hex for k in self.keyring.keys[1:]])
        start = time.perf_counter()
        try:
            for index, target in enumerate(targets):
                self._run_model(target, report, index, len(targets))
        except KeyboardInterrupt:
            # The open batch's transaction was rolled back; earlier batches
            # are committed and a rerun skips them.
            report.interrupted = True
        report.elapsed = time.perf_counter() - start
        return report

    # -- per model ---------------------------------------------------------

    def _columns(self, target: Target, report: Report) -> list[_Column]:
        quote = self.connection.ops.quote_name
        meta = target.model._meta
        table, pk_col = quote(meta.db_table), quote(meta.pk.column)
        cols = []
        for i, f in enumerate(target.fields):
            col = quote(f.column)
            stats = FieldStats(meta.label, f.name)
            report.fields.append(stats)
            cols.append(_Column(
                field=f,
                alias=f"_mcf_rot_{i}",
                label=f.binding_label,  # type: ignore[attr-defined]
                is_text=_is_text_field(f),
                sql=f"UPDATE {table} SET {col} = %s WHERE {pk_col} = %s AND {col} = %s",
                stats=stats,
            ))
        return cols

    def _base_queryset(self, target: Target, columns: list[_Column]) -> models.QuerySet:
        qs = target.model._base_manager.db_manager(self.using).all()
        # Read the raw column: the wrapper's output field has no converters,
        # so neither from_db_value nor the descriptor sees the value.
        raw = {
            c.alias: ExpressionWrapper(
                F(c.field.attname),
                output_field=models.TextField() if c.is_text else models.BinaryField(),
            )
            for c in columns
        }
        return qs.annotate(**raw)

    def _shard_filter(self, qs: models.QuerySet, integer_pk: bool) -> models.QuerySet:
        if self.shard is None or not integer_pk:
            return qs
        # ((pk % n) + n) % n: SQL's % truncates toward zero, so pk % n lies in
        # (-n, n) and adding n cannot overflow even for pk = -2**63, where the
        # former abs(pk) % n overflowed a 64-bit integer (PostgreSQL "bigint out
        # of range", SQLite "integer overflow") and so broke every shard.  The
        # result equals Python's pk % n: every row lands in exactly one shard.
        # For negative pks this differs from abs(pk) % n (mcfields <= 0.1.0), so
        # all shards of one run must run the same mcfields version.
        n = self.shard.count
        bucket = ExpressionWrapper(
            ((F("pk") % n) + n) % n, output_field=models.BigIntegerField()
        )
        return qs.annotate(_mcf_rot_shard=bucket).filter(_mcf_rot_shard=self.shard.remainder)

    def _run_model(self, target: Target, report: Report, index: int, count: int) -> None:
        columns = self._columns(target, report)
        integer_pk = _integer_pk(target.model)
        base = self._base_queryset(target, columns)
        scoped = self._shard_filter(base, integer_pk).order_by("pk")
        aliases = [c.alias for c in columns]
        label = target.label

        plain = target.model._base_manager.db_manager(self.using).all()
        total = self._shard_filter(plain, integer_pk).count()
        if self.shard is not None and not integer_pk:
            total = -(-total // self.shard.count)  # estimate
        done = 0
        self._emit(label, 0, total, index, count)

        for rows in self._batches(target, base, scoped, aliases, integer_pk):
            self._process_batch(target, base, columns, rows)
            done += len(rows)
            report.rows += len(rows)
            self._emit(label, done, max(total, done), index, count)
        self._emit(label, done, max(total, done), index, count, finished=True)

    def _emit(self, label: str, done: int, total: int, index: int, count: int,
              finished: bool = False) -> None:
        if self.progress is not None:
            self.progress(Progress(label, done, total, index, count, finished))

    def _batches(
        self,
        target: Target,
        base: models.QuerySet,
        scoped: models.QuerySet,
        aliases: list[str],
        integer_pk: bool,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Keyset pagination in pk order; yields lists of (pk, raw values...)."""
        last: Any = None
        hashed = self.shard is not None and not integer_pk
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
                yield self._read(base, aliases, mine)

    def _read(self, base: models.QuerySet, aliases: list[str],
              pks: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(pks), _IN_CHUNK):
            chunk = pks[i : i + _IN_CHUNK]
            rows.extend(base.filter(pk__in=chunk).order_by("pk").values_list("pk", *aliases))
        return rows

    # -- per batch ---------------------------------------------------------

    def _process_batch(
        self,
        target: Target,
        base: models.QuerySet,
        columns: list[_Column],
        rows: list[tuple[Any, ...]],
        attempt: int = 0,
    ) -> None:
        writes: list[list[_Write]] = [[] for _ in columns]
        for row in rows:
            pk = row[0]
            ctx_pk = None
            for i, column in enumerate(columns):
                raw = row[i + 1]
                stats = column.stats
                if raw is None:
                    if attempt == 0:
                        stats.null += 1
                    continue
                if attempt == 0:
                    stats.scanned += 1
                if ctx_pk is None:
                    ctx_pk = pk_text(pk)
                write = self._reseal(column, pk, ctx_pk, raw, attempt)
                if write is not None:
                    writes[i].append(write)

        if self.after_read is not None:
            self.after_read(target.model, [r[0] for r in rows])
        if self.mode != Mode.ROTATE or not any(writes):
            return

        losers = self._write(base, columns, writes)
        if not losers:
            return
        for i, pks in enumerate(losers):
            columns[i].stats.retried += len(pks)
        if attempt >= self.max_retries:
            for i, pks in enumerate(losers):
                columns[i].stats.gave_up.extend(pks)
            return
        # Re-read the rows whose column changed under us and try again; the
        # concurrent value may be under the first key already (then skipped).
        for i, pks in enumerate(losers):
            if pks:
                self._process_batch(
                    target, base, [columns[i]], self._read(base, [columns[i].alias], pks),
                    attempt + 1,
                )

    def _reseal(self, column: _Column, pk: Any, pk_str: str, raw: Any,
                attempt: int) -> _Write | None:
        stats = column.stats
        if column.field.stored_key_id(raw) == self.primary_id:  # type: ignore[attr-defined]
            # Already done: no need to decode the whole value.
            if attempt == 0:
                stats.by_key[self.primary_id.hex()] += 1
            stats.skipped += 1
            return None
        key_hex: str | None = None
        try:
            envelope = from_text(raw) if column.is_text else bytes(raw)
            key_id = key_id_of(envelope)
            key_hex = key_id.hex()
        except DecryptionError as exc:
            if attempt == 0:
                stats.by_key["malformed"] += 1
            self._fail(column, pk, None, exc.reason)
            return None
        if attempt == 0:
            stats.by_key[key_hex] += 1
        if key_id == self.primary_id:
            stats.skipped += 1
            return None
        if self.mode == Mode.CHECK:
            stats.pending += 1
            return None
        context = binding(column.label, pk_str)
        try:
            plaintext = self.keyring.open(envelope, context)
        except DecryptionError as exc:
            self._fail(column, pk, key_hex, exc.reason)
            return None
        if self.mode == Mode.DRY_RUN:
            stats.resealed += 1
            return None
        new_envelope = self.keyring.seal(plaintext, context)
        try:
            ok = self.keyring.open(new_envelope, context) == plaintext
        except DecryptionError:
            ok = False
        if not ok:  # pragma: no cover - would mean a broken guest
            self._fail(column, pk, key_hex, "re-sealed value did not verify; left as it was")
            return None
        new_db = to_text(new_envelope) if column.is_text else new_envelope
        old_db = raw if column.is_text else bytes(raw)
        return _Write(pk, old_db, new_db)

    def _fail(self, column: _Column, pk: Any, key_hex: str | None, reason: str) -> None:
        column.stats.failures.append(
            Failure(column.stats.model, column.stats.field, pk, key_hex, reason)
        )

    def _write(self, base: models.QuerySet, columns: list[_Column],
               writes: list[list[_Write]]) -> list[list[Any]]:
        """Compare-and-swap every write of one batch in one transaction.

        Returns, per column, the pks whose write did not apply because the
        column no longer held the value that was read.
        """
        connection = self.connection
        pk_field = base.model._meta.pk
        losers: list[list[Any]] = [[] for _ in columns]
        with transaction.atomic(using=self.using):
            with connection.cursor() as cursor:
                for i, column in enumerate(columns):
                    batch = writes[i]
                    if not batch:
                        continue
                    params = [
                        (w.new_db, pk_field.get_db_prep_value(w.pk, connection), w.old_db)
                        for w in batch
                    ]
                    cursor.executemany(column.sql, params)
                    applied = cursor.rowcount
                    if applied == len(batch):
                        column.stats.resealed += len(batch)
                        continue
                    # Some rows changed (or vanished) since they were read:
                    # find which by reading back what is there now.
                    wanted = {w.pk: w.new_db for w in batch}
                    now = dict(self._read(base, [column.alias], list(wanted)))
                    won = 0
                    for pk, new_db in wanted.items():
                        current = now.get(pk, _MISSING)
                        if current is _MISSING:
                            column.stats.vanished += 1  # deleted concurrently
                            continue
                        if not column.is_text and current is not None:
                            current = bytes(current)
                        if current == new_db:
                            won += 1
                        else:
                            losers[i].append(pk)
                    column.stats.resealed += won
        return losers


_MISSING = object()
