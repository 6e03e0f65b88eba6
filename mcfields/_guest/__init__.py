"""Private bindings to the WebAssembly guest (layer 1).

Imports only wasmtime, the standard library and ``mcfields.exceptions``.

The sizes are defined here, once for every layer (``tests/guest`` checks
them against ``guest/shim.c``).  Importing this package does not import
wasmtime: ``import wasmtime`` costs 15-25 ms and about 6 MiB, so the
runtime (:mod:`.runtime`) is imported on first use of :func:`get_guest`,
:class:`Guest`, :func:`preload` or :func:`wasm_bytes` (module
``__getattr__``), normally by the first seal or open of the process.
"""

from __future__ import annotations

from typing import Any

# The sizes of XChaCha20-Poly1305; the guest's own #defines (guest/shim.c)
# are checked against these by tests/guest/test_guest_build.py.
KEY_SIZE = 32
NONCE_SIZE = 24
MAC_SIZE = 16
#: Bytes of a seal/open frame besides associated data and text.
AEAD_FRAME_OVERHEAD = KEY_SIZE + NONCE_SIZE + MAC_SIZE
#: Associated data is a short header, label and pk; anything larger is a bug.
MAX_AD_SIZE = 1 << 16
#: Largest plaintext a guest accepts unless configured otherwise.
DEFAULT_MAX_TEXT_SIZE = 64 << 20
BLAKE2B_MAX_SIZE = 64
#: Longest envelope header the guest copies (HEAD_MAX in guest/shim.c).
HEAD_MAX = 16
#: Longest text prefix before the base64url of a text form (PREFIX_MAX).
PREFIX_MAX = 64
#: A thread's guest whose linear memory grew beyond this is dropped (and its
#: Store freed) once the operation that grew it is over; the thread gets a
#: fresh guest next time.  Below it, memory is kept for reuse.
RETIRE_MEMORY_SIZE = 4 << 20
PAGE_SIZE = 1 << 16


def base64url_chars(size: int) -> int:
    """Characters of the unpadded base64url form of ``size`` bytes."""
    return size // 3 * 4 + (size % 3 + 1 if size % 3 else 0)


_LAZY = ("Guest", "get_guest", "preload", "wasm_bytes")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import runtime

        value = getattr(runtime, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AEAD_FRAME_OVERHEAD",
    "BLAKE2B_MAX_SIZE",
    "DEFAULT_MAX_TEXT_SIZE",
    "HEAD_MAX",
    "KEY_SIZE",
    "MAC_SIZE",
    "MAX_AD_SIZE",
    "NONCE_SIZE",
    "PREFIX_MAX",
    "Guest",
    "base64url_chars",
    "get_guest",
    "preload",
    "wasm_bytes",
]
