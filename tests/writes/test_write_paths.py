"""Every write path writes sealed values, bound to the right row, in the
database Django's own write would use, and checks the rows it matched.

Each test here reproduces a way the write paths went wrong (wrong
database, wrong row, wrong pk text, a placeholder committed, a value
dropped); they run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import FieldError
from django.db import connection, transaction
from django.db.models import Case, Count, Value, When
from django.test import override_settings

from mcfields import DecryptionError
from mcfields.crypto import Keyring
from mcfields.exceptions import ValueTooLargeError
from tests.writes.writeapp.models import AutoItem, Base, OwnPkChild, Tag, UuidItem

from .conftest import opens, rows, stored

ON_POSTGRES = connection.vendor == "postgresql"
ROOT = Path(__file__).resolve().parents[2]

both = pytest.mark.django_db(databases=["default", "replica"])


def _mirror(obj: object) -> None:
    """Copy a row to the replica with the same pk (what replication does)."""
    type(obj)._base_manager.using("replica").filter(pk=obj.pk).delete()
    copy = type(obj)._base_manager.using("default").get(pk=obj.pk)
    for field in type(obj)._meta.concrete_fields:
        getattr(copy, field.attname)  # open on this side
    copy.save(using="replica", force_insert=True)


# -- 1. read-replica routers: writes go where the router sends writes ----------------


@both
@pytest.mark.parametrize("general", [False, True])
def test_bulk_create_under_a_replica_router_binds_rows_in_the_write_database(
    ring: Keyring, replica_router: None, monkeypatch: pytest.MonkeyPatch, general: bool
) -> None:
    if general:
        monkeypatch.setattr("mcfields.preallocate.ENABLED", False)
    items = AutoItem.objects.bulk_create(
        [AutoItem(name=f"r{i}", secret=f"secret {i}", blob=b"b%d" % i) for i in range(3)]
    )
    assert rows(AutoItem, "replica") == 0
    for i, item in enumerate(items):
        assert opens(ring, stored(AutoItem, "secret", item.pk), "writeapp.AutoItem.secret",
                     item.pk) == f"secret {i}".encode()
        assert opens(ring, stored(AutoItem, "blob", item.pk), "writeapp.AutoItem.blob",
                     item.pk) == b"b%d" % i


@both
def test_update_under_a_replica_router_writes_the_write_database(
    ring: Keyring, replica_router: None
) -> None:
    item = AutoItem.objects.create(name="u", secret="old")
    _mirror(item)
    assert AutoItem.objects.filter(name="u").update(secret="new", name="v") == 1
    assert opens(ring, stored(AutoItem, "secret", item.pk), "writeapp.AutoItem.secret",
                 item.pk) == b"new"
    # The replica was only read.
    assert opens(ring, stored(AutoItem, "secret", item.pk, "replica"),
                 "writeapp.AutoItem.secret", item.pk) == b"old"


@both
def test_bulk_update_under_a_replica_router_writes_the_write_database(
    ring: Keyring, replica_router: None
) -> None:
    item = AutoItem.objects.create(name="u", secret="old")
    _mirror(item)
    item.secret = "new"
    AutoItem.objects.bulk_update([item], ["secret"])
    assert opens(ring, stored(AutoItem, "secret", item.pk), "writeapp.AutoItem.secret",
                 item.pk) == b"new"
    assert opens(ring, stored(AutoItem, "secret", item.pk, "replica"),
                 "writeapp.AutoItem.secret", item.pk) == b"old"


# -- 2. upserts through a plain manager ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("manager", ["plain", "objects"])
def test_upsert_on_another_unique_field_is_refused(ring: Keyring, manager: str) -> None:
    if not connection.features.supports_update_conflicts_with_target:
        pytest.skip("no ON CONFLICT (...) DO UPDATE")
    old = UuidItem.objects.create(code="a", secret="old")
    # (Raised inside Django's own bulk_create() transaction: the savepoint
    # keeps the test's transaction usable, as in any caller that goes on.)
    with pytest.raises(ValueError, match="unique_fields"), transaction.atomic():
        getattr(UuidItem, manager).bulk_create(
            [UuidItem(code="a", secret="new")],
            update_conflicts=True, unique_fields=["code"], update_fields=["secret"],
        )
    assert UuidItem.objects.count() == 1
    assert opens(ring, stored(UuidItem, "secret", old.pk), "writeapp.UuidItem.secret",
                 old.pk) == b"old"


@pytest.mark.django_db
def test_upsert_on_the_pk_through_a_plain_manager_binds(ring: Keyring) -> None:
    if not connection.features.supports_update_conflicts_with_target:
        pytest.skip("no ON CONFLICT (...) DO UPDATE")
    old = UuidItem.objects.create(code="a", secret="old")
    UuidItem.plain.bulk_create(
        [UuidItem(id=old.pk, code="a", secret="new")],
        update_conflicts=True, unique_fields=["id"], update_fields=["secret"],
    )
    assert UuidItem.objects.get(pk=old.pk).secret == "new"


# -- 3. a multi-table child whose pk is not the parent link ---------------------------


def _own_pk_child_next_to_an_unrelated_parent() -> tuple[Base, OwnPkChild]:
    unrelated = Base.objects.create(title="unrelated", secret="unrelated secret")
    # The child's own pk equals the unrelated row's pk; its parent row is another.
    child = OwnPkChild.objects.create(number=unrelated.pk, title="c", secret="child secret",
                                      extra="extra")
    assert child.base_id != unrelated.pk
    return unrelated, child


@pytest.mark.django_db
def test_own_pk_child_saves_and_loads(ring: Keyring) -> None:
    unrelated, child = _own_pk_child_next_to_an_unrelated_parent()
    fresh = OwnPkChild.objects.get(number=child.number)
    assert (fresh.secret, fresh.extra) == ("child secret", "extra")
    assert opens(ring, stored(Base, "secret", child.base_id), "writeapp.Base.secret",
                 child.base_id) == b"child secret"
    fresh.secret = "changed"
    fresh.save()
    assert OwnPkChild.objects.get(number=child.number).secret == "changed"
    assert Base.objects.get(pk=unrelated.pk).secret == "unrelated secret"


@pytest.mark.django_db
def test_update_of_own_pk_child_writes_each_table_by_its_own_pk(ring: Keyring) -> None:
    unrelated, child = _own_pk_child_next_to_an_unrelated_parent()
    assert OwnPkChild.objects.filter(number=child.number).update(
        secret="new secret", extra="new extra", title="t2"
    ) == 1
    assert opens(ring, stored(Base, "secret", unrelated.pk), "writeapp.Base.secret",
                 unrelated.pk) == b"unrelated secret"
    fresh = OwnPkChild.objects.get(number=child.number)
    assert (fresh.secret, fresh.extra, fresh.title) == ("new secret", "new extra", "t2")
    assert Base.objects.get(pk=unrelated.pk).secret == "unrelated secret"


@pytest.mark.django_db
def test_bulk_update_of_own_pk_child_writes_each_table_by_its_own_pk(ring: Keyring) -> None:
    unrelated, child = _own_pk_child_next_to_an_unrelated_parent()
    child.secret, child.extra = "new secret", "new extra"
    OwnPkChild.objects.bulk_update([child], ["secret", "extra"])
    assert opens(ring, stored(Base, "secret", unrelated.pk), "writeapp.Base.secret",
                 unrelated.pk) == b"unrelated secret"
    fresh = OwnPkChild.objects.get(number=child.number)
    assert (fresh.secret, fresh.extra) == ("new secret", "new extra")


# -- 4. the pk text is the pk the row will have once loaded --------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("given", [5, "00000000-0000-0000-0000-000000000005",
                                   "00000000000000000000000000000005"])
def test_uuid_pk_given_in_another_form_is_bound_as_the_loaded_uuid(given: object) -> None:
    UuidItem.objects.create(id=given, code="u5", secret="s", blob=b"b")
    fresh = UuidItem.objects.get(code="u5")
    assert fresh.pk == uuid.UUID(int=5)
    assert (fresh.secret, fresh.blob) == ("s", b"b")


@pytest.mark.django_db
def test_integer_pk_given_as_text_is_bound_as_the_loaded_int(two_statements: None) -> None:
    AutoItem.objects.create(id="41", name="i41", secret="s")
    assert AutoItem.objects.get(name="i41").secret == "s"
    item = AutoItem.objects.get(name="i41")
    AutoItem.objects.filter(pk="41").update(secret="t")
    item.refresh_from_db()
    assert item.secret == "t"


# -- 6. a caller's mutable buffer is never remembered as the saved plaintext ------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_mutated_buffer_is_written_by_the_next_save(kind: type) -> None:
    buffer = bytearray(b"first")
    item = AutoItem.objects.create(blob=kind(buffer) if kind is memoryview else buffer)
    buffer[:] = b"secnd"
    item.save()
    assert bytes(item.blob) == b"secnd"
    assert AutoItem.objects.get(pk=item.pk).blob == b"secnd"


# -- 10. update() through joins and aggregates ---------------------------------------


@pytest.mark.django_db
def test_update_filtered_through_a_nullable_join() -> None:
    lonely = AutoItem.objects.create(name="lonely", secret="a")
    tagged = AutoItem.objects.create(name="tagged", secret="b")
    Tag.objects.create(item=tagged)
    assert AutoItem.objects.filter(tags__isnull=True).update(secret="no tags") == 1
    assert AutoItem.objects.get(pk=lonely.pk).secret == "no tags"
    assert AutoItem.objects.get(pk=tagged.pk).secret == "b"


@pytest.mark.django_db
def test_update_filtered_on_an_aggregate_annotation() -> None:
    lonely = AutoItem.objects.create(name="lonely", secret="a")
    tagged = AutoItem.objects.create(name="tagged", secret="b")
    Tag.objects.create(item=tagged)
    Tag.objects.create(item=tagged)
    qs = AutoItem.objects.annotate(n=Count("tags")).filter(n__gte=2)
    assert qs.update(secret="two tags") == 1
    assert AutoItem.objects.get(pk=tagged.pk).secret == "two tags"
    assert AutoItem.objects.get(pk=lonely.pk).secret == "a"


# -- 11. update() under concurrent writers waits like Django's own ----------------------


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's database-level write lock")
def test_concurrent_updates_on_sqlite_wait_for_the_write_lock(tmp_path: Path) -> None:
    env = dict(os.environ, MCFIELDS_SQLITE_PATH=str(tmp_path / "concurrent.sqlite3"),
               DJANGO_SETTINGS_MODULE="testproject.settings", PYTHONPATH=str(ROOT))
    env.pop("MCFIELDS_TEST_DB", None)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("concurrent_update.py"))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == [], report
    assert report["calls"] == report["expected_calls"]
    assert report["all_open"] is True


# -- 12. a failure after the INSERT, inside the caller's transaction ---------------------


@pytest.mark.django_db(transaction=True)
def test_failure_after_the_insert_in_a_hand_managed_transaction_commits_no_row(
    two_statements: None,
) -> None:
    AutoItem.objects.create(name="before", secret="kept")
    transaction.set_autocommit(False)
    try:
        AutoItem.objects.create(name="mine", secret="committed with the caller")
        with override_settings(MCFIELDS_MAX_VALUE_SIZE=8):
            with pytest.raises(ValueTooLargeError):
                AutoItem.objects.create(name="big", secret="x" * 100)
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert sorted(AutoItem.plain.values_list("name", flat=True)) == ["before", "mine"]
    assert {i.name: i.secret for i in AutoItem.objects.all()} == {
        "before": "kept", "mine": "committed with the caller"}


@pytest.mark.django_db(transaction=True)
def test_failure_after_the_insert_inside_atomic_leaves_no_row(two_statements: None) -> None:
    with transaction.atomic():
        AutoItem.objects.create(name="mine", secret="s")
        with override_settings(MCFIELDS_MAX_VALUE_SIZE=8):
            # Django marks the caller's block for rollback on any error in
            # save(); a savepoint of the caller's lets it go on.
            with pytest.raises(ValueTooLargeError), transaction.atomic():
                AutoItem.objects.create(name="big", secret="x" * 100)
        AutoItem.objects.create(name="after", secret="t")
    assert sorted(AutoItem.plain.values_list("name", flat=True)) == ["after", "mine"]


@pytest.mark.django_db(transaction=True)
def test_bulk_create_failure_in_a_hand_managed_transaction_commits_no_row() -> None:
    transaction.set_autocommit(False)
    try:
        with override_settings(MCFIELDS_MAX_VALUE_SIZE=8):
            with pytest.raises(ValueTooLargeError):
                AutoItem.objects.bulk_create(
                    [AutoItem(name="ok", secret="s"), AutoItem(name="big", secret="x" * 100)]
                )
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert AutoItem.plain.count() == 0


# -- 13. the same instance twice in bulk_create ----------------------------------------


@pytest.mark.django_db
def test_bulk_create_with_the_same_instance_twice_is_refused() -> None:
    obj = AutoItem(name="twice", secret="s")
    with pytest.raises(ValueError, match="more than once"):
        AutoItem.objects.bulk_create([obj, obj])
    assert rows(AutoItem) == 0
    assert obj.pk is None


# -- 16. update() that changes the pk -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["pk", "id"])
def test_update_that_changes_the_pk_is_refused(ring: Keyring, name: str) -> None:
    item = AutoItem.objects.create(name="p", secret="old")
    with pytest.raises(FieldError, match="primary key"):
        AutoItem.objects.filter(pk=item.pk).update(**{name: item.pk + 100, "secret": "new"})
    with pytest.raises(FieldError, match="primary key"):
        AutoItem.objects.filter(pk=item.pk).update(**{name: item.pk + 100})
    assert AutoItem.objects.get(pk=item.pk).secret == "old"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["number", "base", "base_id", "id"])
def test_update_that_changes_a_childs_pk_or_parent_link_is_refused(name: str) -> None:
    _, child = _own_pk_child_next_to_an_unrelated_parent()
    new = child.number + 1000 if name in ("number", "id", "base_id") else None
    value = Base.objects.create() if name == "base" else new
    with pytest.raises(FieldError, match="primary key"):
        OwnPkChild.objects.filter(number=child.number).update(**{name: value})
    assert OwnPkChild.objects.get(number=child.number).secret == "child secret"


# -- 17. only the column's own stored form opens --------------------------------------


@pytest.mark.django_db
def test_a_value_in_the_other_stored_form_does_not_open() -> None:
    item = AutoItem.objects.create(secret="text", blob=b"bytes")
    text_field = AutoItem._meta.get_field("secret")
    blob_field = AutoItem._meta.get_field("blob")
    text_stored = stored(AutoItem, "secret", item.pk)
    blob_stored = stored(AutoItem, "blob", item.pk)
    # Same envelope bytes, other form: what SQLite's dynamic typing can hold.
    as_bytes = text_field.from_db_value(text_field._to_envelope(text_stored), None, connection)
    with pytest.raises(DecryptionError):
        text_field.open_for_pk(as_bytes, item.pk)
    from mcfields.crypto import to_text

    as_text = blob_field.from_db_value(to_text(blob_stored), None, connection)
    with pytest.raises(DecryptionError):
        blob_field.open_for_pk(as_text, item.pk)


@pytest.mark.django_db
@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's dynamic typing")
def test_sqlite_blob_in_a_text_column_does_not_open() -> None:
    from mcfields.crypto import from_text, to_text

    item = AutoItem.objects.create(secret="text", blob=b"bytes")
    text_stored = stored(AutoItem, "secret", item.pk)
    blob_stored = stored(AutoItem, "blob", item.pk)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE writeapp_autoitem SET secret = %s, blob = %s WHERE id = %s",
                       [from_text(text_stored), to_text(blob_stored), item.pk])
    fresh = AutoItem.objects.get(pk=item.pk)
    with pytest.raises(DecryptionError):
        fresh.secret  # noqa: B018
    with pytest.raises(DecryptionError):
        fresh.blob  # noqa: B018


# -- 19. refresh_from_db() opens nothing ----------------------------------------------------


@pytest.mark.django_db
def test_refresh_from_db_opens_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    item = AutoItem.objects.create(secret="a", blob=b"b")
    other = AutoItem.objects.create(secret="other", blob=b"o")
    # A value moved from another row: refreshing must not fail because of it.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE writeapp_autoitem SET blob = (SELECT blob FROM writeapp_autoitem "
            "WHERE id = %s) WHERE id = %s", [other.pk, item.pk])
    opened = []
    for name in ("open", "open_text"):
        real = getattr(Keyring, name)
        monkeypatch.setattr(Keyring, name,
                            lambda self, *a, _real=real: opened.append(1) or _real(self, *a))
    item.refresh_from_db()
    assert opened == []
    assert item.secret == "a"
    assert len(opened) == 1
    with pytest.raises(DecryptionError):
        item.blob  # noqa: B018
    before = stored(AutoItem, "secret", item.pk)
    item.save()  # the refreshed, untouched values are written back as they are
    assert stored(AutoItem, "secret", item.pk) == before


@pytest.mark.django_db
def test_refresh_from_db_of_a_deferred_field_opens_it_on_read() -> None:
    item = AutoItem.objects.create(secret="a", blob=b"b")
    deferred = AutoItem.objects.defer("secret").get(pk=item.pk)
    assert deferred.secret == "a"
    deferred.refresh_from_db(fields=["blob"])
    assert deferred.blob == b"b"


# -- 21. an expression assigned before save() -----------------------------------------


@pytest.mark.django_db
def test_case_expression_assigned_before_save_gets_the_save_message() -> None:
    item = AutoItem.objects.create(secret="a")
    item.secret = Case(When(pk=item.pk, then=Value("x")))
    with pytest.raises(FieldError) as info, transaction.atomic():
        item.save()
    assert "bulk_update" not in str(info.value)
    assert "writeapp.AutoItem.secret" in str(info.value)
    assert AutoItem.objects.get(pk=item.pk).secret == "a"


# -- values that change in place, and values moved without being opened ----------------


@pytest.mark.django_db
def test_json_changed_in_place_is_written() -> None:
    item = AutoItem.objects.create(doc={"a": 1})
    item.doc["a"] = 2  # the object saved, changed afterwards
    item.save()
    fresh = AutoItem.objects.get(pk=item.pk)
    assert fresh.doc == {"a": 2}
    fresh.doc["b"] = [1, {"c": None}]  # a loaded value, changed in place
    fresh.save()
    assert AutoItem.objects.get(pk=item.pk).doc == {"a": 2, "b": [1, {"c": None}]}


@pytest.mark.django_db
def test_json_read_and_unchanged_is_written_back_as_stored() -> None:
    item = AutoItem.objects.create(doc={"a": [1, 2]})
    before = stored(AutoItem, "doc", item.pk)
    fresh = AutoItem.objects.get(pk=item.pk)
    assert fresh.doc == {"a": [1, 2]}
    fresh.save()
    assert stored(AutoItem, "doc", item.pk) == before


@pytest.mark.django_db
def test_copy_without_reading_reseals_for_the_new_row(ring: Keyring,
                                                     two_statements: None) -> None:
    item = AutoItem.objects.create(secret="s", blob=b"b", doc=[1])
    copy = AutoItem.objects.get(pk=item.pk)  # nothing read
    copy.pk = None
    copy.save()
    assert copy.pk != item.pk
    assert opens(ring, stored(AutoItem, "secret", copy.pk), "writeapp.AutoItem.secret",
                 copy.pk) == b"s"
    fresh = AutoItem.objects.get(pk=copy.pk)
    assert (fresh.secret, fresh.blob, fresh.doc) == ("s", b"b", [1])
    assert AutoItem.objects.get(pk=item.pk).secret == "s"


# -- every binding write checks the rows it matched -------------------------------------


@pytest.mark.django_db
def test_binding_write_that_matches_no_row_raises() -> None:
    from django.db import DatabaseError

    from mcfields.saving import ForSave, write_sealed

    item = AutoItem.objects.create(secret="kept")
    field = AutoItem._meta.get_field("secret")
    sealed = ForSave(field.seal_for_pk("x", item.pk + 1000))
    with pytest.raises(DatabaseError, match="matched 0 rows instead of 1"), transaction.atomic():
        write_sealed("default", [field], [({AutoItem: item.pk + 1000}, [sealed])])
    # Two entries for one row write it twice: matched 2 of 2, accepted; one
    # real and one missing row: matched 1 of 2, refused and rolled back.
    good = ForSave(field.seal_for_pk("new", item.pk))
    with pytest.raises(DatabaseError, match="matched 1 rows instead of 2"), transaction.atomic():
        write_sealed("default", [field], [({AutoItem: item.pk}, [good]),
                                          ({AutoItem: item.pk + 1000}, [sealed])])
    assert AutoItem.objects.get(pk=item.pk).secret == "kept"
