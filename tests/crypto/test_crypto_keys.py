"""Keys: the settings format, derivations, repr, the keyring."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle

import pytest

from mcfields.crypto import (
    KEY_ID_SIZE,
    DecryptionError,
    InvalidKeyError,
    Key,
    Keyring,
    MCFieldsError,
    binding,
    decode_key,
    generate_key,
)

CONTEXT = binding("tests.Keys.field", "7")
ZERO_KEY = base64.b64encode(bytes(32)).decode()


def key_with_special_chars() -> bytes:
    """32 random bytes whose base64 has both '+' and '/' (so '-' and '_')."""
    while True:
        raw = os.urandom(32)
        std = base64.b64encode(raw)
        if b"+" in std and b"/" in std:
            return raw


@pytest.fixture(scope="module")
def raw() -> bytes:
    return key_with_special_chars()


def encodings(raw: bytes) -> dict[str, str]:
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return {
        "standard": std,
        "standard-unpadded": std.rstrip("="),
        "urlsafe": url,
        "urlsafe-unpadded": url.rstrip("="),
        "surrounding-whitespace": f"  {url}\n",
    }


@pytest.mark.parametrize("form", list(encodings(b"\0" * 32)))
def test_decode_accepted_forms(raw: bytes, form: str) -> None:
    text = encodings(raw)[form]
    assert decode_key(text) == raw
    assert decode_key(text.encode("ascii")) == raw
    assert Key.from_string(text) == Key(raw)


def test_all_forms_give_the_same_key_id(raw: bytes) -> None:
    ids = {Key.from_string(t).key_id for t in encodings(raw).values()}
    assert len(ids) == 1


@pytest.mark.parametrize(
    "bad",
    [
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(64)).decode(),
        "",
        "   ",
        bytes(32).hex(),                         # hex, not base64: 48 bytes
        "!" * 44,
        "not a key at all, just words here........",
        ZERO_KEY[:20] + " " + ZERO_KEY[20:],
        ZERO_KEY[:20] + "\n" + ZERO_KEY[20:],
        ZERO_KEY + "==",
        "é" * 44,
        b"\xff" * 44,
        None,
        12345,
        bytes(32),                               # raw bytes are not the settings format
    ],
    ids=["31-bytes", "33-bytes", "64-bytes", "empty", "blank", "hex", "bangs", "words",
         "inner-space", "inner-newline", "over-padded", "non-ascii-str", "non-ascii-bytes",
         "none", "int", "raw-bytes"],
)
def test_decode_rejects(bad) -> None:
    with pytest.raises(InvalidKeyError):
        decode_key(bad)
    with pytest.raises(InvalidKeyError):
        Key.from_string(bad)


def test_invalid_key_error_types_and_message() -> None:
    assert issubclass(InvalidKeyError, ValueError)
    assert issubclass(InvalidKeyError, MCFieldsError)
    text = base64.b64encode(b"S" * 31).decode()
    with pytest.raises(InvalidKeyError) as info:
        decode_key(text)
    assert "31 bytes" in str(info.value)
    assert text not in str(info.value)


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), "x" * 32, None])
def test_key_constructor_rejects_wrong_secret(bad) -> None:
    with pytest.raises(InvalidKeyError):
        Key(bad)


def test_key_id_and_aead_key_follow_format(raw: bytes, reference) -> None:
    key = Key(raw)
    assert len(key.key_id) == KEY_ID_SIZE == 4
    assert key.key_id == hashlib.blake2b(b"mcfields.v1.key-id", key=raw, digest_size=4).digest()
    assert key._aead_key == hashlib.blake2b(b"mcfields.v1.aead-key", key=raw,
                                            digest_size=32).digest()
    assert key.key_id == reference.key_id(raw)
    assert key.id_hex == key.key_id.hex()
    # Domain separation: neither value is the settings key or a prefix of the other.
    assert key._aead_key != raw
    assert key._aead_key[:4] != key.key_id


def test_key_ids_for_many_keys_match_hashlib() -> None:
    for _ in range(200):
        raw = os.urandom(32)
        assert Key(raw).key_id == hashlib.blake2b(b"mcfields.v1.key-id", key=raw,
                                                  digest_size=4).digest()


def _forms_of(secret: bytes) -> list[str]:
    return [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode().rstrip("="),
            base64.urlsafe_b64encode(secret).decode().rstrip("="), repr(secret)[2:-1],
            str(list(secret))[1:-1]]


def test_repr_has_no_key_bytes(raw: bytes) -> None:
    key = Key(raw)
    ring = Keyring([key])
    shown = " ".join([repr(key), str(key), repr(ring), str(ring), repr(ring.keys),
                      repr(ring.primary), f"{key!r}"])
    for secret in (raw, key._aead_key):
        for form in _forms_of(secret):
            assert form not in shown
        # no 6-byte run of either secret in any common encoding
        for i in range(0, 32 - 6):
            assert secret[i:i + 6].hex() not in shown
    assert key.id_hex in repr(key)


def test_key_does_not_keep_the_settings_bytes(raw: bytes) -> None:
    key = Key(raw)
    assert not hasattr(key, "__dict__")
    values = [getattr(key, slot) for slot in Key.__slots__]
    assert raw not in values
    assert raw not in pickle.dumps(values)


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    for text in keys:
        assert len(text) == 44 and text.endswith("=")
        assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
        assert len(decode_key(text)) == 32


def test_key_generate_and_equality() -> None:
    a, b = Key.generate(), Key.generate()
    assert a != b and a.key_id != b.key_id
    assert Key(b"k" * 32) == Key(b"k" * 32)
    assert hash(Key(b"k" * 32)) == hash(Key(b"k" * 32))


# -- keyring --------------------------------------------------------------------


def test_empty_keyring_rejected() -> None:
    with pytest.raises(InvalidKeyError):
        Keyring([])
    with pytest.raises(InvalidKeyError):
        Keyring.from_strings([])


def test_duplicate_keys_rejected(raw: bytes) -> None:
    forms = encodings(raw)
    for second in forms.values():
        with pytest.raises(InvalidKeyError, match="index 1") as info:
            Keyring.from_strings([forms["urlsafe"], second])
        for form in _forms_of(raw):
            assert form not in str(info.value)
    with pytest.raises(InvalidKeyError, match="index 2"):
        Keyring.from_strings([generate_key(), forms["standard"], forms["urlsafe-unpadded"]])


def test_first_key_seals_every_key_opens() -> None:
    old, new = generate_key(), generate_key()
    old_ring = Keyring.from_strings([old])
    rotated = Keyring.from_strings([new, old])
    old_envelope = old_ring.seal(b"legacy", CONTEXT)
    new_envelope = rotated.seal(b"fresh", CONTEXT)
    assert new_envelope[1:5] == Key.from_string(new).key_id
    assert rotated.open(old_envelope, CONTEXT) == b"legacy"
    assert rotated.open(new_envelope, CONTEXT) == b"fresh"
    assert rotated.knows(Key.from_string(old).key_id)
    with pytest.raises(DecryptionError):
        old_ring.open(new_envelope, CONTEXT)


def test_is_current() -> None:
    old, new = generate_key(), generate_key()
    old_envelope = Keyring.from_strings([old]).seal(b"v", CONTEXT)
    rotated = Keyring.from_strings([new, old])
    assert rotated.is_current(old_envelope) is False
    assert rotated.is_current(rotated.seal(b"v", CONTEXT)) is True
    # Unknown key ids are not current either (they cannot be opened at all).
    assert rotated.is_current(Keyring.from_strings([generate_key()]).seal(b"v", CONTEXT)) is False
    for malformed in (b"", b"\x01abc", b"\x02" + old_envelope[1:]):
        with pytest.raises(DecryptionError):
            rotated.is_current(malformed)


def test_reseal_moves_a_value_to_the_first_key() -> None:
    """MultiFernet.rotate: open under any configured key, seal under the first."""
    old, new = generate_key(), generate_key()
    old_envelope = Keyring.from_strings([old]).seal(b"value", CONTEXT)
    rotated = Keyring.from_strings([new, old])
    resealed = rotated.reseal(old_envelope, CONTEXT)
    assert rotated.is_current(resealed) and resealed != old_envelope
    assert Keyring.from_strings([new]).open(resealed, CONTEXT) == b"value"
    # For another binding (a row copied to a new pk):
    other = binding("app.Model.field", "2")
    moved = rotated.reseal(old_envelope, CONTEXT, other)
    assert rotated.open(moved, other) == b"value"
    with pytest.raises(DecryptionError):
        rotated.open(moved, CONTEXT)
    # A value that does not open is not re-sealed.
    with pytest.raises(DecryptionError):
        rotated.reseal(old_envelope, other)
    with pytest.raises(DecryptionError):
        Keyring.from_strings([new]).reseal(old_envelope, CONTEXT)


def test_associated_data_is_required() -> None:
    ring = Keyring.from_strings([generate_key()])
    with pytest.raises(TypeError):
        ring.seal(b"v")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ring.open(ring.seal(b"v", CONTEXT))  # type: ignore[call-arg]
