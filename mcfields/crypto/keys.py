"""Keys: parsing the settings format, deriving the AEAD subkey and key id."""

from __future__ import annotations

import base64
import binascii
import secrets

from .. import _guest
from .._guest import KEY_SIZE
from ..exceptions import InvalidKeyError

#: Size of the key id written into every envelope.
KEY_ID_SIZE = 4

# Domain-separation messages for keyed BLAKE2b (docs/FORMAT.md).  The
# settings key is never used directly as an AEAD key.
_AEAD_KEY_INFO = b"mcfields.v1.aead-key"
_KEY_ID_INFO = b"mcfields.v1.key-id"
_INDEX_KEY_INFO = b"mcfields.v1.index-key"


def get_guest() -> _guest.Guest:
    """This thread's guest (importing the runtime, and wasmtime, on first use)."""
    return _guest.get_guest()


def decode_key(text: str | bytes) -> bytes:
    """Decode a settings key: base64 (standard or URL-safe) of 32 bytes."""
    raw = _decode_base64(text)
    # Error reports print the locals of every frame an exception leaves:
    # neither the key text nor the bytes of a near miss may be among them.
    del text
    if isinstance(raw, str):
        raise InvalidKeyError(raw)
    if len(raw) != KEY_SIZE:
        size = len(raw)
        del raw
        raise InvalidKeyError(f"key decodes to {size} bytes, expected {KEY_SIZE}")
    return raw


def _decode_base64(text: object) -> bytes | str:
    """The bytes of a settings key, or why it is not base64.

    Returns the reason instead of raising, so that this frame (whose locals
    hold the key) never is part of a traceback, and no exception holding
    the key's bytes (UnicodeDecodeError.object) is chained to one.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return "key is not ASCII base64"
    if not isinstance(text, str):
        return f"key must be a base64 string, not {type(text).__name__}"
    compact = text.strip()
    padded = compact + "=" * (-len(compact) % 4)
    alphabet_fixed = padded.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(alphabet_fixed, validate=True)
    except (binascii.Error, ValueError):
        return "key is not valid base64"


def generate_key() -> str:
    """A fresh random key in settings format (URL-safe base64, 44 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii")


class Key:
    """One configured key: its derived AEAD and blind-index subkeys and public key id.

    The settings bytes are not kept.  ``repr`` shows only the key id.
    """

    __slots__ = ("_aead_key", "_index_key", "key_id")

    def __init__(self, secret: bytes) -> None:
        try:
            if not isinstance(secret, (bytes, bytearray)) or len(secret) != KEY_SIZE:
                raise InvalidKeyError(f"a key must be {KEY_SIZE} bytes")
            self._aead_key = get_guest().blake2b(bytes(secret), _AEAD_KEY_INFO, KEY_SIZE)
            # Root of the blind-index keys (mcfields.crypto.index).
            self._index_key = get_guest().blake2b(bytes(secret), _INDEX_KEY_INFO, KEY_SIZE)
            #: Public identifier (4 bytes) stored in each envelope.
            self.key_id: bytes = get_guest().blake2b(bytes(secret), _KEY_ID_INFO, KEY_ID_SIZE)
        except BaseException:
            del secret  # error reports print every frame's locals
            raise

    @classmethod
    def from_string(cls, text: str | bytes) -> Key:
        try:
            return cls(decode_key(text))
        except BaseException:
            del text  # error reports print every frame's locals
            raise

    @classmethod
    def generate(cls) -> Key:
        return cls(secrets.token_bytes(KEY_SIZE))

    @property
    def id_hex(self) -> str:
        return self.key_id.hex()

    def __repr__(self) -> str:
        # Error reports print the objects in each frame: the id only.
        key_id = getattr(self, "key_id", None)
        return f"<Key id={key_id.hex() if key_id is not None else '?'}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return secrets.compare_digest(self._aead_key, other._aead_key)

    def __hash__(self) -> int:
        return hash(self.key_id)
