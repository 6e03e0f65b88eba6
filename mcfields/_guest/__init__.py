"""Private bindings to the WebAssembly guest (layer 1).

Imports only wasmtime, the standard library and ``mcfields.exceptions``.
"""

from .runtime import (
    AEAD_FRAME_OVERHEAD,
    DEFAULT_MAX_TEXT_SIZE,
    KEY_SIZE,
    MAC_SIZE,
    NONCE_SIZE,
    Guest,
    get_guest,
    preload,
    wasm_bytes,
)

__all__ = [
    "AEAD_FRAME_OVERHEAD",
    "DEFAULT_MAX_TEXT_SIZE",
    "KEY_SIZE",
    "MAC_SIZE",
    "NONCE_SIZE",
    "Guest",
    "get_guest",
    "preload",
    "wasm_bytes",
]
