"""Every typed field end to end (SQLite and PostgreSQL): values load with
the type and value the plain Django field would give on the same database
(a plain twin model is the oracle), the column holds only an envelope, the
sealed bytes are the documented encoding, falsy values are sealed (never
NULL) and None is NULL."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
import zoneinfo
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from mcfields import Sealed
from tests.typed.conftest import raw, sealed_bytes
from tests.typed.typesapp.models import Generic, PlainTyped, Required, Typed

pytestmark = pytest.mark.django_db

D = decimal.Decimal
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
UUID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")

# (field, value): saved into Typed and into PlainTyped; both are loaded back.
AGAINST_PLAIN = [
    ("char", ""), ("char", "abc"), ("char", "héllo ✓ 日本"),
    ("integer", 0), ("integer", -1), ("integer", 2**31 - 1), ("integer", -(2**31)),
    ("big", 0), ("big", 2**63 - 1), ("big", -(2**63)),
    ("positive", 0), ("positive", 2**31 - 1),
    ("amount", D("0")), ("amount", D("1.5")), ("amount", D("-123456.78")), ("amount", D("0.01")),
    ("amount", 3),
    ("ratio", 0.0), ("ratio", 0.1), ("ratio", -2.5), ("ratio", 1e100), ("ratio", 7),
    ("flag", True), ("flag", False),
    ("day", datetime.date(1, 1, 1)), ("day", datetime.date(2028, 2, 29)),
    ("day", datetime.date(9999, 12, 31)),
    ("moment", datetime.datetime(2026, 12, 2, 9, 30, 0, 123456, tzinfo=datetime.UTC)),
    ("moment", datetime.datetime(2026, 12, 2, 9, 30, tzinfo=TOKYO)),
    ("clock", datetime.time(0, 0)), ("clock", datetime.time(23, 59, 59, 999999)),
    ("token", UUID),
    ("data", {}), ("data", []), ("data", 0), ("data", False), ("data", ""), ("data", "text"),
    ("data", 1.5), ("data", 10**20), ("data", True),
    ("data", {"a": None, "b": [1, 2.5, -3, True, False, None, "é ✓"], "c": {"d": {"e": []}}}),
    ("data", [{"quote": "\"'\\", "empty": {}}, [], [[None]]]),
]


def _id(case: Any) -> str:
    return repr(case)[:40]


@pytest.mark.parametrize(("name", "value"), AGAINST_PLAIN, ids=_id)
def test_loads_like_the_plain_field(name, value):
    enc = Typed.objects.create(**{name: value})
    plain = PlainTyped.objects.create(**{name: value})
    got = getattr(Typed.objects.get(pk=enc.pk), name)
    expected = getattr(PlainTyped.objects.get(pk=plain.pk), name)
    assert type(got) is type(expected)
    assert got == expected
    if isinstance(expected, datetime.datetime):
        assert got.utcoffset() == expected.utcoffset()
    if isinstance(expected, D):
        assert str(got) == str(expected)  # the same places, "1.50" not "1.5"
    # The column holds an envelope in its text form, whatever the value.
    stored = raw(Typed, name, enc.pk)
    assert isinstance(stored, str) and stored.startswith("mcf1:")


@pytest.mark.parametrize(
    ("name", "value", "plaintext"),
    [
        ("char", "", b""),
        ("char", "é", "é".encode()),
        ("integer", 0, b"0"),
        ("integer", -42, b"-42"),
        ("positive", 0, b"0"),
        ("amount", D("1.5"), b"1.50"),
        ("amount", D("0"), b"0.00"),
        ("amount", 3, b"3.00"),
        ("ratio", 0.0, b"0.0"),
        ("ratio", -0.0, b"-0.0"),
        ("ratio", 0.1, b"0.1"),
        ("ratio", 1e100, b"1e+100"),
        ("flag", False, b"0"),
        ("flag", True, b"1"),
        ("day", datetime.date(2026, 12, 2), b"2026-12-02"),
        ("moment", datetime.datetime(2026, 12, 2, 18, 30, 0, 123456, tzinfo=TOKYO),
         b"2026-12-02T09:30:00.123456+00:00"),
        ("clock", datetime.time(9, 30), b"09:30:00"),
        ("clock", datetime.time(9, 30, 0, 5), b"09:30:00.000005"),
        ("token", UUID, b"0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("token", str(UUID).upper(), b"0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("data", {}, b"{}"),
        ("data", [], b"[]"),
        ("data", False, b"false"),
        ("data", 0, b"0"),
        ("data", "", b'""'),
        ("data", {"a": [1, None, True]}, b'{"a": [1, null, true]}'),
        ("data", "é", b'"\\u00e9"'),
        ("text", "", b""),
        ("binary", b"", b""),
        ("binary", b"\x00\xff", b"\x00\xff"),
    ],
    ids=_id,
)
def test_falsy_and_other_values_are_sealed_as_their_encoding(name, value, plaintext):
    obj = Typed.objects.create(**{name: value})
    assert raw(Typed, name, obj.pk) is not None  # never NULL, even for "", 0, False, {}
    assert sealed_bytes(Typed, name, obj.pk) == plaintext


def test_none_is_null_in_every_column():
    obj = Typed.objects.create()
    loaded = Typed.objects.get(pk=obj.pk)
    names = [f.name for f in Typed._meta.concrete_fields if f.name not in ("id", "label")]
    for name in names:
        assert raw(Typed, name, obj.pk) is None, name
        assert getattr(loaded, name) is None, name
        assert Typed.objects.filter(pk=obj.pk, **{f"{name}__isnull": True}).exists(), name


def test_falsy_values_are_not_null_for_isnull():
    obj = Typed.objects.create(char="", integer=0, flag=False, ratio=0.0, data={}, amount=D(0))
    for name in ("char", "integer", "flag", "ratio", "data", "amount"):
        assert Typed.objects.filter(pk=obj.pk, **{f"{name}__isnull": False}).exists(), name


@pytest.mark.parametrize(
    "value",
    [math.inf, -math.inf, math.nan, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1e-300],
    ids=repr,
)
def test_float_special_values(value):
    obj = Typed.objects.create(ratio=value)
    got = Typed.objects.get(pk=obj.pk).ratio
    assert type(got) is float
    if math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == value and math.copysign(1.0, got) == math.copysign(1.0, value)
    assert sealed_bytes(Typed, "ratio", obj.pk) == repr(value).encode()


@pytest.mark.parametrize(
    ("value", "loaded"),
    [(D("1.5"), "1.50"), (D("1.50"), "1.50"), (D("-0.5"), "-0.50"), (D("999999.99"), "999999.99"),
     (D("1E+2"), "100.00"), ("2.25", "2.25")],
    ids=repr,
)
def test_decimal_keeps_the_fields_places(value, loaded):
    obj = Typed.objects.create(amount=value)
    got = Typed.objects.get(pk=obj.pk).amount
    assert type(got) is D and str(got) == loaded


def test_required_model_with_uuid_pk_and_defaults():
    obj = Required.objects.create(day=datetime.date(2026, 1, 2), amount=D("0.5"))
    got = Required.objects.get(pk=obj.pk)
    assert got.flag is False and got.count == 0 and got.data == {}
    assert str(got.amount) == "0.500" and got.day == datetime.date(2026, 1, 2)
    for name in ("flag", "count", "data", "amount"):
        assert raw(Required, name, obj.pk).startswith("mcf1:")
    assert sealed_bytes(Required, "amount", obj.pk) == b"0.500"


# -- datetimes and USE_TZ ----------------------------------------------------------


@override_settings(USE_TZ=False)
def test_naive_datetime_with_use_tz_off_loads_like_the_plain_field():
    moment = datetime.datetime(2026, 12, 2, 9, 30, 0, 250)
    enc = Typed.objects.create(moment=moment)
    plain = PlainTyped.objects.create(moment=moment)
    got = Typed.objects.get(pk=enc.pk).moment
    expected = PlainTyped.objects.get(pk=plain.pk).moment
    assert timezone.is_naive(got) and timezone.is_naive(expected)
    assert got == expected == moment
    # Sealed as written, without an offset.
    assert sealed_bytes(Typed, "moment", enc.pk) == b"2026-12-02T09:30:00.000250"


@override_settings(USE_TZ=True)
def test_aware_datetime_with_use_tz_on_loads_in_utc_like_the_plain_field():
    moment = datetime.datetime(2026, 12, 2, 18, 30, tzinfo=TOKYO)
    enc = Typed.objects.create(moment=moment)
    plain = PlainTyped.objects.create(moment=moment)
    got = Typed.objects.get(pk=enc.pk).moment
    expected = PlainTyped.objects.get(pk=plain.pk).moment
    assert got == expected == moment
    assert got.utcoffset() == expected.utcoffset() == datetime.timedelta(0)


@override_settings(USE_TZ=True, TIME_ZONE="Europe/Paris")
def test_naive_datetime_with_use_tz_on_warns_and_is_taken_in_the_default_timezone():
    # As Django's plain DateTimeField does (RuntimeWarning, default timezone).
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        enc = Typed.objects.create(moment=datetime.datetime(2026, 7, 1, 12, 0))
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        plain = PlainTyped.objects.create(moment=datetime.datetime(2026, 7, 1, 12, 0))
    got = Typed.objects.get(pk=enc.pk).moment
    assert got == PlainTyped.objects.get(pk=plain.pk).moment
    assert sealed_bytes(Typed, "moment", enc.pk) == b"2026-07-01T10:00:00+00:00"


@override_settings(TIME_ZONE="Europe/Paris")
def test_datetime_sealed_with_use_tz_off_reads_with_use_tz_on_in_the_default_timezone():
    with override_settings(USE_TZ=False):
        obj = Typed.objects.create(moment=datetime.datetime(2026, 7, 1, 12, 0))
    with override_settings(USE_TZ=True):
        got = Typed.objects.get(pk=obj.pk).moment
    assert got == datetime.datetime(2026, 7, 1, 10, 0, tzinfo=datetime.UTC)
    assert got.tzinfo == datetime.UTC


@override_settings(TIME_ZONE="Europe/Paris")
def test_datetime_sealed_with_use_tz_on_reads_with_use_tz_off_naive_in_the_default_timezone():
    with override_settings(USE_TZ=True):
        obj = Typed.objects.create(moment=datetime.datetime(2026, 7, 1, 10, 0, tzinfo=datetime.UTC))
    with override_settings(USE_TZ=False):
        got = Typed.objects.get(pk=obj.pk).moment
    assert got == datetime.datetime(2026, 7, 1, 12, 0) and timezone.is_naive(got)


def test_date_field_given_a_datetime_stores_its_date_like_the_plain_field():
    moment = datetime.datetime(2026, 12, 2, 23, 30, tzinfo=datetime.UTC)
    enc = Typed.objects.create(day=moment)
    plain = PlainTyped.objects.create(day=moment)
    got = Typed.objects.get(pk=enc.pk).day
    assert type(got) is datetime.date
    assert got == PlainTyped.objects.get(pk=plain.pk).day


def test_time_with_a_timezone_is_refused_before_anything_is_written():
    with pytest.raises(TypeError, match=r"typesapp\.Typed\.clock .*naive time"):
        with transaction.atomic():
            Typed.objects.create(clock=datetime.time(9, 30, tzinfo=datetime.UTC))
    assert not Typed.objects.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [("integer", "x"), ("flag", "maybe"), ("day", "2026-13-02"), ("token", "not-a-uuid"),
     ("amount", "1,5"), ("data", {"a": {1, 2}}), ("text", b"bytes"), ("binary", "text")],
    ids=_id,
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(name, value):
    with pytest.raises(TypeError, match=rf"typesapp\.Typed\.{name} "):
        with transaction.atomic():
            Typed.objects.create(**{name: value})
    assert not Typed.objects.exists()


def test_a_decimal_with_too_many_digits_is_refused_naming_the_field():
    with pytest.raises(TypeError, match=r"typesapp\.Typed\.amount "):
        with transaction.atomic():
            Typed.objects.create(amount=D("12345678.9"))  # max_digits=8


def test_strings_are_converted_by_the_base_fields_to_python():
    obj = Typed.objects.create(integer="12", ratio="1.5", day="2026-01-02", flag="False",
                               token=str(UUID), amount="7.1")
    got = Typed.objects.get(pk=obj.pk)
    assert (got.integer, got.ratio, got.day, got.flag, got.token, got.amount) == (
        12, 1.5, datetime.date(2026, 1, 2), False, UUID, D("7.10"))


# -- the generic form, binary storage, encoders, context ------------------------------


def test_generic_fields_and_binary_storage_round_trip():
    stamp = datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC)
    obj = Generic.objects.create(day=datetime.date(2026, 1, 2), small=-3, slug="ab-c",
                                 stamp=stamp, count=0, data=[], price=D("2"), pinned="p")
    got = Generic.objects.get(pk=obj.pk)
    assert (got.day, got.small, got.slug, got.stamp, got.count, got.data, got.pinned) == (
        datetime.date(2026, 1, 2), -3, "ab-c", stamp, 0, [], "p")
    assert str(got.price) == "2.0"
    for name in ("day", "small", "slug", "pinned"):
        assert raw(Generic, name, obj.pk).startswith("mcf1:"), name
    for name, plaintext in (("stamp", b"2026-12-02T09:30:00+00:00"), ("count", b"0"),
                            ("data", b"[]"), ("price", b"2.0")):
        stored = raw(Generic, name, obj.pk)
        assert isinstance(stored, bytes) and stored[0] == 1, name  # the envelope itself
        assert sealed_bytes(Generic, name, obj.pk) == plaintext, name


def test_context_pins_the_binding_label():
    from mcfields.conf import get_keyring
    from mcfields.crypto import binding, from_text

    obj = Generic.objects.create(pinned="x")
    envelope = from_text(raw(Generic, "pinned", obj.pk))
    assert get_keyring().open(envelope, binding("typesapp.pinned", str(obj.pk))) == b"x"


def test_json_with_djangos_encoder():
    obj = Generic.objects.create(rich={"d": datetime.date(2026, 1, 2), "n": D("1.10"), "u": UUID})
    assert Generic.objects.get(pk=obj.pk).rich == {
        "d": "2026-01-02", "n": "1.10", "u": str(UUID)}


def test_a_moved_value_does_not_open_in_another_row():
    from mcfields import DecryptionError
    from tests.django.conftest import set_raw_value

    first = Typed.objects.create(amount=D("1"))
    second = Typed.objects.create(amount=D("2"))
    set_raw_value(Typed, "amount", second.pk, raw(Typed, "amount", first.pk))
    with pytest.raises(DecryptionError):
        Typed.objects.get(pk=second.pk).amount  # noqa: B018 - the read is the test


def test_values_gives_sealed_for_every_type():
    Typed.objects.create(char="a", integer=1, amount=D(1), flag=False, day=datetime.date.today(),
                         data={}, token=UUID, binary=b"")
    row = Typed.objects.values("char", "integer", "amount", "flag", "day", "data", "token",
                               "binary").get()
    for name, value in row.items():
        assert type(value) is Sealed, name
    flat = Typed.objects.values_list("flag", flat=True).get()
    assert type(flat) is Sealed and flat.open(Typed.objects.get().pk) is False
