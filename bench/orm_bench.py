"""ORM benchmark (P3, bench/README.md): create N rows one by one, load them,
read the field of every row; 64 B and 1 KiB values, text and binary columns,
database-assigned (BigAutoField) and UUID pks, on SQLite or PostgreSQL.

    python bench/orm_bench.py [--rows 10000] [--rounds 3] [--database sqlite|postgres]
                              [--sizes 64,1024] [--transaction] [--bulk] [--bulk-only]
                              [--bulk-rounds N] [--bulk-repeat N] [--only SUBSTR]

Contenders (``bench/benchapp/models.py``), each with both pk kinds: a plain
``TextField`` and a plain ``BinaryField``; mcfields' ``EncryptedTextField``
and ``EncryptedBinaryField``; django-fernet-encrypted-fields' and
django-tink-fields' ``EncryptedTextField`` (tink with an XChaCha20-Poly1305
keyset, the AEAD mcfields uses).  A last contender is the floor of the
architecture, not a product: ``CryptoOnlyField`` seals and opens with
mcfields' own keyring in the two hooks the peers use (``get_db_prep_value``,
``from_db_value``), with fixed associated data, so no binding to the row,
no lazy opening and no checks; the report prints each mcfields contender
against it and it against tink.  Every round runs every contender once, in
turn, in one process, so a burst of load from other processes hits them
alike; the ratios are taken within each round (mcfields against the plain
field of the same kind and pk kind, and against each peer with the same pk
kind) and reported as median [min-max] over the rounds.

Each round interleaves finely: the contenders take turns creating
``--chunk`` rows each (the first in turn rotates), then take turns loading
their rows and reading every value.  Times are this process's CPU time on
SQLite (which runs in-process, so other jobs on a shared machine barely
disturb them; the file is on /dev/shm, so that a disk's fsync per commit
does not drown the ORM's own costs) and elapsed time on PostgreSQL (its
server is another process); ``--clock`` overrides.  Each ``create()`` runs
in autocommit mode, as in a web request (one INSERT, one transaction);
``--transaction`` wraps each chunk of creates in one ``atomic()`` block
instead, as an import job would.  ``--bulk`` also
times ``bulk_create()`` of the same rows (batches of 1000): the plain model
against the mcfields model of the same kind, through ``EncryptedManager``
(``--bulk-only``: nothing else).  One call lasts 20-100 ms, so each round
times every pair ``--bulk-repeat`` times, alternating which of the two goes
first, after a full garbage collection each; the round's ratio is that of
the two medians, and the bar is read on the median of ``--bulk-rounds``
per-round ratios (printed with their spread).

``--database postgres`` uses the server the libpq variables describe (PGHOST,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE; defaults localhost, mcfields): the
benchmark's tables are created there and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

#: (label, model name, kind, pk kind); kind "text"/"binary" picks the value type.
CONTENDERS = [
    ("plain text", "PlainNote", "text", "auto"),
    ("plain text", "PlainUUIDNote", "text", "uuid"),
    ("plain binary", "PlainBinaryNote", "binary", "auto"),
    ("plain binary", "PlainBinaryUUIDNote", "binary", "uuid"),
    ("mcfields text", "SealedNote", "text", "auto"),
    ("mcfields text", "SealedUUIDNote", "text", "uuid"),
    ("mcfields binary", "SealedBinaryNote", "binary", "auto"),
    ("mcfields binary", "SealedBinaryUUIDNote", "binary", "uuid"),
    ("fernet text", "FernetNote", "text", "auto"),
    ("fernet text", "FernetUUIDNote", "text", "uuid"),
    ("tink text", "TinkNote", "text", "auto"),
    ("tink text", "TinkUUIDNote", "text", "uuid"),
    ("floor text", "FloorNote", "text", "auto"),
    ("floor text", "FloorUUIDNote", "text", "uuid"),
]
PK_NAMES = {"auto": "BigAutoField pk", "uuid": "UUID pk"}
PEERS = ("fernet text", "tink text")
#: Not a bar: mcfields' crypto in a peer's two hooks, without binding
#: (benchapp.models.CryptoOnlyField), the least this architecture costs.
FLOOR = "floor text"
BAR_PLAIN = 1.3
BAR_BULK = 1.5


def name_of(label: str, pk: str) -> str:
    return f"{label} ({PK_NAMES[pk]})"


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


def tink_keyset(directory: str) -> str:
    """A cleartext XChaCha20-Poly1305 keyset file for django-tink-fields."""
    import tink
    from tink import aead, secret_key_access

    aead.register()
    handle = tink.new_keyset_handle(aead.aead_key_templates.XCHACHA20_POLY1305)
    path = os.path.join(directory, "tink-keyset.json")
    with open(path, "w") as out:
        out.write(tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    return path


def configure(db: dict[str, str], tmp: str) -> None:
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
        TINK_FIELDS_CONFIG={"default": {"cleartext": True, "path": tink_keyset(tmp)}},
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


def run_round(models: list, rows: int, values: list, in_transaction: bool, chunk: int,
              clock) -> list[dict[str, float]]:
    """One round: every contender creates ``rows`` rows, in chunks of
    ``chunk`` taken in turn (the starting contender rotates), then loads its
    rows and reads every value, again in turn.  Fine-grained interleaving:
    a burst of load from other processes hits every contender alike."""
    from django.db import transaction

    for model in models:
        model.objects.all().delete()
    times = [{"create": 0.0, "load": 0.0, "read": 0.0} for _ in models]
    order = list(range(len(models)))
    for start in range(0, rows, chunk):
        count = min(chunk, rows - start)
        order = order[1:] + order[:1]
        for i in order:
            create, value = models[i].objects.create, values[i]
            block = transaction.atomic() if in_transaction else contextlib.nullcontext()
            began = clock()
            with block:
                for _ in range(count):
                    create(body=value)
            times[i]["create"] += clock() - began
    for i in order:
        began = clock()
        objs = list(models[i].objects.all())
        loaded = clock()
        total = 0
        for obj in objs:
            total += len(obj.body)
        read = clock()
        assert len(objs) == rows and total == rows * len(values[i]), "a value did not round-trip"
        times[i]["load"] += loaded - began
        times[i]["read"] += read - loaded
        del objs
    for t in times:
        t["total"] = t["create"] + t["load"] + t["read"]
    return times


def run_bulk(model, rows: int, value, clock) -> float:
    """One timed ``bulk_create()`` of ``rows`` new rows (batches of 1000)
    into ``model``'s emptied table.  A full collection first, so that the
    cyclic garbage of the previous call is not collected inside this one."""
    model.objects.all().delete()
    objs = [model(body=value) for _ in range(rows)]
    gc.collect()
    start = clock()
    model.objects.bulk_create(objs, batch_size=1000)
    elapsed = clock() - start
    assert all(obj.pk is not None for obj in objs)
    assert model.objects.count() == rows
    return elapsed


def spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="64,1024", help="value sizes in bytes")
    parser.add_argument("--transaction", action="store_true",
                        help="create each contender's rows inside one atomic() block")
    parser.add_argument("--bulk", action="store_true", help="also time bulk_create()")
    parser.add_argument("--bulk-only", action="store_true",
                        help="time bulk_create() only (implies --bulk)")
    parser.add_argument("--bulk-rounds", type=int, default=None,
                        help="bulk_create() rounds (default: --rounds)")
    parser.add_argument("--bulk-repeat", type=int, default=5,
                        help="bulk_create() calls per contender per round; a round's "
                             "time is their median")
    parser.add_argument("--sqlite-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the SQLite file goes (default: /dev/shm, so that the "
                             "disk's fsync per commit does not drown the ORM's own costs)")
    parser.add_argument("--chunk", type=int, default=500,
                        help="rows each contender creates before the next one's turn")
    parser.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                        help="cpu: this process's CPU time (SQLite runs in-process, so "
                             "other jobs on the machine barely disturb it); wall: elapsed "
                             "time (needed for PostgreSQL, whose server is another "
                             "process); auto: cpu for SQLite, wall for PostgreSQL")
    parser.add_argument("--only", default="",
                        help="comma-separated substrings: run only the contenders "
                             "whose name contains one (plain ones are always run)")
    args = parser.parse_args()
    args.bulk |= args.bulk_only
    if args.bulk_rounds is None:
        args.bulk_rounds = args.rounds
    sizes = [int(s) for s in args.sizes.split(",")]
    only = [s for s in args.only.split(",") if s]
    contenders = [c for c in CONTENDERS if c[0].startswith("plain") or not only
                  or any(s in name_of(c[0], c[3]) for s in only)]
    engine = "SQLite" if args.database == "sqlite" else "PostgreSQL"
    if args.database == "sqlite":
        engine += f" (file in {args.sqlite_dir or tempfile.gettempdir()})"
    mode = (f"atomic() blocks of {args.chunk}" if args.transaction else "autocommit")
    if args.clock == "auto":
        args.clock = "cpu" if args.database == "sqlite" else "wall"
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    mode += f"; {args.clock} time"
    ok = True
    with tempfile.TemporaryDirectory(dir=args.sqlite_dir) as tmp:
        configure(database(args.database, os.path.join(tmp, "bench.sqlite3")), tmp)
        create_tables()
        from django.apps import apps

        models = {c[1]: apps.get_model("benchapp", c[1]) for c in contenders}
        try:
            for size in sizes:
                values = {"text": ("0123456789abcdef" * (size // 16 + 1))[:size],
                          "binary": os.urandom(size)}
                # results[name] = one dict per round
                results: dict[str, list[dict[str, float]]] = {}
                for _ in range(0 if args.bulk_only else args.rounds):
                    times = run_round([models[c[1]] for c in contenders], args.rows,
                                      [values[c[2]] for c in contenders], args.transaction,
                                      args.chunk, clock)
                    for (label, _, _, pk), result in zip(contenders, times, strict=True):
                        results.setdefault(name_of(label, pk), []).append(result)
                if not args.bulk_only:
                    ok &= report(args, engine, mode, size, contenders, results)
                if args.bulk:
                    ok &= bulk(args, engine, size, contenders, models, values, clock)
        finally:
            if args.database == "postgres":
                drop_tables()
    print(f"\nall bars met: {'yes' if ok else 'NO'}")
    return 0


def report(args, engine, mode, size, contenders, results) -> bool:
    print(f"\n## P3 ORM: {args.rows} rows x {size} B, {engine}, create() in {mode}; "
          f"{args.rounds} rounds (seconds: median of rounds)")
    print(f"{'contender':40} {'create':>8} {'load':>8} {'read':>8} {'total':>8} "
          f"{'vs plain, per round':>22} {'us/row':>7}")
    ok = True
    for label, _, kind, pk in contenders:
        name = name_of(label, pk)
        rounds = results[name]
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        plain = results[name_of(f"plain {kind}", pk)]
        ratios = [r["total"] / p["total"] for r, p in zip(rounds, plain, strict=True)]
        print(f"{name:40} {med['create']:8.3f} {med['load']:8.3f} {med['read']:8.3f} "
              f"{med['total']:8.3f} {spread(ratios):>22} {med['total'] / args.rows * 1e6:7.0f}")
    print("bars:")
    for label, _, kind, pk in contenders:
        if not label.startswith("mcfields"):
            continue
        name = name_of(label, pk)
        rounds = results[name]
        plain = results[name_of(f"plain {kind}", pk)]
        ratios = [r["total"] / p["total"] for r, p in zip(rounds, plain, strict=True)]
        met = statistics.median(ratios) <= BAR_PLAIN
        ok &= met
        line = [f"  {name}: {spread(ratios)} plain {kind} (<= {BAR_PLAIN}x: "
                f"{'met' if met else 'MISSED'})"]
        for peer in PEERS:
            peer_name = name_of(peer, pk)
            if peer_name not in results:
                continue
            vs = [r["total"] / p["total"]
                  for r, p in zip(rounds, results[peer_name], strict=True)]
            faster = statistics.median(vs) < 1.0
            ok &= faster
            line.append(f"{spread(vs)} {peer.split()[0]} (< 1x: "
                        f"{'met' if faster else 'MISSED'})")
        floor_name = name_of(FLOOR, pk)
        if floor_name in results:
            vs = [r["total"] / f["total"]
                  for r, f in zip(rounds, results[floor_name], strict=True)]
            line.append(f"{spread(vs)} floor (info)")
        print("; ".join(line))
    for label, _, kind, pk in contenders:
        if label != FLOOR:
            continue
        rounds = results[name_of(label, pk)]
        plain = results[name_of(f"plain {kind}", pk)]
        line = [f"  {name_of(label, pk)} (info): "
                f"{spread([r['total'] / p['total'] for r, p in zip(rounds, plain, strict=True)])} "
                f"plain {kind}"]
        tink = results.get(name_of("tink text", pk))
        if tink is not None:
            vs = [r["total"] / t["total"] for r, t in zip(rounds, tink, strict=True)]
            line.append(f"{spread(vs)} tink")
        print("; ".join(line))
    return ok


def bulk(args, engine, size, contenders, models, values, clock) -> bool:
    """``bulk_create()``: each mcfields model against the plain model of the
    same kind and pk kind.  A round times each pair ``--bulk-repeat`` times,
    alternating which of the two goes first, and takes the ratio of the
    medians; the bar is read on the median of the per-round ratios."""
    repeat = args.bulk_repeat
    print(f"\nbulk_create() of {args.rows} rows x {size} B (batches of 1000), {engine}, "
          f"{args.bulk_rounds} rounds of {repeat} calls each, {args.clock} time; mcfields "
          "through EncryptedManager")
    pairs = [(c, (f"plain {c[2]}", c[3])) for c in contenders if c[0].startswith("mcfields")]
    model_of = {(c[0], c[3]): c[1] for c in contenders}
    # per pair: one (plain seconds, mcfields seconds) per round, each a median of calls
    rounds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for (_, model_name, kind, _), plain_key in pairs:  # warm-up: one call each
        run_bulk(models[model_of[plain_key]], args.rows, values[kind], clock)
        run_bulk(models[model_name], args.rows, values[kind], clock)
    for _ in range(args.bulk_rounds):
        for (label, model_name, kind, pk), plain_key in pairs:
            plain_model, mine_model = models[model_of[plain_key]], models[model_name]
            plain_times, mine_times = [], []
            for turn in range(repeat):
                first, second = (plain_model, mine_model) if turn % 2 == 0 else (
                    mine_model, plain_model)
                a = run_bulk(first, args.rows, values[kind], clock)
                b = run_bulk(second, args.rows, values[kind], clock)
                plain_times.append(a if first is plain_model else b)
                mine_times.append(b if first is plain_model else a)
            rounds.setdefault((label, pk), []).append(
                (statistics.median(plain_times), statistics.median(mine_times)))
    ok = True
    print(f"  {'contender':40} {'plain us/row':>12} {'mcfields us/row':>15} "
          f"{'ratio per round: median [min-max]':>34}")
    for (label, _, _kind, pk), _plain_key in pairs:
        measured = rounds[(label, pk)]
        ratios = [m / p for p, m in measured]
        met = statistics.median(ratios) <= BAR_BULK
        ok &= met
        plain_us = statistics.median(p for p, _ in measured) / args.rows * 1e6
        mine_us = statistics.median(m for _, m in measured) / args.rows * 1e6
        print(f"  {name_of(label, pk):40} {plain_us:12.2f} {mine_us:15.2f} "
              f"{spread(ratios):>34} (<= {BAR_BULK}x: {'met' if met else 'MISSED'})")
        print(f"  {'':40} per round: {' '.join(f'{r:.2f}' for r in ratios)}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
