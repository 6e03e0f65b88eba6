"""ORM benchmark (P3, bench/README.md): create N rows one by one, load them, read the
field; 1 KiB text on SQLite (or PostgreSQL).  mcfields against a plain TextField and
django-fernet-encrypted-fields, in one process, best of several rounds.

    python bench/orm_bench.py [--rows 10000] [--rounds 3] [--database sqlite|postgres] [--bulk]

``--bulk`` also times ``bulk_create()`` of the same rows (batches of 1000):
a plain TextField model against mcfields' BigAutoField model through
``EncryptedQuerySet``.

``--database postgres`` uses the server the libpq variables describe (PGHOST,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE; defaults localhost, mcfields): the
benchmark's tables are created there and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def database(kind: str, db_path: str) -> dict[str, str]:
    if kind == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}
    env = os.environ.get
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env("PGHOST", "localhost"),
        "PORT": env("PGPORT", "5432"),
        "USER": env("PGUSER", "mcfields"),
        "PASSWORD": env("PGPASSWORD", "mcfields"),
        "NAME": env("PGDATABASE", "mcfields"),
    }


def configure(db: dict[str, str]) -> None:
    import django
    from django.conf import settings

    from mcfields.crypto import generate_key

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "mcfields", "benchapp"],
        DATABASES={"default": db},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SECRET_KEY="bench-only",
        SALT_KEY="bench-only-salt",  # django-fernet-encrypted-fields
        MCFIELDS_KEYS=[generate_key()],
    )
    django.setup()


def create_tables() -> None:
    from django.apps import apps
    from django.db import connection

    drop_tables()
    with connection.schema_editor() as editor:
        for model in apps.get_app_config("benchapp").get_models():
            editor.create_model(model)


def drop_tables() -> None:
    from django.apps import apps
    from django.db import connection

    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in apps.get_app_config("benchapp").get_models():
            if model._meta.db_table in existing:
                editor.delete_model(model)


def run_workload(model, rows: int, text: str) -> dict[str, float]:
    from django.db import transaction

    model.objects.all().delete()
    start = time.perf_counter()
    # One transaction, as an import job would do; each create() is its own
    # INSERT (plus mcfields' binding write for database-assigned pks).
    with transaction.atomic():
        for _ in range(rows):
            model.objects.create(body=text)
    created = time.perf_counter()
    objs = list(model.objects.all())
    loaded = time.perf_counter()
    total = 0
    for obj in objs:
        total += len(obj.body)
    read = time.perf_counter()
    assert total == rows * len(text), "a value did not round-trip"
    return {
        "create": created - start,
        "load": loaded - created,
        "read": read - loaded,
        "total": read - start,
    }


def run_bulk(queryset, rows: int, text: str) -> float:
    model = queryset.model
    model.objects.all().delete()
    objs = [model(body=text) for _ in range(rows)]
    start = time.perf_counter()
    queryset.bulk_create(objs, batch_size=1000)
    elapsed = time.perf_counter() - start
    assert all(obj.pk is not None for obj in objs)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--bulk", action="store_true", help="also time bulk_create()")
    args = parser.parse_args()
    bulk: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configure(database(args.database, os.path.join(tmp, "bench.sqlite3")))
        create_tables()
        from benchapp.models import (
            FernetNote,
            PlainNote,
            PlainUUIDNote,
            SealedNote,
            SealedUUIDNote,
        )

        text = ("0123456789abcdef" * 64)[:1024]
        contenders = [
            ("plain TextField", PlainNote),
            ("plain TextField (UUID pk)", PlainUUIDNote),
            ("mcfields (BigAutoField pk)", SealedNote),
            ("mcfields (UUID pk)", SealedUUIDNote),
            ("django-fernet-encrypted-fields", FernetNote),
        ]
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for name, model in contenders:
                result = run_workload(model, args.rows, text)
                if name not in best or result["total"] < best[name]["total"]:
                    best[name] = result
        if args.bulk:
            from mcfields.managers import EncryptedQuerySet

            for _ in range(args.rounds):
                for name, queryset in (("plain TextField", PlainNote.objects.all()),
                                       ("mcfields (BigAutoField pk)",
                                        EncryptedQuerySet(SealedNote))):
                    elapsed = run_bulk(queryset, args.rows, text)
                    bulk[name] = min(bulk.get(name, elapsed), elapsed)
        if args.database == "postgres":
            drop_tables()
    base = best["plain TextField"]["total"]
    fernet = best["django-fernet-encrypted-fields"]["total"]
    engine = "SQLite" if args.database == "sqlite" else "PostgreSQL"
    print(f"P3 ORM workload: {args.rows} rows x 1 KiB text, {engine}, best of {args.rounds}")
    print(f"{'':32} {'create':>9} {'load':>9} {'read':>9} {'total':>9} "
          f"{'vs plain':>9} {'vs fernet':>9}")
    for name, r in best.items():
        print(f"{name:32} {r['create']:8.3f}s {r['load']:8.3f}s {r['read']:8.3f}s "
              f"{r['total']:8.3f}s {r['total'] / base:8.2f}x {r['total'] / fernet:8.2f}x")
    pairs = (("mcfields (BigAutoField pk)", "plain TextField"),
             ("mcfields (UUID pk)", "plain TextField (UUID pk)"))
    for name, plain in pairs:
        ratio = best[name]["total"] / best[plain]["total"]
        vs_fernet = best[name]["total"] / fernet
        verdict = "meets" if ratio <= 1.3 and vs_fernet < 1 else "MISSES"
        print(f"bar P3 (<= 1.3x plain, faster than fernet): {name}: {ratio:.2f}x {plain}, "
              f"{vs_fernet:.2f}x fernet -> {verdict}")
    if bulk:
        plain_bulk, sealed_bulk = bulk["plain TextField"], bulk["mcfields (BigAutoField pk)"]
        ratio = sealed_bulk / plain_bulk
        print(f"bulk_create of {args.rows} rows (batch 1000), best of {args.rounds}: plain "
              f"{plain_bulk:.3f}s, mcfields (BigAutoField pk) {sealed_bulk:.3f}s -> {ratio:.2f}x "
              f"(bar P3 <= 1.5x: {'meets' if ratio <= 1.5 else 'MISSES'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
