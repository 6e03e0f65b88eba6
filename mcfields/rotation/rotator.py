"""Rotation as a policy of the keyset walker (:mod:`mcfields.walker`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from django.db import models

from ..crypto import Keyring, key_id_of
from ..exceptions import DecryptionError
from ..walker import DEFAULT_BATCH_SIZE, DEFAULT_MAX_RETRIES, KEEP, Column, Walker
from .report import FieldStats, Mode, Progress, Report, Shard
from .scope import Target

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_RETRIES", "RotationPolicy", "Rotator"]


class RotationPolicy:
    """Re-seal every value that is not under the first key.

    A value whose header already names the first key is skipped without
    decoding the rest of it.  Any other value is opened with whichever
    configured key its header names and sealed under the first key for the
    same binding (``Keyring.reseal``, which also checks that the new
    envelope opens).  The size cap (``MCFIELDS_MAX_VALUE_SIZE``) is not
    applied: the value is already stored, and refusing it after the cap was
    lowered would only keep the old key in use.  With ``open_values=False``
    (``--check``) nothing is opened: values not under the first key are
    only counted as pending.
    """

    def __init__(self, keyring: Keyring, *, open_values: bool = True) -> None:
        self.keyring = keyring
        self.primary_id = keyring.primary.key_id
        self.open_values = open_values

    def decide(self, column: Column, pk: Any, raw: Any, attempt: int) -> Any:
        stats: FieldStats = column.stats  # type: ignore[assignment]
        fld = column.field
        first = attempt == 0
        if fld.stored_key_id(raw) == self.primary_id:
            # Already done: no need to decode the whole value.
            if first:
                stats.by_key[self.primary_id.hex()] += 1
            stats.skipped += 1
            return KEEP
        try:
            envelope = fld.storage.decode(raw)
            key_id = key_id_of(envelope)
        except DecryptionError as exc:
            if first:
                stats.by_key["malformed"] += 1
            stats.fail(pk, None, exc.reason)
            return KEEP
        key_hex = key_id.hex()
        if first:
            stats.by_key[key_hex] += 1
        if key_id == self.primary_id:
            stats.skipped += 1
            return KEEP
        if not self.open_values:
            stats.pending += 1
            return KEEP
        try:
            new = self.keyring.reseal(envelope, fld.associated_data(pk))
        except DecryptionError as exc:
            stats.fail(pk, key_hex, exc.reason)
            return KEEP
        return fld.storage.encode(new)

    def db_param(self, column: Column, new: Any, connection: Any) -> Any:
        return column.field.storage.db_param(new, connection)

    def landed(self, column: Column, pk: Any, current: Any, new: Any) -> bool:
        # Envelopes have random nonces: only this write stores this value.
        return bool(current == new)


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
        if keyring is None:
            from ..conf import get_keyring

            keyring = get_keyring()
        self.keyring = keyring
        self.primary_id = keyring.primary.key_id
        self.mode = mode
        self.shard = shard
        self.progress = progress
        self.walker = Walker(
            RotationPolicy(keyring, open_values=mode != Mode.CHECK),
            using=using, batch_size=batch_size, write=mode == Mode.ROTATE, shard=shard,
            max_retries=max_retries, after_read=after_read, indexes=True,
        )

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

    def _run_model(self, target: Target, report: Report, index: int, count: int) -> None:
        stats = [FieldStats(target.label, f.name) for f in target.fields]
        report.fields.extend(stats)
        walker = self.walker
        columns = walker.columns(target.model, list(zip(target.fields, stats, strict=True)))
        total = walker.rows_in_scope(target.model)
        done = 0
        self._emit(target.label, 0, total, index, count)

        def batch_done(pks: list[Any]) -> None:
            nonlocal done
            done += len(pks)
            report.rows += len(pks)
            self._emit(target.label, done, max(total, done), index, count)

        walker.walk(target.model, columns, on_batch=batch_done)
        self._emit(target.label, done, max(total, done), index, count, finished=True)

    def _emit(self, label: str, done: int, total: int, index: int, count: int,
              finished: bool = False) -> None:
        if self.progress is not None:
            self.progress(Progress(label, done, total, index, count, finished))
