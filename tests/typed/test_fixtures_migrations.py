"""dumpdata/loaddata carry plaintext and seal it for the fixture's pk on
load; deconstruct() and makemigrations see no change in any typed field."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import models

from mcfields import EncryptedField
from mcfields.fields import (
    EncryptedCharField,
    EncryptedDecimalField,
    EncryptedJSONField,
)
from tests.typed.conftest import raw, sealed_bytes
from tests.typed.typesapp.models import Generic, Required, Typed

D = decimal.Decimal
VALUES = {
    "char": "ç", "integer": 0, "amount": D("1.5"), "ratio": -0.0, "flag": False,
    "day": datetime.date(2026, 12, 2),
    # Milliseconds: Django's JSON serializer keeps no more, for any DateTimeField.
    "moment": datetime.datetime(2026, 12, 2, 9, 30, 0, 123000, tzinfo=datetime.UTC),
    "clock": datetime.time(9, 30), "token": uuid.UUID(int=3), "data": {"a": [None, True, {}]},
    "binary": b"\x00\xff", "text": "",
}


def dump(*labels: str) -> list[dict]:
    out = io.StringIO()
    call_command("dumpdata", *labels, format="json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_dumpdata_writes_plaintext_as_the_plain_field_serializes_it():
    obj = Typed.objects.create(**VALUES)
    (row,) = dump("typesapp.Typed")
    fields = row["fields"]
    assert row["pk"] == obj.pk
    assert fields["char"] == "ç" and fields["integer"] == 0 and fields["flag"] is False
    assert fields["amount"] == "1.50" and fields["ratio"] == -0.0
    assert fields["day"] == "2026-12-02" and fields["clock"] == "09:30:00"
    assert fields["moment"] == "2026-12-02T09:30:00.123Z"
    assert fields["token"] == str(uuid.UUID(int=3))
    assert fields["data"] == {"a": [None, True, {}]}
    assert fields["binary"] == "AP8="  # BinaryField's base64
    assert fields["text"] == "" and fields["big"] is None
    assert "mcf1:" not in json.dumps(row)


@pytest.mark.django_db
def test_loaddata_seals_each_value_for_the_fixtures_pk(tmp_path: Path):
    obj = Typed.objects.create(**VALUES)
    rows = dump("typesapp.Typed")
    Typed.objects.all().delete()
    rows[0]["pk"] = obj.pk + 100
    fixture = tmp_path / "typed.json"
    fixture.write_text(json.dumps(rows))
    call_command("loaddata", str(fixture), verbosity=0)
    loaded = Typed.objects.get(pk=obj.pk + 100)
    for name, value in VALUES.items():
        assert getattr(loaded, name) == value, name
    assert str(loaded.amount) == "1.50"
    assert raw(Typed, "flag", loaded.pk).startswith("mcf1:")
    assert sealed_bytes(Typed, "flag", loaded.pk) == b"0"
    assert sealed_bytes(Typed, "ratio", loaded.pk) == b"-0.0"


@pytest.mark.django_db
def test_loaddata_with_uuid_pks_and_binary_storage(tmp_path: Path):
    req = Required.objects.create(day=datetime.date(2026, 1, 1), amount=D("0"), data=[])
    gen = Generic.objects.create(count=0, data={}, stamp=VALUES["moment"])
    rows = dump("typesapp.Required", "typesapp.Generic")
    Required.objects.all().delete()
    Generic.objects.all().delete()
    fixture = tmp_path / "more.json"
    fixture.write_text(json.dumps(rows))
    call_command("loaddata", str(fixture), verbosity=0)
    got = Required.objects.get(pk=req.pk)
    assert (got.day, got.amount, got.data, got.flag) == (datetime.date(2026, 1, 1), D(0), [], False)
    again = Generic.objects.get(pk=gen.pk)
    assert (again.count, again.data, again.stamp) == (0, {}, VALUES["moment"])
    assert isinstance(raw(Generic, "count", gen.pk), bytes)


# -- deconstruct / migrations ----------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        EncryptedCharField(max_length=30, null=True),
        EncryptedDecimalField(max_digits=5, decimal_places=2, context="x.y", storage="binary"),
        EncryptedJSONField(default=dict, blank=True),
        EncryptedField(models.DateField(), null=True),
        EncryptedField(models.SlugField(max_length=10), storage="binary"),
        EncryptedField(models.DecimalField(max_digits=4, decimal_places=1)),
    ],
    ids=lambda f: type(f).__name__,
)
def test_deconstruct_rebuilds_an_equal_field(field):
    name, path, args, kwargs = field.deconstruct()
    module, _, cls_name = path.rpartition(".")
    assert module == "mcfields.fields"
    rebuilt = getattr(__import__(module, fromlist=[cls_name]), cls_name)(*args, **kwargs)
    _, again_path, again_args, again = rebuilt.deconstruct()
    assert (again_path, again_args) == (path, args)
    # Field instances compare by creation order: compare the base fields by
    # their own deconstruction, as the migration autodetector does.
    assert {k: v for k, v in again.items() if k != "base_field"} == {
        k: v for k, v in kwargs.items() if k != "base_field"}
    if "base_field" in kwargs:
        assert again["base_field"].deconstruct()[1:] == kwargs["base_field"].deconstruct()[1:]
    assert type(rebuilt.base_field) is type(field.base_field)
    assert rebuilt.base_field.deconstruct()[1:] == field.base_field.deconstruct()[1:]
    assert rebuilt.storage is field.storage and rebuilt.context == field.context


@pytest.mark.django_db
def test_makemigrations_sees_no_change():
    out = io.StringIO()
    call_command("makemigrations", "typesapp", "demo", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


def test_named_fields_deconstruct_without_a_base_field_argument():
    field = Typed._meta.get_field("amount")
    _, path, _, kwargs = field.deconstruct()
    assert path == "mcfields.fields.EncryptedDecimalField"
    assert "base_field" not in kwargs
    assert (kwargs["max_digits"], kwargs["decimal_places"]) == (8, 2)
