"""R6: after every operation, guest memory holds no key and no plaintext.

The secrets are distinctive random values; the whole of linear memory is
searched, at every offset, for any 12-byte substring of each (a partial
leak counts).  Besides the
caller's key and plaintext, the Monocypher-internal secrets derived from them
(the HChaCha20 subkey and the Poly1305 one-time key) are searched too.  A
positive control shows that the search does see the frame.
"""

from __future__ import annotations

import os

import pytest
from Crypto.Cipher import ChaCha20

from mcfields._guest import Guest, get_guest
from mcfields._guest.runtime import MC_EBOUNDS
from mcfields.crypto import Key, Keyring, binding
from mcfields.exceptions import DecryptionError, GuestError, ValueTooLargeError

WINDOW = 12


def leaks(memory: bytes, secrets: dict[str, bytes]) -> dict[str, set[int]]:
    """For each secret, the offsets in ``memory`` where some WINDOW-byte
    substring of it occurs (every offset of memory is tried)."""
    windows: dict[bytes, str] = {}
    for name, value in secrets.items():
        assert len(value) >= WINDOW, name
        for i in range(len(value) - WINDOW + 1):
            windows[value[i:i + WINDOW]] = name
    found: dict[str, set[int]] = {}
    get = windows.get
    for offset in range(len(memory) - WINDOW + 1):
        name = get(memory[offset:offset + WINDOW])
        if name is not None:
            found.setdefault(name, set()).add(offset)
    return found


def assert_absent(guest: Guest, **secrets: bytes) -> None:
    found = leaks(guest.memory_snapshot(), secrets)
    assert not found, f"left in guest memory: { {k: sorted(v)[:5] for k, v in found.items()} }"


def internal_secrets(key: bytes, nonce: bytes, prefix: str = "",
                     text_size: int = 1024) -> dict[str, bytes]:
    """Secrets derived inside the AEAD: the HChaCha20 subkey, the Poly1305
    one-time key, and the keystream XORed into the text (keystream and
    ciphertext together give the plaintext), up to ``text_size`` bytes."""
    # HChaCha20(key, nonce[:16]), as monocypher.chacha20_h: pycryptodome's
    # XChaCha20 helper (argument order key, nonce), so the test extra needs
    # no pymonocypher (PyNaCl has no HChaCha20 binding).
    subkey = bytes(ChaCha20._HChaCha20(key, nonce[:16]))
    stream = ChaCha20.new(key=subkey, nonce=bytes(4) + nonce[16:]).encrypt(
        bytes(64 + max(text_size, WINDOW)))
    keystream = stream[64:]
    return {prefix + "hchacha_subkey": subkey, prefix + "poly1305_key": stream[:32],
            prefix + "keystream": keystream,
            prefix + "keystream_by_word": _by_word(keystream)}


def _by_word(keystream: bytes) -> bytes:
    """The keystream as a four-way SIMD ChaCha20 holds it: for each group of
    four 64-byte blocks, word i of the four blocks side by side (one vector
    per word index), so that no 12 bytes of it are 12 bytes of the stream."""
    out = bytearray()
    for group in range(0, len(keystream) - 255, 256):
        for word in range(0, 64, 4):
            for block in range(4):
                at = group + 64 * block + word
                out += keystream[at:at + 4]
    return bytes(out) if len(out) >= WINDOW else keystream[:WINDOW]


def distinctive(size: int) -> bytes:
    value = os.urandom(size)
    assert len(set(value)) > min(size, 256) // 4  # not a run of one byte
    return value


@pytest.fixture
def fresh_guest() -> Guest:
    return Guest()


@pytest.mark.parametrize("size", [32, 64, 1000, 1024, 200_000])
def test_no_key_or_plaintext_after_seal(fresh_guest: Guest, size: int) -> None:
    key, nonce, text, ad = distinctive(32), os.urandom(24), distinctive(size), distinctive(40)
    sealed = fresh_guest.seal(key, nonce, ad, text)
    memory = fresh_guest.memory_snapshot()
    assert sealed[40:] in memory  # positive control: the snapshot sees the frame
    assert_absent(fresh_guest, key=key, plaintext=text, ad=ad,
                  **internal_secrets(key, nonce, text_size=size))


@pytest.mark.parametrize("size", [32, 64, 1000, 1024, 200_000])
def test_no_key_or_plaintext_after_open(fresh_guest: Guest, size: int) -> None:
    key, nonce, text, ad = distinctive(32), os.urandom(24), distinctive(size), distinctive(40)
    sealed = Guest().seal(key, nonce, ad, text)
    assert fresh_guest.open(key, ad, sealed) == text
    assert_absent(fresh_guest, key=key, plaintext=text, ad=ad,
                  **internal_secrets(key, nonce, text_size=size))


@pytest.mark.parametrize("how", ["tag", "ciphertext", "ad", "key"])
def test_no_key_or_plaintext_after_failed_open(fresh_guest: Guest, how: str) -> None:
    key, nonce, text, ad = distinctive(32), os.urandom(24), distinctive(500), distinctive(40)
    sealed = bytearray(Guest().seal(key, nonce, ad, text))
    open_key, open_ad = key, ad
    if how == "tag":
        sealed[30] ^= 1
    elif how == "ciphertext":
        sealed[-1] ^= 1
    elif how == "ad":
        open_ad = ad[:-1] + bytes([ad[-1] ^ 1])
    else:
        open_key = key[:-1] + bytes([key[-1] ^ 1])
    assert fresh_guest.open(open_key, open_ad, bytes(sealed)) is None
    assert_absent(fresh_guest, key=key, open_key=open_key, plaintext=text,
                  **internal_secrets(key, nonce), **internal_secrets(open_key, nonce, "open_"))


def test_no_key_after_blake2b(fresh_guest: Guest) -> None:
    key, msg = distinctive(64), distinctive(300)
    digest = fresh_guest.blake2b(key, msg, 64)
    assert_absent(fresh_guest, key=key, digest=digest)


def test_nothing_written_for_a_value_over_the_cap() -> None:
    guest = Guest(max_text_size=4096)
    key, text = distinctive(32), distinctive(5000)
    with pytest.raises(ValueTooLargeError):
        guest.seal(key, os.urandom(24), b"", text)
    assert_absent(guest, key=key, plaintext=text)


def test_keyring_leaves_no_settings_key_derived_key_or_plaintext() -> None:
    """The crypto API on this thread's guest: Key derivation, seal, open,
    failed open.  Checked after each step."""
    guest = get_guest()
    settings_key = distinctive(32)
    key = Key(settings_key)
    aead_key = key._aead_key
    assert_absent(guest, settings_key=settings_key, aead_key=aead_key)

    ring = Keyring([key])
    plaintext = distinctive(3000)
    context = binding("tests.Wipe.field", "17")
    envelope = ring.seal(plaintext, context)
    assert envelope[45:] in guest.memory_snapshot()  # positive control
    nonce = envelope[5:29]
    assert_absent(guest, settings_key=settings_key, aead_key=aead_key, plaintext=plaintext,
                  **internal_secrets(aead_key, nonce, text_size=len(plaintext)))

    assert ring.open(envelope, context) == plaintext
    assert_absent(guest, settings_key=settings_key, aead_key=aead_key, plaintext=plaintext,
                  **internal_secrets(aead_key, nonce, text_size=len(plaintext)))

    with pytest.raises(DecryptionError):
        ring.open(envelope, binding("tests.Wipe.field", "18"))
    assert_absent(guest, settings_key=settings_key, aead_key=aead_key, plaintext=plaintext,
                  **internal_secrets(aead_key, nonce, text_size=len(plaintext)))


def test_detector_finds_a_partial_leak(fresh_guest: Guest) -> None:
    """Negative control: 13 bytes from the middle of a secret, written at an
    odd address below the heap base (the shadow stack), are found."""
    secret = distinctive(64)
    at = fresh_guest.heap_base - 1001
    fresh_guest._view[at:at + 13] = secret[20:33]
    found = leaks(fresh_guest.memory_snapshot(), {"secret": secret})
    assert found == {"secret": {at, at + 1}}
    with pytest.raises(AssertionError, match="left in guest memory"):
        assert_absent(fresh_guest, secret=secret)


# -- issue item 22: every exit path of seal/open wipes the whole frame --------------


@pytest.mark.parametrize("failure", ["KeyboardInterrupt", "trap", "EBOUNDS"])
@pytest.mark.parametrize("op", ["seal", "open"])
def test_frame_is_wiped_when_the_guest_call_fails(
    fresh_guest: Guest, monkeypatch: pytest.MonkeyPatch, op: str, failure: str
) -> None:
    """An exception (a trap, ``KeyboardInterrupt`` from a signal) or an error
    code arrives after the copy-in and before the guest wiped anything:
    key, associated data and text must not stay in guest memory."""
    key, nonce, text, ad = distinctive(32), os.urandom(24), distinctive(500), distinctive(40)
    sealed = Guest().seal(key, nonce, ad, text)
    copied_in: list[bool] = []

    def failing_call(*args: int) -> int:
        # Positive control: the frame is in guest memory at this point.
        copied_in.append(bool(leaks(fresh_guest.memory_snapshot(), {"key": key, "ad": ad})))
        if failure == "KeyboardInterrupt":
            raise KeyboardInterrupt
        if failure == "trap":
            raise GuestError("the guest trapped: injected")
        return MC_EBOUNDS  # what the guest returns, without wiping, for a bad frame

    monkeypatch.setattr(fresh_guest, f"_{op}_call", failing_call)
    expected = KeyboardInterrupt if failure == "KeyboardInterrupt" else GuestError
    with pytest.raises(expected):
        if op == "seal":
            fresh_guest.seal(key, nonce, ad, text)
        else:
            fresh_guest.open(key, ad, sealed)
    assert copied_in == [True]
    assert_absent(fresh_guest, key=key, ad=ad, plaintext=text)
