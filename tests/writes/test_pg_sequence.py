"""PostgreSQL: the pk of a new row comes from its sequence before the INSERT.

``save()`` and ``EncryptedManager.bulk_create()`` take values from the pk
column's sequence (in blocks kept per process, connection and table), seal
each value for its row and INSERT once: no binding UPDATE.  These tests
check the statements, that every value opens for the pk its row got, and
what must never happen: a pk used twice (explicit inserts, forks, threads),
a value stored under a pk it was not sealed for.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

import mcfields.preallocate as preallocate
from mcfields.crypto import Keyring
from tests.writes.writeapp.models import AutoItem

from .conftest import opens, rows, stored

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL sequences"),
    # The fork test forks a process that may run threads (the test server's).
    pytest.mark.filterwarnings(
        "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
    ),
]

TABLE = AutoItem._meta.db_table
LABEL = "writeapp.AutoItem.secret"
CHILD_TIMEOUT = 60


@pytest.fixture(autouse=True)
def fresh_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No values cached from other tests; blocks grow however slow the
    machine is."""
    monkeypatch.setattr(preallocate, "PG_BURST", 3600.0)
    preallocate._forget_all()
    yield
    preallocate._forget_all()


def cached() -> list[int]:
    """The values this thread's connection holds for AutoItem's table, next first."""
    block = preallocate._blocks.get(connections["default"], {}).get(TABLE)
    return [] if block is None else block.pks[::-1]


def sequence_next() -> int:
    """The value the sequence gives next (without taking it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        (name,) = cursor.fetchone()
        cursor.execute(f"SELECT last_value, is_called FROM {name}")
        last, called = cursor.fetchone()
    return int(last) + 1 if called else int(last)


def insert_by_hand(pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{TABLE}" (id, name) VALUES (%s, %s)', [pk, "by hand"])


def kinds(ctx: CaptureQueriesContext) -> list[str]:
    """Each statement's first word; "nextval" for the query of the sequence."""
    return ["nextval" if "nextval(" in q["sql"] else q["sql"].split()[0]
            for q in ctx.captured_queries]


def assert_opens(ring: Keyring, item: AutoItem, text: str) -> None:
    assert opens(ring, stored(AutoItem, "secret", item.pk), LABEL, item.pk) == text.encode()


@pytest.mark.django_db(transaction=True)
def test_create_takes_the_pk_from_the_sequence_and_inserts_once(ring: Keyring) -> None:
    per_create = []
    items = []
    for i in range(7):
        with CaptureQueriesContext(connection) as ctx:
            items.append(AutoItem.objects.create(name=f"n{i}", secret=f"secret {i}"))
        per_create.append(kinds(ctx))
    # Blocks of 1, 2 and 4 values: a nextval SELECT only when the block is
    # used up, never an UPDATE.
    assert per_create == [["nextval", "INSERT"], ["nextval", "INSERT"], ["INSERT"],
                          ["nextval", "INSERT"], ["INSERT"], ["INSERT"], ["INSERT"]]
    pks = [item.pk for item in items]
    assert pks == sorted(pks) and len(set(pks)) == 7
    for i, item in enumerate(items):
        assert_opens(ring, item, f"secret {i}")
        assert AutoItem.objects.get(pk=item.pk).secret == f"secret {i}"


@pytest.mark.django_db
def test_inside_a_transaction_the_insert_runs_in_a_savepoint(ring: Keyring) -> None:
    per_create = []
    items = []
    for i in range(3):
        with CaptureQueriesContext(connection) as ctx:
            items.append(AutoItem.objects.create(secret=f"secret {i}"))
        per_create.append(kinds(ctx))
    # A failed INSERT aborts a PostgreSQL transaction: the savepoint lets a
    # pk taken meanwhile be skipped.  Still no UPDATE.
    assert per_create == [["nextval", "SAVEPOINT", "INSERT", "RELEASE"],
                          ["nextval", "SAVEPOINT", "INSERT", "RELEASE"],
                          ["SAVEPOINT", "INSERT", "RELEASE"]]
    for i, item in enumerate(items):
        assert_opens(ring, item, f"secret {i}")


@pytest.mark.django_db
def test_block_size_starts_at_one_and_stops_growing_at_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preallocate, "PG_BLOCK_MAX", 4)
    first = AutoItem.objects.create(secret="one")
    assert cached() == []  # one row saved: no value held back
    for _ in range(8):
        AutoItem.objects.create(secret="more")
    block = preallocate._blocks[connections["default"]][TABLE]
    assert block.size == 4
    # After a pause the next block is one value again.
    monkeypatch.setattr(preallocate, "PG_BURST", 0.0)
    block.pks.clear()
    AutoItem.objects.create(secret="after a pause")
    assert block.size == 1 and cached() == []
    assert AutoItem.objects.get(pk=first.pk).secret == "one"


@pytest.mark.django_db
def test_a_pk_already_inserted_by_hand_is_skipped(ring: Keyring) -> None:
    taken = sequence_next()
    insert_by_hand(taken)  # an explicit pk the sequence has not given yet
    item = AutoItem.objects.create(secret="mine")
    assert item.pk == taken + 1
    assert_opens(ring, item, "mine")
    assert stored(AutoItem, "secret", taken) is None  # the hand-made row is untouched


@pytest.mark.django_db(transaction=True)
def test_a_cached_pk_taken_meanwhile_is_skipped_and_the_next_one_used(ring: Keyring) -> None:
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")  # takes a block of 2: one value stays cached
    (held,) = cached()
    insert_by_hand(held)  # another writer uses that value meanwhile
    item = AutoItem.objects.create(secret="mine")
    assert item.pk > held
    assert_opens(ring, item, "mine")
    assert stored(AutoItem, "secret", held) is None
    assert AutoItem.objects.get(pk=held).name == "by hand"


@pytest.mark.django_db(transaction=True)
def test_a_cached_pk_taken_meanwhile_inside_atomic_is_skipped(ring: Keyring) -> None:
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")
    (held,) = cached()
    insert_by_hand(held)
    with transaction.atomic():
        item = AutoItem.objects.create(secret="mine")
        after = AutoItem.objects.create(secret="the transaction goes on")
    assert held < item.pk < after.pk
    assert_opens(ring, item, "mine")
    assert_opens(ring, after, "the transaction goes on")
    assert AutoItem.objects.get(pk=held).name == "by hand"


@pytest.mark.django_db
def test_a_sequence_reset_below_cached_values_is_survived(ring: Keyring) -> None:
    # What a TestCase with fixtures does after another test cached values:
    # rows with explicit pks, then loaddata's sequence reset to their max.
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")
    (held,) = cached()
    for pk in range(held, held + 4):
        insert_by_hand(pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                       [TABLE, held + 3])
    item = AutoItem.objects.create(secret="after the reset")
    assert item.pk == held + 4
    assert_opens(ring, item, "after the reset")
    assert stored(AutoItem, "secret", held) is None


@pytest.mark.django_db(transaction=True)
def test_rollback_of_the_callers_atomic_leaves_no_row_and_the_next_save_works(
    ring: Keyring,
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = AutoItem.objects.create(secret="rolled back")
        AutoItem.objects.create(secret="rolled back too")
        raise RuntimeError("the caller gives up")
    assert rows(AutoItem) == 0
    item = AutoItem.objects.create(secret="kept")
    assert item.pk > lost.pk  # sequences are not transactional: a gap
    assert_opens(ring, item, "kept")


@pytest.mark.django_db
def test_bulk_create_takes_all_pks_in_one_query_and_never_updates(ring: Keyring) -> None:
    AutoItem.objects.create(secret="warm")  # a cached block is used first
    objs = [AutoItem(name=f"b{i}", secret=f"bulk {i}", blob=b"%d" % i) for i in range(20)]
    with CaptureQueriesContext(connection) as ctx:
        created = AutoItem.objects.bulk_create(objs, batch_size=7)
    statements = kinds(ctx)
    # In one savepoint: one query of the sequence for the 19 values not
    # cached, Django's three batched INSERTs; no UPDATE.
    assert statements == ["SAVEPOINT", "nextval", "INSERT", "INSERT", "INSERT", "RELEASE"]
    assert len({obj.pk for obj in created}) == 20
    for i, obj in enumerate(created):
        assert_opens(ring, obj, f"bulk {i}")
        assert opens(ring, stored(AutoItem, "blob", obj.pk), "writeapp.AutoItem.blob",
                     obj.pk) == b"%d" % i


@pytest.mark.django_db
def test_bulk_create_skips_a_cached_pk_taken_meanwhile(ring: Keyring) -> None:
    AutoItem.objects.create(secret="a")
    AutoItem.objects.create(secret="b")
    (held,) = cached()
    insert_by_hand(held)
    # Inside the test's transaction: the bulk INSERT runs in a savepoint of
    # its own, so the failed attempt is undone and retried.
    created = AutoItem.objects.bulk_create([AutoItem(secret=f"x{i}") for i in range(3)])
    assert held not in {obj.pk for obj in created}
    for i, obj in enumerate(created):
        assert_opens(ring, obj, f"x{i}")
    assert AutoItem.objects.get(pk=held).name == "by hand"


@pytest.mark.django_db
def test_a_pk_without_a_sequence_takes_the_general_path(ring: Keyring) -> None:
    # The column's default is a sequence it does not own: no
    # pg_get_serial_sequence (DDL is undone with the test's transaction).
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE mcfields_unowned_seq START 900000")
        cursor.execute(f'ALTER TABLE "{TABLE}" ALTER COLUMN id DROP IDENTITY')
        cursor.execute(
            f"ALTER TABLE \"{TABLE}\" ALTER COLUMN id SET DEFAULT nextval('mcfields_unowned_seq')"
        )
    with CaptureQueriesContext(connection) as ctx:
        item = AutoItem.objects.create(secret="general")
    assert "UPDATE" in kinds(ctx)
    assert item.pk >= 900000
    assert_opens(ring, item, "general")
    created = AutoItem.objects.bulk_create([AutoItem(secret="bulk general")])
    assert_opens(ring, created[0], "bulk general")


# -- processes and threads --------------------------------------------------------------


def _child_saves(count: int) -> list[int]:
    # The parent's session must not be used (nor closed) by the child: keep
    # it referenced, open a new one.
    _parents_session = connection.connection  # noqa: F841 - kept alive until _exit
    connection.connection = None
    try:
        return [AutoItem.objects.create(secret=f"child {i}").pk for i in range(count)]
    finally:
        connection.close()


def _fork(work: Any) -> Any:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_fd)
            payload = pickle.dumps(("ok", work()))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent
            payload, status = pickle.dumps(("error", repr(exc))), 1
        try:
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            pytest.fail(f"forked child hung for {CHILD_TIMEOUT} s")
        time.sleep(0.01)
    with os.fdopen(read_fd, "rb") as src:
        kind, result = pickle.loads(src.read())
    assert kind == "ok", result
    assert os.waitstatus_to_exitcode(status) == 0
    return result


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_never_uses_the_parents_cached_pks(ring: Keyring) -> None:
    for i in range(4):
        AutoItem.objects.create(secret=f"parent {i}")  # blocks of 1, 2, 4
    held = cached()
    assert len(held) == 3
    child_pks = _fork(lambda: _child_saves(5))
    assert not set(child_pks) & set(held)
    parent_items = [AutoItem.objects.create(secret=f"parent after {i}") for i in range(3)]
    assert [item.pk for item in parent_items] == held  # the parent's own values
    assert len(set(child_pks) | set(held)) == 8
    for i, pk in enumerate(child_pks):
        assert opens(ring, stored(AutoItem, "secret", pk), LABEL, pk) == f"child {i}".encode()
    for i, item in enumerate(parent_items):
        assert_opens(ring, item, f"parent after {i}")


@pytest.mark.django_db(transaction=True)
def test_two_threads_saving_at_once_get_distinct_pks(ring: Keyring) -> None:
    per_thread = 60
    results: dict[int, list[tuple[int, str]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(n: int) -> None:
        try:
            start.wait()
            saved = []
            for i in range(per_thread):
                text = f"thread {n} row {i}"
                saved.append((AutoItem.objects.create(secret=text).pk, text))
            results[n] = saved
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    saved = results[0] + results[1]
    assert len({pk for pk, _ in saved}) == 2 * per_thread
    for pk, text in saved:
        assert opens(ring, stored(AutoItem, "secret", pk), LABEL, pk) == text.encode()
