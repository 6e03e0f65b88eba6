"""rotate_keys over typed encrypted fields, in text and in binary storage.

Text or binary is the storage codec's business alone: rotation used to
decide it by field class (only ``EncryptedBinaryField`` was binary), so a
typed field with ``storage="binary"`` failed to rotate.
"""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from mcfields.rotation import Mode, Rotator, find_targets
from tests.rotation.rotapp.models import TypedSecret
from tests.rotation.support import Keys, key_id_hex

pytestmark = pytest.mark.django_db

COLUMNS = ("number", "day", "amount", "data", "flag", "packed")

ROWS: list[dict[str, Any]] = [
    # Falsy values must stay values, never become NULL.
    {"number": 0, "day": datetime.date(2026, 12, 2), "amount": Decimal("0.00"),
     "data": {}, "flag": False, "packed": 0},
    {"number": 42, "day": datetime.date(2000, 2, 29), "amount": Decimal("1.50"),
     "data": {"a": [1, 2.5, None, True], "b": "ü ✓", "c": {"d": []}}, "flag": True,
     "packed": -(2**63)},
    {"number": -7, "day": datetime.date(1, 1, 1), "amount": Decimal("-9999999999.99"),
     "data": [], "flag": False, "packed": 2**63 - 1},
    {"number": 2**31, "day": datetime.date(9999, 12, 31), "amount": Decimal("2.00"),
     "data": "a string", "flag": True, "packed": 7},
    {"number": None, "day": None, "amount": None, "data": None, "flag": None, "packed": None},
    {"number": 1, "day": datetime.date(1970, 1, 1), "amount": Decimal("0.01"),
     "data": 0, "flag": True, "packed": None},
    {"number": None, "day": None, "amount": Decimal("10.00"), "data": False, "flag": False,
     "packed": -1},
]
N_VALUES = sum(v is not None for row in ROWS for v in row.values())


def raw_typed() -> list[tuple[Any, ...]]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT id, {', '.join(COLUMNS)} FROM rotapp_typedsecret ORDER BY id")
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in cur.fetchall()]


def exact(value: Any) -> str:
    """repr with the type: Decimal("2.00") != Decimal("2"), 0 != False."""
    return f"{type(value).__name__}:{value!r}"


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def typed_rows(settings: Any, keys: Keys) -> dict[Any, dict[str, Any]]:
    """TypedSecret rows saved through the ORM under the old key; afterwards
    MCFIELDS_KEYS = [new, old]."""
    settings.MCFIELDS_KEYS = [keys.old]
    saved = {TypedSecret.objects.create(**row).pk: row for row in ROWS}
    stored = [v for row in raw_typed() for v in row[1:] if v is not None]
    assert len(stored) == N_VALUES
    assert {key_id_hex(v) for v in stored} == {keys.key_id("old")}
    assert any(isinstance(v, bytes) for v in stored)  # "packed" is binary
    settings.MCFIELDS_KEYS = [keys.new, keys.old]
    return saved


def assert_values(saved: dict[Any, dict[str, Any]]) -> None:
    for pk, row in saved.items():
        obj = TypedSecret.objects.get(pk=pk)
        for name, value in row.items():
            assert exact(getattr(obj, name)) == exact(value), (pk, name)


def test_rotate_keys_rotates_every_typed_field(
    settings: Any, keys: Keys, typed_rows: dict[Any, dict[str, Any]]
) -> None:
    with pytest.raises(CommandError):
        rotate("--check", "rotapp.TypedSecret")
    dry = rotate("--dry-run", "rotapp.TypedSecret")
    assert f"{N_VALUES:,} would re-seal" in dry and "0 failed" in dry

    out = rotate("rotapp.TypedSecret", "--batch-size", "3")
    assert "Done." in out and f"{N_VALUES:,} re-sealed" in out and "0 failed" in out
    assert "rotapp.TypedSecret.packed: scanned 5, under first key 0, re-sealed 5" in out
    assert "Every value is under the first key" in rotate("--check", "rotapp.TypedSecret")

    settings.MCFIELDS_KEYS = [keys.new]
    stored = raw_typed()
    assert {key_id_hex(v) for row in stored for v in row[1:] if v is not None} == {
        keys.key_id("new")
    }
    assert [[v is None for v in row[1:]] for row in stored] == [
        [row[name] is None for name in COLUMNS] for row in ROWS
    ]
    assert_values(typed_rows)


def test_binary_typed_values_keep_their_stored_form(
    settings: Any, keys: Keys, typed_rows: dict[Any, dict[str, Any]]
) -> None:
    report = Rotator(batch_size=2).run(find_targets(["rotapp.TypedSecret"]))
    assert report.ok and report.failures == []
    packed = next(s for s in report.fields if s.field == "packed")
    assert (packed.scanned, packed.resealed, packed.failed) == (5, 5, 0)
    for row in raw_typed():
        assert all(isinstance(v, str) and v.startswith("mcf1:")
                   for v in row[1:6] if v is not None)
        assert row[6] is None or (isinstance(row[6], bytes) and row[6][:1] == b"\x01")
    # A rerun finds everything current and writes nothing.
    before = raw_typed()
    again = Rotator(mode=Mode.ROTATE).run(find_targets(["rotapp.TypedSecret"]))
    assert again.resealed == 0 and again.skipped == again.scanned == N_VALUES
    assert raw_typed() == before
    settings.MCFIELDS_KEYS = [keys.new]
    assert_values(typed_rows)
