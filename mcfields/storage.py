"""How an envelope is stored in its column: the storage codecs.

Every module that reads or writes a column value asks the field's codec
(``field.storage``) instead of testing types:

* :data:`TEXT`: the ASCII form ``mcf1:`` + unpadded base64url in a text
  column (``EncryptedTextField`` and, by default, every typed field);
* :data:`BINARY`: the raw envelope in a binary column
  (``EncryptedBinaryField``, or ``storage="binary"``).

A codec accepts only its own form: on SQLite a text column can hold a
BLOB (and a binary one text), and the same envelope in the other form is
not a value this column wrote.  docs/FORMAT.md gives both forms byte for
byte.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Protocol

from .crypto import HEADER_SIZE, OVERHEAD, TEXT_PREFIX, VERSION, Keyring, from_text, to_text
from .exceptions import DecryptionError

__all__ = ["BINARY", "STORAGES", "TEXT", "Storage", "storage_named"]

# The text-form prefix plus the whole base64 quanta that cover the header.
_HEADER_CHARS = len(TEXT_PREFIX) + 4 * -(-HEADER_SIZE // 3)


class Storage(Protocol):
    """A column's storage form of an envelope."""

    #: Public name (the ``storage=`` option).
    name: str
    #: The Django field type whose column holds it (``get_internal_type``).
    internal_type: str
    #: What an INSERT carries before a database-assigned pk is known.
    placeholder: str | bytes

    def encode(self, envelope: bytes) -> str | bytes:
        """The column value of an envelope."""

    def decode(self, db_value: Any) -> bytes:
        """The envelope in a column value; ``DecryptionError`` if the value
        is not exactly what :meth:`encode` writes."""

    def header(self, db_value: Any) -> bytes | None:
        """The envelope header (version, key id) decoding as little as
        possible, or None when the value is not in this storage form."""

    def envelope_size(self, db_value: Any) -> int | None:
        """The envelope's length in bytes, without decoding it (None when
        the value is not in this storage form)."""

    def db_param(self, db_value: Any, connection: Any) -> Any:
        """The query parameter for a column value."""

    def seal(self, keyring: Keyring, plaintext: bytes, associated_data: bytes) -> str | bytes:
        """The column value of ``plaintext`` sealed with ``associated_data``:
        ``encode(keyring.seal(...))``, in one guest call where the form allows."""

    def seal_many(self, keyring: Keyring, plaintexts: Sequence[bytes],
                  associated_data: Sequence[bytes]) -> list[str] | list[bytes]:
        """:meth:`seal` of many values, in as few guest calls as their size allows."""

    def open(self, keyring: Keyring, db_value: Any, associated_data: bytes) -> bytes:
        """The plaintext of a column value: ``keyring.open(decode(db_value), ...)``,
        in one guest call where the form allows; ``DecryptionError`` as either."""


class _Sealing:
    """``seal``/``seal_many`` through the keyring methods of a storage form."""

    #: The ``Keyring`` methods that seal one value, and many, in this form.
    keyring_seal: str
    keyring_seal_many: str

    def seal(self, keyring: Keyring, plaintext: bytes, associated_data: bytes) -> Any:
        try:
            return getattr(keyring, self.keyring_seal)(plaintext, associated_data)
        except BaseException:
            del plaintext  # error reports print every frame's locals
            raise

    def seal_many(self, keyring: Keyring, plaintexts: Sequence[bytes],
                  associated_data: Sequence[bytes]) -> Any:
        try:
            return getattr(keyring, self.keyring_seal_many)(plaintexts, associated_data)
        except BaseException:
            del plaintexts  # error reports print every frame's locals
            raise


class _Text(_Sealing):
    name = "text"
    # base64url encoded by the guest in the sealing call.
    keyring_seal = "seal_text"
    keyring_seal_many = "seal_many_text"
    internal_type = "TextField"
    placeholder = ""

    def encode(self, envelope: bytes) -> str:
        return to_text(envelope)

    def decode(self, db_value: Any) -> bytes:
        if not isinstance(db_value, str):
            raise DecryptionError("stored value is not text")
        return from_text(db_value)

    def header(self, db_value: Any) -> bytes | None:
        if not isinstance(db_value, str) or not db_value.startswith(TEXT_PREFIX):
            return None
        try:
            head = base64.urlsafe_b64decode(db_value[len(TEXT_PREFIX):_HEADER_CHARS])
        except (binascii.Error, ValueError):
            return None
        return _valid_header(head[:HEADER_SIZE])

    def envelope_size(self, db_value: Any) -> int | None:
        if not isinstance(db_value, str) or not db_value.startswith(TEXT_PREFIX):
            return None
        chars = len(db_value) - len(TEXT_PREFIX)
        if chars % 4 == 1:  # no base64 text has this length
            return None
        return chars * 3 // 4  # every 4 characters carry 3 bytes

    def db_param(self, db_value: Any, connection: Any) -> Any:
        return db_value

    def open(self, keyring: Keyring, db_value: Any, associated_data: bytes) -> bytes:
        if not isinstance(db_value, str):
            raise DecryptionError("stored value is not text")
        # Decoded (strictly: only what encode() writes) in the opening call.
        return keyring.open_text(db_value, associated_data)

    def __repr__(self) -> str:
        return "<mcfields storage text>"


class _Binary(_Sealing):
    name = "binary"
    keyring_seal = "seal"
    keyring_seal_many = "seal_many"
    internal_type = "BinaryField"
    placeholder = b""

    def encode(self, envelope: bytes) -> bytes:
        return envelope

    def decode(self, db_value: Any) -> bytes:
        if isinstance(db_value, (bytes, bytearray, memoryview)):
            return bytes(db_value)
        raise DecryptionError("stored value is not binary")

    def header(self, db_value: Any) -> bytes | None:
        if not isinstance(db_value, (bytes, bytearray, memoryview)):
            return None
        return _valid_header(bytes(db_value[:HEADER_SIZE]))

    def envelope_size(self, db_value: Any) -> int | None:
        if not isinstance(db_value, (bytes, bytearray, memoryview)):
            return None
        return len(db_value)

    def db_param(self, db_value: Any, connection: Any) -> Any:
        return connection.Database.Binary(db_value)

    def open(self, keyring: Keyring, db_value: Any, associated_data: bytes) -> bytes:
        return keyring.open(self.decode(db_value), associated_data)

    def __repr__(self) -> str:
        return "<mcfields storage binary>"


def _valid_header(head: bytes) -> bytes | None:
    return head if len(head) == HEADER_SIZE and head[0] == VERSION else None


TEXT: Storage = _Text()
BINARY: Storage = _Binary()
STORAGES: dict[str, Storage] = {s.name: s for s in (TEXT, BINARY)}


def storage_named(name: str) -> Storage:
    try:
        return STORAGES[name]
    except KeyError:
        raise ValueError(
            f"storage must be one of {', '.join(sorted(STORAGES))}, not {name!r}"
        ) from None


def plaintext_size(storage: Storage, db_value: Any) -> int | None:
    """The size of the value sealed in ``db_value``, read from its length
    (nothing is opened); None when it is not an envelope of this form."""
    size = storage.envelope_size(db_value)
    if size is None or size < OVERHEAD:
        return None
    return size - OVERHEAD
