"""Typed values through EncryptedManager's bulk writes and update(), and a
mutable JSON value changed in place (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from tests.typed.conftest import raw, sealed_bytes
from tests.typed.typesapp.models import Generic, Required, Typed

pytestmark = pytest.mark.django_db

D = decimal.Decimal
DAY = datetime.date(2026, 12, 2)


def test_bulk_create_binds_each_row_auto_pk():
    objs = Typed.objects.bulk_create([
        Typed(amount=D("1.5"), flag=False, data={"n": i}, day=DAY, integer=i) for i in range(3)
    ])
    for i, obj in enumerate(objs):
        got = Typed.objects.get(pk=obj.pk)
        assert (str(got.amount), got.flag, got.data, got.day, got.integer) == (
            "1.50", False, {"n": i}, DAY, i)
        assert sealed_bytes(Typed, "integer", obj.pk) == str(i).encode()


def test_bulk_create_binds_each_row_uuid_pk():
    objs = Required.objects.bulk_create([
        Required(id=uuid.uuid4(), day=DAY, amount=D(i), flag=bool(i % 2), data=[i])
        for i in range(3)
    ])
    for i, obj in enumerate(objs):
        got = Required.objects.get(pk=obj.pk)
        assert (got.day, got.amount, got.flag, got.data) == (DAY, D(i), bool(i % 2), [i])


def test_bulk_create_binary_storage():
    objs = Generic.objects.bulk_create([Generic(count=i, data={"i": i}) for i in range(2)])
    for i, obj in enumerate(objs):
        got = Generic.objects.get(pk=obj.pk)
        assert (got.count, got.data) == (i, {"i": i})
        assert isinstance(raw(Generic, "count", obj.pk), bytes)


def test_bulk_update_seals_each_value_for_its_row():
    objs = [Typed.objects.create(integer=i, flag=True, data=[]) for i in range(3)]
    for i, obj in enumerate(objs):
        obj.integer = i * 10
        obj.flag = False
        obj.data = {"k": [i, None]}
    Typed.objects.bulk_update(objs, ["integer", "flag", "data"])
    for i, obj in enumerate(objs):
        got = Typed.objects.get(pk=obj.pk)
        assert (got.integer, got.flag, got.data) == (i * 10, False, {"k": [i, None]})
        assert sealed_bytes(Typed, "flag", obj.pk) == b"0"


def test_update_seals_the_value_for_every_row():
    objs = [Typed.objects.create(label="x") for _ in range(3)]
    moment = datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC)
    count = Typed.objects.filter(label="x").update(
        amount=D("0"), flag=False, moment=moment, data={}, token=uuid.UUID(int=5))
    assert count == 3
    envelopes = set()
    for obj in objs:
        got = Typed.objects.get(pk=obj.pk)
        assert (str(got.amount), got.flag, got.moment, got.data, got.token) == (
            "0.00", False, moment, {}, uuid.UUID(int=5))
        envelopes.add(raw(Typed, "amount", obj.pk))
    assert len(envelopes) == 3  # one envelope per row, each bound to its pk


def test_update_to_none_writes_null():
    obj = Typed.objects.create(flag=True, data={"a": 1})
    Typed.objects.filter(pk=obj.pk).update(flag=None, data=None)
    assert raw(Typed, "flag", obj.pk) is None and raw(Typed, "data", obj.pk) is None


def test_json_replaced_by_a_new_object_is_written():
    obj = Typed.objects.create(data={"a": 1})
    loaded = Typed.objects.get(pk=obj.pk)
    loaded.data = {**loaded.data, "k": 1}
    loaded.save()
    assert Typed.objects.get(pk=obj.pk).data == {"a": 1, "k": 1}


def test_json_changed_in_place_before_the_first_load_is_written():
    obj = Typed.objects.create(data={"a": 1})
    obj.data["k"] = 1
    obj.save()
    assert Typed.objects.get(pk=obj.pk).data == {"a": 1, "k": 1}


@pytest.mark.parametrize("model", [Typed, Generic], ids=["text", "binary"])
def test_loaded_json_changed_in_place_is_written(model):
    obj = model.objects.create(data={"a": 1})
    loaded = model.objects.get(pk=obj.pk)
    loaded.data["k"] = 1
    loaded.save()
    assert model.objects.get(pk=obj.pk).data == {"a": 1, "k": 1}


def test_loaded_json_list_appended_in_place_is_written():
    obj = Typed.objects.create(data=[1])
    loaded = Typed.objects.get(pk=obj.pk)
    loaded.data.append(2)
    loaded.save()
    assert Typed.objects.get(pk=obj.pk).data == [1, 2]


def test_an_untouched_loaded_value_is_written_back_as_it_was():
    obj = Typed.objects.create(amount=D("1"), data={"a": 1})
    before = raw(Typed, "amount", obj.pk)
    loaded = Typed.objects.get(pk=obj.pk)
    assert loaded.amount == D("1.00")
    loaded.label = "changed"
    loaded.save()
    assert raw(Typed, "amount", obj.pk) == before
