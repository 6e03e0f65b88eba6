"""The encrypted field as the rest of mcfields sees it.

Rotation, adoption, the managers, the forms and the admin use an
encrypted field only through this contract (like ``BasePasswordHasher`` in
``django.contrib.auth.hashers``); :class:`mcfields.fields.EncryptedField`
implements it.  Anything else about a field is private to
:mod:`mcfields.fields`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from django.db import models

    from .plaintext import PlaintextCodec
    from .saving import ForSave
    from .storage import Storage

__all__ = ["EncryptedColumn"]


@runtime_checkable
class EncryptedColumn(Protocol):
    """An encrypted column: how its values are bound, sealed, stored and opened."""

    #: The model that declares the field (whose table holds the column).
    model: type[models.Model]
    name: str
    attname: str
    column: str
    null: bool
    #: The field whose values are encrypted (its type, validators, form field).
    base_field: models.Field
    #: How the envelope is stored in the column (text or binary).
    storage: Storage
    #: How a value becomes the bytes that are sealed (None: no codec, a check error).
    plaintext_codec: PlaintextCodec | None

    @property
    def binding_label(self) -> str:
        """The column's label in the associated data: ``context=`` or
        ``"<app_label>.<ModelName>.<field_name>"``."""
        ...

    @property
    def pk_attname(self) -> str:
        """The attribute holding the pk of the table that holds the column."""
        ...

    def associated_data(self, pk: Any) -> bytes:
        """The associated data of the column's value in row ``pk``."""
        ...

    def seal_for_pk(self, value: Any, pk: Any) -> str | bytes | None:
        """The column value of ``value`` in row ``pk`` (size cap enforced)."""
        ...

    def open_for_pk(self, value: Any, pk: Any) -> Any:
        """The value of a column value read from row ``pk``;
        ``DecryptionError`` naming model, field and pk if it does not open."""
        ...

    def stored_key_id(self, db_value: Any) -> bytes | None:
        """The key id of a column value, decoding only its header."""
        ...

    def to_save(self, value: Any, pk: Any) -> ForSave:
        """What a write of the current value ``value`` sends for row ``pk``
        (an untouched loaded value as it is, anything else sealed)."""
        ...
