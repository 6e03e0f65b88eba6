"""Searchable fields: exact / in / isnull lookups and uniqueness through blind
indexes, on every write path (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from django.core import serializers
from django.core.exceptions import FieldError, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

import mcfields.preallocate
from mcfields.conf import get_keyring
from mcfields.crypto import column_info, generate_key
from mcfields.search import index_of
from tests.databases import stored_value

from .searchapp.models import Customer, Member, Person, Supplier, Typed, Visit

pytestmark = pytest.mark.django_db(transaction=True)


def stored_index(model: type, field: str, pk: Any) -> Any:
    return stored_value(model, f"{field}_bidx", pk, "default")


def expected_index(model: type, field: str, value: Any) -> str:
    """The index computed with the crypto API alone (docs/FORMAT.md)."""
    fld = model._meta.get_field(field)
    text = fld._to_bytes(value) if not fld.normalize else str(value).casefold().encode()
    return get_keyring().column_index(
        column_info(fld.binding_label, fld.normalize or "")
    ).index(text)


# -- lookups -------------------------------------------------------------------------


def test_get_filter_in_exclude_by_searchable_value() -> None:
    a = Person.objects.create(name="a", email="Ann@Example.com", national_id="X1")
    b = Person.objects.create(name="b", email="bob@example.com", national_id="X2")
    Person.objects.create(name="c", email=None, national_id=None)
    assert Person.objects.get(email="ann@example.com") == a  # casefold normaliser
    assert Person.objects.get(national_id="X2") == b
    assert not Person.objects.filter(national_id="x2").exists()  # no normaliser: exact
    assert set(Person.objects.filter(email__in=["ANN@example.com", "bob@example.com", None])
               .values_list("name", flat=True)) == {"a", "b"}
    assert set(Person.objects.exclude(national_id="X1").values_list("name", flat=True)) == {
        "b", "c"}
    assert list(Person.objects.filter(email__isnull=True).values_list("name", flat=True)) == ["c"]
    assert list(Person.objects.filter(email=None).values_list("name", flat=True)) == ["c"]
    assert not Person.objects.filter(email__in=[]).exists()
    assert Person.objects.filter(email__iexact="BOB@EXAMPLE.COM").get() == b


def test_related_and_child_lookups() -> None:
    p = Person.objects.create(name="p", email="p@example.com")
    Visit.objects.create(person=p, code="V1")
    m = Member.objects.create(name="m", email="m@example.com", level=3)
    assert Visit.objects.get(person__email="p@example.com").code == "V1"
    assert Person.objects.get(visits__code="V1") == p
    assert Member.objects.get(email="m@example.com") == m
    assert Person.objects.get(email="m@example.com").pk == m.pk


def test_a_copied_index_does_not_match_another_column() -> None:
    """The index of one column does not match in another (per-column keys)."""
    p = Person.objects.create(name="p", email="same@example.com", national_id="same@example.com")
    assert stored_index(Person, "email", p.pk) != stored_index(Person, "national_id", p.pk)


def test_other_lookups_are_refused() -> None:
    for lookup in ("contains", "startswith", "gt", "icontains"):
        with pytest.raises(FieldError, match="Searchable fields support 'exact', 'in'"):
            list(Person.objects.filter(**{f"email__{lookup}": "x"}))
    with pytest.raises(FieldError, match="needs a case-folding"):
        list(Person.objects.filter(national_id__iexact="x"))
    with pytest.raises(FieldError, match="not an SQL expression"):
        from django.db.models import F

        list(Person.objects.filter(email=F("name")))
    with pytest.raises(FieldError, match="not an SQL expression"):
        list(Person.objects.filter(email__in=Person.objects.values("email")))


@pytest.mark.parametrize(("field", "value", "other"), [
    ("number", 42, 43),
    ("amount", decimal.Decimal("1.50"), decimal.Decimal("1.51")),
    ("day", datetime.date(2026, 12, 2), datetime.date(2026, 12, 3)),
    ("moment", datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC),
     datetime.datetime(2026, 12, 2, 9, 31, tzinfo=datetime.UTC)),
    ("token", uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid4()),
    ("flag", True, False),
    ("label", "x", "X"),
])
def test_every_searchable_type(field: str, value: Any, other: Any) -> None:
    row = Typed.objects.create(**{field: value})
    Typed.objects.create(**{field: other})
    assert Typed.objects.get(**{field: value}).pk == row.pk
    assert Typed.objects.filter(**{f"{field}__in": [value]}).count() == 1
    assert stored_index(Typed, field, row.pk) == expected_index(Typed, field, value)


def test_equal_values_in_other_spellings_match() -> None:
    """The lookup value goes through the field's to_python and encoding:
    "1.5" finds Decimal("1.50"), a string finds an int, another timezone
    finds the same instant."""
    row = Typed.objects.create(number=7, amount=decimal.Decimal("1.5"),
                               moment=datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC),
                               token=uuid.UUID(int=5))
    assert Typed.objects.get(number="7").pk == row.pk
    assert Typed.objects.get(amount="1.50").pk == row.pk
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    assert Typed.objects.get(moment=datetime.datetime(2026, 1, 1, 13, tzinfo=plus_one)).pk == \
        row.pk
    assert Typed.objects.get(token=str(uuid.UUID(int=5)).upper()).pk == row.pk


# -- uniqueness ----------------------------------------------------------------------------


def test_unique_violation_raises_integrity_error() -> None:
    Person.objects.create(name="a", email="dup@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Person.objects.create(name="b", email="DUP@example.com")  # casefolded: equal
    assert Person.objects.count() == 1


def test_unique_is_validated_by_full_clean_and_model_forms() -> None:
    from django import forms

    Person.objects.create(name="a", email="taken@example.com")

    class PersonForm(forms.ModelForm):
        class Meta:
            model = Person
            fields = ["name", "email"]

    form = PersonForm(data={"name": "b", "email": "Taken@example.com"})
    assert not form.is_valid()
    assert "email" in form.errors
    with pytest.raises(ValidationError) as info:
        Person(name="c", email="taken@example.com").full_clean(exclude=["note"])
    assert "email" in info.value.message_dict
    # Editing the row itself is not a duplicate.
    own = Person.objects.get(email="taken@example.com")
    own.full_clean(exclude=["national_id", "note"])


# -- write paths ---------------------------------------------------------------------------


def test_save_update_and_update_fields_keep_the_index_in_step() -> None:
    p = Person.objects.create(name="p", email="one@example.com")
    first = stored_index(Person, "email", p.pk)
    p.email = "two@example.com"
    p.save(update_fields=["email"])
    assert stored_index(Person, "email", p.pk) != first
    assert Person.objects.get(email="two@example.com").pk == p.pk
    assert not Person.objects.filter(email="one@example.com").exists()
    p.email = None
    p.save()
    assert stored_index(Person, "email", p.pk) is None


def test_loaded_row_saved_unchanged_keeps_its_index_and_opens_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Person.objects.create(name="p", email="keep@example.com", national_id="N")
    before = stored_index(Person, "email", p.pk)
    loaded = Person.objects.get(pk=p.pk)
    ring = get_keyring()
    calls = []
    monkeypatch.setattr(type(ring), "open", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(type(ring), "open_text", lambda *a, **k: calls.append(1))
    loaded.name = "renamed"
    loaded.save()
    assert calls == []
    assert stored_index(Person, "email", p.pk) == before


def test_deferred_field_save_keeps_the_index() -> None:
    p = Person.objects.create(name="p", email="defer@example.com")
    loaded = Person.objects.only("name").get(pk=p.pk)
    loaded.name = "x"
    loaded.save()
    assert Person.objects.get(email="defer@example.com").name == "x"
    loaded = Person.objects.defer("email_bidx").get(pk=p.pk)
    loaded.email = "moved@example.com"
    loaded.save()
    assert Person.objects.get(email="moved@example.com").pk == p.pk


def test_manager_update_bulk_update_and_bulk_create() -> None:
    people = Person.objects.bulk_create(
        [Person(name=str(i), email=f"u{i}@example.com", national_id=f"N{i}") for i in range(5)]
    )
    for person in people:
        assert Person.objects.get(email=person.email).pk == person.pk
    Person.objects.filter(name="1").update(national_id="UPDATED")
    assert Person.objects.get(national_id="UPDATED").name == "1"
    assert not Person.objects.filter(national_id="N1").exists()
    people[2].email = "bulk@example.com"
    people[3].national_id = "BULK"
    Person.objects.bulk_update(people[2:4], ["email", "national_id"])
    assert Person.objects.get(email="bulk@example.com").pk == people[2].pk
    assert Person.objects.get(national_id="BULK").pk == people[3].pk
    assert not Person.objects.filter(email="u2@example.com").exists()
    Person.objects.filter(name="4").update(email=None)
    assert stored_index(Person, "email", people[4].pk) is None


def test_copying_a_row_indexes_the_copy() -> None:
    p = Person.objects.create(name="p", email="copy@example.com", national_id="C")
    copy = Person.objects.get(pk=p.pk)
    copy.pk = None
    copy.email = "copy2@example.com"
    copy.save()
    assert Person.objects.get(national_id="C", email="copy2@example.com").pk == copy.pk
    assert Person.objects.filter(national_id="C").count() == 2


def test_loaddata_recomputes_the_index_under_this_databases_keys() -> None:
    p = Person.objects.create(name="p", email="fix@example.com")
    data = serializers.serialize("json", [p])
    assert "_bidx" not in data  # not serialised: the plaintext is
    Person.objects.all().delete()
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert Person.objects.get(email="fix@example.com").pk == p.pk


def test_plain_manager_update_to_null_is_refused() -> None:
    """It would leave the blind index behind (holding the value's place
    under unique=True); EncryptedManager.update() clears both."""
    p = Person.objects.create(name="p", email="left@example.com")
    with pytest.raises(FieldError, match="must write its blind index"):
        Person.plain.filter(pk=p.pk).update(email=None)
    assert Person.objects.get(email="left@example.com").pk == p.pk
    Person.plain.filter(pk=p.pk).update(email=None, email_bidx=None)  # both: allowed
    assert Person.objects.create(name="q", email="left@example.com").pk != p.pk


def test_sql_null_value_with_a_left_over_index_does_not_match() -> None:
    """A write that bypassed mcfields entirely (SQL) may leave an index next
    to a NULL value: the lookup answers only for non-NULL values."""
    p = Person.objects.create(name="p", national_id="LEFT")
    table = connection.ops.quote_name(Person._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET national_id = NULL WHERE id = %s", [p.pk])
    assert stored_index(Person, "national_id", p.pk) is not None
    assert not Person.objects.filter(national_id="LEFT").exists()


# -- keys ----------------------------------------------------------------------------------


def test_lookups_find_rows_indexed_under_an_old_key_during_rotation() -> None:
    old = get_keyring()
    keys_now = [k for k in _settings_keys()]
    p = Person.objects.create(name="p", email="rot@example.com")
    old_index = stored_index(Person, "email", p.pk)
    new_key = generate_key()
    with override_settings(MCFIELDS_KEYS=[new_key, *keys_now]):
        assert get_keyring() is not old
        assert Person.objects.get(email="rot@example.com").pk == p.pk
        # Uniqueness across keys during the window: full_clean sees the old row.
        with pytest.raises(ValidationError) as info:
            Person(name="q", email="rot@example.com").full_clean(exclude=["national_id", "note"])
        assert list(info.value.message_dict) == ["email"]
        q = Person.objects.create(name="q", email="new@example.com")
        assert stored_index(Person, "email", q.pk)[:8] != old_index[:8]
    # Back on the old keys only: a row indexed under the new key is not found.
    assert not Person.objects.filter(email="new@example.com").exists()


def _settings_keys() -> list[str]:
    from django.conf import settings

    return list(settings.MCFIELDS_KEYS)


def test_index_matches_the_documented_construction() -> None:
    """docs/FORMAT.md, "Blind index", with hashlib's BLAKE2b."""
    import base64
    import hashlib
    import struct

    from django.conf import settings

    p = Person.objects.create(name="p", national_id="Doc-42")
    secret = base64.urlsafe_b64decode(settings.MCFIELDS_KEYS[0] + "=" * 4)[:32]
    index_key = hashlib.blake2b(b"mcfields.v1.index-key", key=secret, digest_size=32).digest()
    label = b"searchapp.Person.national_id"
    column = struct.pack("<I", len(label)) + label + struct.pack("<I", 0)
    column_key = hashlib.blake2b(b"mcfields.v1.index-column" + column, key=index_key,
                                 digest_size=32).digest()
    tag = hashlib.blake2b(b"\x00", key=column_key, digest_size=4).digest()
    digest = hashlib.blake2b(b"\x01Doc-42", key=column_key, digest_size=16).digest()
    assert stored_index(Person, "national_id", p.pk) == (tag + digest).hex()
    assert index_of(Person._meta.get_field("national_id"), "Doc-42") == (tag + digest).hex()


def test_connection_vendor_is_known() -> None:
    assert connection.vendor in ("sqlite", "postgresql")


def test_drf_model_serializer_leaves_the_index_out_and_validates_unique() -> None:
    pytest.importorskip("rest_framework")
    from rest_framework import serializers as drf

    class PersonSerializer(drf.ModelSerializer):
        class Meta:
            model = Person
            fields = "__all__"

    Person.objects.create(name="a", email="api@example.com")
    data = PersonSerializer(Person.objects.get()).data
    assert "email_bidx" not in data and "national_id_bidx" not in data
    assert data["email"] == "api@example.com"
    dup = PersonSerializer(data={"name": "b", "email": "API@example.com", "national_id": "x",
                                 "note": "n"})
    assert not dup.is_valid()
    assert "email" in dup.errors
    fresh = PersonSerializer(data={"name": "c", "email": "c@example.com", "national_id": "y",
                                   "note": "n"})
    assert fresh.is_valid(), fresh.errors
    saved = fresh.save()
    assert Person.objects.get(email="c@example.com").pk == saved.pk


def test_child_and_abstract_base_columns() -> None:
    m = Member.objects.create(name="m", email="kid@example.com", badge="B-1")
    assert Member.objects.get(badge="B-1", email="KID@example.com").pk == m.pk
    m.badge = "B-2"
    m.save()
    assert Member.objects.get(badge="B-2").pk == m.pk
    assert not Member.objects.filter(badge="B-1").exists()
    s = Supplier.objects.create(phone="+1 555")
    c = Customer.objects.create(phone="+1 555")
    assert Supplier.objects.get(phone="+1 555").pk == s.pk
    assert Customer.objects.get(phone="+1 555").pk == c.pk
    # Each concrete child has its own label, so its own index key.
    assert stored_index(Supplier, "phone", s.pk) != stored_index(Customer, "phone", c.pk)


@pytest.mark.parametrize("path", ["preallocated", "insert-then-bind"])
def test_create_and_bulk_create_on_each_insert_path(
    path: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if path == "insert-then-bind":
        monkeypatch.setattr(mcfields.preallocate, "ENABLED", False)
    one = Person.objects.create(name="one", email="one@example.com")
    many = Person.objects.bulk_create([Person(name=str(i), national_id=f"P{i}")
                                       for i in range(3)])
    assert Person.objects.get(email="one@example.com").pk == one.pk
    for person in many:
        assert Person.objects.get(national_id=person.national_id).pk == person.pk


def test_saving_a_loaded_row_under_a_new_key_reindexes_it() -> None:
    p = Person.objects.create(name="p", email="old@example.com")
    old_tag = stored_index(Person, "email", p.pk)[:8]
    with override_settings(MCFIELDS_KEYS=[generate_key(), *_settings_keys()]):
        loaded = Person.objects.get(pk=p.pk)
        loaded.name = "renamed"
        loaded.save()  # re-seals under the first key, and re-indexes
        assert stored_index(Person, "email", p.pk)[:8] != old_tag
        assert Person.objects.get(email="old@example.com").pk == p.pk


def test_one_database_index_per_blind_index_column() -> None:
    """Equality only: no varchar_pattern_ops ("_like") index on PostgreSQL."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Person._meta.db_table)
    on_index = [name for name, info in constraints.items()
                if info["columns"] == ["national_id_bidx"] and (info["index"] or info["unique"])]
    assert len(on_index) == 1, on_index
    unique = [name for name, info in constraints.items()
              if info["columns"] == ["email_bidx"] and (info["index"] or info["unique"])]
    assert len(unique) == 1, unique


def test_bulk_create_failing_to_index_leaves_every_instance_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An index that cannot be computed after the values were sealed: no
    instance keeps a sealed value in place of its plaintext."""
    import mcfields.managers

    real = mcfields.managers.index_of
    seen: list[Any] = []

    def failing(field: Any, value: Any) -> Any:
        seen.append(value)
        if field.name == "label":
            raise ValueError("cannot index")
        return real(field, value)

    monkeypatch.setattr(mcfields.managers, "index_of", failing)
    objs = [Typed(number=i, label=f"L{i}") for i in range(3)]
    with pytest.raises(ValueError, match="cannot index"):
        Typed.objects.bulk_create(objs)
    assert seen  # the number column was indexed before label failed
    for i, obj in enumerate(objs):
        assert obj.__dict__["number"] == i and obj.__dict__["label"] == f"L{i}"
        assert obj.number_bidx is None and obj.label_bidx is None
    assert not Typed.objects.exists()
