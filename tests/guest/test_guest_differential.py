"""R1: the guest is byte-identical to libsodium (PyNaCl) and pycryptodome.

Random plaintext sizes 0..1 MiB (log-uniform, plus boundary sizes and a share
of uniform large sizes), random associated data (mostly short, sometimes up
to the 64 KiB maximum), random keys and nonces.  Each case is reproducible
from its seed, which failure messages print.
"""

from __future__ import annotations

import hashlib
import random

import nacl.bindings
import nacl.exceptions
import pytest
from Crypto.Cipher import ChaCha20_Poly1305

from mcfields._guest import Guest
from mcfields._guest.runtime import MAX_AD_SIZE

MIB = 1 << 20
FAST_CASES = 200
SLOW_CASES = 10_000
SLOW_CHUNKS = 10
EDGE_SIZES = [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
              511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, MIB - 1, MIB]


def pick_text_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.10:
        return rng.choice(EDGE_SIZES)
    if r < 0.15:
        return rng.randint(0, MIB)
    return min(MIB, int(2 ** rng.uniform(0, 20)) - 1)


def pick_ad_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.05:
        return rng.choice([0, 1, 16, 17, MAX_AD_SIZE - 1, MAX_AD_SIZE])
    if r < 0.10:
        return rng.randint(0, MAX_AD_SIZE)
    return rng.randint(0, 300)


def make_case(seed: int) -> tuple[bytes, bytes, bytes, bytes]:
    rng = random.Random(seed)
    key = rng.randbytes(32)
    nonce = rng.randbytes(24)
    ad = rng.randbytes(pick_ad_size(rng))
    text = rng.randbytes(pick_text_size(rng))
    return key, nonce, ad, text


def check_case(guest: Guest, seed: int) -> None:
    key, nonce, ad, text = make_case(seed)
    where = f"seed={seed} text={len(text)}B ad={len(ad)}B"

    sealed = guest.seal(key, nonce, ad, text)

    sodium = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(text, ad, nonce, key)
    ciphertext, tag = sodium[:-16], sodium[-16:]
    assert sealed == nonce + tag + ciphertext, f"differs from libsodium: {where}"

    cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    cipher.update(ad)
    ct_pc, tag_pc = cipher.encrypt_and_digest(text)
    assert (ct_pc, tag_pc) == (ciphertext, tag), f"differs from pycryptodome: {where}"

    assert guest.open(key, ad, sealed) == text, f"guest does not open its own output: {where}"

    # Rejection agrees too: flip one bit chosen by the seed.
    rng = random.Random(seed ^ 0x5EED)
    forged = bytearray(sealed)
    forged[rng.randrange(len(forged))] ^= 1 << rng.randrange(8)
    forged = bytes(forged)
    assert guest.open(key, ad, forged) is None, f"guest accepted a forgery: {where}"
    f_nonce, f_tag, f_ct = forged[:24], forged[24:40], forged[40:]
    with pytest.raises(nacl.exceptions.CryptoError):
        nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(f_ct + f_tag, ad, f_nonce, key)
    decipher = ChaCha20_Poly1305.new(key=key, nonce=f_nonce)
    decipher.update(ad)
    with pytest.raises(ValueError):
        decipher.decrypt_and_verify(f_ct, f_tag)


def test_edge_sizes_covered(guest: Guest) -> None:
    """Every boundary size, with an empty and a full-size AD, at least once."""
    rng = random.Random(1)
    key, nonce = rng.randbytes(32), rng.randbytes(24)
    for size in EDGE_SIZES:
        for ad in (b"", rng.randbytes(MAX_AD_SIZE)):
            text = rng.randbytes(size)
            sodium = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(text, ad, nonce, key)
            assert guest.seal(key, nonce, ad, text) == nonce + sodium[-16:] + sodium[:-16], size
            assert guest.open(key, ad, nonce + sodium[-16:] + sodium[:-16]) == text, size


def test_every_size_across_the_four_block_groups(guest: Guest) -> None:
    """The guest's keystream is made four 64-byte blocks at a time, the rest
    by Monocypher's scalar ChaCha20 (guest/shim.c, chacha20_x4): every size
    up to three groups and a tail, so that each split of a text between the
    two is compared with libsodium, for sealing and opening."""
    rng = random.Random(2)
    key, nonce, ad = rng.randbytes(32), rng.randbytes(24), rng.randbytes(21)
    text = rng.randbytes(3 * 256 + 129)
    for size in range(len(text) + 1):
        sodium = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            text[:size], ad, nonce, key)
        sealed = nonce + sodium[-16:] + sodium[:-16]
        assert guest.seal(key, nonce, ad, text[:size]) == sealed, size
        assert guest.open(key, ad, sealed) == text[:size], size


def test_differential_fast(guest: Guest) -> None:
    for seed in range(FAST_CASES):
        check_case(guest, seed)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(SLOW_CHUNKS))
def test_differential_slow(guest: Guest, chunk: int) -> None:
    per_chunk = SLOW_CASES // SLOW_CHUNKS
    start = 1_000_000 + chunk * per_chunk
    for seed in range(start, start + per_chunk):
        check_case(guest, seed)


def test_too_short_sealed_values_do_not_open(guest: Guest, key: bytes) -> None:
    for length in range(40):
        assert guest.open(key, b"ad", bytes(length)) is None


def _blake2b_cases(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        key = rng.randbytes(rng.choice([0, 1, 32, 63, 64, rng.randint(0, 64)]))
        msg = rng.randbytes(rng.choice([0, 1, 127, 128, 129, rng.randint(0, 5000)]))
        size = rng.choice([1, 4, 32, 63, 64, rng.randint(1, 64)])
        yield key, msg, size


def test_blake2b_matches_hashlib(guest: Guest) -> None:
    for key, msg, size in _blake2b_cases(300, seed=7):
        expected = hashlib.blake2b(msg, key=key, digest_size=size).digest()
        assert guest.blake2b(key, msg, size) == expected, (len(key), len(msg), size)


@pytest.mark.slow
def test_blake2b_matches_hashlib_slow(guest: Guest) -> None:
    for key, msg, size in _blake2b_cases(10_000, seed=8):
        expected = hashlib.blake2b(msg, key=key, digest_size=size).digest()
        assert guest.blake2b(key, msg, size) == expected, (len(key), len(msg), size)


@pytest.mark.parametrize("size", [0, 65])
def test_blake2b_rejects_bad_digest_size(guest: Guest, size: int) -> None:
    with pytest.raises(ValueError):
        guest.blake2b(b"k", b"m", size)


def test_blake2b_rejects_long_key(guest: Guest) -> None:
    with pytest.raises(ValueError):
        guest.blake2b(bytes(65), b"m", 32)
