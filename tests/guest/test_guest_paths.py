"""The fast path (wasmtime_func_call_unchecked) and the public wasmtime-py
API give identical bytes, identical rejections and identical error codes.

This is the contract test of mcfields._guest.calls, the one module that
uses wasmtime-py's private API: it runs on the lowest and the highest
supported wasmtime (tox.ini), and fails there if the fast path is lost."""

from __future__ import annotations

import random

import pytest

from mcfields._guest import Guest
from mcfields._guest.runtime import MC_EARG, MC_EBOUNDS
from mcfields.exceptions import GuestError


def test_paths_are_what_they_claim(guest: Guest, public_guest: Guest) -> None:
    # The default guest is on the fast path with the installed wasmtime.
    assert Guest().unchecked is True
    assert guest.unchecked is True
    assert public_guest.unchecked is False
    assert Guest(unchecked=True).unchecked is True


def test_seal_open_identical(guest: Guest, public_guest: Guest) -> None:
    rng = random.Random(2024)
    sizes = [0, 1, 16, 63, 64, 65, 1000, 4096, 65537, 1 << 20]
    sizes += [rng.randint(0, 5000) for _ in range(40)]
    for size in sizes:
        key, nonce = rng.randbytes(32), rng.randbytes(24)
        ad, text = rng.randbytes(rng.randint(0, 200)), rng.randbytes(size)
        fast = guest.seal(key, nonce, ad, text)
        slow = public_guest.seal(key, nonce, ad, text)
        assert fast == slow, size
        assert len(fast) == 24 + 16 + size
        assert guest.open(key, ad, slow) == public_guest.open(key, ad, fast) == text
        forged = bytearray(fast)
        forged[rng.randrange(len(forged))] ^= 0x80
        assert guest.open(key, ad, bytes(forged)) is None
        assert public_guest.open(key, ad, bytes(forged)) is None


def test_blake2b_identical(guest: Guest, public_guest: Guest) -> None:
    rng = random.Random(99)
    for _ in range(50):
        key, msg = rng.randbytes(rng.randint(0, 64)), rng.randbytes(rng.randint(0, 3000))
        size = rng.randint(1, 64)
        assert guest.blake2b(key, msg, size) == public_guest.blake2b(key, msg, size)


@pytest.mark.parametrize(
    "export, args, expected",
    [
        ("mc_seal", ("top",), MC_EBOUNDS),
        ("mc_open", ("top",), MC_EBOUNDS),
        ("mc_seal_text", (0,), MC_EBOUNDS),
        ("mc_open_text", (0,), MC_EBOUNDS),
        ("mc_blake2b", ("frame", 0, 0, 0), MC_EARG),
        ("mc_blake2b", ("frame", 32, 65, 0), MC_EARG),
        ("mc_wipe", ("frame", 0xFFFFFFFF), MC_EBOUNDS),
    ],
)
def test_error_codes_identical(guest: Guest, public_guest: Guest, export, args, expected) -> None:
    def resolve(g: Guest) -> list[int]:
        names = {"frame": g.frame, "top": 0xFFFFFFF0}
        return [names.get(a, a) if isinstance(a, str) else a for a in args]

    assert guest._calls[export](*resolve(guest)) == expected
    assert public_guest._calls[export](*resolve(public_guest)) == expected


@pytest.mark.parametrize("bad", [-1, 1 << 32])
def test_words_outside_u32_rejected_on_both_paths(guest, public_guest, bad: int) -> None:
    for g in (guest, public_guest):
        with pytest.raises(GuestError, match="32-bit"):
            g._calls["mc_wipe"](bad, 0)


@pytest.mark.parametrize("size", [0, 64, 1 << 20])
def test_seal_prefix_is_prepended(guest: Guest, public_guest: Guest, size: int) -> None:
    key, nonce, text = bytes(range(32)), bytes(range(24)), bytes(size)
    plain = guest.seal(key, nonce, b"ad", text)
    for g in (guest, public_guest):
        assert g.seal(key, nonce, b"ad", text, prefix=b"\x01hdr") == b"\x01hdr" + plain
