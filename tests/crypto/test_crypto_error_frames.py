"""No key or plaintext in the frames of an exception leaving the crypto API
(issue item 7, layer 2).

Error reporters print the locals of every frame an exception passed
through; see tests/guest/test_guest_error_frames.py for the guest runtime
and tests/django/test_error_reports.py for Django's reports.  Here: the
settings key, the derived AEAD key and the plaintext, through ``Keyring``,
``Key`` and ``decode_key``.
"""

from __future__ import annotations

import base64
import os
import pprint
from collections.abc import Callable
from types import TracebackType

import pytest

import mcfields
import mcfields.crypto.keys
from mcfields.crypto import Key, Keyring, binding, decode_key
from mcfields.exceptions import DecryptionError, GuestError, InvalidKeyError, ValueTooLargeError

MCFIELDS_DIR = os.path.dirname(mcfields.__file__) + os.sep


def printed_forms(secret: bytes) -> dict[str, str]:
    forms: dict[str, str] = {}
    for part_name, part in (("", secret), ("first half ", secret[:16]),
                            ("second half ", secret[16:32])):
        forms.update({
            part_name + "repr": repr(part)[2:-1],
            part_name + "hex": part.hex(),
            part_name + "list": str(list(part))[1:-1],
        })
    forms["base64"] = base64.b64encode(secret[:15]).decode()
    forms["urlsafe base64"] = base64.urlsafe_b64encode(secret[:15]).decode()
    return forms


def reported(exc: BaseException) -> str:
    """The locals of mcfields' frames of ``exc`` and its causes, printed as
    an error reporter prints them (the test's own frames hold the secrets on
    purpose)."""
    out: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        out.append(repr(current))
        tb: TracebackType | None = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith(MCFIELDS_DIR):
                out.extend(f"{name} = {pprint.pformat(value)}"
                           for name, value in tb.tb_frame.f_locals.items())
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return "\n".join(out)


def assert_not_reported(exc: BaseException, **secrets: bytes) -> None:
    text = reported(exc)
    found = [f"{name} ({form})" for name, secret in secrets.items()
             for form, printed in printed_forms(secret).items() if printed in text]
    assert not found, f"printed in the frames of the error: {found}"


def catch(action: Callable[[], object], expected: type[BaseException]) -> BaseException:
    with pytest.raises(expected) as info:
        action()
    return info.value


@pytest.fixture
def setup() -> tuple[bytes, Key, Keyring, bytes]:
    settings_key = os.urandom(32)
    key = Key(settings_key)
    return settings_key, key, Keyring([key]), b"crypto plaintext marker " + os.urandom(40)


def test_seal_with_associated_data_over_the_limit(setup: tuple[bytes, Key, Keyring, bytes]
                                                  ) -> None:
    settings_key, key, ring, plaintext = setup
    exc = catch(lambda: ring.seal(plaintext, binding("x" * 70_000, "1")), ValueTooLargeError)
    assert_not_reported(exc, settings_key=settings_key, aead_key=key._aead_key,
                        plaintext=plaintext)


def test_open_with_associated_data_over_the_limit(setup: tuple[bytes, Key, Keyring, bytes]
                                                  ) -> None:
    settings_key, key, ring, plaintext = setup
    envelope = ring.seal(plaintext, binding("t.M.f", "1"))
    exc = catch(lambda: ring.open(envelope, binding("t.M.f", "x" * 70_000)), ValueTooLargeError)
    assert_not_reported(exc, settings_key=settings_key, aead_key=key._aead_key)


def test_failed_open(setup: tuple[bytes, Key, Keyring, bytes]) -> None:
    settings_key, key, ring, plaintext = setup
    envelope = ring.seal(plaintext, binding("t.M.f", "1"))
    exc = catch(lambda: ring.open(envelope, binding("t.M.f", "2")), DecryptionError)
    assert_not_reported(exc, settings_key=settings_key, aead_key=key._aead_key,
                        plaintext=plaintext)


def test_guest_error_during_key_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_key = os.urandom(32)

    class FailingGuest:
        def blake2b(self, key: bytes, message: bytes, size: int) -> bytes:
            raise GuestError("the guest trapped: injected")

    monkeypatch.setattr(mcfields.crypto.keys, "get_guest", FailingGuest)
    exc = catch(lambda: Key(settings_key), GuestError)
    assert_not_reported(exc, settings_key=settings_key)


@pytest.mark.parametrize("bad", ["short", "not base64", "not ascii"])
def test_invalid_key_in_a_list_of_keys(bad: str) -> None:
    """A keyring built from settings strings, one of them invalid: neither
    the valid keys nor the near miss are left in a frame."""
    good = os.urandom(32)
    near = os.urandom(32)
    if bad == "short":
        bad_text: str | bytes = base64.b64encode(near[:31]).decode()
    elif bad == "not base64":
        bad_text = base64.b64encode(near).decode()[:-2] + "!!"
    else:
        bad_text = base64.b64encode(near) + b"\xff"
    texts = [base64.urlsafe_b64encode(good).decode(), bad_text]
    exc = catch(lambda: Keyring.from_strings(texts), InvalidKeyError)
    assert_not_reported(exc, settings_key=good, near_miss=near)
    settings_text = texts[0].encode()
    assert settings_text[:20].decode() not in reported(exc)
    exc = catch(lambda: decode_key(bad_text), InvalidKeyError)
    assert_not_reported(exc, near_miss=near)


def test_keyring_and_key_reprs_show_ids_only(setup: tuple[bytes, Key, Keyring, bytes]) -> None:
    settings_key, key, ring, _ = setup
    for shown in (repr(key), repr(ring), pprint.pformat([ring, key])):
        assert key.id_hex in shown
        for secret in (settings_key, key._aead_key):
            assert not [form for form in printed_forms(secret).values() if form in shown]
