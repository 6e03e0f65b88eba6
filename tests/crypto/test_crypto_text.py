"""The binding encoding and the text-column form."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcfields.crypto import (
    TEXT_PREFIX,
    DecryptionError,
    Keyring,
    binding,
    from_text,
    is_text_envelope,
    to_text,
)


def test_binding_bytes_exactly() -> None:
    assert binding("demo.Patient.notes", "42") == (
        b"\x12\x00\x00\x00demo.Patient.notes\x02\x00\x00\x0042"
    )
    assert binding("", "") == bytes(8)
    # Lengths count UTF-8 bytes, not characters.
    assert binding("é", "水") == b"\x02\x00\x00\x00\xc3\xa9\x03\x00\x00\x00\xe6\xb0\xb4"


@settings(max_examples=500, deadline=None, database=None)
@given(a=st.tuples(st.text(max_size=20), st.text(max_size=20)),
       b=st.tuples(st.text(max_size=20), st.text(max_size=20)))
def test_binding_is_injective(a, b) -> None:
    assert (binding(*a) == binding(*b)) == (a == b)


@pytest.mark.parametrize("a, b", [(("ab", "c"), ("a", "bc")), (("a", ""), ("", "a")),
                                  (("a\x00", "b"), ("a", "\x00b"))])
def test_binding_boundary_cases(a, b) -> None:
    assert binding(*a) != binding(*b)


@settings(max_examples=300, deadline=None, database=None)
@given(envelope=st.binary(max_size=200))
def test_text_round_trip_and_canonical(envelope: bytes) -> None:
    text = to_text(envelope)
    assert text.startswith(TEXT_PREFIX) and text.isascii()
    assert "=" not in text and "+" not in text and "/" not in text
    assert from_text(text) == envelope
    assert is_text_envelope(text)
    assert text == TEXT_PREFIX + base64.urlsafe_b64encode(envelope).decode().rstrip("=")


@pytest.mark.parametrize("bad", ["", "mcf1", "mcf2:AAAA", "MCF1:AAAA", "xmcf1:AAAA", "AAAA"])
def test_from_text_requires_prefix(bad: str) -> None:
    with pytest.raises(DecryptionError):
        from_text(bad)
    assert not is_text_envelope(bad)


@pytest.mark.parametrize("bad", [None, b"mcf1:AAAA", 5])
def test_from_text_requires_str(bad) -> None:
    with pytest.raises(DecryptionError):
        from_text(bad)
    assert not is_text_envelope(bad)


def test_non_canonical_last_character_rejected() -> None:
    for size in (1, 2, 4, 5, 46, 47):
        envelope = os.urandom(size)
        text = to_text(envelope)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for char in alphabet:
            if char == text[-1]:
                continue
            candidate = text[:-1] + char
            try:
                decoded = from_text(candidate)
            except DecryptionError:
                continue
            # Any other last character that decodes must decode to other bytes.
            assert decoded != envelope, (size, char)


def test_text_form_of_keyring_envelope(ring: Keyring) -> None:
    envelope = ring.seal("héllo".encode(), binding("a.B.c", "1"))
    assert ring.open(from_text(to_text(envelope)), binding("a.B.c", "1")) == "héllo".encode()
