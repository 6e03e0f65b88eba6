"""rotate_keys as a real process: kill -9 at random points, parallel shards.

After any number of crashes every row still opens to its original
plaintext, and a rerun finishes the job.  The database is shared with the
subprocesses: on PostgreSQL the (committed) test database, on SQLite a
migrated file.
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from mcfields.crypto import Keyring, generate_key
from tests.rotation.rotapp.models import Secret, UuidSecret
from tests.rotation.support import (
    INSERT_SECRET,
    Keys,
    SharedDB,
    check_secret_rows,
    key_id_hex,
    label_of,
    open_text,
    seal_text,
    secret_rows,
)

N_ROWS = 3000
BATCH = 25
KILLS = 20


def read_secret(db: SharedDB, conn: Any) -> list[tuple[Any, ...]]:
    cur = db.execute(conn, "SELECT id, text, blob, note FROM rotapp_secret ORDER BY id")
    return [(pk, t, bytes(b) if b is not None else None, n) for pk, t, b, n in cur.fetchall()]


def text_key_ids(rows: list[tuple[Any, ...]]) -> Counter[str]:
    return Counter(key_id_hex(r[1]) for r in rows)


def test_kill_9_at_random_points_then_rerun(shared_db: SharedDB, keys: Keys) -> None:
    seed = int(os.environ.get("MCFIELDS_ROTATION_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    a, b, c = keys.old, keys.other, generate_key()
    conn = shared_db.connect()
    shared_db.executemany(conn, INSERT_SECRET,
                          secret_rows(Keyring.from_strings([a]), range(1, N_ROWS + 1)))
    every_key = Keyring.from_strings([a, b, c])

    # Each run rotates towards another key (B, C, A, B, ...), so every run has
    # work to do and every kill lands in a table holding several keys.
    kills = mixed = runs = 0
    while kills < KILLS:
        assert runs < 3 * KILLS, f"only {kills} kills in {runs} runs (seed {seed})"
        order = [b, c, a][runs % 3]
        ring_keys = [order] + [k for k in (a, b, c) if k != order]
        runs += 1
        proc = shared_db.command("--batch-size", str(BATCH), "-v", "2", keys=ring_keys)
        wait_lines = rng.randrange(0, 2 * N_ROWS // BATCH // 3)
        seen = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("rotapp.Secret: "):
                seen += 1
            if seen >= wait_lines:
                break
        time.sleep(rng.uniform(0, 0.015))
        proc.kill()  # SIGKILL
        proc.wait(timeout=30)
        if proc.returncode == -9:
            kills += 1
        else:
            assert proc.returncode == 0, (proc.returncode, proc.stderr and proc.stderr.read())
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()

        rows = read_secret(shared_db, conn)
        assert len(rows) == N_ROWS
        problems = check_secret_rows(every_key, rows)
        assert problems == [], f"after run {runs} (seed {seed}): {problems[:5]}"
        if len(text_key_ids(rows)) > 1:
            mixed += 1
    print(f"seed {seed}: {kills} kills in {runs} runs, {mixed} left the table mid-rotation")
    # Most kills must have landed in the middle of a rotation, not before or after.
    assert mixed >= KILLS // 2, f"only {mixed} runs stopped mid-table (seed {seed})"

    # Resume under the new key with every old key still configured.
    new = keys.new
    done = shared_db.run("--batch-size", "200", keys=[new, a, b, c])
    assert done.returncode == 0, done.stderr
    assert "0 failed" in done.stdout

    # The gate before dropping the old keys, then drop them.
    check = shared_db.run("--check", keys=[new, a, b, c])
    assert check.returncode == 0, check.stdout + check.stderr
    rows = read_secret(shared_db, conn)
    assert check_secret_rows(Keyring.from_strings([new]), rows) == []
    new_id = keys.key_id("new")
    assert {key_id_hex(v) for r in rows for v in r[1:] if v is not None} == {new_id}
    check = shared_db.run("--check", keys=[new])
    assert check.returncode == 0, check.stdout + check.stderr


def _insert_uuid_rows(db: SharedDB, conn: Any, ring: Keyring, n: int) -> dict[Any, str]:
    label = label_of(UuidSecret, "text")
    expected: dict[Any, str] = {}
    rows = []
    for i in range(n):
        pk = uuid.UUID(int=random.getrandbits(128), version=4)
        value = f"uuid {i}"
        expected[pk] = value
        rows.append((pk.hex if db.vendor == "sqlite" else pk, seal_text(ring, label, pk, value)))
    db.executemany(conn, "INSERT INTO rotapp_uuidsecret (id, text) VALUES (%s, %s)", rows)
    return expected


def test_parallel_shard_processes(shared_db: SharedDB, keys: Keys) -> None:
    """N processes, each knowing only K/N, cover every row exactly once."""
    conn = shared_db.connect()
    old = Keyring.from_strings([keys.old])
    shared_db.executemany(conn, INSERT_SECRET, secret_rows(old, range(1, N_ROWS + 1)))
    uuids = _insert_uuid_rows(shared_db, conn, old, 500)
    n_values = N_ROWS + N_ROWS // 3 + N_ROWS // 5 + len(uuids)

    before = shared_db.run("--check", keys=[keys.new, keys.old])
    assert before.returncode == 1
    assert "not under the first key" in before.stderr

    shards = 3
    procs = [
        shared_db.command("--shard", f"{k}/{shards}", "--batch-size", "100",
                          keys=[keys.new, keys.old])
        for k in range(1, shards + 1)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    rows_done = [int(re.search(r"Total: ([\d,]+) rows", out).group(1).replace(",", ""))
                 for out, _ in outputs]
    resealed = [int(re.search(r"Total: .*, ([\d,]+) re-sealed", out).group(1).replace(",", ""))
                for out, _ in outputs]
    assert sum(rows_done) == N_ROWS + len(uuids), rows_done
    assert sum(resealed) == n_values, resealed
    assert all(n > 0 for n in rows_done)

    after = shared_db.run("--check", keys=[keys.new])
    assert after.returncode == 0, after.stdout + after.stderr
    new = Keyring.from_strings([keys.new])
    assert check_secret_rows(new, read_secret(shared_db, conn)) == []
    cur = shared_db.execute(conn, "SELECT id, text FROM rotapp_uuidsecret")
    label = label_of(UuidSecret, "text")
    opened = {uuid.UUID(str(pk)): open_text(new, label, uuid.UUID(str(pk)), text)
              for pk, text in cur.fetchall()}
    assert opened == uuids


@pytest.mark.parametrize("damage", ["flip", "unknown-key"])
def test_process_exit_status_on_bad_rows(shared_db: SharedDB, keys: Keys, damage: str) -> None:
    conn = shared_db.connect()
    old = Keyring.from_strings([keys.old])
    shared_db.executemany(conn, INSERT_SECRET, secret_rows(old, range(1, 101)))
    rows = read_secret(shared_db, conn)
    if damage == "flip":
        bad = rows[41][1][:-3] + ("x" if rows[41][1][-3] != "x" else "y") + rows[41][1][-2:]
    else:
        bad = seal_text(Keyring.from_strings([keys.other]), label_of(Secret, "text"), 42, "v")
    shared_db.execute(conn, "UPDATE rotapp_secret SET text = %s WHERE id = %s", (bad, 42))

    result = shared_db.run(keys=[keys.new, keys.old])
    assert result.returncode == 1
    assert "1 value failed to open" in result.stderr
    assert "rotapp.Secret.text pk=42" in result.stderr
    after = {r[0]: r for r in read_secret(shared_db, conn)}
    assert after[42][1] == bad
    assert text_key_ids(list(after.values())) == Counter(
        {keys.key_id("new"): 99, key_id_hex(bad): 1}
    )
