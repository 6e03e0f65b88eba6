"""The envelope: version, key id, nonce, MAC, ciphertext (docs/FORMAT.md)."""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Iterable, Sequence

from .. import _guest
from .._guest import MAC_SIZE, NONCE_SIZE
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
_TEXT_PREFIX_BYTES = TEXT_PREFIX.encode("ascii")
#: Characters of a text envelope that fix its prefix, version and key id:
#: the prefix, then 7 base64url characters (42 bits: the 40 of the header
#: and the top 2 bits of the nonce's first byte).
_TEXT_HEAD_CHARS = len(TEXT_PREFIX) + 7
#: Longest text form decoded by the guest.  Its decoder is simple scalar
#: C (about 12 ns a character); binascii's is faster beyond a few KiB (at
#: 64 KiB: 1.3 ms against 0.3 ms), where the call overhead no longer counts.
_FUSED_TEXT_MAX = 4096
# Per-value results of the guest (mcfields._guest.runtime.MC_EAUTH/MC_EFORMAT).
_EAUTH, _EFORMAT = -1, -4
_AUTH_FAILED = ("authentication failed: the value was altered, moved to another "
                "row or column, or sealed under a different key with the same id")

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


def _same_length(values: Sequence, associated_data: Sequence) -> int:
    if len(values) != len(associated_data):
        raise ValueError(f"{len(values)} values but {len(associated_data)} associated data")
    return len(values)


def _pairs(associated_data: Sequence[bytes], plaintexts: Sequence[bytes]) -> list:
    _same_length(plaintexts, associated_data)
    return list(zip(associated_data, plaintexts, strict=True))


def is_text_envelope(text: str) -> bool:
    return isinstance(text, str) and text.startswith(TEXT_PREFIX)


class Keyring:
    """The configured keys: the first seals, every one opens.

    ``seal``/``open``/``reseal`` are the crypto API: bytes in, bytes out,
    with the caller's associated data (``binding(label, pk_text)``; a
    required argument, so that nothing is ever sealed unbound) bound into
    the MAC together with the envelope header.
    """

    __slots__ = ("keys", "primary", "_by_id", "_header", "_by_header", "_by_text_head",
                 "_columns")

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
        # Opening picks the key with one dict lookup: by the envelope's
        # header, or by the first characters of its text form (which also
        # checks the prefix); anything else takes the slow path that says
        # what is wrong.
        self._by_header = {VERSION_BYTE + k.key_id: k for k in self.keys}
        self._by_text_head = {
            to_text(head + bytes([top << 6]))[:_TEXT_HEAD_CHARS]: (key, head)
            for head, key in self._by_header.items() for top in range(4)
        }
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
        try:
            return _guest.get_guest().seal_envelope(
                self.primary._aead_key, self._header, associated_data, plaintext,
                os.urandom(NONCE_SIZE))
        except BaseException:
            del plaintext  # error reports print every frame's locals
            raise

    def seal_text(self, plaintext: bytes, associated_data: bytes) -> str:
        """``to_text(self.seal(plaintext, associated_data))``, with the
        base64url encoding done by the guest in the same call."""
        try:
            return _guest.get_guest().seal_text(
                self.primary._aead_key, self._header, associated_data, plaintext,
                os.urandom(NONCE_SIZE), _TEXT_PREFIX_BYTES)
        except BaseException:
            del plaintext
            raise

    def open(self, envelope: bytes, associated_data: bytes) -> bytes:
        """The plaintext of ``envelope`` under whichever configured key sealed
        it; ``DecryptionError`` if it does not open with this associated data."""
        head = envelope[:HEADER_SIZE]
        key = self._by_header.get(head if head.__class__ is bytes else bytes(head))
        guest = _guest.get_guest()
        if key is None or not OVERHEAD <= len(envelope) <= guest.max_text_size + OVERHEAD:
            key = self._slow_key(envelope, guest.max_text_size)
        # (No local holds a secret when an exception leaves: ``key`` is a Key,
        # whose repr is its id, and ``plaintext`` is bound only on success.)
        plaintext = guest.open_envelope(key._aead_key, head, associated_data, envelope)
        if plaintext.__class__ is int:
            raise DecryptionError(_AUTH_FAILED, key_id=key.id_hex)
        return plaintext

    def open_text(self, text: str, associated_data: bytes) -> bytes:
        """``self.open(from_text(text), associated_data)``, with the strict
        base64url decoding done by the guest in the same call."""
        found = self._by_text_head.get(text[:_TEXT_HEAD_CHARS]) if text.__class__ is str else None
        guest = _guest.get_guest()
        if found is None or len(text) > _FUSED_TEXT_MAX:
            return self.open(from_text(text), associated_data)
        key, head = found
        plaintext = guest.open_text(key._aead_key, head, associated_data, text,
                                    len(TEXT_PREFIX))
        if plaintext.__class__ is int:
            if plaintext == _EAUTH:
                raise DecryptionError(_AUTH_FAILED, key_id=key.id_hex)
            # Not canonical text, or too short: the codec says which.
            return self.open(from_text(text), associated_data)
        return plaintext

    def _slow_key(self, envelope: bytes, max_text_size: int) -> Key:
        """The key for ``envelope`` when the fast lookup found none or its
        size is out of range: ``DecryptionError`` saying why it cannot open."""
        key_id = key_id_of(envelope)
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionError("sealed under a key that is not configured", key_id=key_id.hex())
        if len(envelope) - OVERHEAD > max_text_size:
            # Larger than any value this process would seal: a bad envelope,
            # not a caller error (ValueTooLargeError is for values to seal).
            raise DecryptionError(
                f"envelope of {len(envelope)} bytes is larger than the maximum value size",
                key_id=key_id.hex(),
            )
        return key

    # -- many values per call ------------------------------------------------

    def seal_many(self, plaintexts: Sequence[bytes],
                  associated_data: Sequence[bytes]) -> list[bytes]:
        """``[self.seal(p, ad) for p, ad in zip(plaintexts, associated_data)]``
        in one guest call per megabyte or so (bulk saves, rotation)."""
        try:
            return _guest.get_guest().seal_many(
                self.primary._aead_key, self._header, _pairs(associated_data, plaintexts),
                os.urandom(NONCE_SIZE * len(plaintexts)))
        except BaseException:
            del plaintexts
            raise

    def seal_many_text(self, plaintexts: Sequence[bytes],
                       associated_data: Sequence[bytes]) -> list[str]:
        """:meth:`seal_many` in the text form (:meth:`seal_text`)."""
        try:
            return _guest.get_guest().seal_many(
                self.primary._aead_key, self._header, _pairs(associated_data, plaintexts),
                os.urandom(NONCE_SIZE * len(plaintexts)), _TEXT_PREFIX_BYTES)
        except BaseException:
            del plaintexts
            raise

    def open_many(self, envelopes: Sequence[bytes], associated_data: Sequence[bytes], *,
                  return_exceptions: bool = False) -> list[bytes | DecryptionError]:
        """``[self.open(e, ad) for e, ad in zip(envelopes, associated_data)]``
        in one guest call per megabyte or so.

        A value that does not open raises its ``DecryptionError``, with the
        value's position in ``.index`` (the first such value); with
        ``return_exceptions=True`` each one is returned in its place instead,
        and the others open.
        """
        guest = _guest.get_guest()
        limit = guest.max_text_size + OVERHEAD
        results: list = [None] * _same_length(envelopes, associated_data)
        items, where = [], []
        for i, envelope in enumerate(envelopes):
            head = envelope[:HEADER_SIZE]
            head = head if head.__class__ is bytes else bytes(head)
            key = self._by_header.get(head)
            if key is None or not OVERHEAD <= len(envelope) <= limit:
                results[i] = self._error_of(envelope, associated_data[i], False)
                continue
            items.append((key._aead_key, head, associated_data[i], envelope))
            where.append((i, key))
        opened = guest.open_many(items) if items else []
        del items
        return self._collect(results, where, opened, envelopes, associated_data, False,
                             return_exceptions)

    def open_many_text(self, texts: Sequence[str], associated_data: Sequence[bytes], *,
                       return_exceptions: bool = False) -> list[bytes | DecryptionError]:
        """:meth:`open_many` of values in the text form (:meth:`open_text`)."""
        guest = _guest.get_guest()
        limit = _FUSED_TEXT_MAX
        results: list = [None] * _same_length(texts, associated_data)
        items, where = [], []
        for i, text in enumerate(texts):
            found = self._by_text_head.get(text[:_TEXT_HEAD_CHARS]) if text.__class__ is str \
                else None
            if found is None or len(text) > limit:
                results[i] = self._error_of(text, associated_data[i], True)
                continue
            key, head = found
            items.append((key._aead_key, head, associated_data[i], text))
            where.append((i, key))
        opened = guest.open_many(items, len(TEXT_PREFIX)) if items else []
        del items
        return self._collect(results, where, opened, texts, associated_data, True,
                             return_exceptions)

    def _error_of(self, value: bytes | str, associated_data: bytes,
                  text: bool) -> DecryptionError | bytes:
        """The DecryptionError of a value the fast path refused (or its
        plaintext, when the slow path opens it: a key id collision test)."""
        try:
            return self.open(from_text(value) if text else value, associated_data)
        except DecryptionError as exc:
            return exc

    def _collect(self, results: list, where: list, opened: list, values: Sequence,
                 ads: Sequence[bytes], text: bool, return_exceptions: bool) -> list:
        for (i, key), plaintext in zip(where, opened, strict=True):
            if plaintext.__class__ is not int:
                results[i] = plaintext
            elif plaintext == _EAUTH:
                results[i] = DecryptionError(_AUTH_FAILED, key_id=key.id_hex)
            else:  # not canonical text, or too short: the codec says which
                results[i] = self._error_of(values[i], ads[i], text)
        opened = plaintext = None
        for i, result in enumerate(results):
            if result.__class__ is DecryptionError:
                result.index = i
                if not return_exceptions:
                    results = None  # no plaintext in the frame the error leaves
                    raise result
        return results

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
