"""Published test vectors: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03
A.3.1) and BLAKE2b (RFC 7693 Appendix A, BLAKE2 reference KAT)."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import pytest
from Crypto.Cipher import ChaCha20_Poly1305

from mcfields._guest import Guest

VECTOR_FILE = Path(__file__).resolve().parent.parent / "data" / "xchacha20poly1305_a3.json"


def _vector() -> dict[str, bytes]:
    raw = json.loads(VECTOR_FILE.read_text())
    return {
        name: bytes.fromhex(raw[name])
        for name in ("plaintext", "aad", "key", "iv", "ciphertext", "tag")
    } | {"plaintext_ascii": raw["plaintext_ascii"].encode("ascii"), "origin": raw["origin"]}


V = _vector()


def test_vector_file_names_its_origin() -> None:
    assert "draft-irtf-cfrg-xchacha-03" in V["origin"]
    assert "A.3.1" in V["origin"]
    assert V["plaintext"] == V["plaintext_ascii"]
    assert (len(V["key"]), len(V["iv"]), len(V["tag"])) == (32, 24, 16)
    assert len(V["ciphertext"]) == len(V["plaintext"]) == 114


def test_vector_bytes_agree_with_libsodium() -> None:
    """The transcribed bytes are checked before the guest is judged by them."""
    combined = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        V["plaintext"], V["aad"], V["iv"], V["key"]
    )
    assert combined == V["ciphertext"] + V["tag"]


def test_vector_bytes_agree_with_pycryptodome() -> None:
    cipher = ChaCha20_Poly1305.new(key=V["key"], nonce=V["iv"])
    cipher.update(V["aad"])
    ciphertext, tag = cipher.encrypt_and_digest(V["plaintext"])
    assert (ciphertext, tag) == (V["ciphertext"], V["tag"])


@pytest.mark.parametrize("unchecked", [True, False], ids=["unchecked", "public-api"])
def test_guest_seal_reproduces_vector(unchecked: bool) -> None:
    guest = Guest(unchecked=unchecked)
    sealed = guest.seal(V["key"], V["iv"], V["aad"], V["plaintext"])
    assert sealed == V["iv"] + V["tag"] + V["ciphertext"]


@pytest.mark.parametrize("unchecked", [True, False], ids=["unchecked", "public-api"])
def test_guest_open_reproduces_vector(unchecked: bool) -> None:
    guest = Guest(unchecked=unchecked)
    sealed = V["iv"] + V["tag"] + V["ciphertext"]
    assert guest.open(V["key"], V["aad"], sealed) == V["plaintext"]


@pytest.mark.parametrize(
    "field, index",
    [("tag", 0), ("tag", 15), ("ciphertext", 0), ("ciphertext", 113), ("iv", 0), ("iv", 23),
     ("aad", 0), ("aad", 11), ("key", 0), ("key", 31)],
)
def test_guest_rejects_altered_vector(guest: Guest, field: str, index: int) -> None:
    parts = {k: bytearray(V[k]) for k in ("key", "iv", "aad", "tag", "ciphertext")}
    parts[field][index] ^= 0x01
    sealed = bytes(parts["iv"] + parts["tag"] + parts["ciphertext"])
    assert guest.open(bytes(parts["key"]), bytes(parts["aad"]), sealed) is None
    # libsodium agrees that the altered input is a forgery.
    with pytest.raises(nacl.exceptions.CryptoError):
        nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            bytes(parts["ciphertext"] + parts["tag"]), bytes(parts["aad"]),
            bytes(parts["iv"]), bytes(parts["key"]),
        )


# RFC 7693 Appendix A: BLAKE2b-512("abc").
RFC7693_ABC = bytes.fromhex(
    "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
    "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
)
# BLAKE2 reference KAT (blake2b-kat.txt, keyed): key 00..3f, input empty and 00..fe.
KAT_KEY = bytes(range(64))
KAT_EMPTY = bytes.fromhex(
    "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
    "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568"
)
KAT_255 = bytes.fromhex(
    "142709d62e28fcccd0af97fad0f8465b971e82201dc51070faa0372aa43e9248"
    "4be1c1e73ba10906d5d1853db6a4106e0a7bf9800d373d6dee2d46d62ef2a461"
)


def test_blake2b_rfc7693_abc(guest: Guest) -> None:
    assert guest.blake2b(b"", b"abc", 64) == RFC7693_ABC


@pytest.mark.parametrize("message, expected", [(b"", KAT_EMPTY), (bytes(range(255)), KAT_255)])
def test_blake2b_keyed_reference_kat(guest: Guest, message: bytes, expected: bytes) -> None:
    assert guest.blake2b(KAT_KEY, message, 64) == expected
