"""The crypto API (layer 2): keys, envelopes, seal/open over bytes.

No Django imports here.  Typical use::

    ring = Keyring.from_strings([generate_key()])
    env = ring.seal(b"secret", binding("app.Model.field", "42"))
    ring.open(env, binding("app.Model.field", "42"))  # b"secret"
"""

from ..exceptions import DecryptionError, InvalidKeyError, MCFieldsError, ValueTooLargeError
from .envelope import (
    HEADER_SIZE,
    MAC_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TEXT_PREFIX,
    VERSION,
    Keyring,
    binding,
    from_text,
    is_text_envelope,
    key_id_of,
    to_text,
)
from .index import INDEX_SIZE, INDEX_TEXT_SIZE, ColumnIndex, column_info
from .keys import KEY_ID_SIZE, KEY_SIZE, Key, decode_key, generate_key

__all__ = [
    "HEADER_SIZE", "INDEX_SIZE", "INDEX_TEXT_SIZE", "KEY_ID_SIZE", "KEY_SIZE", "MAC_SIZE",
    "NONCE_SIZE", "OVERHEAD", "TEXT_PREFIX", "VERSION", "ColumnIndex", "DecryptionError",
    "InvalidKeyError", "Key", "Keyring", "MCFieldsError", "ValueTooLargeError", "binding",
    "column_info", "decode_key", "from_text", "generate_key", "is_text_envelope", "key_id_of",
    "to_text",
]
