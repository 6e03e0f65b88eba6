"""rotate_keys in-process: round trip, dry run, check, tampering, races, shards."""

from __future__ import annotations

import io
import random
import uuid
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.core.management.color import no_style
from django.db import connection

from mcfields.crypto import Keyring
from mcfields.rotation import Mode, Report, Rotator, Shard, find_targets
from mcfields.walker import Walker
from tests.rotation.rotapp.models import ChildSecret, Secret, UuidSecret
from tests.rotation.support import (
    INSERT_SECRET,
    Keys,
    check_secret_rows,
    key_id_hex,
    label_of,
    open_text,
    seal_bytes,
    seal_text,
    secret_rows,
    text_for,
)

pytestmark = pytest.mark.django_db

N_SECRET = 400
N_OTHER = 30


def raw_secret() -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute("SELECT id, text, blob, note FROM rotapp_secret ORDER BY id")
        return [(pk, t, bytes(b) if b is not None else None, n) for pk, t, b, n in cur.fetchall()]


def raw_all() -> dict[str, list[tuple[Any, ...]]]:
    with connection.cursor() as cur:
        cur.execute("SELECT id, text FROM rotapp_uuidsecret ORDER BY id")
        uuids = cur.fetchall()
        cur.execute("SELECT secret_ptr_id, extra FROM rotapp_childsecret ORDER BY secret_ptr_id")
        children = cur.fetchall()
    return {"secret": raw_secret(), "uuid": uuids, "child": children}


def key_ids(stored: list[Any]) -> set[str]:
    return {key_id_hex(v) for v in stored if v is not None}


def all_key_ids() -> set[str]:
    raw = raw_all()
    values = [v for row in raw["secret"] for v in row[1:]]
    values += [row[1] for row in raw["uuid"]] + [row[1] for row in raw["child"]]
    return key_ids(values)


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


def rotate_fails(*args: str) -> tuple[CommandError, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("rotate_keys", *args, stdout=out, stderr=out)
    return info.value, out.getvalue()


@pytest.fixture
def old_rows(settings: Any, keys: Keys) -> dict[str, Any]:
    """Rows under the old key; afterwards MCFIELDS_KEYS = [new, old]."""
    settings.MCFIELDS_KEYS = [keys.old]
    with connection.cursor() as cur:
        cur.executemany(INSERT_SECRET, secret_rows(keys.ring("old"), range(1, N_SECRET + 1)))
        for sql in connection.ops.sequence_reset_sql(no_style(), [Secret]):
            cur.execute(sql)
    # These go through the field layer's own save path.
    uuids = {}
    for i in range(N_OTHER):
        # Fixed pks: shards of UUID rows are assigned by crc32, and with
        # random pks a shard of five would sometimes get none of 30 rows.
        pk = uuid.UUID(int=random.Random(i).getrandbits(128), version=4)
        obj = UuidSecret.objects.create(id=pk, text=f"uuid row {i} ✓")
        uuids[obj.pk] = obj.text
    children = {}
    for i in range(N_OTHER):
        child = ChildSecret.objects.create(
            ref=-i, text=f"child text {i}", extra=f"child extra {i}" if i % 2 else None
        )
        children[child.pk] = (f"child text {i}", f"child extra {i}" if i % 2 else None)
    assert all_key_ids() == {keys.key_id("old")}
    settings.MCFIELDS_KEYS = [keys.new, keys.old]
    return {"uuid": uuids, "child": children}


def assert_all_open_with_new_only(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    settings.MCFIELDS_KEYS = [keys.new]
    assert all_key_ids() == {keys.key_id("new")}
    assert check_secret_rows(keys.ring("new"), [r for r in raw_secret() if r[0] <= N_SECRET]) == []
    # And through the field layer (descriptor and Sealed.open) with only the new key.
    for pk, text in old_rows["uuid"].items():
        assert UuidSecret.objects.get(pk=pk).text == text
    for pk, (text, extra) in old_rows["child"].items():
        child = ChildSecret.objects.get(pk=pk)
        assert (child.text, child.extra) == (text, extra)
    for pk, sealed in Secret.objects.filter(pk__lte=20).values_list("pk", "text"):
        assert sealed.open(pk) == text_for(pk)
    assert Secret.objects.get(pk=15).note == text_for(15, "n", 20)


# -- round trip --------------------------------------------------------------


def test_round_trip(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    error, out = rotate_fails("--check")
    assert error.returncode == 1
    assert "not under the first key" in str(error)

    out = rotate("--batch-size", "64")
    assert "Done." in out
    n_values = N_SECRET + N_SECRET // 3 + N_SECRET // 5 + 2 * N_OTHER + N_OTHER // 2
    assert f"{n_values:,} re-sealed" in out
    assert "0 failed" in out
    for pk in (1, 2, 3):
        assert text_for(pk) not in out  # no plaintext in the output

    assert "Every value is under the first key" in rotate("--check")
    assert_all_open_with_new_only(settings, keys, old_rows)


def test_rerun_rewrites_nothing(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    rotate()
    before = raw_all()
    report = Rotator().run(find_targets())
    assert report.resealed == 0 and report.failures == []
    assert report.skipped == report.scanned > 0
    assert raw_all() == before


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_every_batch_size_covers_every_row(
    settings: Any, keys: Keys, old_rows: dict[str, Any], batch_size: int
) -> None:
    report = Rotator(batch_size=batch_size).run(find_targets())
    # Secret (with the children's parent rows), UuidSecret, ChildSecret.
    assert report.rows == N_SECRET + 2 * N_OTHER + N_OTHER
    assert report.scanned == report.resealed + report.skipped
    assert_all_open_with_new_only(settings, keys, old_rows)


# -- dry run and check -------------------------------------------------------


def test_dry_run_changes_nothing(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    before = raw_all()
    out = rotate("--dry-run", "--batch-size", "50")
    assert raw_all() == before
    assert "Dry run (nothing written)" in out
    old_id = keys.key_id("old")
    n_text = N_SECRET + N_OTHER
    assert (f"rotapp.Secret.text: scanned {n_text:,}, under first key 0, "
            f"would re-seal {n_text:,}") in out
    assert f"by key id: {old_id} {n_text:,}" in out
    assert f"rotapp.UuidSecret.text: scanned {N_OTHER}" in out


def test_dry_run_counts_mixed_keys(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    rotate("rotapp.UuidSecret")
    report = Rotator(mode=Mode.DRY_RUN).run(find_targets(["rotapp"]))
    by_field = {s.label: s for s in report.fields}
    assert by_field["rotapp.UuidSecret.text"].by_key == {keys.key_id("new"): N_OTHER}
    assert by_field["rotapp.UuidSecret.text"].skipped == N_OTHER
    assert by_field["rotapp.Secret.blob"].by_key == {keys.key_id("old"): N_SECRET // 3}
    assert by_field["rotapp.Secret.blob"].null == N_SECRET - N_SECRET // 3 + N_OTHER
    assert by_field["rotapp.Secret.blob"].resealed == N_SECRET // 3


def test_check_fails_until_every_model_is_done(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    rotate("rotapp.Secret")
    error, out = rotate_fails("--check")
    assert error.returncode == 1
    assert f"not under first key {N_OTHER}" in out  # UuidSecret is still old
    rotate("rotapp.UuidSecret", "rotapp.ChildSecret")
    assert "Every value is under the first key" in rotate("--check")


def test_check_after_removing_a_key_still_counts_it(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    # The operator removed the old key too early: --check must still fail.
    settings.MCFIELDS_KEYS = [keys.new]
    error, out = rotate_fails("--check", "rotapp.UuidSecret")
    assert error.returncode == 1
    assert f"by key id: {keys.key_id('old')} {N_OTHER}" in out


# -- failures ----------------------------------------------------------------


def test_tampered_rows_are_reported_and_untouched(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    old, other = keys.ring("old"), keys.ring("other")
    lt, lb, ln = label_of(Secret, "text"), label_of(Secret, "blob"), label_of(Secret, "note")
    rows = {r[0]: r for r in raw_secret()}
    flipped = rows[7][1][:40] + ("A" if rows[7][1][40] != "A" else "B") + rows[7][1][41:]
    with connection.cursor() as cur:
        up = "UPDATE rotapp_secret SET {} = %s WHERE id = %s"
        cur.execute(up.format("text"), [flipped, 7])                              # bit flip
        cur.execute(up.format("text"), [rows[9][1], 8])                           # moved row
        cur.execute(up.format("blob"), [seal_bytes(other, lb, 12, b"x"), 12])     # unknown key
        cur.execute(up.format("note"), [seal_text(old, lt, 15, "n"), 15])         # other column
        cur.execute(up.format("text"), ["plain text, never sealed", 20])          # not an envelope
    tampered = {(7, 1), (8, 1), (12, 2), (15, 3), (20, 1)}
    before = {r[0]: r for r in raw_secret()}

    error, out = rotate_fails()
    assert error.returncode == 1
    assert "5 values failed to open" in str(error)
    old_id = keys.key_id("old")
    assert f"rotapp.Secret.text pk=7 key id {old_id}: authentication failed" in out
    assert f"rotapp.Secret.text pk=8 key id {old_id}" in out
    assert f"rotapp.Secret.blob pk=12 key id {keys.key_id('other')}: sealed under a key" in out
    assert f"rotapp.Secret.note pk=15 key id {old_id}" in out
    assert "rotapp.Secret.text pk=20 key id ?: stored text is not an mcfields envelope" in out
    assert "plain text, never sealed" not in out

    after = {r[0]: r for r in raw_secret()}
    for pk, column in tampered:
        assert after[pk][column] == before[pk][column], (pk, column)
    # Everything else moved to the new key, including the tampered rows' other columns.
    new_id = keys.key_id("new")
    for pk, row in after.items():
        for column in (1, 2, 3):
            if row[column] is not None and (pk, column) not in tampered:
                assert key_id_hex(row[column]) == new_id, (pk, column)
    ring = Keyring.from_strings([keys.new])
    assert open_text(ring, lt, 12, after[12][1]) == text_for(12)
    assert open_text(ring, ln, 20, after[20][3]) == text_for(20, "n", 20)

    # A rerun reports the same five and still touches none of them.
    error, out = rotate_fails()
    assert "5 values failed to open" in str(error)
    assert {r[0]: r for r in raw_secret()} == after
    error, _ = rotate_fails("--check")
    assert error.returncode == 1


def test_dry_run_reports_failures(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    with connection.cursor() as cur:
        cur.execute("UPDATE rotapp_secret SET text = %s WHERE id = %s", ["mcf1:AAAA", 3])
    before = raw_all()
    error, out = rotate_fails("--dry-run", "rotapp.Secret")
    assert error.returncode == 1
    assert "rotapp.Secret.text pk=3" in out
    assert raw_all() == before


# -- compare-and-swap against application writes -----------------------------


def test_concurrent_writes_win(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    """Writes that land between the rotator's read and its write are kept."""
    old = keys.ring("old")
    lt = label_of(Secret, "text")
    raced: list[list[Any]] = []

    def race(model: type, pks: list[Any]) -> None:
        if model is not Secret or raced:
            return
        raced.append(pks)
        # An up-to-date app server: saves through the ORM under the new key.
        obj = Secret.objects.get(pk=2)
        obj.text = "app write ✓ 2"
        obj.save()
        # A server still on the old settings: its write is under the old key.
        with connection.cursor() as cur:
            cur.execute("UPDATE rotapp_secret SET text = %s WHERE id = %s",
                        [seal_text(old, lt, 3, "old server write 3"), 3])
            cur.execute("DELETE FROM rotapp_secret WHERE id = %s", [4])

    report = Rotator(batch_size=50, after_read=race).run(find_targets(["rotapp.Secret"]))
    assert raced and {2, 3, 4} <= set(raced[0])
    text_stats = next(s for s in report.fields if s.label == "rotapp.Secret.text")
    assert text_stats.retried == 2  # rows 2 and 3 lost the race
    assert text_stats.vanished == 1  # row 4 was deleted
    assert report.gave_up == 0 and report.failures == []

    settings.MCFIELDS_KEYS = [keys.new]
    assert Secret.objects.get(pk=2).text == "app write ✓ 2"
    assert Secret.objects.get(pk=3).text == "old server write 3"
    assert not Secret.objects.filter(pk=4).exists()
    expected = {2: "app write ✓ 2", 3: "old server write 3"}
    rows = [r for r in raw_secret() if r[0] <= N_SECRET]
    assert check_secret_rows(keys.ring("new"), rows, expected_text=expected) == []
    assert key_ids([v for r in rows for v in r[1:]]) == {keys.key_id("new")}


def test_row_that_never_settles_is_left_for_a_rerun(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    old = keys.ring("old")
    lt = label_of(Secret, "text")
    writes = []

    def hammer(model: type, pks: list[Any]) -> None:
        if model is Secret and 5 in pks:
            value = f"write {len(writes)}"
            writes.append(value)
            with connection.cursor() as cur:
                cur.execute("UPDATE rotapp_secret SET text = %s WHERE id = %s",
                            [seal_text(old, lt, 5, value), 5])

    report = Rotator(batch_size=10, max_retries=2, after_read=hammer).run(
        find_targets(["rotapp.Secret"])
    )
    assert report.gave_up == 1 and len(writes) == 3
    row5 = next(r for r in raw_secret() if r[0] == 5)
    assert open_text(old, lt, 5, row5[1]) == writes[-1]
    error, out = rotate_fails("--check", "rotapp.Secret")
    assert "not under first key 1," in out
    rotate("rotapp.Secret")  # no more writes: the rerun finishes the row
    rotate("--check", "rotapp.Secret")


# -- interruption ------------------------------------------------------------


def test_interrupt_keeps_committed_batches(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    batches = []

    def stop_at_third(model: type, pks: list[Any]) -> None:
        batches.append(pks)
        if len(batches) == 3:
            raise KeyboardInterrupt

    report = Rotator(batch_size=50, after_read=stop_at_third).run(
        find_targets(["rotapp.Secret"])
    )
    assert report.interrupted and report.rows == 100
    ids = [key_id_hex(r[1]) for r in raw_secret()]
    assert set(ids[:100]) == {keys.key_id("new")}  # two batches committed
    assert set(ids[100:]) == {keys.key_id("old")}  # the third rolled back
    rotate("rotapp.Secret")
    rotate("--check", "rotapp.Secret")


def test_command_reports_an_interrupt(
    settings: Any, keys: Keys, old_rows: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = Walker.process

    def flaky(self: Walker, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(self, *args, **kwargs)

    monkeypatch.setattr(Walker, "process", flaky)
    error, out = rotate_fails("rotapp.Secret", "--batch-size", "100")
    assert error.returncode == 130
    assert "interrupted" in str(error) and "run rotate_keys again" in str(error)
    assert "Total: 100 rows" in out


# -- shards ------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_cover_every_row_exactly_once(
    settings: Any, keys: Keys, old_rows: dict[str, Any], count: int
) -> None:
    targets = find_targets(["rotapp.Secret", "rotapp.UuidSecret", "rotapp.ChildSecret"])
    seen: dict[type, list[Any]] = {t.model: [] for t in targets}

    def collect(model: type, pks: list[Any]) -> None:
        seen[model].extend(pks)

    per_shard = []
    for index in range(1, count + 1):
        before = {m: len(v) for m, v in seen.items()}
        Rotator(mode=Mode.CHECK, shard=Shard(index, count), batch_size=7,
                after_read=collect).run(targets)
        per_shard.append({m: len(v) - before[m] for m, v in seen.items()})
    expected = {
        Secret: list(Secret.objects.values_list("pk", flat=True)),
        UuidSecret: list(UuidSecret.objects.values_list("pk", flat=True)),
        ChildSecret: list(ChildSecret.objects.values_list("pk", flat=True)),
    }
    for model, pks in seen.items():
        assert len(pks) == len(set(pks)), f"{model.__name__}: a row was in two shards"
        assert sorted(pks, key=str) == sorted(expected[model], key=str), model.__name__
    for counts in per_shard:  # each shard got a share of every table
        assert all(n > 0 for n in counts.values()), counts


def test_sharded_runs_rotate_everything(
    settings: Any, keys: Keys, old_rows: dict[str, Any]
) -> None:
    outputs = [rotate("--shard", "1/3"), rotate("--shard", "2/3")]
    error, _ = rotate_fails("--check")
    assert error.returncode == 1
    outputs.append(rotate("--shard", "3/3"))
    assert all("shard" in out for out in outputs)
    rotate("--check")
    assert_all_open_with_new_only(settings, keys, old_rows)


def test_shard_parsing() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", "-1/3"):
        with pytest.raises(ValueError):
            Shard.parse(bad)


def test_hashed_shard_assignment_is_fixed() -> None:
    # Machines share nothing but K/N: the assignment is crc32(pk text) % N.
    pk = "12345678-1234-5678-1234-567812345678"
    assert [k for k in range(1, 5) if Shard(k, 4).owns_text(pk)] == [2]


# -- scope, options, output ----------------------------------------------------


def test_scope_limits_the_run(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    out = rotate("rotapp.UuidSecret")
    assert "rotapp.UuidSecret.text" in out and "rotapp.Secret.text" not in out
    assert key_ids([r[1] for r in raw_all()["uuid"]]) == {keys.key_id("new")}
    assert key_ids([r[1] for r in raw_secret()]) == {keys.key_id("old")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No installed app with label 'nope'"),
        (["rotapp.Nope"], "App 'rotapp' doesn't have a 'Nope' model"),
        (["rotapp.PlainRow"], "rotapp.PlainRow has no encrypted fields"),
        (["auth"], "app 'auth' has no models with encrypted fields"),
        (["--shard", "3/2"], "shard must be K/N with 1 <= K <= N"),
        (["--shard", "x"], "shard must look like K/N"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--database", "nope"], "unknown database alias 'nope'"),
        (["--check", "--dry-run"], "not allowed with argument"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    error, _ = rotate_fails(*args)
    assert message in str(error)


def test_find_targets_lists_concrete_encrypted_models() -> None:
    labels = {t.label: [f.name for f in t.fields] for t in find_targets(["rotapp"])}
    assert labels == {
        "rotapp.Secret": ["text", "blob", "note"],
        "rotapp.UuidSecret": ["text"],
        "rotapp.ChildSecret": ["extra"],
        "rotapp.Document": ["text"],
        "rotapp.TypedSecret": ["number", "day", "amount", "data", "flag", "packed"],
    }
    assert {"rotapp.Secret", "rotapp.UuidSecret"} <= {t.label for t in find_targets()}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_tty(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    out = _Tty()
    call_command("rotate_keys", "rotapp.Secret", "--batch-size", "100", stdout=out)
    text = out.getvalue()
    assert "\rrotapp.Secret [" in text and "#" * 30 in text
    assert f"{N_SECRET + N_OTHER}/{N_SECRET + N_OTHER} rows" in text
    assert "rows/s" in text and "done" in text


def test_plain_progress_lines(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    out = rotate("rotapp.Secret", "--batch-size", "100", "-v", "2")
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("rotapp.Secret: ")]
    assert lines[0].startswith("rotapp.Secret: 100/430 rows")
    assert "ETA" in lines[0] and "rows/s" in lines[0]
    assert lines[-1].endswith("done")
    assert "Total: 430 rows" in out


def test_quiet_run_prints_nothing(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    assert rotate("-v", "0") == ""


def test_report_invariants(settings: Any, keys: Keys, old_rows: dict[str, Any]) -> None:
    report: Report = Rotator(batch_size=33).run(find_targets())
    for s in report.fields:
        assert s.scanned == s.resealed + s.skipped + s.failed + s.vanished, s.label
        assert sum(s.by_key.values()) == s.scanned
    assert report.ok and report.rows_per_second > 0


EXTREME_PKS = (-(2**63), -(2**63) + 1, -7, -1, 0, 1, 2, 3, 2**63 - 2, 2**63 - 1)


@pytest.mark.parametrize("count", [2, 3, 5, 7])
def test_shards_of_extreme_integer_pks(settings: Any, keys: Keys, count: int) -> None:
    """Item 18: a pk of -2**63 overflowed ``abs(pk)`` in SQL and broke every
    shard; each row must still land in exactly one shard, and be rotated."""
    settings.MCFIELDS_KEYS = [keys.old]
    with connection.cursor() as cur:
        # ``ref`` is a 32-bit column: keep it small, only the pk is extreme.
        rows = [(pk, 0, *rest) for pk, _ref, *rest in secret_rows(keys.ring("old"), EXTREME_PKS)]
        cur.executemany(INSERT_SECRET, rows)
    settings.MCFIELDS_KEYS = [keys.new, keys.old]
    targets = find_targets(["rotapp.Secret"])
    owners: dict[int, list[int]] = {pk: [] for pk in EXTREME_PKS}
    for index in range(1, count + 1):
        seen: list[Any] = []
        Rotator(mode=Mode.CHECK, shard=Shard(index, count), batch_size=3,
                after_read=lambda model, pks, seen=seen: seen.extend(pks)).run(targets)
        for pk in seen:
            owners[pk].append(index)
        # The documented function: shard ((pk % N) + N) % N + 1, i.e. Python's pk % N + 1.
        assert all(pk % count + 1 == index for pk in seen), (index, seen)
    assert {pk: len(found) for pk, found in owners.items()} == dict.fromkeys(EXTREME_PKS, 1)

    reports = [
        Rotator(shard=Shard(index, count), batch_size=3).run(targets)
        for index in range(1, count + 1)
    ]
    assert sum(r.resealed for r in reports) == sum(
        1 + (pk % 3 == 0) + (pk % 5 == 0) for pk in EXTREME_PKS
    )
    assert all(r.ok and not r.failures for r in reports)
    settings.MCFIELDS_KEYS = [keys.new]
    assert check_secret_rows(keys.ring("new"), raw_secret()) == []
