"""Settings reader: the only module that reads ``django.conf.settings``.

``MCFIELDS_KEYS`` (required): a list of keys in settings format (32 random
bytes, base64, standard or URL-safe); the first seals, every one opens.
``MCFIELDS_MAX_VALUE_SIZE`` (optional): the largest plaintext, in bytes,
that a field seals.

The keyring is built on first use and cached; ``setting_changed`` (tests,
``override_settings``) clears the cache.  There is deliberately no fallback
to ``SECRET_KEY``: rotating the secret key must never make data unreadable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ._guest import DEFAULT_MAX_TEXT_SIZE
from .crypto import Keyring
from .crypto.keys import Key
from .exceptions import InvalidKeyError

__all__ = ["clear_cache", "get_keyring", "max_value_size", "KEYS_SETTING", "MAX_SIZE_SETTING"]

KEYS_SETTING = "MCFIELDS_KEYS"
MAX_SIZE_SETTING = "MCFIELDS_MAX_VALUE_SIZE"

_keyring: Keyring | None = None
_max_size: int | None = None


def _build_keyring() -> Keyring:
    keys: Any = getattr(settings, KEYS_SETTING, None)
    if keys is None:
        raise ImproperlyConfigured(
            f"{KEYS_SETTING} is not set. Generate a key with `manage.py generate_key` "
            f"and set {KEYS_SETTING} = ['<key>']."
        )
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        raise ImproperlyConfigured(f"{KEYS_SETTING} must be a list of keys, not a single value.")
    if not keys:
        raise ImproperlyConfigured(f"{KEYS_SETTING} is empty; it needs at least one key.")
    parsed = []
    for index, text in enumerate(keys):
        try:
            parsed.append(Key.from_string(text))
        except InvalidKeyError as exc:
            # The reason never contains key material (see crypto.keys).
            raise ImproperlyConfigured(f"{KEYS_SETTING}[{index}]: {exc}") from None
    try:
        return Keyring(parsed)
    except InvalidKeyError as exc:
        raise ImproperlyConfigured(f"{KEYS_SETTING}: {exc}") from None


def get_keyring() -> Keyring:
    """The configured keyring (built once, then cached)."""
    ring = _keyring
    if ring is None:
        # Two threads may both build it; both results are equal, either wins.
        ring = _set_keyring(_build_keyring())
    return ring


def _set_keyring(ring: Keyring) -> Keyring:
    global _keyring
    _keyring = ring
    return ring


def max_value_size() -> int:
    """The largest plaintext (bytes) a field seals."""
    global _max_size
    size = _max_size
    if size is None:
        value: Any = getattr(settings, MAX_SIZE_SETTING, None)
        if value is None:
            size = DEFAULT_MAX_TEXT_SIZE
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ImproperlyConfigured(f"{MAX_SIZE_SETTING} must be a positive integer.")
        elif value > DEFAULT_MAX_TEXT_SIZE:
            raise ImproperlyConfigured(
                f"{MAX_SIZE_SETTING} may be at most {DEFAULT_MAX_TEXT_SIZE} bytes."
            )
        else:
            size = value
        _max_size = size
    return size


def clear_cache(*, setting: str | None = None, **kwargs: Any) -> None:
    """Forget the cached keyring and size (``setting_changed`` receiver)."""
    global _keyring, _max_size
    if setting is None or setting == KEYS_SETTING:
        _keyring = None
    if setting is None or setting == MAX_SIZE_SETTING:
        _max_size = None


setting_changed.connect(clear_cache, dispatch_uid="mcfields.conf.clear_cache")
