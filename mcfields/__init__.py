"""mcfields: Django model fields sealed with Monocypher's XChaCha20-Poly1305.

Public names are resolved lazily (PEP 562) so that ``mcfields.crypto`` can
be imported without Django.
"""

from __future__ import annotations

from typing import Any

from .exceptions import DecryptionError as DecryptionError
from .exceptions import MCFieldsError as MCFieldsError

# The fields: every name mcfields.fields exports for models.
_FIELDS = (
    "EncryptedBigIntegerField",
    "EncryptedBinaryField",
    "EncryptedBooleanField",
    "EncryptedCharField",
    "EncryptedDateField",
    "EncryptedDateTimeField",
    "EncryptedDecimalField",
    "EncryptedEmailField",
    "EncryptedField",
    "EncryptedFloatField",
    "EncryptedIntegerField",
    "EncryptedJSONField",
    "EncryptedPositiveIntegerField",
    "EncryptedTextField",
    "EncryptedTimeField",
    "EncryptedURLField",
    "EncryptedUUIDField",
)
_LAZY: dict[str, str] = {
    **dict.fromkeys(_FIELDS, "mcfields.fields"),
    "Sealed": "mcfields.sealed",
    "EncryptedManager": "mcfields.managers",
}

__all__ = sorted(["DecryptionError", "MCFieldsError", *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mcfields' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
