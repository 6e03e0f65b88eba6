"""Fixtures for the crypto API tests (layer 2).  No Django needed.

``reference`` is an independent implementation of docs/FORMAT.md built from
libsodium (PyNaCl) and hashlib only: it shares no code with mcfields.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from types import SimpleNamespace

import nacl.bindings
import pytest

from mcfields.crypto import Keyring, generate_key


def ref_decode_key(text: str) -> bytes:
    text = text.strip()
    return base64.b64decode((text + "=" * (-len(text) % 4)).replace("-", "+").replace("_", "/"))


def ref_key_id(settings_key: bytes) -> bytes:
    return hashlib.blake2b(b"mcfields.v1.key-id", key=settings_key, digest_size=4).digest()


def ref_aead_key(settings_key: bytes) -> bytes:
    return hashlib.blake2b(b"mcfields.v1.aead-key", key=settings_key, digest_size=32).digest()


def ref_binding(label: str, pk: str) -> bytes:
    lab, pkb = label.encode("utf-8"), pk.encode("utf-8")
    return struct.pack("<I", len(lab)) + lab + struct.pack("<I", len(pkb)) + pkb


def ref_open(settings_key: bytes, envelope: bytes, context: bytes) -> bytes:
    """Open an envelope; raises nacl.exceptions.CryptoError or AssertionError."""
    header, nonce, mac, ciphertext = envelope[:5], envelope[5:29], envelope[29:45], envelope[45:]
    assert len(envelope) >= 45 and header[0] == 1, "not a v1 envelope"
    assert header[1:5] == ref_key_id(settings_key), "sealed under another key"
    return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        ciphertext + mac, header + context, nonce, ref_aead_key(settings_key)
    )


def ref_seal(settings_key: bytes, plaintext: bytes, context: bytes, nonce: bytes) -> bytes:
    header = b"\x01" + ref_key_id(settings_key)
    combined = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, header + context, nonce, ref_aead_key(settings_key)
    )
    return header + nonce + combined[-16:] + combined[:-16]


@pytest.fixture(scope="session")
def reference() -> SimpleNamespace:
    return SimpleNamespace(
        decode_key=ref_decode_key, key_id=ref_key_id, aead_key=ref_aead_key,
        binding=ref_binding, open=ref_open, seal=ref_seal,
    )


@pytest.fixture(scope="module")
def key_text() -> str:
    return generate_key()


@pytest.fixture(scope="module")
def ring(key_text: str) -> Keyring:
    return Keyring.from_strings([key_text])
