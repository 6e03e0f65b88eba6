"""R4: pointer discipline.  A frame placed above 2 GiB (and above 3 GiB) of
guest memory, where an address read as a signed i32 is negative, gives the
same results as a frame at the heap base.  Frames or values that do not fit
give a clear error, never a crash or a silent short read."""

from __future__ import annotations

import random
import struct

import pytest

from mcfields._guest import Guest
from mcfields._guest.runtime import AEAD_FRAME_OVERHEAD, MAX_AD_SIZE
from mcfields.exceptions import GuestError, MCFieldsError, ValueTooLargeError

MIB = 1 << 20
GIB = 1 << 30
# Odd, unaligned offsets: page-aligned frames could hide an alignment bug.
ABOVE_2GIB = 2**31 + 4096 * 3 + 5
ABOVE_3GIB = 3 * GIB + 4096 * 3 + 5
# The highest frame for which a 1 MiB value with a 64 KiB AD still leaves the
# last 64 KiB page of the 4 GiB address space unused.
PAGE = 1 << 16
NEAR_TOP = 2**32 - 2 * PAGE - (AEAD_FRAME_OVERHEAD + MAX_AD_SIZE + MIB) - 7

SIZES = [0, 1, 63, 64, 65, 4097, 65537, MIB]


@pytest.fixture(scope="module", params=[ABOVE_2GIB, ABOVE_3GIB, NEAR_TOP],
                ids=["above-2GiB", "above-3GiB", "near-4GiB"])
def high_guest(request) -> Guest:
    return Guest(frame_offset=request.param, max_text_size=MIB)


@pytest.fixture(scope="module", params=[True, False], ids=["unchecked", "public-api"])
def high_guest_both_paths(request) -> Guest:
    return Guest(frame_offset=ABOVE_2GIB, max_text_size=MIB, unchecked=request.param)


def test_frame_really_is_high(high_guest: Guest) -> None:
    assert high_guest.frame > 2**31
    assert high_guest.frame - 2**32 < 0  # negative as a signed i32


def _cases(seed: int):
    rng = random.Random(seed)
    for size in SIZES:
        for ad_size in (0, 17, MAX_AD_SIZE):
            yield rng.randbytes(32), rng.randbytes(24), rng.randbytes(ad_size), rng.randbytes(size)


def test_seal_open_identical_to_normal_guest(high_guest: Guest, guest: Guest) -> None:
    for key, nonce, ad, text in _cases(seed=high_guest.frame):
        sealed = high_guest.seal(key, nonce, ad, text)
        assert sealed == guest.seal(key, nonce, ad, text), (len(text), len(ad))
        assert high_guest.open(key, ad, sealed) == text
        assert guest.open(key, ad, sealed) == text
        forged = sealed[:-1] + bytes([sealed[-1] ^ 1]) if text else sealed[:24] + bytes(16)
        assert high_guest.open(key, ad, forged) is None


def test_sealed_bytes_came_from_high_memory(high_guest: Guest) -> None:
    """The ciphertext is read back from above 2 GiB, not from a wrapped address."""
    key, nonce, ad, text = bytes(32), bytes(24), b"x" * 10, b"y" * 1000
    sealed = high_guest.seal(key, nonce, ad, text)
    # [count][4 words][key][ad] come first (guest/shim.c)
    start = high_guest.frame + 4 + 16 + 32 + len(ad)
    assert high_guest._view[start:start + len(sealed)] == sealed
    assert high_guest._size > high_guest.frame + len(sealed)


def test_blake2b_identical_to_normal_guest(high_guest: Guest, guest: Guest) -> None:
    rng = random.Random(5)
    for _ in range(20):
        key, msg = rng.randbytes(rng.randint(0, 64)), rng.randbytes(rng.randint(0, 70000))
        size = rng.randint(1, 64)
        assert high_guest.blake2b(key, msg, size) == guest.blake2b(key, msg, size)


def test_both_call_paths_above_2gib(high_guest_both_paths: Guest, guest: Guest) -> None:
    for key, nonce, ad, text in _cases(seed=3):
        sealed = high_guest_both_paths.seal(key, nonce, ad, text)
        assert sealed == guest.seal(key, nonce, ad, text)
        assert high_guest_both_paths.open(key, ad, sealed) == text


def test_frame_ending_in_last_page_of_4gib() -> None:
    """Memory of exactly 4 GiB: the guest's size computation must not wrap to 0."""
    # count 4 + words 16 + key 32 + nonce 24 + mac 16 + text 10 = 102 bytes
    guest = Guest(frame_offset=2**32 - 104, max_text_size=1000)
    key, nonce = bytes(range(32)), bytes(range(24))
    expected = Guest().seal(key, nonce, b"", b"0123456789")
    assert guest.seal(key, nonce, b"", b"0123456789") == expected


@pytest.mark.parametrize("offset", [0, 1, -1, "heap_base-1", 2**32, 2**32 + 5, 2**40])
def test_frame_offset_outside_heap_is_refused(guest: Guest, offset) -> None:
    if offset == "heap_base-1":
        offset = guest.heap_base - 1
    with pytest.raises(GuestError, match="outside the guest heap"):
        Guest(frame_offset=offset)


def test_frame_that_does_not_fit_below_4gib(guest: Guest) -> None:
    """A value whose frame would cross 4 GiB: clear error, guest still works."""
    high = Guest(frame_offset=2**32 - 4 * (1 << 16), max_text_size=1 << 20)
    key, nonce = bytes(32), bytes(24)
    with pytest.raises(ValueTooLargeError, match="exceeds the guest memory cap"):
        high.seal(key, nonce, b"", bytes(1 << 18))
    with pytest.raises(ValueTooLargeError):
        high.open(key, b"", bytes(40 + (1 << 18)))
    with pytest.raises(ValueTooLargeError):
        high.blake2b(b"k", bytes(1 << 18), 32)
    # Smaller values still fit and are right.
    assert high.seal(key, nonce, b"a", b"b" * 100) == guest.seal(key, nonce, b"a", b"b" * 100)


def test_guest_refuses_frames_outside_memory(guest: Guest) -> None:
    """The shim checks the frame itself: bad frames from the host are refused."""
    calls, frame = guest._calls, guest.frame
    for name in ("mc_seal", "mc_open", "mc_seal_text", "mc_open_text"):
        assert calls[name](0) == -2                     # below heap base: stack and data
        assert calls[name](guest.heap_base - 1) == -2
        assert calls[name](0xFFFFFFFE) == -2            # past the end of memory
        for words, expected in [
            ((0xFFFFFFFF, 0xFFFFFFFF, 0, 0), -2),       # length overflow
            ((0, 0xFFFFFFFF - 60, 0, 0), -2),
            ((4, 0, 5, 0), -3),                          # header longer than the ad
            ((32, 0, 17, 0), -3),                        # header over HEAD_MAX
            ((0, 0, 0, 65), -3),                         # text prefix over PREFIX_MAX
        ]:
            guest._view[frame:frame + 20] = struct.pack("<5I", 1, *words)
            assert calls[name](frame) == expected, (name, words)
        # A count that runs past the end of memory (empty frames after it).
        guest.wipe(frame, guest._size)
        guest._view[frame:frame + 20] = struct.pack("<5I", 0xFFFFFFFF, 0, 0, 0, 0)
        assert calls[name](frame) == -2
        guest.wipe(frame, guest._size)
    assert calls["mc_blake2b"](frame, 64, 64, 0xFFFFFFFF) == -2
    assert calls["mc_blake2b"](frame, 0, 0, 0) == -3
    assert calls["mc_blake2b"](frame, 65, 0, 0) == -3
    assert calls["mc_blake2b"](frame, 32, 65, 0) == -3
    assert calls["mc_wipe"](frame, 0xFFFFFFFF) == -2
    assert calls["mc_wipe"](0, 1) == -2


def test_host_wipe_is_bounds_checked(guest: Guest) -> None:
    for start, end in [(0, 10), (guest.heap_base - 1, guest.heap_base + 1),
                       (guest.heap_base, guest._size + 1), (guest.heap_base + 10, guest.heap_base)]:
        with pytest.raises(GuestError):
            guest.wipe(start, end)


def test_guest_errors_are_library_errors() -> None:
    assert issubclass(GuestError, MCFieldsError)
    assert issubclass(ValueTooLargeError, MCFieldsError)


def test_guest_still_works_after_refusals(guest: Guest) -> None:
    test_guest_refuses_frames_outside_memory(guest)
    key, nonce = bytes(range(32)), bytes(range(24))
    sealed = guest.seal(key, nonce, b"ad", b"still fine")
    assert guest.open(key, b"ad", sealed) == b"still fine"
