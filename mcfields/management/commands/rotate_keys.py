"""``manage.py rotate_keys``: re-seal every encrypted value under the first key.

The work is done by :mod:`mcfields.rotation`; this module parses options,
draws progress and prints the summary.  See docs/OPERATIONS.md.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from mcfields.exceptions import MCFieldsError
from mcfields.rotation import (
    DEFAULT_BATCH_SIZE,
    Mode,
    Progress,
    Report,
    Rotator,
    Shard,
    find_targets,
)

#: Failed pks listed per column in the summary at verbosity 1.
_LIST_FAILURES = 20


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _ProgressPrinter:
    """A bar redrawn in place on a TTY; plain lines otherwise."""

    BAR = 30
    TTY_INTERVAL = 0.1
    LINE_INTERVAL = 10.0

    def __init__(self, command: BaseCommand, *, tty: bool, verbosity: int) -> None:
        self.out = command.stdout
        self.tty = tty
        self.verbosity = verbosity
        self.model_start = time.perf_counter()
        self.last_draw = 0.0
        self.open_line = False

    def end_line(self) -> None:
        """Finish a bar left mid-line (e.g. by an interrupt)."""
        if self.open_line:
            self.out.write("")
            self.open_line = False

    def __call__(self, event: Progress) -> None:
        if self.verbosity < 1:
            return
        now = time.perf_counter()
        if event.rows_done == 0 and not event.finished:
            self.model_start = now
            # On a TTY draw at once; plain lines wait for LINE_INTERVAL.
            self.last_draw = 0.0 if self.tty else now
            if not self.tty:
                rows = f"about {event.rows_total:,} rows" if event.rows_total else "no rows"
                where = f"[{event.model_index + 1}/{event.model_count}] {event.model}"
                self.out.write(f"{where}: {rows}")
            return
        if event.finished and event.rows_done == 0 and not self.tty:
            return
        if not event.finished:
            if self.tty:
                if now - self.last_draw < self.TTY_INTERVAL:
                    return
            elif self.verbosity < 2 and now - self.last_draw < self.LINE_INTERVAL:
                return
        self.last_draw = now
        elapsed = now - self.model_start
        rate = event.rows_done / elapsed if elapsed > 0 else 0.0
        if event.finished:
            eta = "done"
        elif rate > 0:
            eta = "ETA " + _duration((event.rows_total - event.rows_done) / rate)
        else:
            eta = "ETA ?"
        counts = f"{event.rows_done:,}/{event.rows_total:,} rows  {rate:,.0f} rows/s  {eta}"
        if self.tty:
            total = max(event.rows_total, 1)
            filled = self.BAR if event.finished else min(
                self.BAR, self.BAR * event.rows_done // total
            )
            bar = "#" * filled + "-" * (self.BAR - filled)
            self.out.write(f"\r{event.model} [{bar}] {counts}\x1b[K", ending="")
            self.open_line = True
            if event.finished:
                self.end_line()
            self.out.flush()
        else:
            self.out.write(f"{event.model}: {counts}")


def _key_counts(report: Report) -> str:
    """``"4f1c9a2e (1,024 values), malformed (2 values)"`` for the key ids
    other than the first that values were read under."""
    held = report.values_by_other_key()
    if not held:
        return "none"
    return ", ".join(f"{key} ({count:,} values)" for key, count in sorted(held.items()))


class Command(BaseCommand):
    help = (
        "Re-seal every encrypted value under the first key of MCFIELDS_KEYS, "
        "with compare-and-swap writes that never overwrite a concurrent update. "
        "--check exits 1 while any value is not under the first key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "labels", nargs="*", metavar="app_label[.ModelName]",
            help="Limit to these apps or models (default: every model with encrypted fields).",
        )
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS,
            help='Database alias to rotate (default: "default").',
        )
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
            help=f"Rows per batch; each batch commits on its own (default {DEFAULT_BATCH_SIZE}).",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--dry-run", action="store_true",
            help="Count values per model, field and key id and try to open the ones "
                 "that would be re-sealed; write nothing.",
        )
        mode.add_argument(
            "--check", action="store_true",
            help="Write nothing; exit 1 while any value is not under the first key.",
        )
        parser.add_argument(
            "--shard", metavar="K/N",
            help="Process only shard K of N (1 <= K <= N). Run N processes, on one or "
                 "many machines, to cover every row exactly once.",
        )

    def handle(self, *args: str, **options: Any) -> None:
        labels: list[str] = options["labels"]
        using: str = options["database"]
        if using not in connections:
            raise CommandError(f"unknown database alias {using!r}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            shard = Shard.parse(options["shard"]) if options["shard"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        mode = Mode.ROTATE
        if options["check"]:
            mode = Mode.CHECK
        elif options["dry_run"]:
            mode = Mode.DRY_RUN
        try:
            targets = find_targets(labels, using)
        except (LookupError, ValueError) as exc:
            raise CommandError(str(exc).strip('"')) from None
        if not targets:
            self.stdout.write("No models with encrypted fields.")
            return

        verbosity: int = options["verbosity"]
        printer = _ProgressPrinter(self, tty=self.stdout.isatty(), verbosity=verbosity)
        try:
            rotator = Rotator(
                using=using, batch_size=options["batch_size"], mode=mode, shard=shard,
                progress=printer,
            )
            report = rotator.run(targets)
        except (ImproperlyConfigured, MCFieldsError) as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            printer.end_line()
            raise CommandError(
                f"database error: {exc}. Batches committed so far are kept; "
                "run rotate_keys again to resume."
            ) from exc

        printer.end_line()
        self._summary(report, verbosity)
        if report.interrupted:
            raise CommandError(
                "interrupted. Batches committed so far are kept; run rotate_keys again "
                "to resume.",
                returncode=130,
            )
        self._exit(report, verbosity)

    # -- output ------------------------------------------------------------

    def _summary(self, report: Report, verbosity: int) -> None:
        if verbosity < 1 and report.ok:
            return
        style = self.style
        where = f", shard {report.shard}" if report.shard else ""
        title = {
            Mode.ROTATE: "Rotation",
            Mode.DRY_RUN: "Dry run (nothing written)",
            Mode.CHECK: "Check (nothing written)",
        }[report.mode]
        self.stdout.write(style.MIGRATE_HEADING(
            f"{title}: first key {report.primary_key_id}{where}"
        ))
        # Which phase of the rollout this process is in (docs/OPERATIONS.md):
        # the first key seals, the others only open.
        others = ", ".join(report.open_only_key_ids) or "none"
        self.stdout.write(
            f"MCFIELDS_KEYS here: {report.primary_key_id} seals (first); "
            f"open only: {others}"
        )
        done_word = {Mode.ROTATE: "re-sealed", Mode.DRY_RUN: "would re-seal"}.get(report.mode)
        for s in report.fields:
            parts = [f"scanned {s.scanned:,}", f"under first key {s.skipped:,}"]
            if report.mode == Mode.CHECK:
                parts.append(f"not under first key {s.pending:,}")
            else:
                parts.append(f"{done_word} {s.resealed:,}")
            parts.append(f"failed {s.failed:,}")
            if s.null:
                parts.append(f"null {s.null:,}")
            if s.retried:
                parts.append(f"retried after concurrent write {s.retried:,}")
            if s.index_stale or s.indexed:
                index_word = {Mode.ROTATE: "rebuilt"}.get(report.mode, "to rebuild")
                parts.append(f"blind indexes {index_word} {s.indexed:,} "
                             f"(stale {s.index_stale:,})")
            keys = ", ".join(f"{k} {n:,}" for k, n in sorted(s.by_key.items()))
            self.stdout.write(f"  {s.label}: {', '.join(parts)}")
            if keys and (report.mode != Mode.ROTATE or verbosity >= 2):
                self.stdout.write(f"    by key id: {keys}")

        rate = f"{report.rows_per_second:,.0f} rows/s"
        totals = [
            f"{report.rows:,} rows",
            f"{report.scanned:,} values scanned",
            f"{report.skipped:,} already under first key",
        ]
        if report.mode == Mode.CHECK:
            totals.append(f"{report.pending:,} not under first key")
        else:
            totals.append(f"{report.resealed:,} {done_word}")
        if report.index_stale or report.indexed:
            index_word = {Mode.ROTATE: "rebuilt"}.get(report.mode, "to rebuild")
            totals.append(f"{report.indexed:,} blind indexes {index_word}")
        totals.append(f"{len(report.failures):,} failed")
        self.stdout.write(
            f"Total: {', '.join(totals)} in {report.elapsed:.1f} s ({rate})"
        )

        if report.gave_up:
            self.stdout.write(style.WARNING(
                f"{report.gave_up:,} values kept changing under concurrent writes and were "
                "left for a rerun (rotate_keys --check will list them as pending)."
            ))
        if report.mode == Mode.DRY_RUN and report.resealed:
            held = _key_counts(report)
            self.stdout.write(
                f"A run would re-seal {report.resealed:,} values under the first key "
                f"{report.primary_key_id} (now under key id {held}). Before rotating, "
                f"{report.primary_key_id} must be first in MCFIELDS_KEYS on every server."
            )
        failures = report.failures
        if failures:
            self.stderr.write(style.ERROR(
                f"{_values(len(failures))} failed to open and were left untouched:"
            ))
            limit = None if verbosity >= 2 else _LIST_FAILURES
            for failure in failures[:limit]:
                self.stderr.write(f"  {failure}")
            if limit is not None and len(failures) > limit:
                more = len(failures) - limit
                self.stderr.write(f"  ... and {more:,} more (use -v 2 to list all)")

    def _exit(self, report: Report, verbosity: int) -> None:
        if report.mode == Mode.CHECK:
            scope = (f" (shard {report.shard} only: check every shard, or run without "
                     "--shard)") if report.shard else ""
            if report.not_under_primary:
                raise CommandError(
                    f"{report.not_under_primary:,} values are not under the first key "
                    f"{report.primary_key_id}{scope}; key ids still holding values: "
                    f"{_key_counts(report)}. Keep those keys in MCFIELDS_KEYS. With "
                    f"{report.primary_key_id} first in MCFIELDS_KEYS on every server, run "
                    "rotate_keys, then --check again.",
                    returncode=1,
                )
            if report.index_stale:
                raise CommandError(
                    f"{report.index_stale:,} blind indexes of searchable fields are missing "
                    f"or not under the first key {report.primary_key_id}{scope}: lookups "
                    "would not find those rows once the other keys are removed. Run "
                    "rotate_keys (it rebuilds them), then --check again.",
                    returncode=1,
                )
            if verbosity >= 1:
                removable = ", ".join(report.open_only_key_ids)
                tail = (
                    f" No value in scope{scope} is under {removable}: those keys can be "
                    "removed from MCFIELDS_KEYS (keep them offline while backups need them)."
                    if removable else ""
                )
                self.stdout.write(self.style.SUCCESS(
                    f"Every value is under the first key {report.primary_key_id}.{tail}"
                ))
            return
        if report.failures:
            raise CommandError(
                f"{_values(len(report.failures))} failed to open (listed above)", returncode=1
            )
        if report.mode == Mode.ROTATE and not report.gave_up and verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("Done."))


def _values(count: int) -> str:
    """"1 value", "2 values": the summary is read by people."""
    return f"{count:,} value{'' if count == 1 else 's'}"
