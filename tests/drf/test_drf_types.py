"""DRF over the typed fields: each serializes as its base field would (the
plain twin's serializer is the oracle), with the base field's options, and
bad input is a 400, never a 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from mcfields.drf import EncryptedBase64Field, EncryptedCharField
from tests.drf.types_urls import GenericSerializer, PlainTypedSerializer, TypedSerializer
from tests.typed.conftest import raw
from tests.typed.typesapp.models import Generic, PlainTyped, Required, Typed

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf.types_urls"),
              pytest.mark.filterwarnings("ignore:The default scheme will be changed")]

D = decimal.Decimal
TWIN_FIELDS = [f.name for f in PlainTyped._meta.concrete_fields if f.name != "id"]
OPTIONS = ("required", "allow_null", "allow_blank", "max_length", "min_length", "max_value",
           "min_value", "max_digits", "decimal_places", "read_only", "encoder", "decoder",
           "help_text", "label")


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.mark.parametrize("name", TWIN_FIELDS)
def test_each_field_is_the_serializer_field_of_its_plain_twin(name):
    encrypted = TypedSerializer().fields[name]
    plain = PlainTypedSerializer().fields[name]
    # The same DRF class (with mcfields' DecryptionError handling in front).
    from mcfields.drf import _Opens

    assert isinstance(encrypted, _Opens)
    assert type(encrypted).__mro__[1:3] == (_Opens, type(plain))
    for option in OPTIONS:
        assert getattr(encrypted, option, None) == getattr(plain, option, None), option
    assert [type(v) for v in encrypted.validators] == [type(v) for v in plain.validators]


def test_base_field_options_reach_the_serializer_fields():
    fields = TypedSerializer().fields
    assert isinstance(fields["amount"], serializers.DecimalField)
    assert (fields["amount"].max_digits, fields["amount"].decimal_places) == (8, 2)
    assert fields["char"].max_length == 20 and fields["positive"].min_value == 0
    assert isinstance(fields["email"], serializers.EmailField)
    assert isinstance(fields["url"], serializers.URLField)
    assert isinstance(fields["flag"], serializers.BooleanField) and fields["flag"].allow_null
    assert isinstance(fields["data"], serializers.JSONField)
    assert isinstance(fields["moment"], serializers.DateTimeField)
    assert isinstance(fields["text"], EncryptedCharField)
    assert isinstance(fields["binary"], EncryptedBase64Field) and fields["binary"].read_only
    generic = GenericSerializer().fields
    assert isinstance(generic["slug"], serializers.SlugField)
    assert generic["slug"].max_length == 10 and generic["slug"].help_text == "from extra_kwargs"
    assert isinstance(generic["small"], serializers.IntegerField)
    assert generic["small"].max_value is not None  # the base field's range validator
    assert isinstance(generic["status"], serializers.ChoiceField)
    assert isinstance(generic["stamp"], serializers.DateTimeField)


def test_serializer_fields_deep_copy_as_drf_does():
    # DRF deep-copies declared fields per serializer instance.
    first, second = TypedSerializer().fields["amount"], TypedSerializer().fields["amount"]
    assert first is not second and type(first) is type(second)
    assert (second.max_digits, second.decimal_places) == (8, 2)


def test_typed_values_round_trip_through_the_api(api):
    body = {"label": "a", "char": "c", "integer": -3, "big": 2**62, "positive": 0,
            "amount": "1.5", "ratio": 0.25, "flag": False, "day": "2026-12-02",
            "moment": "2026-12-02T09:30:00Z", "clock": "09:30:00",
            "token": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "data": {"a": [1, None, True, "é"], "b": {}}, "email": "a@example.org",
            "url": "https://example.org/", "text": ""}
    response = api.post("/api/typed/", body, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    obj = Typed.objects.get(pk=pk)
    assert (obj.integer, obj.amount, obj.flag, obj.day, obj.data, obj.text) == (
        -3, D("1.50"), False, datetime.date(2026, 12, 2), body["data"], "")
    assert raw(Typed, "flag", pk).startswith("mcf1:")
    got = api.get(f"/api/typed/{pk}/").json()
    plain = api.post("/api/plain/", {k: v for k, v in body.items() if k in TWIN_FIELDS},
                     format="json").json()
    for name in TWIN_FIELDS:
        assert got[name] == plain[name], name
    assert got["amount"] == "1.50" and got["flag"] is False and got["data"] == body["data"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("amount", "1.234"), ("amount", "abc"), ("amount", "1234567.1"), ("amount", [1]),
     ("integer", "x"), ("integer", 2**64), ("positive", -1), ("flag", "maybe"),
     ("flag", {"a": 1}), ("day", "2026-02-30"), ("day", 5), ("moment", "yesterday"),
     ("clock", "25:00"), ("token", "nope"), ("email", "nope"), ("url", "nope"),
     ("char", "x" * 21), ("char", {"a": 1}), ("ratio", "x"), ("ratio", "nan"), ("ratio", "inf"),
     ("big", 2**64)],
    ids=lambda v: repr(v)[:20],
)
def test_bad_input_is_a_400_naming_the_field(api, name, value):
    response = api.post("/api/typed/", {name: value}, format="json")
    assert response.status_code == 400, response.content
    assert name in response.json()
    assert not Typed.objects.exists()


def test_required_fields_and_defaults(api):
    response = api.post("/api/required/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"day", "amount"}
    response = api.post("/api/required/", {"day": "2026-01-01", "amount": "0"}, format="json")
    assert response.status_code == 201, response.content
    obj = Required.objects.get(pk=uuid.UUID(response.json()["id"]))
    assert (obj.flag, obj.data, obj.count, obj.amount) == (False, {}, 0, D("0.000"))


def test_binary_storage_and_generic_fields_through_the_api(api):
    response = api.post("/api/generic/", {"count": 0, "data": [], "price": "2.5",
                                          "stamp": "2026-12-02T09:30:00Z", "slug": "a-b",
                                          "status": "done"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert isinstance(raw(Generic, "count", pk), bytes)
    got = api.get(f"/api/generic/{pk}/").json()
    assert (got["count"], got["data"], got["price"], got["slug"], got["status"]) == (
        0, [], "2.5", "a-b", "done")
    bad = api.post("/api/generic/", {"status": "zzz", "slug": "a b", "price": "1234.56"},
                   format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"status", "slug", "price"}


def test_a_typed_value_that_fails_to_open_is_the_named_error(api):
    from tests.django.conftest import set_raw_value

    first = Typed.objects.create(amount=D("1"))
    second = Typed.objects.create(amount=D("2"))
    set_raw_value(Typed, "amount", second.pk, raw(Typed, "amount", first.pk))
    response = api.get(f"/api/typed/{second.pk}/")
    assert response.status_code == 500
    body = response.json()
    assert (body["code"], body["field"], body["pk"]) == ("undecryptable", "amount", str(second.pk))
    assert api.get(f"/api/typed/{first.pk}/").status_code == 200
