"""Adopting mcfields on columns that already hold plaintext (issue 5).

Each test gets a database of its own (a SQLite file, or a fresh PostgreSQL
database when MCFIELDS_TEST_DB=postgres), migrates ``adoptapp`` to 0001
(plain TextField/BinaryField), writes a few thousand plaintext rows with
raw SQL, and drives ``manage.py migrate`` in subprocesses, as a user would.
Results are checked on the raw columns with the crypto API alone.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from mcfields.binding import pk_text
from mcfields.crypto import Keyring, binding, from_text
from tests.adoption.support import KEY, ROOT, Target, django_shell

FOREIGN_KEY = "A" * 43 + "="  # a key the migrating process does not have
ROWS_PER_TABLE = 1500
TABLES = ("adoptapp_note", "adoptapp_uuidnote")


def plaintext_text(i: int) -> str:
    special = ["", " ", "mcf1:", "mcf1:AQAAAAAA", "0", "naïve ✓ 東京", "x" * 3000]
    if i < len(special):
        return special[i]
    return f"row {i}: confidential note {i * 7919 % 104729} é"


def plaintext_blob(i: int) -> bytes | None:
    if i % 11 == 0:
        return None
    if i % 13 == 0:
        return b""
    # Starts with the envelope version byte on purpose: still plaintext, as
    # long as it is shorter than an envelope's fixed overhead (45 bytes).
    # Longer ones are indistinguishable from an envelope under an unknown
    # key and stop the migration (test_ambiguous.py covers them).
    size = 20 + i % 90
    body = random.Random(i).randbytes(size)
    if i % 5 == 0 and size < 40:
        return b"\x01" + body
    return body.lstrip(b"\x01")  # random bytes start with 0x01 one time in 256


def fill_plaintext(target: Target) -> dict[tuple[str, Any], tuple[str, bytes | None]]:
    """Migrate to 0001 and insert plaintext rows; return what was written."""
    result = target.migrate("0001")
    assert result.returncode == 0, result.stderr
    expected: dict[tuple[str, Any], tuple[str, bytes | None]] = {}
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    for i in range(ROWS_PER_TABLE):
        text, blob = plaintext_text(i), plaintext_blob(i)
        expected[("adoptapp_note", i + 1)] = (text, blob)
        rows["adoptapp_note"].append((i + 1, text, blob))
        upk = uuid.UUID(int=random.Random(i).getrandbits(128), version=4)
        expected[("adoptapp_uuidnote", upk)] = (text, blob)
        rows["adoptapp_uuidnote"].append((target.db_pk(upk), text, blob))
    conn = target.connect()
    try:
        for table, values in rows.items():
            target.executemany(conn, f"INSERT INTO {table} (id, text, blob) VALUES (%s, %s, %s)",
                               values)
    finally:
        conn.close()
    return expected


def read_raw(target: Target) -> dict[tuple[str, Any], tuple[Any, Any]]:
    conn = target.connect()
    try:
        out = {}
        for table in TABLES:
            cur = conn.cursor()
            cur.execute(f"SELECT id, text, blob FROM {table}")
            for pk, text, blob in cur.fetchall():
                if table == "adoptapp_uuidnote" and not isinstance(pk, uuid.UUID):
                    pk = uuid.UUID(pk)
                out[(table, pk)] = (text, bytes(blob) if blob is not None else None)
        return out
    finally:
        conn.close()


LABELS = {
    "adoptapp_note": ("adoptapp.Note.text", "adoptapp.Note.blob"),
    "adoptapp_uuidnote": ("adoptapp.UUIDNote.text", "adoptapp.UUIDNote.blob"),
}


def assert_all_sealed(target: Target, expected: dict) -> None:
    ring = Keyring.from_strings([KEY])
    raw = read_raw(target)
    assert raw.keys() == expected.keys()
    problems = []
    for (table, pk), (text, blob) in expected.items():
        stored_text, stored_blob = raw[(table, pk)]
        text_label, blob_label = LABELS[table]
        try:
            assert stored_text.startswith("mcf1:")
            opened = ring.open(from_text(stored_text), binding(text_label, pk_text(pk)))
            assert opened.decode("utf-8") == text
            if len(text) >= 6:  # shorter strings can occur in base64 by chance
                assert text not in stored_text[len("mcf1:"):]
            if blob is None:
                assert stored_blob is None
            else:
                assert stored_blob != blob
                assert ring.open(stored_blob, binding(blob_label, pk_text(pk))) == blob
                if len(blob) >= 8:
                    assert blob not in stored_blob
        except Exception as exc:  # collect, so one failure shows its extent
            problems.append(f"{table} pk={pk}: {type(exc).__name__} {exc}")
    assert not problems, f"{len(problems)} rows wrong, e.g. {problems[:5]}"


def assert_all_plain(target: Target, expected: dict) -> None:
    raw = read_raw(target)
    assert raw == expected


def test_encrypt_then_reverse_restores_exact_plaintext(target):
    expected = fill_plaintext(target)
    result = target.migrate("0002")
    assert result.returncode == 0, result.stderr
    assert_all_sealed(target, expected)

    # The ORM reads the sealed values back (both pk kinds, both fields).
    script = (
        "from tests.adoption.adoptapp.models import Note, UUIDNote\n"
        "n = Note.objects.get(pk=6); u = UUIDNote.objects.order_by('pk').first()\n"
        "print(len(n.text), n.text == 'naïve ✓ 東京', type(u.text).__name__)\n"
    )
    shown = django_shell(target, script)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["10", "True", "str"]

    result = target.migrate("0001")
    assert result.returncode == 0, result.stderr
    assert_all_plain(target, expected)


def test_rerun_after_complete_run_changes_nothing(target):
    expected = fill_plaintext(target)
    assert target.migrate("0002").returncode == 0
    before = read_raw(target)
    # Re-applying the operation (as after a crash) must not seal twice.
    script = (
        "from django.apps import apps\n"
        "from django.db import connection\n"
        "from mcfields.adoption import SEAL, convert_column\n"
        "for name in ('Note', 'UUIDNote'):\n"
        "    m = apps.get_model('adoptapp', name)\n"
        "    for f in ('text', 'blob'):\n"
        "        r = convert_column(m, m._meta.get_field(f), direction=SEAL, using='default')\n"
        "        print(r.converted, r.already_done + r.null)\n"
    )
    shown = django_shell(target, script)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["0", str(ROWS_PER_TABLE)] * 4
    assert read_raw(target) == before
    assert_all_sealed(target, expected)


def _sealed_count(target: Target, table: str) -> int:
    conn = target.connect()
    try:
        cur = conn.cursor()
        # Two plaintexts start with "mcf1:" on purpose; close enough here.
        cur.execute(f"SELECT count(*) FROM {table} WHERE text LIKE 'mcf1:%'")
        return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_kill_9_during_migration_then_rerun(target):
    expected = fill_plaintext(target)
    rng = random.Random(20261124)
    kills = 0
    for _attempt in range(6):
        # Kill once a random number of rows of a random table are sealed, so
        # the crash lands mid-column, between or inside batches.
        table = rng.choice(TABLES)
        threshold = rng.randrange(20, ROWS_PER_TABLE - 20)
        proc = subprocess.Popen(target.migrate_cmd("0002"), cwd=ROOT, env=target.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if _sealed_count(target, table) >= threshold:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
            except Exception:  # noqa: BLE001 - the table may be mid-rebuild (SQLite)
                pass
            time.sleep(0.002)
        proc.wait(timeout=60)
        if proc.returncode == 0:
            break
    assert kills >= 3, f"only {kills} kills landed before the migration finished"
    final = target.migrate("0002")
    assert final.returncode == 0, final.stderr
    assert_all_sealed(target, expected)
    # And back, also after the crashes.
    assert target.migrate("0001").returncode == 0
    assert_all_plain(target, expected)


def test_value_that_looks_sealed_but_does_not_open_is_left_and_reported(target):
    expected = fill_plaintext(target)
    ring = Keyring.from_strings([KEY])
    # An envelope for row 2 copied into row 3: it looks like ours, but it is
    # not bound to row 3. It must not be sealed again or treated as data.
    moved = ring.seal(b"moved", binding("adoptapp.Note.blob", "2"))
    # And a value sealed under a key this deployment does not have (item 14):
    # it used to be sealed a second time, and then read as "mcf1:..." data.
    foreign = Keyring.from_strings([FOREIGN_KEY])
    stranger = foreign.seal(b"other environment", binding("adoptapp.Note.blob", "5"))
    conn = target.connect()
    try:
        conn.cursor().execute(target.sql("UPDATE adoptapp_note SET blob = %s WHERE id = 3"),
                              (moved,))
        conn.cursor().execute(target.sql("UPDATE adoptapp_note SET blob = %s WHERE id = 5"),
                              (stranger,))
    finally:
        conn.close()
    before = read_raw(target)
    result = target.migrate("0002")
    assert result.returncode != 0
    assert "adoptapp.Note.blob" in result.stderr and "pk=3" in result.stderr
    assert f"pk=3 key id {ring.primary.id_hex}: authentication failed" in result.stderr
    assert f"pk=5 key id {foreign.primary.id_hex}: sealed under a key that is not configured" \
        in result.stderr
    assert "Nothing was written" in result.stderr
    # The run stopped at the first column with such a value, before writing
    # to it; the columns converted before it (note.text) stay converted.
    raw = read_raw(target)
    assert raw[("adoptapp_note", 3)][1] == moved  # untouched
    assert all(raw[k][1] == before[k][1] for k in raw)  # no blob was written
    ring_ok = ring.open(from_text(raw[("adoptapp_note", 4)][0]),
                        binding("adoptapp.Note.text", "4"))
    assert ring_ok.decode() == expected[("adoptapp_note", 4)][0]
    shown = subprocess.run([sys.executable, "-m", "django", "showmigrations", "adoptapp"],
                           cwd=ROOT, env=target.env, text=True, capture_output=True,
                           timeout=120)
    assert "[ ] 0002_encrypt_columns" in shown.stdout
