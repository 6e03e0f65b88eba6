"""Django REST Framework serializer fields for mcfields (extra ``drf``).

Importing this module registers the fields for every ``ModelSerializer``
(``ModelSerializer.serializer_field_mapping``)::

    import mcfields.drf  # noqa: F401  (e.g. at the top of serializers.py)

* ``EncryptedTextField`` -> :class:`EncryptedCharField`: a JSON string.
* ``EncryptedBinaryField`` -> :class:`EncryptedBase64Field`: standard base64
  in a JSON string.  Input that is not a string, not base64, or larger than
  ``MCFIELDS_MAX_VALUE_SIZE`` is a validation error (400), never a 500.

A value that fails to open while a response is serialized raises
:class:`UndecryptableValue`: the whole response is an error naming the
model, field, pk and key id (never plaintext), not a partial list with a
marker in place of data.  Why: a client cannot tell a marker from a value,
and one that writes the object back (PUT) would replace the stored value,
which is still recoverable with the right key, by the marker or by null.
See docs/DRF.md.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import APIException

from . import conf
from .exceptions import DecryptionError
from .fields import EncryptedBinaryField, EncryptedTextField

__all__ = ["EncryptedBase64Field", "EncryptedCharField", "UndecryptableValue", "register"]


class UndecryptableValue(APIException):
    """A stored value failed to open while serializing a response (HTTP 500).

    The body names where the value is (model, field, pk, key id) so that an
    operator can find the row; it never contains plaintext or key material.
    """

    status_code = 500
    default_code = "undecryptable"
    default_detail = "A stored value cannot be opened."

    def __init__(self, exc: DecryptionError) -> None:
        super().__init__(detail={
            "detail": str(exc),
            "code": self.default_code,
            "model": exc.model,
            "field": exc.field,
            "pk": None if exc.pk is None else str(exc.pk),
            "key_id": exc.key_id,
        })


class _Opens:
    """Turns a DecryptionError while reading the attribute into UndecryptableValue.

    DRF's ``Field.get_attribute`` only translates AttributeError/KeyError;
    anything else would be an HTML server error without the row's name.
    """

    def get_attribute(self, instance: Any) -> Any:
        try:
            return super().get_attribute(instance)  # type: ignore[misc]
        except DecryptionError as exc:
            raise UndecryptableValue(exc) from None


class EncryptedCharField(_Opens, serializers.CharField):
    """The serializer field of ``EncryptedTextField``: a string."""


class EncryptedBase64Field(_Opens, serializers.Field):
    """The serializer field of ``EncryptedBinaryField``: bytes as base64."""

    default_error_messages = {
        "not_a_string": "Expected a base64 string, got {input_type}.",
        "invalid": "Not valid base64 (standard alphabet, with padding).",
        "too_large": "The value is {size} bytes; the limit is {limit} bytes.",
    }

    def __init__(self, **kwargs: Any) -> None:
        # ModelSerializer passes these for model fields; they mean nothing here.
        kwargs.pop("max_length", None)
        kwargs.pop("allow_blank", None)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        return base64.b64encode(bytes(value)).decode("ascii")

    def to_internal_value(self, data: Any) -> bytes:
        if not isinstance(data, str):
            self.fail("not_a_string", input_type=type(data).__name__)
        limit = conf.max_value_size()
        # Refuse an oversized string before decoding it (4 chars per 3 bytes).
        if len(data) > 4 * (limit // 3 + 1):
            self.fail("too_large", size=f"about {len(data) * 3 // 4}", limit=limit)
        try:
            value = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            self.fail("invalid")
        if len(value) > limit:
            self.fail("too_large", size=len(value), limit=limit)
        return value


def register() -> None:
    """Map mcfields' model fields to these serializer fields for every
    ModelSerializer (idempotent; done when this module is imported)."""
    mapping = serializers.ModelSerializer.serializer_field_mapping
    mapping[EncryptedTextField] = EncryptedCharField
    mapping[EncryptedBinaryField] = EncryptedBase64Field


register()
