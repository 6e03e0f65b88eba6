"""R8: a value over the configured maximum gives ValueTooLargeError, nothing
is written to guest memory, and the guest keeps working afterwards."""

from __future__ import annotations

import os

import pytest
import wasmtime

from mcfields._guest import DEFAULT_MAX_TEXT_SIZE, Guest
from mcfields._guest.runtime import MAX_AD_SIZE
from mcfields.crypto import Keyring, binding, generate_key
from mcfields.exceptions import MCFieldsError, ValueTooLargeError

CAP = 4096


@pytest.fixture
def capped() -> Guest:
    return Guest(max_text_size=CAP)


def test_value_at_cap_works(capped: Guest, guest: Guest) -> None:
    key, nonce, text = os.urandom(32), os.urandom(24), os.urandom(CAP)
    sealed = capped.seal(key, nonce, b"ad", text)
    assert sealed == guest.seal(key, nonce, b"ad", text)
    assert capped.open(key, b"ad", sealed) == text


def test_seal_over_cap(capped: Guest, guest: Guest) -> None:
    key, nonce = os.urandom(32), os.urandom(24)
    marker = os.urandom(CAP + 1)
    with pytest.raises(ValueTooLargeError, match=f"{CAP + 1} bytes exceeds the maximum of {CAP}"):
        capped.seal(key, nonce, b"ad", marker)
    # Nothing was written: not even a prefix of the value reached the guest.
    assert marker[:32] not in capped.memory_snapshot()
    assert marker[-32:] not in capped.memory_snapshot()
    # The guest still works and is still right.
    text = os.urandom(100)
    assert capped.seal(key, nonce, b"ad", text) == guest.seal(key, nonce, b"ad", text)


def test_open_over_cap(capped: Guest) -> None:
    key = os.urandom(32)
    sealed = Guest().seal(key, os.urandom(24), b"", os.urandom(CAP + 1))
    with pytest.raises(ValueTooLargeError):
        capped.open(key, b"", sealed)
    assert sealed[-32:] not in capped.memory_snapshot()
    ok = capped.seal(key, os.urandom(24), b"", b"after")
    assert capped.open(key, b"", ok) == b"after"


def test_associated_data_over_limit(guest: Guest) -> None:
    key, nonce = os.urandom(32), os.urandom(24)
    sealed = guest.seal(key, nonce, bytes(MAX_AD_SIZE), b"x")
    assert guest.open(key, bytes(MAX_AD_SIZE), sealed) == b"x"
    with pytest.raises(ValueTooLargeError, match="associated data"):
        guest.seal(key, nonce, bytes(MAX_AD_SIZE + 1), b"x")
    with pytest.raises(ValueTooLargeError, match="associated data"):
        guest.open(key, bytes(MAX_AD_SIZE + 1), sealed)


def test_error_type() -> None:
    assert issubclass(ValueTooLargeError, MCFieldsError)
    assert issubclass(ValueTooLargeError, ValueError)


def test_memory_is_capped_by_the_store(capped: Guest) -> None:
    """The store limit holds even if something tried to grow memory directly."""
    limit = capped._memory_limit
    assert limit < 2 * (1 << 20) + CAP + MAX_AD_SIZE + 72 + (1 << 16)
    pages_to_limit = (limit - capped._memory.data_len(capped._store)) // (1 << 16)
    with pytest.raises(wasmtime.WasmtimeError):
        capped._memory.grow(capped._store, pages_to_limit + 1)
    with pytest.raises(ValueTooLargeError, match="memory cap"):
        capped._ensure(limit + 1)
    # Still usable after the refused growth.
    key = os.urandom(32)
    assert capped.open(key, b"", capped.seal(key, os.urandom(24), b"", b"ok")) == b"ok"


def test_keyring_value_over_default_cap() -> None:
    ring = Keyring.from_strings([generate_key()])
    context = binding("tests.Limit.field", "1")
    too_big = bytes(DEFAULT_MAX_TEXT_SIZE + 1)
    with pytest.raises(ValueTooLargeError):
        ring.seal(too_big, context)
    del too_big
    assert ring.open(ring.seal(b"after", context), context) == b"after"
