"""Rotation benchmark (P5, bench/README.md): rotate_keys over N rows against a plain
Django ``bulk_update`` of the same rows, on SQLite and PostgreSQL, in one
process.  Bar: rotation <= 2x the time of bulk_update.

    python bench/rotate_bench.py [--rows 100000] [--batch-size 1000] [--db sqlite,postgres]

Workload: N rows of 1 KiB text.  The rotation table holds them in an
EncryptedTextField sealed under an old key; rotation opens each one, seals it
under the new key, verifies it, and writes it back with compare-and-swap.
The baseline table is a plain TextField holding strings of the same stored
length as the envelopes; its objects are loaded and ``bulk_update`` writes a
new value into every row (same batch size; Django caps it to 333 rows on
SQLite).  The ratio uses the baseline's total (load + bulk_update) and,
stricter, bulk_update alone.

PostgreSQL uses a scratch database (``mcfields_bench``, dropped afterwards)
on the server described by PGHOST/PGPORT/PGUSER/PGPASSWORD; it is skipped
with a message when the server is unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

PG_BENCH_DB = "mcfields_bench"
CHUNK = 10_000


def pg_params(dbname: str) -> dict[str, Any]:
    return {
        "host": os.environ.get("PGHOST", "localhost"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "mcfields"),
        "password": os.environ.get("PGPASSWORD", "mcfields"),
        "dbname": dbname,
    }


def pg_scratch(create: bool) -> str | None:
    """Create (or drop) the scratch database; the reason when unreachable."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        return "psycopg is not installed"
    try:
        admin = psycopg.connect(**pg_params(os.environ.get("PGDATABASE", "mcfields")),
                                autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(PG_BENCH_DB)))
        if create:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_BENCH_DB)))
    return None


def configure(sqlite_path: str, with_pg: bool) -> None:
    import django
    from django.conf import settings

    databases: dict[str, Any] = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path},
    }
    if with_pg:
        p = pg_params(PG_BENCH_DB)
        databases["postgres"] = {
            "ENGINE": "django.db.backends.postgresql", "HOST": p["host"], "PORT": p["port"],
            "USER": p["user"], "PASSWORD": p["password"], "NAME": p["dbname"],
        }
    from mcfields.crypto import generate_key

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "mcfields", "tests.rotation.rotapp"],
        DATABASES=databases,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SECRET_KEY="bench-only",
        MCFIELDS_KEYS=[generate_key()],
    )
    django.setup()


def create_tables(using: str) -> None:
    from django.db import connections

    from tests.rotation.rotapp.models import Document, PlainRow

    with connections[using].schema_editor() as editor:
        editor.create_model(Document)
        editor.create_model(PlainRow)


def fill(using: str, rows: int, old_key: str) -> int:
    """Insert the rows under the old key; returns the stored text length."""
    from django.db import connections, transaction

    from mcfields.crypto import Keyring, binding, to_text
    from mcfields.rotation import pk_text
    from tests.rotation.rotapp.models import Document

    ring = Keyring.from_strings([old_key])
    label = Document._meta.get_field("text").binding_label
    plaintext = (b"0123456789abcdef" * 64)  # 1 KiB
    stored_len = 0
    with transaction.atomic(using=using), connections[using].cursor() as cur:
        for start in range(1, rows + 1, CHUNK):
            pks = range(start, min(start + CHUNK, rows + 1))
            docs = [(pk, to_text(ring.seal(plaintext, binding(label, pk_text(pk))))) for pk in pks]
            stored_len = len(docs[0][1])
            cur.executemany("INSERT INTO rotapp_document (id, text) VALUES (%s, %s)", docs)
            plain = [(pk, "p" * stored_len) for pk in pks]
            cur.executemany("INSERT INTO rotapp_plainrow (id, text) VALUES (%s, %s)", plain)
    return stored_len


def baseline(using: str, rows: int, batch_size: int, stored_len: int) -> tuple[float, float]:
    """(total, bulk_update only) seconds for rewriting every PlainRow."""
    from tests.rotation.rotapp.models import PlainRow

    value = "q" * stored_len
    manager = PlainRow.objects.using(using)
    updating = 0.0
    done = 0
    start = time.perf_counter()
    last = 0
    while True:
        objs = list(manager.filter(pk__gt=last).order_by("pk")[:CHUNK])
        if not objs:
            break
        last = objs[-1].pk
        for obj in objs:
            obj.text = value
        t0 = time.perf_counter()
        manager.bulk_update(objs, ["text"], batch_size=batch_size)
        updating += time.perf_counter() - t0
        done += len(objs)
    total = time.perf_counter() - start
    assert done == rows, (done, rows)
    return total, updating


def rotate(using: str, rows: int, batch_size: int, new_key: str, old_key: str) -> float:
    from mcfields.crypto import Keyring
    from mcfields.rotation import Rotator, find_targets

    ring = Keyring.from_strings([new_key, old_key])
    targets = find_targets(["rotapp.Document"], using)
    start = time.perf_counter()
    report = Rotator(keyring=ring, using=using, batch_size=batch_size).run(targets)
    elapsed = time.perf_counter() - start
    assert report.resealed == rows and not report.failures, (report.resealed, report.failures)
    check = Rotator(keyring=ring, using=using, mode="check").run(targets)
    assert check.ok and check.skipped == rows
    return elapsed


def bench(using: str, label: str, rows: int, batch_size: int) -> None:
    from mcfields.crypto import generate_key

    old_key, new_key = generate_key(), generate_key()
    create_tables(using)
    t0 = time.perf_counter()
    stored_len = fill(using, rows, old_key)
    print(f"[{label}] {rows:,} rows of 1 KiB ({stored_len} chars stored) "
          f"written in {time.perf_counter() - t0:.1f} s")
    total, updating = baseline(using, rows, batch_size, stored_len)
    rotation = rotate(using, rows, batch_size, new_key, old_key)
    print(f"[{label}] bulk_update (load + update): {total:7.2f} s  {rows / total:10,.0f} rows/s"
          f"   (bulk_update calls alone {updating:.2f} s, {rows / updating:,.0f} rows/s)")
    print(f"[{label}] rotate_keys               : {rotation:7.2f} s"
          f"  {rows / rotation:10,.0f} rows/s")
    ratio, strict = rotation / total, rotation / updating
    verdict = "meets" if ratio <= 2.0 else "MISSES"
    print(f"[{label}] ratio rotate / bulk_update: {ratio:.2f}x (bar P5 <= 2x: {verdict});"
          f" against bulk_update calls alone: {strict:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--db", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (default both)")
    args = parser.parse_args()
    wanted = {d.strip() for d in args.db.split(",") if d.strip()}

    pg_reason = pg_scratch(create=True) if "postgres" in wanted else "not requested"
    with_pg = pg_reason is None
    with tempfile.TemporaryDirectory() as tmp:
        configure(os.path.join(tmp, "rotate_bench.sqlite3"), with_pg)
        try:
            if "sqlite" in wanted:
                bench("default", "SQLite", args.rows, args.batch_size)
            if with_pg:
                bench("postgres", "PostgreSQL", args.rows, args.batch_size)
            elif "postgres" in wanted:
                print(f"[PostgreSQL] skipped: {pg_reason}")
        finally:
            if with_pg:
                from django.db import connections

                connections.close_all()
                pg_scratch(create=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
