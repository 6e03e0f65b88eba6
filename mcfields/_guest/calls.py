"""How the host calls the guest's exports: the one module that uses
wasmtime-py's private API.

* :func:`call_public`: ``Func.__call__``, wasmtime-py's public path (tens of
  µs per call: it re-reads the function's type every time); the fallback.
* :class:`UncheckedCaller`: ``wasmtime_func_call_unchecked`` from the C API
  (about 0.5 µs), reached through wasmtime-py's private ``_bindings``,
  ``Store._context()``, ``Func._func`` and ``WasmtimeError``/``Trap``
  ``_from_ptr``.  No public API offers an unchecked call.  The runtime
  checks the exports' signatures through the public API before using it,
  and falls back to :func:`call_public` when these names are missing.

``tests/guest/test_guest_paths.py`` is the contract test: both paths give
identical bytes, and the fast path is in use on the wasmtime versions the
test matrix installs (the lowest and the highest supported).
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

import wasmtime

from ..exceptions import GuestError

__all__ = ["U32", "WASM32_LIMIT", "UncheckedCaller", "call_public", "to_i32",
           "wasmtime_build_id"]

WASM32_LIMIT = 1 << 32
U32 = 0xFFFFFFFF


def to_i32(value: int) -> int:
    """An unsigned 32-bit address or length as the signed i32 wasm passes."""
    if not 0 <= value <= U32:
        raise GuestError(f"value {value} does not fit in an unsigned 32-bit guest word")
    return value - WASM32_LIMIT if value > 0x7FFFFFFF else value


def wasmtime_build_id() -> str:
    """Which wasmtime build this is, for the compiled-code cache key.

    The path, size and mtime of wasmtime-py's shared library (a private
    name, ``_ffi.filename``): a stat instead of
    ``importlib.metadata.version``, whose import alone costs about 15 ms of
    start-up.  Falls back to the distribution's version.  (A module
    compiled by another build is refused by wasmtime's own check anyway,
    and then recompiled.)
    """
    try:
        from wasmtime import _ffi

        info = os.stat(_ffi.filename)
        return f"{_ffi.filename}:{info.st_size}:{info.st_mtime_ns}"
    except (ImportError, AttributeError, OSError):
        import importlib.metadata

        try:
            return importlib.metadata.version("wasmtime")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored
            return "unknown"


def call_public(func: wasmtime.Func, store: wasmtime.Store, *args: int) -> int:
    try:
        return int(func(store, *(to_i32(a) for a in args)))
    except wasmtime.Trap as exc:
        raise GuestError(f"the guest trapped: {exc.message}") from None
    except wasmtime.WasmtimeError as exc:
        raise GuestError(f"wasmtime error in the guest: {exc}") from None


class UncheckedCaller:
    """Calls exports through ``wasmtime_func_call_unchecked``."""

    def __init__(self, store: wasmtime.Store) -> None:
        from wasmtime import _bindings as ffi

        address = ctypes.cast(ffi.dll.wasmtime_func_call_unchecked, ctypes.c_void_p).value
        # Our own prototype with plain integer arguments: no per-call ctypes
        # conversions, and the GIL is released during the call.
        prototype = ctypes.CFUNCTYPE(
            ctypes.c_void_p,  # wasmtime_error_t *
            ctypes.c_void_p,  # wasmtime_context_t *
            ctypes.c_void_p,  # const wasmtime_func_t *
            ctypes.c_void_p,  # wasmtime_val_raw_t *args_and_results
            ctypes.c_size_t,
            ctypes.c_void_p,  # wasm_trap_t **
        )
        self._fn = prototype(address)
        self._fn_address = address
        self._ffi = ffi
        self._store = store
        self._context = ctypes.cast(store._context(), ctypes.c_void_p).value
        self._raw = (ffi.wasmtime_val_raw_t * 4)()
        self._raw_address = ctypes.addressof(self._raw)
        # i32 slots of the raw values, 16 bytes apart.
        stride = ctypes.sizeof(ffi.wasmtime_val_raw_t) // 4
        self._slots = (ctypes.c_int32 * (4 * stride)).from_buffer(self._raw)
        self._stride = stride
        self._trap = ctypes.c_void_p()
        self._trap_address = ctypes.addressof(self._trap)

    def address_of(self, func: wasmtime.Func) -> int:
        return ctypes.addressof(func._func)

    def __call__(self, func_address: int, *args: int) -> int:
        slots, stride = self._slots, self._stride
        for i, arg in enumerate(args):
            slots[i * stride] = to_i32(arg)
        error = self._fn(self._context, func_address, self._raw_address, 4, self._trap_address)
        if error or self._trap.value:
            self._raise(error)
        return slots[0]

    def bind1(self, func_address: int) -> Callable[[int], int]:
        """A caller for one (i32) -> i32 export: the seal/open hot path
        (the frame address), without the generic loop.

        The argument must already be an unsigned 32-bit value (the frame
        address the host placed and checked).
        """
        slots, trap, fail = self._slots, self._trap, self._raise
        # Every argument of the C call is the same on each call (the frame
        # travels in the raw slot), so they are ctypes objects made once,
        # passed to a prototype without argtypes: ctypes copies their values
        # instead of converting five Python ints (0.46 instead of 0.61 us a
        # call; bench/README.md, P1).  The partial holds them alive.
        invoke = functools.partial(
            ctypes.CFUNCTYPE(ctypes.c_void_p)(self._fn_address),  # wasmtime_error_t *
            ctypes.c_void_p(self._context),       # wasmtime_context_t *
            ctypes.c_void_p(func_address),        # const wasmtime_func_t *
            ctypes.c_void_p(self._raw_address),   # wasmtime_val_raw_t *args_and_results
            ctypes.c_size_t(4),                   # args_and_results_len
            ctypes.c_void_p(self._trap_address),  # wasm_trap_t **
        )

        def call(a: int) -> int:
            slots[0] = a - WASM32_LIMIT if a > 0x7FFFFFFF else a
            error = invoke()
            if error or trap.value:
                fail(error)
            return slots[0]

        return call

    def _raise(self, error: int | None) -> None:
        if error:
            err = wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(error, ctypes.POINTER(self._ffi.wasmtime_error_t))
            )
            raise GuestError(f"wasmtime error in the guest: {err}")
        trap = wasmtime.Trap._from_ptr(
            ctypes.cast(self._trap.value, ctypes.POINTER(self._ffi.wasm_trap_t))
        )
        self._trap.value = None
        raise GuestError(f"the guest trapped: {trap.message}")
