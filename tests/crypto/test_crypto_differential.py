"""End to end: a Keyring envelope opens with libsodium + hashlib alone
(docs/FORMAT.md), and an envelope built with libsodium + hashlib opens with
the Keyring.  Random sizes 0..1 MiB, random labels and pks."""

from __future__ import annotations

import base64
import random

import nacl.exceptions
import pytest

from mcfields.crypto import OVERHEAD, DecryptionError, Keyring, binding, from_text, to_text

MIB = 1 << 20
FAST_CASES = 200
SLOW_CASES = 10_000
SLOW_CHUNKS = 10
ALPHABET = "abcdefghijklmnopqrstuvwxyz._-0123456789ÄéØ水🔑"


def pick_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.05:
        return rng.choice([0, 1, 63, 64, 65, 1023, 1024, MIB])
    if r < 0.10:
        return rng.randint(0, MIB)
    return min(MIB, int(2 ** rng.uniform(0, 20)) - 1)


def random_text(rng: random.Random, limit: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, limit)))


def make_case(seed: int):
    rng = random.Random(seed)
    settings_key = rng.randbytes(32)
    plaintext = rng.randbytes(pick_size(rng))
    label, pk = random_text(rng, 60), random_text(rng, 40)
    return settings_key, plaintext, label, pk, rng


def check_case(seed: int, reference) -> None:
    settings_key, plaintext, label, pk, rng = make_case(seed)
    where = f"seed={seed} size={len(plaintext)} label={label!r} pk={pk!r}"
    ring = Keyring.from_strings([base64.b64encode(settings_key)])
    context = binding(label, pk)
    assert context == reference.binding(label, pk), where

    envelope = ring.seal(plaintext, context)
    assert len(envelope) == len(plaintext) + OVERHEAD, where
    assert envelope[:5] == b"\x01" + reference.key_id(settings_key), where
    assert reference.open(settings_key, envelope, context) == plaintext, where
    # Through the text-column form too.
    assert reference.open(settings_key, from_text(to_text(envelope)), context) == plaintext, where

    # The other direction: an independent sealer, opened by mcfields.
    foreign = reference.seal(settings_key, plaintext, context, rng.randbytes(24))
    assert ring.open(foreign, context) == plaintext, where

    # Both reject the same moved value (another pk).
    other = binding(label, pk + "0")
    with pytest.raises(nacl.exceptions.CryptoError):
        reference.open(settings_key, envelope, other)
    with pytest.raises(DecryptionError):
        ring.open(foreign, other)


def test_envelopes_interoperate_fast(reference) -> None:
    for seed in range(FAST_CASES):
        check_case(seed, reference)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(SLOW_CHUNKS))
def test_envelopes_interoperate_slow(reference, chunk: int) -> None:
    per_chunk = SLOW_CASES // SLOW_CHUNKS
    start = 5_000_000 + chunk * per_chunk
    for seed in range(start, start + per_chunk):
        check_case(seed, reference)


def test_fresh_nonce_every_seal(ring: Keyring) -> None:
    context = binding("tests.Nonce.field", "1")
    envelopes = [ring.seal(b"same value", context) for _ in range(5000)]
    assert len({e[5:29] for e in envelopes}) == len(envelopes)
    assert len({e[45:] for e in envelopes}) > 1
