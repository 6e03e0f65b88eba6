"""Binding a value to its row: the canonical pk text and the context bytes.

Binding to the row: the associated data of every envelope is
``crypto.binding(label, pk_text)``, where the label names the column
(``context=`` or ``"<app_label>.<ModelName>.<field_name>"``) and the pk text
is the canonical string of the row's primary key.  Sealing and opening must
agree on that string byte for byte, so it is computed in exactly one place.
``mcfields.rotation`` imports :func:`pk_text` from here for the same reason.
"""

from __future__ import annotations

import functools
import struct
import uuid
from collections.abc import Callable
from typing import Any

from django.db import models

from .crypto import binding

__all__ = ["PK_TYPES", "associated_data", "binder", "canonical_pk", "pk_text", "pk_value_type"]


def pk_text(pk: Any) -> str:
    """The canonical text of a Python pk value.

    int -> decimal, UUID -> hyphenated lowercase, str -> itself.  Any other
    type is refused rather than guessed at: a ``str()`` that differs between
    the save and the load would make every value of the row unreadable.
    """
    kind = type(pk)
    # Exact-type fast paths first: this runs on every seal and open.
    if kind is int:
        return str(pk)
    if kind is str:
        return pk
    if isinstance(pk, bool):
        raise TypeError("mcfields cannot bind a value to a boolean primary key")
    if isinstance(pk, int):
        # int subclasses (IntEnum...) may override __str__; bind the number.
        return int.__repr__(int(pk))
    if isinstance(pk, uuid.UUID):
        return str(pk)
    if isinstance(pk, str):
        return str.__str__(pk)
    if pk is None:
        raise TypeError("mcfields cannot bind a value to a row without a primary key")
    raise TypeError(
        f"mcfields cannot bind a value to a primary key of type {kind.__name__}; "
        "supported primary keys are integers, UUIDs and strings"
    )


def canonical_pk(model: type[models.Model] | None, pk: Any) -> str:
    """The pk text for ``pk`` of ``model``, normalised through the pk field.

    A pk assigned by hand may not have its field's Python type yet (``"7"``
    for an AutoField, ``5`` or a hex string for a UUIDField); ``to_python``
    gives the value the row will have once loaded, so saving and loading
    bind alike.  A value already of the field's type skips the conversion.
    """
    if model is None:
        return pk_text(pk)
    pk_field = model._meta.pk
    if pk_field is None or pk is None:
        return pk_text(pk)
    if type(pk) is not pk_value_type(pk_field):
        pk = pk_field.to_python(pk)
    return pk_text(pk)


#: The Python type of the loaded values of the pk fields whose values bind
#: (by Django internal type); any other pk type is refused (check E112).
PK_TYPES: dict[str, type] = {
    **dict.fromkeys(("AutoField", "BigAutoField", "SmallAutoField", "IntegerField",
                     "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField"), int),
    **dict.fromkeys(("CharField", "TextField", "SlugField", "FilePathField",
                     "GenericIPAddressField"), str),
    "UUIDField": uuid.UUID,
}
_UNSET = object()


def pk_value_type(pk_field: Any) -> type | None:
    """The type of ``pk_field``'s loaded values (following a parent link to
    the field that holds them), or None when values of its type cannot be
    bound.  Cached on the field: canonical_pk runs on every seal and open."""
    kind = pk_field.__dict__.get("_mcfields_pk_type", _UNSET)
    if kind is _UNSET:
        target = pk_field
        while target.is_relation:  # a parent link: the pk of the parent's table
            target = target.target_field
        kind = pk_field.__dict__["_mcfields_pk_type"] = PK_TYPES.get(target.get_internal_type())
    return kind  # type: ignore[return-value]


_U32 = struct.Struct("<I")


def _label_prefix(label: str) -> bytes | None:
    """The length-prefixed UTF-8 of ``label`` (the first half of
    crypto.binding's bytes), or None if crypto.binding no longer has that
    layout (checked: :func:`binder` then falls back to it)."""
    encoded = label.encode("utf-8")
    prefix = _U32.pack(len(encoded)) + encoded
    if binding(label, "7") != prefix + _U32.pack(1) + b"7":
        return None
    return prefix


def associated_data(label: str, model: type[models.Model] | None, pk: Any) -> bytes:
    """The associated data of row ``pk``'s value in the column labelled
    ``label``: ``crypto.binding(label, canonical_pk(model, pk))``.
    :func:`binder` gives the same bytes with the per-column work done once."""
    return binding(label, canonical_pk(model, pk))


def _uuid_text(pk: uuid.UUID) -> str:
    """``str(pk)`` without ``UUID.__str__``'s property and formatting calls."""
    h = f"{pk.int:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def binder(label: str, model: type[models.Model] | None) -> Callable[[Any], bytes]:
    """``lambda pk: associated_data(label, model, pk)`` with the per-column
    work done once (the label half encoded, the pk's type looked up): a
    field keeps one and calls it on every seal and open.  A pk of the pk
    field's own type is its canonical text by ``str()``; anything else goes
    through :func:`canonical_pk`."""
    prefix = _label_prefix(label)
    pk_field = model._meta.pk if model is not None else None
    own = pk_value_type(pk_field) if pk_field is not None else None
    if prefix is None or not (own is int or own is uuid.UUID or own is str):
        return functools.partial(associated_data, label, model)
    text = _uuid_text if own is uuid.UUID else str
    pack = _U32.pack

    def bind(pk: Any) -> bytes:
        encoded = (text(pk) if type(pk) is own else canonical_pk(model, pk)).encode("utf-8")
        return prefix + pack(len(encoded)) + encoded

    return bind
