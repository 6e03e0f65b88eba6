"""The guest's base64url (seal_text/open_text) and batches (seal_many/
open_many): the same bytes and the same errors as the envelope codec and
one value at a time, on both call paths."""

from __future__ import annotations

import os
import random

import pytest

from mcfields._guest import Guest
from mcfields.crypto import DecryptionError, Keyring, binding, from_text, generate_key, to_text

CONTEXT = binding("app.Model.field", "42")


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring.from_strings([generate_key(), generate_key()])


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 63, 64, 65, 1000, 70_000])
def test_text_form_is_the_codec(ring: Keyring, size: int) -> None:
    plaintext = os.urandom(size)
    text = ring.seal_text(plaintext, CONTEXT)
    envelope = from_text(text)
    assert to_text(envelope) == text
    assert ring.open(envelope, CONTEXT) == plaintext
    assert ring.open_text(text, CONTEXT) == plaintext
    assert ring.open_text(to_text(ring.seal(plaintext, CONTEXT)), CONTEXT) == plaintext


def test_both_call_paths_give_identical_text(ring: Keyring) -> None:
    key, nonce, header = os.urandom(32), os.urandom(24), b"\x01abcd"
    fast, public = Guest(), Guest(unchecked=False)
    for size in (0, 5, 64, 4000):
        text = os.urandom(size)
        assert fast.seal_text(key, header, b"ad", text, nonce, b"mcf1:") == \
            public.seal_text(key, header, b"ad", text, nonce, b"mcf1:")
        env = fast.seal_envelope(key, header, b"ad", text, nonce)
        assert env == public.seal_envelope(key, header, b"ad", text, nonce)
        assert public.open_envelope(key, header, b"ad", env) == text
        assert public.open_text(key, header, b"ad", "mcf1:" + to_text(env)[5:], 5) == text


def test_non_canonical_text_is_refused_like_the_codec(ring: Keyring) -> None:
    """Every one-character change, padding, junk: DecryptionError with the
    codec's reason, never a plaintext."""
    rng = random.Random(5)
    for size in (0, 1, 2, 64):
        text = ring.seal_text(os.urandom(size), CONTEXT)
        variants = [text + "=", text + "==", text[:-1], text + "A", " " + text, text + "\n",
                    text.replace("mcf1:", "mcf2:"), text[:12] + "+" + text[13:],
                    text[:-1] + "/", text[:-1] + "é"]
        for _ in range(200):
            i = rng.randrange(len("mcf1:"), len(text))
            c = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.")
            variants.append(text[:i] + c + text[i + 1:])
        for variant in variants:
            if variant == text:
                continue
            with pytest.raises(DecryptionError) as fused:
                ring.open_text(variant, CONTEXT)
            try:
                ring.open(from_text(variant), CONTEXT)
            except DecryptionError as exc:
                assert str(exc) == str(fused.value), variant
            else:  # pragma: no cover
                raise AssertionError(f"the codec accepted {variant!r}")


def test_seal_many_open_many(ring: Keyring) -> None:
    plaintexts = [os.urandom(n) for n in (0, 1, 64, 64, 1000, 300_000, 5)] * 3
    ads = [binding("app.M.f", str(i)) for i in range(len(plaintexts))]
    envelopes = ring.seal_many(plaintexts, ads)
    assert len({e[5:29] for e in envelopes}) == len(envelopes)  # fresh nonces
    assert [ring.open(e, ad) for e, ad in zip(envelopes, ads, strict=True)] == plaintexts
    assert ring.open_many(envelopes, ads) == plaintexts
    texts = ring.seal_many_text(plaintexts, ads)
    assert [ring.open_text(t, ad) for t, ad in zip(texts, ads, strict=True)] == plaintexts
    assert ring.open_many_text(texts, ads) == plaintexts
    assert ring.seal_many([], []) == [] and ring.open_many([], []) == []


def test_open_many_names_the_bad_value(ring: Keyring) -> None:
    plaintexts = [b"a" * 64, b"b" * 64, b"c" * 64, b"d" * 64]
    ads = [binding("app.M.f", str(i)) for i in range(4)]
    envelopes = ring.seal_many(plaintexts, ads)
    envelopes[1] = envelopes[1][:-1] + bytes([envelopes[1][-1] ^ 1])  # tampered
    envelopes[3] = b"\x02" + envelopes[3][1:]                            # unknown version
    with pytest.raises(DecryptionError, match="authentication failed") as info:
        ring.open_many(envelopes, ads)
    assert info.value.index == 1
    results = ring.open_many(envelopes, ads, return_exceptions=True)
    assert results[0] == plaintexts[0] and results[2] == plaintexts[2]
    assert isinstance(results[1], DecryptionError) and results[1].index == 1
    assert "version" in str(results[3]) and results[3].index == 3
    texts = [to_text(e) for e in envelopes]
    texts[2] = texts[2] + "="
    results = ring.open_many_text(texts, ads, return_exceptions=True)
    assert results[0] == plaintexts[0]
    assert [type(r) for r in results[1:]] == [DecryptionError] * 3
    assert "canonical" in str(results[2])
    with pytest.raises(ValueError):
        ring.open_many(envelopes, ads[:2])
