"""Search benchmark (issue #13, bench/README.md): lookup by value of an email column
stored plain with an index, in a searchable mcfields field, and in
django-secured-fields' searchable field, on N rows, SQLite or PostgreSQL, in one process.

    python bench/search_bench.py [--database sqlite|postgres] [--rows 100000] [--rounds 5]
                                 [--lookups 1000] [--quick]

Contenders (models in bench/benchapp/models.py), each filled with the same N
distinct emails through ``bulk_create`` (batches of 1000; mcfields through
``EncryptedManager``), then ``ANALYZE``:

- **plain**: ``CharField(max_length=254, db_index=True)``.
- **mcfields**: ``EncryptedEmailField(searchable=True)``; lookups compare the
  indexed companion column ``email_bidx`` with the value's blind index under
  every configured key.
- **mcfields unique+casefold**: ``EncryptedEmailField(searchable=True,
  unique=True, normalize="casefold")`` (a unique index on ``email_bidx``).
- **mcfields, 2 keys**: the ``mcfields`` table looked up with
  ``MCFIELDS_KEYS = [new, old]`` while its rows are still indexed under the
  old key (the window between adding a key and ``rotate_keys``): each value
  asked for becomes two indexes.
- **django-secured-fields**: ``EncryptedCharField(max_length=254,
  searchable=True)``: a Fernet token followed by ``$`` and the SHA-256 of
  value + ``SECURED_FIELDS_HASH_SALT``, in one indexed text column.

What is timed, per round, contenders interleaved (the order rotates each
round) and each checked for the right answer:

- **get**: ``Model.objects.get(email=v)`` for random existing ``v``, reading
  ``obj.email`` (mcfields opens the value there; the others decrypted while
  loading);
- **in**: ``list(Model.objects.filter(email__in=[10 values]))``, reading every
  email;
- **miss**: ``Model.objects.get(email=v)`` for a value that is not stored
  (``DoesNotExist``).

Figures are the mean µs per operation; the table gives the median over the
rounds, the spread (min-max), and the ratio against plain computed within
each round (median and min-max).  A contender whose query plan is a table
scan does ``--lookups / 20`` operations of each kind per round instead of
``--lookups`` (at least 5): the plan of each contender's queries (``EXPLAIN``)
is printed first.  The fill is timed too and reported (not the main number).

``--database postgres`` uses the server the libpq variables describe (PGHOST,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE; defaults localhost, mcfields): the
benchmark's tables are created there and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

IN_SIZE = 10
BATCH = 1000
SCAN_DIVISOR = 20


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


def configure(db: dict[str, str], key: str) -> None:
    import django
    from cryptography.fernet import Fernet
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "mcfields", "secured_fields", "benchapp"],
        DATABASES={"default": db},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SECRET_KEY="bench-only",
        SALT_KEY="bench-only-salt",  # django-fernet-encrypted-fields (other benchapp models)
        MCFIELDS_KEYS=[key],
        SECURED_FIELDS_KEY=Fernet.generate_key().decode(),
        SECURED_FIELDS_HASH_SALT=os.urandom(4).hex(),  # as its generate_key prints
    )
    django.setup()


SEARCH_MODELS = ("PlainEmail", "SearchableEmail", "UniqueSearchableEmail", "SecuredEmail")


def search_models() -> list[Any]:
    from django.apps import apps

    return [apps.get_model("benchapp", name) for name in SEARCH_MODELS]


def drop_tables() -> None:
    from django.db import connection

    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in search_models():
            if model._meta.db_table in existing:
                editor.delete_model(model)


def create_tables() -> None:
    from django.db import connection

    drop_tables()
    with connection.schema_editor() as editor:
        for model in search_models():
            editor.create_model(model)


def make_emails(rows: int, rng: random.Random) -> list[str]:
    """``rows`` distinct, realistic-looking addresses (mixed case)."""
    domains = ["example.com", "Example.org", "mail.example.net", "corp.example.io"]
    names = ["ann", "bob", "Chloe", "dave", "Emma", "frank", "grace", "Hugo", "ivy", "jon"]
    return [f"{rng.choice(names)}.{i:07d}.{rng.getrandbits(24):06x}@{rng.choice(domains)}"
            for i in range(rows)]


def fill(model: Any, emails: list[str]) -> float:
    from django.db import transaction

    objs = [model(email=email) for email in emails]
    start = time.perf_counter()
    with transaction.atomic():
        for i in range(0, len(objs), BATCH):
            model.objects.bulk_create(objs[i:i + BATCH])
    return time.perf_counter() - start


def analyze(models: list[Any]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for model in models:
            cur.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def plan(queryset: Any) -> tuple[str, bool]:
    """(the plan's lines joined, whether it reads the whole table)."""
    from django.db import connection

    text = queryset.explain()
    # PostgreSQL spells out every value of an IN list: '{a,b,...}'::text[].
    text = re.sub(r"'\{([^}]*)\}'",
                  lambda m: f"'{{{m.group(1).count(',') + 1} values}}'", text)
    text = re.sub(r"\s*\(cost=[^)]*\)", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if connection.vendor == "sqlite":
        # "SEARCH t USING INDEX i (col=?)" vs "SCAN t" (or "SCAN t USING INDEX", a full
        # index walk); Django prints each row as "id parent notused detail".
        details = [line.split(" ", 3)[-1] if line[:1].isdigit() else line for line in lines]
        scan = any(d.startswith("SCAN ") for d in details)
        return " | ".join(details), scan
    scan = any("Seq Scan" in line for line in lines)
    return " | ".join(lines), scan


def where_clause(queryset: Any) -> str:
    sql = str(queryset.query)
    where = sql[sql.find(" WHERE ") + 1:] if " WHERE " in sql else sql
    return where if len(where) <= 220 else where[:217] + "..."


class Contender:
    def __init__(self, name: str, model: Any, keys: list[str] | None = None) -> None:
        self.name = name
        self.model = model
        self.keys = keys  # MCFIELDS_KEYS while this contender is timed
        self.scan = False

    def settings(self) -> AbstractContextManager[Any]:
        if self.keys is None:
            return nullcontext()
        from django.test import override_settings

        return override_settings(MCFIELDS_KEYS=self.keys)


def op_get(model: Any, values: list[str]) -> None:
    for value in values:
        obj = model.objects.get(email=value)
        assert obj.email == value, (model.__name__, value)


def op_in(model: Any, groups: list[list[str]]) -> None:
    for group in groups:
        found = sorted(obj.email for obj in model.objects.filter(email__in=group))
        assert found == sorted(group), (model.__name__, group)


def op_miss(model: Any, values: list[str]) -> None:
    for value in values:
        try:
            model.objects.get(email=value)
        except model.DoesNotExist:
            continue
        raise AssertionError(f"{model.__name__}: {value} found")


OPS: dict[str, Callable[[Any, Any], None]] = {"get": op_get, "in": op_in, "miss": op_miss}


def workloads(emails: list[str], count: int, rng: random.Random) -> dict[str, list[Any]]:
    return {
        "get": rng.sample(emails, count),
        "in": [rng.sample(emails, IN_SIZE) for _ in range(count)],
        "miss": [f"nobody.{rng.getrandbits(32):08x}@example.com" for _ in range(count)],
    }


def show_plans(contenders: list[Contender], emails: list[str]) -> None:
    from django.db import connection

    print(f"Query plans ({connection.vendor}, after ANALYZE):")
    for c in contenders:
        with c.settings():
            for label, qs in (("get", c.model.objects.filter(email=emails[0])),
                              ("in", c.model.objects.filter(email__in=emails[:IN_SIZE]))):
                text, scan = plan(qs)
                c.scan = c.scan or scan
                mark = "TABLE SCAN" if scan else "index"
                text = text if len(text) <= 400 else text[:397] + "..."
                print(f"  {c.name:28} {label:4} [{mark}] {text}")
                if label == "get":
                    print(f"  {'':28}      WHERE: {where_clause(qs)}")
    print()


def server() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        return f"SQLite {connection.Database.sqlite_version}"
    major, minor = divmod(connection.pg_version, 10_000)
    return f"PostgreSQL {major}.{minor} (psycopg {connection.Database.__version__})"


def spread(values: list[float], fmt: str) -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=1000,
                        help="operations of each kind per round and contender (index plans)")
    parser.add_argument("--quick", action="store_true",
                        help="a rough run: 10,000 rows, 3 rounds, 200 lookups")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds, args.lookups = 10_000, 3, 200
    rng = random.Random(args.seed)
    from mcfields.crypto import generate_key

    old_key, new_key = generate_key(), generate_key()
    emails = make_emails(args.rows, rng)
    engine = "SQLite" if args.database == "sqlite" else "PostgreSQL"
    with tempfile.TemporaryDirectory() as tmp:
        configure(database(args.database, os.path.join(tmp, "search.sqlite3")), old_key)
        from benchapp.models import PlainEmail, SearchableEmail, SecuredEmail, UniqueSearchableEmail
        from django.db import connection

        contenders = [
            Contender("plain CharField (indexed)", PlainEmail),
            Contender("mcfields", SearchableEmail),
            Contender("mcfields unique+casefold", UniqueSearchableEmail),
            Contender("mcfields, 2 keys", SearchableEmail, keys=[new_key, old_key]),
            Contender("django-secured-fields", SecuredEmail),
        ]
        try:
            create_tables()
            print(f"Search benchmark: {args.rows:,} rows per table, {server()}, "
                  f"{args.rounds} rounds")
            fills: dict[str, float] = {}
            for model in (PlainEmail, SearchableEmail, UniqueSearchableEmail, SecuredEmail):
                fills[model.__name__] = fill(model, emails)
            analyze(search_models())
            base_fill = fills["PlainEmail"]
            print(f"Fill (bulk_create, batches of {BATCH}, one transaction; not the main number):")
            for model_name, seconds in fills.items():
                print(f"  {model_name:24} {seconds:7.2f} s  {args.rows / seconds:9,.0f} rows/s"
                      f"  {seconds / base_fill:5.2f}x plain")
            print()
            show_plans(contenders, emails)

            per_op: dict[tuple[str, str], list[float]] = {}
            ratio: dict[tuple[str, str], list[float]] = {}
            for r in range(args.rounds):
                order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
                for op, run in OPS.items():
                    this_round: dict[str, float] = {}
                    for c in order:
                        count = max(5, args.lookups // SCAN_DIVISOR) if c.scan else args.lookups
                        work = workloads(emails, count, rng)[op]
                        with c.settings():
                            run(c.model, work[:2])  # warm: keyring and statement caches
                            start = time.perf_counter()
                            run(c.model, work)
                            this_round[c.name] = (time.perf_counter() - start) / count * 1e6
                    base = this_round[contenders[0].name]
                    for name, us in this_round.items():
                        per_op.setdefault((name, op), []).append(us)
                        ratio.setdefault((name, op), []).append(us / base)
                print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            drop_tables()
            connection.close()

    print(f"Lookups, {engine}, {args.rows:,} rows, {args.rounds} rounds; µs per operation "
          f"(median, min-max over rounds); ratio vs plain within each round")
    header = f"{'contender':28} {'op':5} {'n/round':>7} {'µs/op':>9} {'spread':>15} " \
             f"{'vs plain':>8} {'ratio spread':>14}"
    print(header)
    print("-" * len(header))
    for c in contenders:
        count = max(5, args.lookups // SCAN_DIVISOR) if c.scan else args.lookups
        for op in OPS:
            us, rt = per_op[(c.name, op)], ratio[(c.name, op)]
            print(f"{c.name:28} {op:5} {count:7} {statistics.median(us):9.1f} "
                  f"{spread(us, '{:.1f}'):>15} {statistics.median(rt):7.2f}x "
                  f"{spread(rt, '{:.2f}'):>13}x" + ("  (table scan)" if c.scan else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
