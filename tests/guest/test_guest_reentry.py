"""A guest is never entered twice at once (issue item 8).

A signal handler or a finalizer runs between two bytecodes of whatever the
thread was doing, so it can seal or open while a seal or open of the same
thread sits between copying its frame into guest memory and copying the
result out.  If the nested call used the same guest it would overwrite the
frame: ``open()`` would return another value's plaintext (or fail), and
``seal()`` would return an envelope that never opens.

The deterministic tests inject the nested call at the two points where it
can land: just before the guest call (after the copy-in) and just after it
(before the copy-out; a signal that arrives during the ctypes call is
handled there).  The SIGALRM test does the same with a real timer.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mcfields._guest import Guest, get_guest
from mcfields.crypto import Keyring, binding, generate_key
from mcfields.exceptions import GuestError, ValueTooLargeError


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring.from_strings([generate_key()])


def _once(action: Callable[[], None], original: Callable[..., int], when: str
          ) -> Callable[..., int]:
    """A stand-in for a guest's bound seal/open call that runs ``action`` once,
    before or after the real call (not on the nested calls it makes itself,
    which would otherwise recurse when they reach the same guest)."""
    armed = [True]

    def call(*args: int) -> int:
        fire = armed.pop() if armed else False
        if fire and when == "before":
            action()
        rc = original(*args)
        if fire and when == "after":
            action()
        return rc

    return call


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("outer", ["seal", "open"])
def test_nested_seal_and_open_use_another_guest(
    ring: Keyring, monkeypatch: pytest.MonkeyPatch, outer: str, when: str
) -> None:
    outer_text, outer_ctx = b"outer value " + os.urandom(50), binding("t.Outer.f", "1")
    inner_text, inner_ctx = b"inner value " + os.urandom(70), binding("t.Inner.f", "2")
    outer_env = ring.seal(outer_text, outer_ctx)
    inner_env = ring.seal(inner_text, inner_ctx)
    nested: list[Any] = []

    def reenter() -> None:
        # What a signal handler or a finalizer does on this thread.
        nested.append(ring.open(inner_env, inner_ctx))
        nested.append(ring.seal(inner_text, inner_ctx))

    guest = get_guest()
    attr = f"_{outer}_call"
    monkeypatch.setattr(guest, attr, _once(reenter, getattr(guest, attr), when))
    if outer == "seal":
        sealed = ring.seal(outer_text, outer_ctx)
        monkeypatch.undo()
        assert ring.open(sealed, outer_ctx) == outer_text
    else:
        assert ring.open(outer_env, outer_ctx) == outer_text
        monkeypatch.undo()
    assert len(nested) == 2, "the nested calls did not run"
    assert nested[0] == inner_text
    assert ring.open(nested[1], inner_ctx) == inner_text
    assert get_guest() is guest  # the thread's own guest is kept


def test_entering_a_busy_guest_directly_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code holding a Guest (not going through get_guest) gets an error, not
    a corrupted frame."""
    guest = Guest()
    key, nonce = os.urandom(32), os.urandom(24)
    sealed = Guest().seal(key, nonce, b"ad", b"the outer value")
    refused: list[BaseException] = []

    def reenter() -> None:
        for attempt in (lambda: guest.seal(key, nonce, b"ad", b"x" * 40),
                        lambda: guest.open(key, b"ad", sealed),
                        lambda: guest.blake2b(key, b"message", 32)):
            try:
                attempt()
            except GuestError as exc:
                refused.append(exc)

    monkeypatch.setattr(guest, "_open_call", _once(reenter, guest._open_call, "before"))
    assert guest.open(key, b"ad", sealed) == b"the outer value"
    assert len(refused) == 3
    assert all("already in use" in str(exc) for exc in refused)


def test_guest_is_not_left_busy_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    guest = get_guest()
    key = os.urandom(32)
    with pytest.raises(ValueError):
        guest.seal(b"short", bytes(24), b"", b"x")
    with pytest.raises(ValueTooLargeError):
        guest.open(key, bytes(1 << 17), bytes(100))

    def interrupt(*args: int) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(guest, "_seal_call", interrupt)
    with pytest.raises(KeyboardInterrupt):
        guest.seal(key, bytes(24), b"", b"abc")
    monkeypatch.undo()
    assert get_guest() is guest
    assert guest.open(key, b"", guest.seal(key, bytes(24), b"", b"abc")) == b"abc"


def test_spare_guests_nest_and_are_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two levels of nesting get two distinct spares; a later nested call
    reuses a spare instead of instantiating another guest."""
    def in_thread() -> list[Guest]:
        seen: list[Guest] = []

        def level2() -> None:
            seen.append(get_guest())

        def level1() -> None:
            spare = get_guest()
            seen.append(spare)
            monkeypatch.setattr(spare, "_seal_call", _once(level2, spare._seal_call, "before"))
            spare.seal(bytes(32), bytes(24), b"", b"level 1")

        main = get_guest()
        seen.append(main)
        monkeypatch.setattr(main, "_seal_call", _once(level1, main._seal_call, "before"))
        main.seal(bytes(32), bytes(24), b"", b"level 0")
        monkeypatch.setattr(main, "_seal_call", _once(level1, main._seal_call, "before"))
        main.seal(bytes(32), bytes(24), b"", b"level 0 again")
        return seen

    result: list[list[Guest]] = []
    thread = threading.Thread(target=lambda: result.append(in_thread()))
    thread.start()
    thread.join(timeout=60)
    assert result, "the thread failed"
    main, first, second, again, again2 = result[0]
    assert len({id(main), id(first), id(second)}) == 3
    assert (again, again2) == (first, second)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer (POSIX)")
def test_sigalrm_handler_sealing_and_opening_mid_operation(ring: Keyring) -> None:
    """A SIGALRM handler that seals and opens fires 100 µs after the previous
    one ended while the main thread seals and opens; every result must be right.  Bounded to
    about two seconds (a loop bound, not an assertion on time)."""
    assert threading.current_thread() is threading.main_thread()
    errors: list[str] = []
    fired = [0, 0]  # handler runs, runs that interrupted a seal/open of this thread

    main_guest = get_guest()

    def handler(signum: int, frame: Any) -> None:
        n = fired[0] = fired[0] + 1
        if getattr(main_guest, "_busy", False):
            fired[1] += 1
        text, ctx = b"handler %d " % n + os.urandom(30), binding("t.Handler.f", str(n))
        try:
            if ring.open(ring.seal(text, ctx), ctx) != text:
                errors.append(f"handler {n}: wrong plaintext")
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(f"handler {n}: {type(exc).__name__}: {exc}")
        # Re-armed one-shot rather than an interval timer: on a loaded
        # machine a handler can outlast the interval, and handlers would
        # then nest until RecursionError.
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0.0001)

    armed = True
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.0001)
    try:
        deadline = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < deadline and len(errors) < 5:
            text, ctx = b"main %d " % i + os.urandom(i % 200), binding("t.Main.f", str(i))
            try:
                if ring.open(ring.seal(text, ctx), ctx) != text:
                    errors.append(f"main {i}: wrong plaintext")
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(f"main {i}: {type(exc).__name__}: {exc}")
            i += 1
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not errors, errors[:5]
    # Controls: the handler ran, and some runs landed inside a seal/open.
    assert fired[0] > 0
    assert fired[1] > 0, f"none of {fired[0]} handler runs interrupted a seal/open"
