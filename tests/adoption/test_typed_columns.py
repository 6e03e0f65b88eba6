"""EncryptColumn and its reverse on typed columns (Integer, Date, Decimal,
JSON, Boolean), with real migrations: 0003 creates plain columns, 0004
alters each to its encrypted twin and seals it; migrating back to 0003
opens them and casts the columns back.

Between the two, each column is text holding the database's text form of
the old value ("42", "2026-12-02", "true" on PostgreSQL, JSON text), which
must be read as the base field reads it: sealing it as a string stored
JSON as a string of JSON, and PostgreSQL's "true" was no boolean at all.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

from django.db.backends.utils import format_number

from mcfields.binding import pk_text
from mcfields.crypto import Keyring, binding, from_text
from tests.adoption.support import KEY, Target, django_shell

COLUMNS = ("number", "day", "amount", "data", "flag", "maybe")

SPECIAL: list[tuple[Any, ...]] = [
    # Falsy values stay values, never NULL.
    (0, datetime.date(2026, 12, 2), Decimal("0.00"), {}, False, None),
    (42, datetime.date(2000, 2, 29), Decimal("1.50"),
     {"a": [1, 2.5, None, True], "b": "ü ✓", "c": {"d": []}}, True, 0),
    (-7, datetime.date(1, 1, 1), Decimal("-9999999999.99"), [], False, -1),
    (2**31 - 1, datetime.date(9999, 12, 31), Decimal("2.00"), "a string", True, 7),
    (1, datetime.date(1970, 1, 1), Decimal("0.01"), 0, True, None),
    (-(2**31), datetime.date(2024, 6, 30), Decimal("10.00"), False, False, 2**31 - 1),
]


def rows() -> dict[int, tuple[Any, ...]]:
    out = {i + 1: row for i, row in enumerate(SPECIAL)}
    for pk in range(len(SPECIAL) + 1, 41):
        # Keys in the order PostgreSQL's jsonb keeps them (shorter, then bytewise).
        out[pk] = (pk * 1009, datetime.date(2020, 1, 1) + datetime.timedelta(days=pk * 37),
                   Decimal(pk * 13) / 4 + Decimal("0.00"), {"i": pk, "l": list(range(pk % 4))},
                   pk % 2 == 0, pk if pk % 3 else None)
    return out


def insert(target: Target) -> None:
    params = []
    for pk, (number, day, amount, data, flag, maybe) in rows().items():
        if target.vendor == "sqlite":  # the forms Django's plain fields store
            params.append((pk, number, day.isoformat(), str(amount), json.dumps(data),
                           int(flag), maybe))
        else:
            from psycopg.types.json import Jsonb

            params.append((pk, number, day, amount, Jsonb(data), flag, maybe))
    conn = target.connect()
    try:
        target.executemany(conn, f"INSERT INTO adoptapp_typed (id, {', '.join(COLUMNS)}) "
                                 "VALUES (%s, %s, %s, %s, %s, %s, %s)", params)
    finally:
        conn.close()


def read_raw(target: Target) -> dict[int, tuple[Any, ...]]:
    conn = target.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT id, {', '.join(COLUMNS)} FROM adoptapp_typed ORDER BY id")
        return {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    finally:
        conn.close()


def exact(values: tuple[Any, ...]) -> list[str]:
    """Type and repr: Decimal("2.00") is not Decimal("2"), 0 is not False."""
    return [f"{type(v).__name__}:{v!r}" for v in values]


def plaintext(name: str, value: Any) -> bytes:
    """The bytes mcfields seals for a value (docs/FORMAT.md)."""
    if name == "day":
        return value.isoformat().encode()
    if name == "amount":
        return format_number(value, 12, 2).encode()
    if name == "data":
        return json.dumps(value).encode()
    if name == "flag":
        return b"1" if value else b"0"
    return str(value).encode()


def test_typed_columns_round_trip(target: Target) -> None:
    result = target.migrate("0003")
    assert result.returncode == 0, result.stderr
    insert(target)
    before = read_raw(target)

    result = target.migrate("0004")
    assert result.returncode == 0, result.stderr

    # Every value sealed for its row, as the bytes the encrypted field seals.
    ring = Keyring.from_strings([KEY])
    sealed = read_raw(target)
    assert sealed.keys() == before.keys()
    for pk, values in rows().items():
        for name, value, stored in zip(COLUMNS, values, sealed[pk], strict=True):
            if value is None:
                assert stored is None, (pk, name)
                continue
            assert isinstance(stored, str) and stored.startswith("mcf1:"), (pk, name)
            opened = ring.open(from_text(stored), binding(f"adoptapp.Typed.{name}", pk_text(pk)))
            assert opened == plaintext(name, value), (pk, name)

    # The ORM reads back the values the plain fields held, type for type.
    script = (
        "from tests.adoption.adoptapp.models import Typed\n"
        f"for o in Typed.objects.order_by('pk'): print(repr([{', '.join(f'o.{c}' for c in COLUMNS)}]))\n"  # noqa: E501
    )
    shown = django_shell(target, script)
    assert shown.returncode == 0, shown.stderr
    loaded = [eval(line, {"datetime": datetime, "Decimal": Decimal})  # noqa: S307 - our output
              for line in shown.stdout.splitlines()]
    assert [exact(tuple(v)) for v in loaded] == [exact(v) for v in rows().values()]

    # And back: DecryptColumn (the reverse), then the AlterFields cast back.
    result = target.migrate("0003")
    assert result.returncode == 0, result.stderr
    after = read_raw(target)
    assert {pk: exact(v) for pk, v in after.items()} == {pk: exact(v) for pk, v in before.items()}
