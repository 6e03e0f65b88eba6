"""Blind indexes through rotation, back-fill and adoption: ``rotate_keys``
rebuilds stale or missing indexes (resuming after a crash, without losing a
concurrent write), ``--check`` reports them, and ``EncryptColumn`` fills
them while sealing a plaintext column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from mcfields.crypto import generate_key
from mcfields.rotation import Rotator
from mcfields.rotation.scope import find_targets as resolve_targets
from mcfields.search import column_index
from tests.databases import stored_value

from .searchapp.models import Legacy, Person

pytestmark = pytest.mark.django_db(transaction=True)


def stored_index(pk: Any, field: str = "email") -> Any:
    return stored_value(Person, f"{field}_bidx", pk, "default")


def _null_indexes() -> None:
    """As after adding searchable=True to a column that holds data."""
    table = connection.ops.quote_name(Person._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET email_bidx = NULL, national_id_bidx = NULL")


@pytest.fixture
def people() -> list[Person]:
    return [Person.objects.create(name=str(i), email=f"p{i}@example.com", national_id=f"N{i}")
            for i in range(7)]


def test_rotation_rebuilds_indexes_and_check_gates_on_them(people: list[Person]) -> None:
    old_keys = list(settings.MCFIELDS_KEYS)
    new = generate_key()
    with override_settings(MCFIELDS_KEYS=[new, *old_keys]):
        with pytest.raises(CommandError, match="not under the first key"):
            call_command("rotate_keys", "--check", verbosity=0)
        call_command("rotate_keys", verbosity=0)
        current = column_index(Person._meta.get_field("email"))
        for p in people:
            assert current.is_current(stored_index(p.pk))
        call_command("rotate_keys", "--check", verbosity=0)  # passes now
    # The old key removed: every row is still found.
    with override_settings(MCFIELDS_KEYS=[new]):
        for p in people:
            assert Person.objects.get(email=p.email.upper()).pk == p.pk
            assert Person.objects.get(national_id=p.national_id).pk == p.pk
        with pytest.raises(IntegrityError), transaction.atomic():
            Person.objects.create(name="dup", email=people[0].email)


def test_backfill_of_missing_indexes_resumes_after_a_crash(people: list[Person]) -> None:
    _null_indexes()
    assert not Person.objects.filter(email="p0@example.com").exists()
    with pytest.raises(CommandError, match="blind indexes"):
        call_command("rotate_keys", "--check", verbosity=0)

    class Crash(Exception):
        pass

    batches = []

    def crash_on_second(model: type, pks: list[Any]) -> None:
        batches.append(pks)
        if len(batches) == 2:
            raise Crash

    targets = resolve_targets(["searchapp.Person"])
    with pytest.raises(Crash):
        Rotator(batch_size=3, after_read=crash_on_second).run(targets)
    done = [p for p in people if stored_index(p.pk) is not None]
    assert [p.pk for p in done] == [p.pk for p in people[:3]]  # first batch committed
    report = Rotator(batch_size=3).run(targets)
    assert report.ok
    assert report.indexed == 2 * 4  # the rest, both fields
    for p in people:
        assert Person.objects.get(email=p.email).pk == p.pk
    call_command("rotate_keys", "--check", verbosity=0)


def test_backfill_does_not_overwrite_a_concurrent_write(people: list[Person]) -> None:
    _null_indexes()
    target = people[1]

    def app_write(model: type, pks: list[Any]) -> None:
        if target.pk in pks and not Person.objects.filter(email="moved@example.com").exists():
            row = Person.objects.get(pk=target.pk)
            row.email = "moved@example.com"
            row.save()

    report = Rotator(batch_size=10, after_read=app_write).run(
        resolve_targets(["searchapp.Person"]))
    assert report.ok
    assert Person.objects.get(email="moved@example.com").pk == target.pk
    assert not Person.objects.filter(email="p1@example.com").exists()
    assert sum(s.retried for s in report.fields) >= 1


def test_dry_run_counts_and_writes_nothing(people: list[Person]) -> None:
    _null_indexes()
    report = Rotator(mode="dry-run").run(resolve_targets(["searchapp.Person"]))
    assert report.index_stale == 2 * len(people)
    assert all(stored_index(p.pk) is None for p in people)


@pytest.fixture
def before_adoption() -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    executor.migrate([("searchapp", "0001_initial")])
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_encrypt_column_fills_the_index(before_adoption: MigrationExecutor) -> None:
    table = connection.ops.quote_name(Legacy._meta.db_table)
    with connection.cursor() as cursor:
        for email in ("a@example.com", "b@example.com", "c@example.com", "d@example.com"):
            cursor.execute(f"INSERT INTO {table} (email) VALUES (%s)", [email])
        cursor.execute(f"INSERT INTO {table} (email) VALUES (NULL)")
    before_adoption.loader.build_graph()
    before_adoption.migrate([("searchapp", "0002_encrypt_legacy")])
    assert Legacy.objects.get(email="c@example.com").email == "c@example.com"
    assert Legacy.objects.filter(email__in=["a@example.com", "d@example.com"]).count() == 2
    raw = stored_value(Legacy, "email", Legacy.objects.get(email="a@example.com").pk, "default")
    assert raw.startswith("mcf1:")
    with pytest.raises(IntegrityError), transaction.atomic():
        Legacy.objects.create(email="b@example.com")
    # And after a rotation, under the new key alone.
    new = generate_key()
    with override_settings(MCFIELDS_KEYS=[new, *settings.MCFIELDS_KEYS]):
        call_command("rotate_keys", "searchapp.Legacy", verbosity=0)
    with override_settings(MCFIELDS_KEYS=[new]):
        assert Legacy.objects.get(email="d@example.com").email == "d@example.com"
        with pytest.raises(IntegrityError), transaction.atomic():
            Legacy.objects.create(email="d@example.com")


def test_backfill_reports_duplicates_of_a_unique_field_and_goes_on(
    people: list[Person],
) -> None:
    """Making a column with duplicate values searchable and unique: the
    back-fill writes every other row and names the duplicates."""
    _null_indexes()
    table = connection.ops.quote_name(Person._meta.db_table)
    dup = Person.objects.get(pk=people[4].pk)
    # An equal value in another row, written as it would have been before
    # the field was unique (both rows' indexes are NULL after this).
    dup.email = "P2@example.com"
    dup.save()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET email_bidx = NULL")
    report = Rotator(batch_size=10).run(resolve_targets(["searchapp.Person"]))
    assert [(f.field, f.pk) for f in report.failures] == [("email", people[4].pk)]
    assert "same value" in report.failures[0].reason
    assert stored_index(people[4].pk) is None
    for p in people:
        if p.pk != people[4].pk:
            assert current_index(stored_index(p.pk))
    with pytest.raises(CommandError):
        call_command("rotate_keys", "--check", verbosity=0)


def current_index(stored: Any) -> bool:
    return column_index(Person._meta.get_field("email")).is_current(stored)


def test_changing_the_normaliser_makes_indexes_stale_until_rebuilt(
    people: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    field = Person._meta.get_field("national_id")
    monkeypatch.setattr(field, "normalize", "casefold")
    assert not Person.objects.filter(national_id="n3").exists()
    with pytest.raises(CommandError, match="blind indexes"):
        call_command("rotate_keys", "--check", verbosity=0)
    report = Rotator().run(resolve_targets(["searchapp.Person"]))
    assert report.ok and report.indexed == len(people)
    assert Person.objects.get(national_id="n3").pk == people[3].pk
