"""What a rotation run counts and reports: modes, shards, failures, totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..walker import ColumnStats, Failure, Shard

__all__ = ["Failure", "FieldStats", "Mode", "Progress", "Report", "Shard"]


class Mode:
    ROTATE = "rotate"
    DRY_RUN = "dry-run"
    CHECK = "check"
    ALL = (ROTATE, DRY_RUN, CHECK)


@dataclass
class FieldStats(ColumnStats):
    """Counts for one encrypted column: the walk's (scanned, null, retried,
    vanished, gave_up, failures) and rotation's own."""

    #: Already under the first key.
    skipped: int = 0
    #: Not under the first key (CHECK mode; no opening is attempted there).
    pending: int = 0
    #: Key id (hex) of every scanned value as first read; "malformed" if none.
    by_key: Counter[str] = field(default_factory=Counter)

    @property
    def resealed(self) -> int:
        """Written under the first key (ROTATE), or would be (DRY_RUN)."""
        return self.written


@dataclass
class Report:
    mode: str
    primary_key_id: str
    shard: Shard | None
    fields: list[FieldStats] = field(default_factory=list)
    rows: int = 0
    elapsed: float = 0.0
    #: The run stopped early on KeyboardInterrupt; committed batches are kept.
    interrupted: bool = False
    #: Ids (hex) of the configured keys after the first: they open, never seal.
    open_only_key_ids: list[str] = field(default_factory=list)

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.fields)

    @property
    def scanned(self) -> int:
        return self._sum("scanned")

    @property
    def resealed(self) -> int:
        return self._sum("resealed")

    @property
    def skipped(self) -> int:
        return self._sum("skipped")

    @property
    def pending(self) -> int:
        return self._sum("pending")

    @property
    def index_stale(self) -> int:
        """Blind indexes missing or not under the first key, as first read."""
        return self._sum("index_stale")

    @property
    def indexed(self) -> int:
        """Blind indexes rebuilt (ROTATE), or that would be (DRY_RUN, CHECK)."""
        return self._sum("indexed")

    @property
    def retried(self) -> int:
        return self._sum("retried")

    @property
    def null(self) -> int:
        return self._sum("null")

    @property
    def failures(self) -> list[Failure]:
        return [f for s in self.fields for f in s.failures]

    @property
    def gave_up(self) -> int:
        return sum(len(s.gave_up) for s in self.fields)

    def values_by_other_key(self) -> Counter[str]:
        """Values read under a key id other than the first, summed over fields
        ("malformed" for values that are not envelopes).

        These are the key ids that still hold values: removing one of them
        from MCFIELDS_KEYS would make those values unreadable.
        """
        total: Counter[str] = Counter()
        for stats in self.fields:
            for key_id, count in stats.by_key.items():
                if key_id != self.primary_key_id:
                    total[key_id] += count
        return total

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def not_under_primary(self) -> int:
        """Values that would stop opening if every other key were removed."""
        if self.mode == Mode.CHECK:
            return self.pending + len(self.failures)
        if self.mode == Mode.DRY_RUN:
            return self.resealed + len(self.failures)
        return len(self.failures) + self.gave_up

    @property
    def ok(self) -> bool:
        if self.mode == Mode.CHECK:
            # Stale blind indexes fail the check too: after the old key is
            # removed, lookups would no longer find those rows.
            return self.not_under_primary == 0 and self.index_stale == 0
        return not self.failures


@dataclass(frozen=True)
class Progress:
    """Sent to the progress callback after every batch."""

    model: str
    rows_done: int
    #: Estimated rows for this model (exact unless sharded on a non-integer pk).
    rows_total: int
    model_index: int
    model_count: int
    finished: bool = False
