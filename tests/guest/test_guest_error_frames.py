"""No key or plaintext in the frames of an exception leaving the guest
runtime (issue item 7, layer 1).

Error reports (Django's DEBUG page, ``AdminEmailHandler(include_html=True)``,
Sentry-like tools) print the local variables of every frame an exception
went through.  ``reported`` prints them as such a reporter does (``pprint``
of each value, the whole ``__cause__``/``__context__`` chain), and the
secrets are searched for in every encoding a value can be printed in.
tests/django/test_error_reports.py renders Django's own reports.
"""

from __future__ import annotations

import base64
import os
import pprint
from collections.abc import Callable
from types import TracebackType

import pytest

import mcfields
from mcfields._guest import Guest
from mcfields._guest.runtime import MC_EBOUNDS
from mcfields.exceptions import GuestError, ValueTooLargeError


def printed_forms(secret: bytes) -> dict[str, str]:
    """The ways a reporter can print ``secret`` (or either half of it)."""
    forms: dict[str, str] = {}
    for part_name, part in (("", secret), ("first half ", secret[:16]),
                            ("second half ", secret[16:32])):
        forms.update({
            part_name + "repr": repr(part)[2:-1],
            part_name + "hex": part.hex(),
            part_name + "HEX": part.hex().upper(),
            part_name + "list": str(list(part))[1:-1],
        })
    # base64 of a prefix is a prefix of the base64 (of 15 bytes: no padding).
    forms["base64"] = base64.b64encode(secret[:15]).decode()
    forms["urlsafe base64"] = base64.urlsafe_b64encode(secret[:15]).decode()
    return forms


#: The frames checked: mcfields' own.  The test's frames (and its lambdas,
#: whose free variables count as locals) hold the secrets on purpose.
MCFIELDS_DIR = os.path.dirname(mcfields.__file__) + os.sep


def reported(exc: BaseException, under: str = MCFIELDS_DIR) -> str:
    """Every local of every frame (of a file under ``under``) of ``exc`` and
    its causes, printed."""
    out: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(repr(current))
        tb: TracebackType | None = current.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_filename.startswith(under):
                tb = tb.tb_next
                continue
            for name, value in tb.tb_frame.f_locals.items():
                out.append(f"{tb.tb_frame.f_code.co_name}.{name} = {pprint.pformat(value)}")
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return "\n".join(out)


def assert_not_reported(exc: BaseException, under: str = MCFIELDS_DIR,
                        **secrets: bytes) -> None:
    text = reported(exc, under)
    found = [f"{name} ({form})" for name, secret in secrets.items()
             for form, printed in printed_forms(secret).items() if printed in text]
    assert not found, f"printed in the frames of the error: {found}"


def catch(action: Callable[[], object], expected: type[BaseException]) -> BaseException:
    with pytest.raises(expected) as info:
        action()
    return info.value


@pytest.fixture
def secrets() -> tuple[bytes, bytes]:
    return os.urandom(32), b"guest plaintext marker " + os.urandom(40)


def test_detector_sees_a_key_left_in_a_frame(secrets: tuple[bytes, bytes]) -> None:
    """Negative control: a frame that keeps the key is reported (here a
    frame of this file, since mcfields' own frames should keep none)."""
    key, _ = secrets

    def leaky(k: bytes) -> None:
        raise ValueError("boom")

    exc = catch(lambda: leaky(key), ValueError)
    with pytest.raises(AssertionError, match="key"):
        assert_not_reported(exc, under=__file__, key=key)


@pytest.mark.parametrize("op", ["seal", "open"])
def test_associated_data_over_the_limit(secrets: tuple[bytes, bytes], op: str) -> None:
    key, text = secrets
    guest = Guest()
    huge_ad = b"a" * 70_000
    if op == "seal":
        exc = catch(lambda: guest.seal(key, bytes(24), huge_ad, text), ValueTooLargeError)
    else:
        sealed = Guest().seal(key, bytes(24), b"", text)
        exc = catch(lambda: guest.open(key, huge_ad, sealed), ValueTooLargeError)
    assert_not_reported(exc, key=key, plaintext=text)


def test_value_over_the_cap(secrets: tuple[bytes, bytes]) -> None:
    key, _ = secrets
    text = b"guest plaintext marker " + os.urandom(5000)
    exc = catch(lambda: Guest(max_text_size=4096).seal(key, bytes(24), b"", text),
                ValueTooLargeError)
    assert_not_reported(exc, key=key, plaintext=text)


def test_bad_key_size(secrets: tuple[bytes, bytes]) -> None:
    key, text = secrets
    near_key = key[:31]  # e.g. a truncated key: still most of the secret
    exc = catch(lambda: Guest().seal(near_key, bytes(24), b"", text), ValueError)
    assert_not_reported(exc, key=key, plaintext=text)
    exc = catch(lambda: Guest().open(near_key, b"", bytes(60)), ValueError)
    assert_not_reported(exc, key=key)


@pytest.mark.parametrize("failure", ["trap", "EBOUNDS"])
@pytest.mark.parametrize("op", ["seal", "open"])
def test_guest_call_fails(
    secrets: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch, op: str, failure: str
) -> None:
    key, text = secrets
    guest = Guest()
    sealed = Guest().seal(key, bytes(24), b"ad", text)

    def failing_call(*args: int) -> int:
        if failure == "trap":
            raise GuestError("the guest trapped: injected")
        return MC_EBOUNDS

    monkeypatch.setattr(guest, f"_{op}_call", failing_call)
    if op == "seal":
        exc = catch(lambda: guest.seal(key, bytes(24), b"ad", text), GuestError)
    else:
        exc = catch(lambda: guest.open(key, b"ad", sealed), GuestError)
    assert_not_reported(exc, key=key, plaintext=text)


def test_blake2b_key_over_the_memory_cap(secrets: tuple[bytes, bytes]) -> None:
    key, _ = secrets
    guest = Guest(max_text_size=4096)
    exc = catch(lambda: guest.blake2b(key, b"m" * (4 << 20), 32), ValueTooLargeError)
    assert_not_reported(exc, key=key)


def test_guest_repr_shows_no_memory(secrets: tuple[bytes, bytes]) -> None:
    key, text = secrets
    guest = Guest()
    guest.seal(key, bytes(24), b"", text)
    assert repr(guest).startswith("<Guest ")
    assert_not_reported(catch(lambda: _raise_with(guest), RuntimeError), key=key,
                        plaintext=text)


def _raise_with(guest: Guest) -> None:
    raise RuntimeError("a frame holding a guest")
