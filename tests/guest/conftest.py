"""Fixtures for the guest runtime tests (layer 1).  No Django needed."""

from __future__ import annotations

import os

import pytest

from mcfields._guest import Guest


@pytest.fixture(scope="module")
def guest() -> Guest:
    """A guest with the default settings, on the fast (unchecked) call path."""
    return Guest()


@pytest.fixture(scope="module")
def public_guest() -> Guest:
    """A guest that calls through wasmtime-py's public API only."""
    return Guest(unchecked=False)


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def nonce() -> bytes:
    return os.urandom(24)
