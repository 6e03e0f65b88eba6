"""The envelope: version, key id, nonce, MAC, ciphertext (docs/FORMAT.md)."""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterable

from .._guest import MAC_SIZE, NONCE_SIZE, get_guest
from ..exceptions import DecryptionError, InvalidKeyError
from .index import ColumnIndex
from .keys import KEY_ID_SIZE, Key

VERSION = 1
VERSION_BYTE = bytes([VERSION])
HEADER_SIZE = 1 + KEY_ID_SIZE
#: Bytes an envelope adds to the plaintext.
OVERHEAD = HEADER_SIZE + NONCE_SIZE + MAC_SIZE
#: Prefix of the ASCII form stored by EncryptedTextField.
TEXT_PREFIX = "mcf1:"

_U32 = struct.Struct("<I")


def binding(label: str, pk: str) -> bytes:
    """Associated data that binds a value to a column (label) and a row (pk).

    Each part is length-prefixed, so no two (label, pk) pairs encode alike.
    """
    label_b = label.encode("utf-8")
    pk_b = pk.encode("utf-8")
    return b"".join((_U32.pack(len(label_b)), label_b, _U32.pack(len(pk_b)), pk_b))


def key_id_of(envelope: bytes) -> bytes:
    """The key id an envelope was sealed under; DecryptionError if malformed."""
    if len(envelope) < OVERHEAD:
        raise DecryptionError(f"envelope is {len(envelope)} bytes, shorter than {OVERHEAD}")
    if envelope[0] != VERSION:
        raise DecryptionError(f"unknown envelope version {envelope[0]}")
    return bytes(envelope[1:HEADER_SIZE])


def to_text(envelope: bytes) -> str:
    """ASCII form for text columns: prefix + unpadded URL-safe base64."""
    return TEXT_PREFIX + base64.urlsafe_b64encode(envelope).rstrip(b"=").decode("ascii")


def from_text(text: str) -> bytes:
    """The envelope in a text column; DecryptionError unless it is exactly
    what ``to_text`` writes.

    Only the canonical form is accepted (RFC 4648 section 3.5): URL-safe
    alphabet, no padding, no other characters, zero unused bits in the last
    character.  A lenient decoder would map several stored strings to one
    envelope, so that some changes to the stored text (a flipped low bit in
    the last character, added padding or junk characters) would still open.
    """
    if not isinstance(text, str) or not text.startswith(TEXT_PREFIX):
        raise DecryptionError("stored text is not an mcfields envelope")
    body = text[len(TEXT_PREFIX):]
    if "=" in body or "+" in body or "/" in body:
        raise DecryptionError("stored text is not canonical unpadded base64url")
    try:
        envelope = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_",
                                    validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("stored text is not valid base64") from None
    tail = len(envelope) % 3
    if tail and to_text(envelope[-tail:])[-1] != body[-1]:
        raise DecryptionError("stored text is not canonical unpadded base64url")
    return envelope


def is_text_envelope(text: str) -> bool:
    return isinstance(text, str) and text.startswith(TEXT_PREFIX)


class Keyring:
    """The configured keys: the first seals, every one opens.

    ``seal``/``open``/``reseal`` are the crypto API: bytes in, bytes out,
    with the caller's associated data (``binding(label, pk_text)``; a
    required argument, so that nothing is ever sealed unbound) bound into
    the MAC together with the envelope header.
    """

    __slots__ = ("keys", "primary", "_by_id", "_header", "_columns")

    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys: tuple[Key, ...] = tuple(keys)
        if not self.keys:
            raise InvalidKeyError("a keyring needs at least one key")
        by_id: dict[bytes, Key] = {}
        for index, key in enumerate(self.keys):
            if key.key_id in by_id:
                raise InvalidKeyError(
                    f"key at index {index} has the same key id ({key.id_hex}) as an earlier key"
                )
            by_id[key.key_id] = key
        self._by_id = by_id
        self.primary = self.keys[0]
        #: Header of every envelope this keyring seals (version, primary key id).
        self._header = VERSION_BYTE + self.primary.key_id
        self._columns: dict[bytes, ColumnIndex] = {}

    @classmethod
    def from_strings(cls, texts: Iterable[str | bytes]) -> Keyring:
        keys = []
        try:
            # A loop rather than a generator expression: the loop variable
            # can be cleared here, a generator frame's cannot.
            for text in texts:
                keys.append(Key.from_string(text))
        except BaseException:
            # The settings keys must not be in the locals of the frames an
            # error report prints.
            texts = text = ""
            raise
        return cls(keys)

    def __repr__(self) -> str:
        return f"<Keyring keys={list(getattr(self, 'keys', ()))!r}>"

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """An envelope of ``plaintext`` under the first key."""
        header = self._header
        try:
            return get_guest().seal(self.primary._aead_key, os.urandom(NONCE_SIZE),
                                    header + associated_data, plaintext, prefix=header)
        except BaseException:
            del plaintext  # error reports print every frame's locals
            raise

    def open(self, envelope: bytes, associated_data: bytes) -> bytes:
        """The plaintext of ``envelope`` under whichever configured key sealed
        it; ``DecryptionError`` if it does not open with this associated data."""
        key_id = key_id_of(envelope)
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionError("sealed under a key that is not configured", key_id=key_id.hex())
        guest = get_guest()
        if len(envelope) - OVERHEAD > guest.max_text_size:
            # Larger than any value this process would seal: a bad envelope,
            # not a caller error (ValueTooLargeError is for values to seal).
            raise DecryptionError(
                f"envelope of {len(envelope)} bytes is larger than the maximum value size",
                key_id=key_id.hex(),
            )
        view = memoryview(envelope)
        # (No local holds a secret when an exception leaves: ``key`` is a Key,
        # whose repr is its id, and ``plaintext`` is bound only on success.)
        plaintext = guest.open(key._aead_key, envelope[:HEADER_SIZE] + associated_data,
                               view[HEADER_SIZE:])
        if plaintext is None:
            raise DecryptionError(
                "authentication failed: the value was altered, moved to another "
                "row or column, or sealed under a different key with the same id",
                key_id=key_id.hex(),
            )
        return plaintext

    def is_current(self, envelope: bytes) -> bool:
        """True when ``envelope`` is sealed under the first key."""
        return key_id_of(envelope) == self.primary.key_id

    def reseal(self, envelope: bytes, associated_data: bytes,
               new_associated_data: bytes | None = None) -> bytes:
        """``envelope`` opened with any configured key and sealed again under
        the first one (pyca's ``MultiFernet.rotate``), for the same binding
        or for ``new_associated_data``; the new envelope is checked to open
        before it is returned.  ``DecryptionError`` if the old one does not
        open.  The plaintext never leaves this method.
        """
        target = associated_data if new_associated_data is None else new_associated_data
        plaintext = self.open(envelope, associated_data)
        try:
            new = self.seal(plaintext, target)
            if self.open(new, target) != plaintext:
                raise DecryptionError("a re-sealed value did not open to its plaintext")
            return new
        finally:
            del plaintext  # error reports print every frame's locals

    def knows(self, key_id: bytes) -> bool:
        return key_id in self._by_id

    def column_index(self, column: bytes) -> ColumnIndex:
        """The blind-index keys of ``column`` (``crypto.index.column_info``)
        under these keys; derived once per keyring and column."""
        found = self._columns.get(column)
        if found is None:
            found = ColumnIndex(tuple(k._index_key for k in self.keys), column)
            self._columns[column] = found
        return found
