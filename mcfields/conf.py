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

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ._guest import DEFAULT_MAX_TEXT_SIZE
from .crypto import Keyring
from .crypto.keys import Key
from .exceptions import InvalidKeyError

__all__ = [
    "KEYS_SETTING",
    "MAX_SIZE_SETTING",
    "Problem",
    "clear_cache",
    "get_keyring",
    "max_value_size",
    "settings_problems",
]

KEYS_SETTING = "MCFIELDS_KEYS"
MAX_SIZE_SETTING = "MCFIELDS_MAX_VALUE_SIZE"

_keyring: Keyring | None = None
_max_size: int | None = None
_MISSING = object()
_HINT_GENERATE = "Generate a key with `python manage.py generate_key`."


@dataclass(frozen=True)
class Problem:
    """What is wrong with a setting: a system check (``mcfields.E0xx``) and,
    for the first one, the ImproperlyConfigured raised on use."""

    id: str
    message: str
    hint: str = ""


def _parse_keys(keys: Any) -> tuple[list[Key], list[Problem]]:
    """The keys of ``MCFIELDS_KEYS`` and every problem with them.

    Messages name a key by its index and id, never by its value.
    """
    if keys is _MISSING:
        return [], [Problem("mcfields.E001", f"{KEYS_SETTING} is not set: encrypted fields "
                            "have no key to seal with.",
                            f"{_HINT_GENERATE} Then set {KEYS_SETTING} = ['<key>'].")]
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        return [], [Problem("mcfields.E002", f"{KEYS_SETTING} must be a list of keys, not "
                            f"{type(keys).__name__}.",
                            f"Write {KEYS_SETTING} = ['<key>'] (the first key seals, every "
                            "key opens).")]
    if not keys:
        return [], [Problem("mcfields.E001", f"{KEYS_SETTING} is empty: encrypted fields "
                            "have no key to seal with.", _HINT_GENERATE)]
    parsed: list[Key] = []
    problems: list[Problem] = []
    seen: dict[bytes, int] = {}
    for index, text in enumerate(keys):
        try:
            key = Key.from_string(text)
        except InvalidKeyError as exc:
            problems.append(Problem(
                "mcfields.E003", f"{KEYS_SETTING}[{index}] is not a valid key: {exc}.",
                f"Each key is 32 random bytes, base64 encoded. {_HINT_GENERATE}",
            ))
            continue
        if key.key_id in seen:
            problems.append(Problem(
                "mcfields.E004", f"{KEYS_SETTING}[{index}] duplicates "
                f"{KEYS_SETTING}[{seen[key.key_id]}] (key id {key.id_hex}).",
                "List each key once.",
            ))
            continue
        seen[key.key_id] = index
        parsed.append(key)
    return parsed, problems


def _parse_max_size(value: Any) -> tuple[int, Problem | None]:
    if value is _MISSING or value is None:
        return DEFAULT_MAX_TEXT_SIZE, None
    if isinstance(value, int) and not isinstance(value, bool) and (
        0 < value <= DEFAULT_MAX_TEXT_SIZE
    ):
        return value, None
    return DEFAULT_MAX_TEXT_SIZE, Problem(
        "mcfields.E005",
        f"{MAX_SIZE_SETTING} must be an integer between 1 and {DEFAULT_MAX_TEXT_SIZE}.",
    )


def settings_problems() -> list[Problem]:
    """Every problem with mcfields' settings (for the system checks)."""
    _, problems = _parse_keys(getattr(settings, KEYS_SETTING, _MISSING))
    _, size_problem = _parse_max_size(getattr(settings, MAX_SIZE_SETTING, _MISSING))
    return problems + ([size_problem] if size_problem else [])


def _improperly_configured(problem: Problem) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{problem.message} {problem.hint}".strip())


def _build_keyring() -> Keyring:
    keys, problems = _parse_keys(getattr(settings, KEYS_SETTING, _MISSING))
    if problems:
        raise _improperly_configured(problems[0])
    return Keyring(keys)


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
        size, problem = _parse_max_size(getattr(settings, MAX_SIZE_SETTING, _MISSING))
        if problem is not None:
            raise _improperly_configured(problem)
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
