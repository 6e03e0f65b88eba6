"""R2/R3: altered, truncated, foreign, random and fuzzed envelopes.

Every failure is a DecryptionError: never another exception, never a
plaintext.  The only envelope that may open is the unaltered one.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcfields.crypto import (
    OVERHEAD,
    DecryptionError,
    Key,
    Keyring,
    binding,
    from_text,
    generate_key,
    to_text,
)

CONTEXT = binding("tests.Tamper.field", "1234")
PLAINTEXTS = [b"", b"x", os.urandom(64), os.urandom(1000)]
FUZZ_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def sealed(ring: Keyring) -> list[tuple[bytes, bytes]]:
    return [(p, ring.seal(p, CONTEXT)) for p in PLAINTEXTS]


def flips(data: bytes):
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            yield i, bit, bytes(flipped)


def assert_fails(ring: Keyring, envelope, context: bytes = CONTEXT) -> DecryptionError:
    with pytest.raises(DecryptionError) as info:
        ring.open(envelope, context)
    return info.value


@pytest.mark.parametrize("index", range(len(PLAINTEXTS)), ids=[f"{len(p)}B" for p in PLAINTEXTS])
def test_every_single_bit_flip_fails(ring: Keyring, sealed, index: int) -> None:
    plaintext, envelope = sealed[index]
    assert ring.open(envelope, CONTEXT) == plaintext  # the unaltered one opens
    count = 0
    for _, _, flipped in flips(envelope):
        with pytest.raises(DecryptionError):
            ring.open(flipped, CONTEXT)
        count += 1
    assert count == 8 * (len(plaintext) + OVERHEAD)


def test_header_is_authenticated(ring: Keyring, sealed) -> None:
    """Even if an altered key id named a configured key (a key id collision),
    the MAC fails, because the header is part of the associated data."""
    _, envelope = sealed[2]
    for _, _, flipped in flips(envelope[:5]):
        forged = flipped + envelope[5:]
        colliding = Keyring([ring.primary])
        colliding._by_id[forged[1:5]] = ring.primary
        if forged[0] != 1:
            assert "version" in str(assert_fails(colliding, forged))
        else:
            assert "authentication failed" in str(assert_fails(colliding, forged))


@pytest.mark.parametrize("index", range(len(PLAINTEXTS)), ids=[f"{len(p)}B" for p in PLAINTEXTS])
def test_every_single_bit_flip_of_the_text_form_fails(ring: Keyring, sealed, index: int) -> None:
    plaintext, envelope = sealed[index]
    text = to_text(envelope)
    assert ring.open(from_text(text), CONTEXT) == plaintext
    for _, _, flipped in flips(text.encode("ascii")):
        altered = flipped.decode("latin-1")
        with pytest.raises(DecryptionError):
            ring.open(from_text(altered), CONTEXT)


@pytest.mark.parametrize("variant", ["padded", "standard-alphabet", "whitespace", "junk"])
def test_non_canonical_text_forms_fail(ring: Keyring, variant: str) -> None:
    for plaintext in (b"x", b"xy", b"xyz", bytes(range(250))):
        text = to_text(ring.seal(plaintext, CONTEXT))
        body = text[len("mcf1:"):]
        if variant == "padded":
            altered = text + "=" * (-len(body) % 4 or 4)
        elif variant == "standard-alphabet":
            altered = text.replace("-", "+").replace("_", "/")
            if altered == text:
                continue
        elif variant == "whitespace":
            altered = text[:10] + "\n" + text[10:]
        else:
            altered = text[:10] + "!" + text[10:]
        with pytest.raises(DecryptionError):
            ring.open(from_text(altered), CONTEXT)


def test_truncation_at_every_length(ring: Keyring, sealed) -> None:
    for _, envelope in sealed:
        for length in range(len(envelope)):
            assert_fails(ring, envelope[:length])
        assert_fails(ring, envelope + b"\x00")


def test_wrong_key_with_same_key_id(ring: Keyring, sealed) -> None:
    """A different key that (by collision) carries the same id: MAC failure."""
    other = Keyring([Key.generate()])
    other._by_id[ring.primary.key_id] = other.primary
    for _, envelope in sealed:
        error = assert_fails(other, envelope)
        assert "authentication failed" in str(error)


def test_unknown_key_id(ring: Keyring, sealed) -> None:
    other = Keyring.from_strings([generate_key(), generate_key()])
    for _, envelope in sealed:
        error = assert_fails(other, envelope)
        assert error.key_id == ring.primary.key_id.hex()
        assert "not configured" in str(error)


@pytest.mark.parametrize("version", [0, 2, 0x81, 0xFF])
def test_unknown_version(ring: Keyring, sealed, version: int) -> None:
    for _, envelope in sealed:
        error = assert_fails(ring, bytes([version]) + envelope[1:])
        assert "version" in str(error)


@pytest.mark.parametrize(
    "context",
    [b"", binding("tests.Tamper.field", "1235"), binding("tests.Tamper.field", "123"),
     binding("tests.Tamper.other", "1234"), binding("tests.Tamper.field1", "234"),
     binding("tests.Tamper.field", "1234") + b"\x00", CONTEXT[:-1]],
    ids=["empty", "other-pk", "pk-prefix", "other-label", "shifted-boundary", "extended",
         "truncated"],
)
def test_wrong_context(ring: Keyring, sealed, context: bytes) -> None:
    for _, envelope in sealed:
        assert_fails(ring, envelope, context)


def test_swapped_rows(ring: Keyring) -> None:
    """Two rows' values exchanged: each fails at the other's pk."""
    a = ring.seal(b"alice", binding("app.User.ssn", "1"))
    b = ring.seal(b"bob", binding("app.User.ssn", "2"))
    assert_fails(ring, a, binding("app.User.ssn", "2"))
    assert_fails(ring, b, binding("app.User.ssn", "1"))


def test_error_messages_have_no_plaintext(ring: Keyring) -> None:
    secret = b"TOP-SECRET-PLAINTEXT-" + os.urandom(8).hex().encode()
    envelope = ring.seal(secret, CONTEXT)
    for bad in (envelope[:-1] + bytes([envelope[-1] ^ 1]), envelope[:20], b"\x02" + envelope[1:]):
        message = str(assert_fails(ring, bad)) + repr(assert_fails(ring, bad))
        assert secret.decode() not in message and secret.hex() not in message


def test_oversized_envelope_is_a_decryption_error(ring: Keyring) -> None:
    """A stored value larger than any value mcfields would have sealed
    cannot open; that is a DecryptionError, like any other bad envelope."""
    from mcfields._guest import get_guest

    huge = bytes([1]) + ring.primary.key_id + bytes(get_guest().max_text_size + 41)
    assert_fails(ring, huge)


# -- fuzz ---------------------------------------------------------------------


def _only_original_opens(ring: Keyring, original: bytes, plaintext: bytes, candidate: bytes):
    try:
        opened = ring.open(candidate, CONTEXT)
    except DecryptionError:
        return
    assert candidate == original, "an altered envelope opened"
    assert opened == plaintext


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(ring: Keyring, data: bytes) -> None:
    with pytest.raises(DecryptionError):
        ring.open(data, CONTEXT)


@FUZZ_SETTINGS
@given(body=st.binary(min_size=0, max_size=300))
def test_random_bytes_behind_a_valid_header(ring: Keyring, body: bytes) -> None:
    """Random bytes that pass the version and key id checks reach the MAC."""
    with pytest.raises(DecryptionError):
        ring.open(b"\x01" + ring.primary.key_id + body, CONTEXT)


@FUZZ_SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_forms(ring: Keyring, text: str) -> None:
    with pytest.raises(DecryptionError):
        ring.open(from_text("mcf1:" + text), CONTEXT)
    with pytest.raises(DecryptionError):
        from_text(text if not text.startswith("mcf1:") else "x" + text)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=8), st.just(0)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
)


def mutate(envelope: bytes, ops) -> bytes:
    data = bytearray(envelope)
    for op, a, b in ops:
        n = len(data)
        if op == "flip" and n:
            data[a % n] ^= 1 << b
        elif op == "set" and n:
            data[a % n] = b
        elif op == "insert":
            at = a % (n + 1)
            data[at:at] = b
        elif op == "delete" and n:
            at = a % n
            del data[at:at + b]
        elif op == "truncate":
            del data[a % (n + 1):]
        elif op == "extend":
            data += a
        elif op == "swap" and n:
            i, j = a % n, b % n
            data[i], data[j] = data[j], data[i]
    return bytes(data)


@FUZZ_SETTINGS
@given(index=st.integers(0, len(PLAINTEXTS) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_envelopes(ring: Keyring, sealed, index: int, ops) -> None:
    plaintext, envelope = sealed[index]
    _only_original_opens(ring, envelope, plaintext, mutate(envelope, ops))


@pytest.mark.slow
def test_mutated_and_random_envelopes_slow(ring: Keyring) -> None:
    """R3: >= 100k cases: 120k mutated envelopes, 20k random ones, 20k text forms."""
    rng = random.Random(31337)
    originals = [(p, ring.seal(p, CONTEXT)) for p in
                 [b"", b"x", rng.randbytes(16), rng.randbytes(64), rng.randbytes(300)]]
    kinds = ["flip", "set", "insert", "delete", "truncate", "extend", "swap"]
    cases = 0
    for _ in range(120_000):
        plaintext, envelope = rng.choice(originals)
        ops = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(kinds)
            if kind == "flip":
                ops.append((kind, rng.randrange(10**6), rng.randrange(8)))
            elif kind == "set":
                ops.append((kind, rng.randrange(10**6), rng.randrange(256)))
            elif kind == "insert":
                ops.append((kind, rng.randrange(10**6), rng.randbytes(rng.randint(1, 8))))
            elif kind == "delete":
                ops.append((kind, rng.randrange(10**6), rng.randint(1, 8)))
            elif kind == "extend":
                ops.append((kind, rng.randbytes(rng.randint(1, 8)), 0))
            else:
                ops.append((kind, rng.randrange(10**6), rng.randrange(10**6)))
        _only_original_opens(ring, envelope, plaintext, mutate(envelope, ops))
        cases += 1
    header = b"\x01" + ring.primary.key_id
    for i in range(20_000):
        body = rng.randbytes(rng.randint(0, 200))
        with pytest.raises(DecryptionError):
            ring.open(header + body if i % 2 else body, CONTEXT)
        cases += 1
    for _ in range(20_000):
        plaintext, envelope = rng.choice(originals)
        text = bytearray(to_text(envelope).encode())
        text[rng.randrange(len(text))] = rng.randrange(128)
        candidate = text.decode("ascii")
        try:
            opened = ring.open(from_text(candidate), CONTEXT)
        except DecryptionError:
            pass
        else:
            assert candidate == to_text(envelope) and opened == plaintext
        cases += 1
    assert cases >= 100_000
