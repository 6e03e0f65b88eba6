"""Keys: parsing the settings format, deriving the AEAD subkey and key id."""

from __future__ import annotations

import base64
import binascii
import secrets

from .._guest import get_guest
from ..exceptions import InvalidKeyError

#: Size of a settings key and of the derived AEAD key.
KEY_SIZE = 32
#: Size of the key id written into every envelope.
KEY_ID_SIZE = 4

# Domain-separation messages for keyed BLAKE2b (docs/FORMAT.md).  The
# settings key is never used directly as an AEAD key.
_AEAD_KEY_INFO = b"mcfields.v1.aead-key"
_KEY_ID_INFO = b"mcfields.v1.key-id"


def decode_key(text: str | bytes) -> bytes:
    """Decode a settings key: base64 (standard or URL-safe) of 32 bytes."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidKeyError("key is not ASCII base64") from None
    if not isinstance(text, str):
        raise InvalidKeyError(f"key must be a base64 string, not {type(text).__name__}")
    compact = text.strip()
    padded = compact + "=" * (-len(compact) % 4)
    alphabet_fixed = padded.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(alphabet_fixed, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError("key is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise InvalidKeyError(f"key decodes to {len(raw)} bytes, expected {KEY_SIZE}")
    return raw


def generate_key() -> str:
    """A fresh random key in settings format (URL-safe base64, 44 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii")


class Key:
    """One configured key: its derived AEAD subkey and public key id.

    The settings bytes are not kept.  ``repr`` shows only the key id.
    """

    __slots__ = ("_aead_key", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) != KEY_SIZE:
            raise InvalidKeyError(f"a key must be {KEY_SIZE} bytes")
        guest = get_guest()
        self._aead_key = guest.blake2b(bytes(secret), _AEAD_KEY_INFO, KEY_SIZE)
        #: Public identifier (4 bytes) stored in each envelope.
        self.key_id: bytes = guest.blake2b(bytes(secret), _KEY_ID_INFO, KEY_ID_SIZE)

    @classmethod
    def from_string(cls, text: str | bytes) -> Key:
        return cls(decode_key(text))

    @classmethod
    def generate(cls) -> Key:
        return cls(secrets.token_bytes(KEY_SIZE))

    @property
    def id_hex(self) -> str:
        return self.key_id.hex()

    def __repr__(self) -> str:
        return f"<Key id={self.id_hex}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return secrets.compare_digest(self._aead_key, other._aead_key)

    def __hash__(self) -> int:
        return hash(self.key_id)
