"""The bytes each field type seals: the plaintext codecs.

A codec turns a field's Python value into the bytes that are sealed, and
those bytes back into the value the plain Django field would have loaded.
The encodings are part of the stored format (docs/FORMAT.md, "Plaintext
encodings"): stable across versions, so that an independent implementation
can decode an opened value.  All text is UTF-8.

The codec of a field is chosen by its base field's class (the most
specific registered class in its MRO), so a new type of field needs a
codec only when its values are encoded differently from every registered
one: :func:`register` it here.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from typing import Any, Protocol

from django.conf import settings
from django.db import models
from django.db.backends.utils import format_number
from django.utils import timezone

__all__ = ["PlaintextCodec", "codec_for", "register"]


class PlaintextCodec(Protocol):
    """How one kind of value becomes the bytes that are sealed, and back."""

    #: Name used in docs/FORMAT.md.
    name: str

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        """The plaintext of ``value`` (already through the base field's
        ``to_python``); ``TypeError``/``ValidationError`` for a bad value."""

    def from_bytes(self, base_field: models.Field, data: bytes) -> Any:
        """The value an opened plaintext stands for; ``ValueError`` if the
        bytes are not an encoding this codec writes."""


_CODECS: dict[type[models.Field], PlaintextCodec] = {}


def register(field_class: type[models.Field], codec: PlaintextCodec) -> None:
    """Use ``codec`` for base fields of ``field_class`` and its subclasses."""
    _CODECS[field_class] = codec


def codec_for(base_field: models.Field) -> PlaintextCodec | None:
    for klass in type(base_field).__mro__:
        codec = _CODECS.get(klass)  # type: ignore[call-overload]
        if codec is not None:
            return codec
    return None


def _text(data: bytes) -> str:
    return data.decode("utf-8")


class _Text:
    """UTF-8 of the string (Text, Char, Email, URL, Slug... fields)."""

    name = "text"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            # TextField.to_python would store the repr "b'...'": refuse.
            raise TypeError(f"holds text, not {type(value).__name__}")
        return str(base_field.to_python(value)).encode("utf-8")

    def from_bytes(self, base_field: models.Field, data: bytes) -> str:
        return _text(data)


class _Bytes:
    """The bytes themselves (BinaryField)."""

    name = "bytes"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"holds bytes, not {type(value).__name__}")

    def from_bytes(self, base_field: models.Field, data: bytes) -> bytes:
        return data


class _Integer:
    """Decimal ASCII digits with an optional leading "-" (no "+", no
    leading zeros): ``str(int)``."""

    name = "integer"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        number = base_field.to_python(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"holds an integer, not {type(value).__name__}")
        return str(int(number)).encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> int:
        text = data.decode("ascii")
        number = int(text)
        if str(number) != text:
            raise ValueError("not a canonical integer")
        return number


class _Decimal:
    """The decimal text ``format_number`` writes for the field's
    ``max_digits``/``decimal_places`` (as a plain DecimalField column would
    hold it: "1.50" for decimal_places=2), or "NaN"/"Infinity"/"-Infinity"."""

    name = "decimal"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        number = base_field.to_python(value)
        if not number.is_finite():
            return str(number).encode("ascii")
        text = format_number(number, base_field.max_digits, base_field.decimal_places)
        return text.encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> decimal.Decimal:
        return decimal.Decimal(data.decode("ascii"))


class _Float:
    """``repr(float)``: the shortest text that reads back to the same float
    ("0.1", "-0.0", "1e+100", "inf", "-inf", "nan")."""

    name = "float"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        number = base_field.to_python(value)
        return repr(float(number)).encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> float:
        text = data.decode("ascii")
        number = float(text)
        if repr(number) != text and not math.isnan(number):
            raise ValueError("not a canonical float")
        return number


class _Boolean:
    """One ASCII byte: "1" for True, "0" for False."""

    name = "boolean"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        flag = base_field.to_python(value)
        return b"1" if flag else b"0"

    def from_bytes(self, base_field: models.Field, data: bytes) -> bool:
        if data == b"1":
            return True
        if data == b"0":
            return False
        raise ValueError("not a boolean")


class _Date:
    """ISO 8601 calendar date, "YYYY-MM-DD"."""

    name = "date"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        day = base_field.to_python(value)
        if isinstance(day, datetime.datetime):
            day = day.date()
        return day.isoformat().encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> datetime.date:
        return datetime.date.fromisoformat(data.decode("ascii"))


class _Time:
    """ISO 8601 time, "HH:MM:SS" or "HH:MM:SS.ffffff" (``time.isoformat()``)."""

    name = "time"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        moment = base_field.to_python(value)
        if moment.tzinfo is not None:
            raise ValueError("a time with a timezone cannot be stored; use a naive time")
        return moment.isoformat().encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> datetime.time:
        return datetime.time.fromisoformat(data.decode("ascii"))


class _DateTime:
    """ISO 8601: an aware value in UTC with "+00:00"
    ("2026-12-02T09:30:00.123456+00:00"), a naive one without offset.

    The value is prepared as the plain ``DateTimeField`` prepares it
    (``USE_TZ``: a naive value becomes aware in the default timezone, with
    Django's warning), and loads as the plain field loads: aware in UTC when
    ``USE_TZ`` is on, naive (in the default timezone) when it is off.
    """

    name = "datetime"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        moment = base_field.get_prep_value(base_field.to_python(value))
        if timezone.is_aware(moment):
            moment = moment.astimezone(datetime.UTC)
        return moment.isoformat().encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> datetime.datetime:
        moment = datetime.datetime.fromisoformat(data.decode("ascii"))
        if settings.USE_TZ:
            if timezone.is_naive(moment):
                # Sealed while USE_TZ was off: a naive value in the default
                # timezone, as the plain field would read it back.
                moment = timezone.make_aware(moment, timezone.get_default_timezone())
            return moment.astimezone(datetime.UTC)
        if timezone.is_aware(moment):
            moment = timezone.make_naive(moment, timezone.get_default_timezone())
        return moment


class _Uuid:
    """The hyphenated lowercase form, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"."""

    name = "uuid"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        return str(base_field.to_python(value)).encode("ascii")

    def from_bytes(self, base_field: models.Field, data: bytes) -> uuid.UUID:
        text = data.decode("ascii")
        value = uuid.UUID(text)
        if str(value) != text:
            raise ValueError("not a canonical UUID")
        return value


class _Json:
    """``json.dumps(value, cls=encoder)`` of the field's encoder, UTF-8
    (Python's defaults otherwise: ", " and ": " separators, ASCII escapes,
    NaN and Infinity allowed); read with ``json.loads(cls=decoder)``."""

    name = "json"

    def to_bytes(self, base_field: models.Field, value: Any) -> bytes:
        try:
            return json.dumps(value, cls=base_field.encoder).encode("utf-8")
        except TypeError as exc:
            raise TypeError(f"is not JSON serializable ({exc})") from None

    def from_bytes(self, base_field: models.Field, data: bytes) -> Any:
        return json.loads(data.decode("utf-8"), cls=base_field.decoder)


TEXT = _Text()
BYTES = _Bytes()

register(models.TextField, TEXT)
register(models.CharField, TEXT)
register(models.BinaryField, BYTES)
register(models.IntegerField, _Integer())  # Small/Big/Positive... and AutoFields
register(models.DecimalField, _Decimal())
register(models.FloatField, _Float())
register(models.BooleanField, _Boolean())
register(models.DateField, _Date())
register(models.DateTimeField, _DateTime())  # a DateField subclass: more specific
register(models.TimeField, _Time())
register(models.UUIDField, _Uuid())
register(models.JSONField, _Json())

#: Values of these types cannot change after a save, so the envelope just
#: written can stand for them (saving does not seal them again).
IMMUTABLE = frozenset({str, bytes, int, float, bool, decimal.Decimal, uuid.UUID,
                       datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
                       type(None)})
