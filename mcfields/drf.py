"""Django REST Framework serializer fields for mcfields (extra ``drf``).

Importing this module registers the fields for every ``ModelSerializer``
(``ModelSerializer.serializer_field_mapping``)::

    import mcfields.drf  # noqa: F401  (e.g. at the top of serializers.py)

* Every encrypted field serializes as its base field would: the serializer
  field DRF maps the base field to, with the base field's options
  (``max_length``, ``max_digits``/``decimal_places``, ``min_value`` of a
  positive integer, the integer range, JSON ``encoder``/``decoder``...), so
  bad input is a validation error (400) as it is for the plain field.
* ``EncryptedTextField`` -> :class:`EncryptedCharField`: a JSON string.
* ``EncryptedBinaryField`` (any ``BinaryField`` base) ->
  :class:`EncryptedBase64Field`: standard base64 in a JSON string.  Input
  that is not a string, not base64, or larger than ``MCFIELDS_MAX_VALUE_SIZE``
  is a validation error (400), never a 500.

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
import copy
from typing import Any

from django.db import models
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.utils.field_mapping import ClassLookupDict, get_field_kwargs
from rest_framework.validators import UniqueValidator

from . import conf
from .exceptions import DecryptionError
from .fields import EncryptedBinaryField, EncryptedField, EncryptedTextField

__all__ = [
    "EncryptedBase64Field", "EncryptedCharField", "EncryptedModelField", "UndecryptableValue",
    "register", "serializer_field_for",
]


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


# The serializer field classes that open values: DRF's class for the base
# field, with _Opens in front (made once per class, on first use).
_OPENING: dict[type[serializers.Field], type[serializers.Field]] = {
    serializers.CharField: EncryptedCharField,
}
# Options DRF derives from the model field that only an editable field takes.
_WRITE_ONLY_OPTIONS = ("required", "allow_blank")


def _opening(field_class: type[serializers.Field]) -> type[serializers.Field]:
    if issubclass(field_class, _Opens):
        return field_class
    opening = _OPENING.get(field_class)
    if opening is None:
        opening = _OPENING[field_class] = type(
            f"Encrypted{field_class.__name__}", (_Opens, field_class),
            {"__module__": __name__,
             "__doc__": f"``{field_class.__name__}`` over an encrypted field's plaintext."},
        )
    return opening


def serializer_field_for(model_field: Any, **kwargs: Any) -> serializers.Field:
    """The serializer field of an encrypted ``model_field``: the one DRF uses
    for its base field, with the options DRF derives from the base field.

    ``kwargs`` are what ModelSerializer derived from the encrypted field
    (``required``, ``allow_null``, ``read_only``, ``label``...) plus the
    serializer's ``extra_kwargs``; they win over the base field's.
    """
    kwargs.pop("model_field", None)
    # The base field as DRF should see it: editable as the encrypted field
    # is (BinaryField's own default is not editable), and named like it.
    base = copy.copy(model_field.base_field)
    base.editable = model_field.editable
    if isinstance(base, models.BinaryField):
        field_class: type[serializers.Field] = EncryptedBase64Field
    else:
        try:
            field_class = ClassLookupDict(
                serializers.ModelSerializer.serializer_field_mapping)[base]
        except KeyError:
            field_class = serializers.ModelField
    options = get_field_kwargs(model_field.name, base)
    if issubclass(field_class, serializers.ModelField):
        options["model_field"] = base
    else:
        options.pop("model_field", None)
    if not issubclass(field_class, (serializers.CharField, serializers.ChoiceField)):
        options.pop("allow_blank", None)
    if isinstance(base, models.JSONField):
        # What ModelSerializer does for a plain JSONField.
        options["encoder"] = base.encoder
        options["decoder"] = base.decoder
    validators = [*options.pop("validators", ()), *kwargs.pop("validators", ())]
    if getattr(model_field, "search_unique", False):
        # unique=True of a searchable field: DRF sees no unique column (the
        # blind index is), so the UniqueValidator it would add is added here;
        # its exact lookup goes through the index, under every configured key.
        validators.append(UniqueValidator(
            queryset=model_field.model._default_manager,
            message=model_field.error_messages.get("unique"),
        ))
    if validators:
        options["validators"] = validators
    options.update(kwargs)
    if options.get("read_only"):
        for name in _WRITE_ONLY_OPTIONS:
            options.pop(name, None)
    return _opening(field_class)(**options)


class EncryptedModelField(serializers.ModelField):
    """The ``serializer_field_mapping`` entry of every encrypted field.

    ModelSerializer passes the model field only to ``ModelField``
    subclasses; this one uses it to build the serializer field of the base
    field (:func:`serializer_field_for`), so it is never an instance itself.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        model_field = kwargs.pop("model_field", None)
        if model_field is None and args:
            model_field, *args = args
        if args:
            raise TypeError("EncryptedModelField takes keyword arguments only")
        return serializer_field_for(model_field, **kwargs)


def register() -> None:
    """Map mcfields' model fields to their serializer fields for every
    ModelSerializer (idempotent; done when this module is imported)."""
    mapping = serializers.ModelSerializer.serializer_field_mapping
    # The named fields are subclasses (ClassLookupDict walks the MRO); the
    # two that had entries of their own before the typed fields get the
    # same one, in case an older registration is still in place.
    for field_class in (EncryptedField, EncryptedTextField, EncryptedBinaryField):
        mapping[field_class] = EncryptedModelField


register()
