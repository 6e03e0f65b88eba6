"""SQLite: pks of new rows reserved in blocks through ``sqlite_sequence``.

In autocommit mode, while a connection keeps saving rows of a table,
``save()`` reserves blocks of pks by raising the table's ``sqlite_sequence``
entry (one statement that commits by itself), so that AUTOINCREMENT gives
every other writer a larger pk, and inserts each row once with a value of
the block: no per-row read of the next pk.  Inside a transaction nothing is
reserved (a rollback would undo the reservation while the values stayed
cached).  ``EncryptedManager.bulk_create()`` reserves all its pks in the
savepoint of its INSERTs.  These tests check the statements, that each
value opens for its row's pk, and what must never happen: a pk used twice,
a value stored under a pk it was not sealed for.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

import mcfields.preallocate as preallocate
from mcfields.crypto import Keyring
from tests.writes.writeapp.models import AutoItem

from .conftest import opens, rows, stored

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's AUTOINCREMENT")

TABLE = AutoItem._meta.db_table
LABEL = "writeapp.AutoItem.secret"


@pytest.fixture(autouse=True)
def fresh_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(preallocate, "PG_BURST", 3600.0)
    preallocate._forget_all()
    yield
    preallocate._forget_all()


def cached() -> list[int]:
    block = preallocate._blocks.get(connections["default"], {}).get(TABLE)
    return [] if block is None else block.pks[::-1]


def sequence() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [TABLE])
        row = cursor.fetchone()
    return 0 if row is None else int(row[0])


def kinds(ctx: CaptureQueriesContext) -> list[str]:
    return ["reserve" if "sqlite_sequence SET" in q["sql"] else q["sql"].split()[0]
            for q in ctx.captured_queries]


def insert_by_hand(pk: int | None = None) -> int:
    with connection.cursor() as cursor:
        if pk is None:
            cursor.execute(f'INSERT INTO "{TABLE}" (name) VALUES (%s)', ["by hand"])
        else:
            cursor.execute(f'INSERT INTO "{TABLE}" (id, name) VALUES (%s, %s)', [pk, "by hand"])
        return int(cursor.lastrowid)


def assert_opens(ring: Keyring, item: AutoItem, text: str) -> None:
    assert opens(ring, stored(AutoItem, "secret", item.pk), LABEL, item.pk) == text.encode()


@pytest.mark.django_db(transaction=True)
def test_autocommit_creates_reserve_blocks_and_insert_once(ring: Keyring) -> None:
    per_create = []
    items = []
    for i in range(11):
        with CaptureQueriesContext(connection) as ctx:
            items.append(AutoItem.objects.create(secret=f"secret {i}"))
        per_create.append(kinds(ctx))
    # The first save reads the next pk; then blocks of 8 and 64 values,
    # each reserved by one statement; never an UPDATE of the row.
    assert per_create == [["SELECT", "INSERT"], ["reserve", "INSERT"], *[["INSERT"]] * 7,
                          ["reserve", "INSERT"], ["INSERT"]]
    pks = [item.pk for item in items]
    assert pks == list(range(pks[0], pks[0] + 11))
    assert sequence() == pks[-1] + 62  # the rest of the block of 64 is reserved
    for i, item in enumerate(items):
        assert_opens(ring, item, f"secret {i}")
        assert AutoItem.objects.get(pk=item.pk).secret == f"secret {i}"


@pytest.mark.django_db(transaction=True)
def test_other_writers_get_pks_above_the_reserved_block(ring: Keyring) -> None:
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")  # reserves a block
    held = cached()
    assert held
    theirs = insert_by_hand()  # a plain INSERT: AUTOINCREMENT's pk
    assert theirs > max(held)
    mine = AutoItem.objects.create(secret="mine")
    assert mine.pk == held[0]
    assert_opens(ring, mine, "mine")


@pytest.mark.django_db(transaction=True)
def test_a_reserved_pk_taken_by_hand_is_skipped(ring: Keyring) -> None:
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")
    held = cached()
    insert_by_hand(held[0])  # an explicit pk inside the block
    item = AutoItem.objects.create(secret="skips the taken pk")
    assert item.pk == held[1]
    assert_opens(ring, item, "skips the taken pk")
    assert rows(AutoItem) == 4


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_nothing_is_reserved_and_a_rollback_reuses_no_pk(
    ring: Keyring,
) -> None:
    first = AutoItem.objects.create(secret="first")
    with transaction.atomic():
        per_create = []
        for i in range(3):
            with CaptureQueriesContext(connection) as ctx:
                AutoItem.objects.create(secret=f"in transaction {i}")
            per_create.append(kinds(ctx))
    assert per_create == [["SELECT", "INSERT"]] * 3
    assert cached() == []
    # Values reserved in autocommit mode are used inside a transaction; a
    # rollback leaves a gap, and those values are never handed out again.
    AutoItem.objects.create(secret="reserves")
    held = cached()
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = AutoItem.objects.create(secret="rolled back")
        raise RuntimeError("the caller gives up")
    assert lost.pk == held[0]
    kept = AutoItem.objects.create(secret="kept")
    assert kept.pk > lost.pk and kept.pk > first.pk
    assert not AutoItem.objects.filter(pk=lost.pk).exists()
    assert_opens(ring, kept, "kept")


@pytest.mark.django_db(transaction=True)
def test_a_table_without_a_sequence_entry_reads_the_next_pk(ring: Keyring) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [TABLE])
    AutoItem.objects.create(secret="a")  # creates the entry again
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [TABLE])
    with CaptureQueriesContext(connection) as ctx:
        item = AutoItem.objects.create(secret="b")
    assert kinds(ctx) == ["reserve", "SELECT", "INSERT"]
    assert_opens(ring, item, "b")


@pytest.mark.django_db(transaction=True)
def test_bulk_create_reserves_in_its_savepoint_and_never_updates(ring: Keyring) -> None:
    AutoItem.objects.create(secret="warm")  # the table has a sequence entry
    objs = [AutoItem(secret=f"bulk {i}") for i in range(20)]
    with CaptureQueriesContext(connection) as ctx:
        AutoItem.objects.bulk_create(objs, batch_size=7)
    assert [k for k in kinds(ctx) if k not in ("BEGIN", "COMMIT")] == [
        "reserve", "INSERT", "INSERT", "INSERT"]
    assert len({obj.pk for obj in objs}) == 20
    for i, obj in enumerate(objs):
        assert_opens(ring, obj, f"bulk {i}")
    # A rolled-back bulk_create takes its reservation with it.
    before = sequence()
    with pytest.raises(RuntimeError), transaction.atomic():
        AutoItem.objects.bulk_create([AutoItem(secret="gone") for _ in range(5)])
        raise RuntimeError("the caller gives up")
    assert sequence() == before
    assert rows(AutoItem) == 21
