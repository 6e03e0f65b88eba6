"""Run the Monocypher guest inside wasmtime, safely and with little overhead.

Ownership (see docs/ARCHITECTURE.md):

* one ``Engine`` + ``Module`` per process, compiled on first use with
  parallel compilation off, and rebuilt in a forked child (a compile thread
  pool inherited across ``fork()`` can hang the child);
* one ``Store`` + ``Instance`` (a :class:`Guest`) per thread: stores are not
  thread-safe, and ctypes drops the GIL during a call;
* a spare guest for a seal/open that starts while this thread's guest is in
  use (a signal handler or a finalizer running in the middle of one), since
  the nested call would overwrite the frame of the interrupted one;
* a thread's guest whose memory grew past ``RETIRE_MEMORY_SIZE`` is dropped
  after that operation: linear memory never shrinks.

Calls go through ``wasmtime_func_call_unchecked`` (about 2 µs) instead of
``Func.__call__``, which re-reads the function's type on every call (tens of
µs).  That entry point is reached through wasmtime-py's private bindings, so
it is used only after the export signatures were checked through the public
API, and the public path remains as a fallback (``unchecked=False``).

Every address is computed on the host from the frame it placed and from
lengths it knows, as unsigned integers, and bounds-checked against the
current size of linear memory before any access; the guest checks the frame
again.  Nothing read back from the guest is used as an address without
masking it to 32 bits and checking it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import os
import platform
import stat
import tempfile
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import wasmtime

from ..exceptions import GuestError, ValueTooLargeError
from .calls import U32 as _U32
from .calls import WASM32_LIMIT, UncheckedCaller, call_public

# The sizes of XChaCha20-Poly1305, defined once for every layer; the
# guest's own #defines (guest/shim.c) are checked against these by
# tests/guest/test_guest_build.py.
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
#: A thread's guest whose linear memory grew beyond this is dropped (and its
#: Store freed) once the operation that grew it is over; the thread gets a
#: fresh guest next time.  Below it, memory is kept for reuse.
RETIRE_MEMORY_SIZE = 4 << 20
PAGE_SIZE = 1 << 16

# Return codes of the guest (guest/shim.c).
MC_OK = 0
MC_EAUTH = -1
MC_EBOUNDS = -2
MC_EARG = -3

_I32 = wasmtime.ValType.i32()
_memset = ctypes.memset
#: name -> (number of i32 params, number of i32 results)
_EXPORTS: dict[str, tuple[int, int]] = {
    "mc_heap_base": (0, 1),
    "mc_wipe": (2, 1),
    "mc_seal": (3, 1),
    "mc_open": (3, 1),
    "mc_blake2b": (4, 1),
}


def wasm_bytes() -> bytes:
    """The guest module shipped with the package."""
    try:
        return resources.files(__package__).joinpath("mcfields.wasm").read_bytes()
    except FileNotFoundError:
        raise GuestError(
            "mcfields/_guest/mcfields.wasm is missing: build it with "
            "`python guest/build.py` (or install mcfields from a wheel)"
        ) from None


def _cache_dir() -> Path | None:
    """Private directory for compiled code, or None when caching is off.

    ``MCFIELDS_CACHE_DIR`` chooses it (an empty value turns caching off);
    the default is ``$XDG_CACHE_HOME/mcfields`` or ``~/.cache/mcfields``.
    A directory that another user owns or can write to is not used, since
    loading compiled code from it would run that user's code.
    """
    configured = os.environ.get("MCFIELDS_CACHE_DIR")
    if configured is not None:
        if not configured:
            return None
        path = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "mcfields"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return path


def _load_module(engine: wasmtime.Engine) -> wasmtime.Module:
    """Compile the guest, or load the machine code cached by an earlier process.

    Compiling takes about 25 ms and loading about 1 ms, which is the
    difference between meeting the first-seal budget (bench/README.md, P4: 30 ms) or not.
    The cache key covers the wasm bytes, wasmtime's version and the engine
    settings, and a file that fails to load is replaced.
    """
    source = wasm_bytes()
    key = hashlib.sha256(
        b"\0".join([source, _WASMTIME_VERSION.encode(), _ENGINE_SETTINGS,
                    platform.machine().encode()])
    ).hexdigest()[:32]
    cache = _cache_dir()
    cached = cache / f"guest-{key}.cwasm" if cache else None
    if cached is not None and cached.is_file():
        try:
            return wasmtime.Module.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError:
            pass
    try:
        module = wasmtime.Module(engine, source)
    except wasmtime.WasmtimeError as exc:
        raise GuestError(f"the guest module failed to compile: {exc}") from None
    if cached is not None:
        try:
            fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".guest-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(module.serialize())
            os.replace(tmp, cached)
        except (OSError, wasmtime.WasmtimeError):
            pass
    return module


try:
    _WASMTIME_VERSION = importlib.metadata.version("wasmtime")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored wasmtime
    _WASMTIME_VERSION = "unknown"
_ENGINE_SETTINGS = b"parallel_compilation=0;cranelift_opt_level=speed"


class _Compiled:
    """The per-process Engine and Module."""

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.parallel_compilation = False
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.module = _load_module(self.engine)
        self._check_exports()

    def _check_exports(self) -> None:
        # The unchecked call trusts these signatures, so verify them once.
        found = {exp.name: exp.type for exp in self.module.exports}
        for name, (n_params, n_results) in _EXPORTS.items():
            ty = found.get(name)
            if not isinstance(ty, wasmtime.FuncType):
                raise GuestError(f"guest export {name} is missing")
            params, results = ty.params, ty.results
            if len(params) != n_params or len(results) != n_results or any(
                str(t) != str(_I32) for t in (*params, *results)
            ):
                raise GuestError(f"guest export {name} has an unexpected signature")
        if not isinstance(found.get("memory"), wasmtime.MemoryType):
            raise GuestError("guest does not export its memory")


_state_lock = threading.Lock()
_compiled: _Compiled | None = None
_local = threading.local()
# Objects inherited from the parent across fork() are never freed in the
# child: their destructors could wait on locks held by parent threads.
_abandoned: list[Any] = []


def _compiled_module() -> _Compiled:
    global _compiled
    compiled = _compiled
    if compiled is None:
        with _state_lock:
            if _compiled is None:
                _compiled = _Compiled()
            compiled = _compiled
    return compiled


def _reset_after_fork() -> None:
    global _compiled, _local, _state_lock
    _abandoned.append((_compiled, _local))
    _compiled = None
    _local = threading.local()
    _state_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def preload() -> None:
    """Import-time work done early: compile (or load from cache) the module.

    Called from the app's ``ready()`` so that the first seal of a process
    does not pay for it (bench/README.md, P4: 30 ms).
    """
    _compiled_module()


def get_guest() -> Guest:
    """This thread's guest, created on first use, or a spare guest of this
    thread when that one is in the middle of an operation.

    Only a signal handler or a finalizer can find the guest busy (each thread
    has its own): it runs between two bytecodes of the interrupted seal or
    open, and runs to completion before that one resumes, so a spare that is
    not busy is free until the nested call returns.
    """
    try:
        guest = _local.guest
    except AttributeError:
        guest = _local.guest = _pooled_guest()
    if guest._busy:
        return _spare_guest()
    return guest


def _pooled_guest() -> Guest:
    guest = Guest()
    guest._pooled = True
    return guest


def _spare_guest() -> Guest:
    spares: list[Guest] = _local.__dict__.setdefault("spares", [])
    for guest in spares:
        if not guest._busy:
            return guest
    guest = _pooled_guest()
    spares.append(guest)
    return guest


def _retire(guest: Guest) -> None:
    """Forget ``guest`` in this thread's pool.  It is freed when the
    operation using it returns (nothing else refers to it), not here: the
    interrupted caller of a nested call may still be using it."""
    guest._pooled = False
    local = _local
    if local.__dict__.get("guest") is guest:
        del local.guest
    spares = local.__dict__.get("spares")
    if spares:
        spares[:] = [g for g in spares if g is not guest]


class Guest:
    """One instance of the guest with its own Store; use from one thread only.

    ``frame_offset`` places the frame at a chosen address (tests use it to put
    the frame above 2 GiB); by default it starts at the guest's heap base.

    One operation at a time: ``seal``/``open``/``blake2b`` raise GuestError
    when called while another one is in progress on the same guest (from a
    signal handler or a finalizer); ``get_guest()`` hands such callers a
    spare guest instead.

    No secret is kept in a local variable when an exception leaves one of
    these methods (error reports such as Django's print the locals of every
    frame), and the frame in guest memory is wiped on every exit path.
    """

    #: An operation is between its copy-in and its copy-out.
    _busy = False
    #: Managed by get_guest(): dropped after growing past RETIRE_MEMORY_SIZE.
    _pooled = False

    def __init__(
        self,
        *,
        max_text_size: int = DEFAULT_MAX_TEXT_SIZE,
        frame_offset: int | None = None,
        unchecked: bool | None = None,
    ) -> None:
        compiled = _compiled_module()
        self.max_text_size = max_text_size
        store = self._store = wasmtime.Store(compiled.engine)
        base_limit = (frame_offset or 0) + AEAD_FRAME_OVERHEAD + MAX_AD_SIZE + max_text_size
        self._memory_limit = min(-(-(base_limit + (1 << 20)) // PAGE_SIZE) * PAGE_SIZE,
                                 WASM32_LIMIT)
        store.set_limits(memory_size=self._memory_limit)
        try:
            instance = wasmtime.Instance(store, compiled.module, [])
        except wasmtime.WasmtimeError as exc:
            raise GuestError(f"the guest failed to instantiate: {exc}") from None
        exports = instance.exports(store)
        self._memory: wasmtime.Memory = exports["memory"]
        self._funcs: dict[str, wasmtime.Func] = {name: exports[name] for name in _EXPORTS}

        self._caller: UncheckedCaller | None = None
        if unchecked is None or unchecked:
            try:
                self._caller = UncheckedCaller(store)
            except (ImportError, AttributeError):
                if unchecked:
                    raise
        self.unchecked = self._caller is not None
        self._calls: dict[str, Callable[..., int]] = {
            name: self._bind(name) for name in _EXPORTS
        }
        self._seal_call = self._calls["mc_seal"]
        self._open_call = self._calls["mc_open"]

        self.heap_base = self._calls["mc_heap_base"]() & _U32
        frame = self.heap_base if frame_offset is None else frame_offset
        if frame < self.heap_base or frame >= WASM32_LIMIT:
            raise GuestError(f"frame offset {frame} is outside the guest heap")
        self.frame = frame
        self._map_memory()

    # -- calls ------------------------------------------------------------

    def _bind(self, name: str) -> Callable[..., int]:
        caller = self._caller
        if caller is None:
            # Not a bound method of self: a Guest -> partial -> Guest cycle
            # would keep a dropped guest's Store until a cyclic collection.
            return functools.partial(call_public, self._funcs[name], self._store)
        address = caller.address_of(self._funcs[name])
        if _EXPORTS[name][0] == 3:
            return caller.bind3(address)  # mc_seal / mc_open: the hot path
        return functools.partial(caller, address)

    def __repr__(self) -> str:
        # Never the memory: error reports print the guests in their frames.
        state = " busy" if self._busy else ""
        return (f"<Guest frame={getattr(self, 'frame', None)} "
                f"memory={getattr(self, '_size', None)}{state}>")

    @property
    def memory_size(self) -> int:
        """Current size of linear memory, in bytes."""
        return self._size

    # -- memory -----------------------------------------------------------

    def _map_memory(self) -> None:
        size = self._memory.data_len(self._store)
        address = ctypes.cast(self._memory.data_ptr(self._store), ctypes.c_void_p).value
        if not address or size > WASM32_LIMIT:
            raise GuestError("guest memory is not mapped")
        self._base = address
        self._size = size
        self._view = memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")

    def _ensure(self, end: int) -> None:
        """Grow linear memory so that ``[0, end)`` is addressable."""
        if end > self._memory_limit:
            raise ValueTooLargeError(
                f"a frame of {end - self.frame} bytes exceeds the guest memory cap of "
                f"{self._memory_limit} bytes"
            )
        if end <= self._size:
            return
        pages = -(-(end - self._size) // PAGE_SIZE)
        try:
            self._memory.grow(self._store, pages)
        except wasmtime.WasmtimeError:
            raise ValueTooLargeError(
                f"guest memory cannot grow to {end} bytes (cap {self._memory_limit})"
            ) from None
        self._map_memory()
        if self._pooled and self._size > RETIRE_MEMORY_SIZE:
            # Only growth gets here, so the hot path pays nothing for this.
            _retire(self)

    def _aead_layout(self, ad_len: int, text_len: int) -> tuple[int, int, int, int]:
        """Frame start, nonce, text and end addresses (guest/shim.c layout),
        after checking the sizes and growing memory to hold them."""
        if text_len > self.max_text_size:
            raise ValueTooLargeError(
                f"value of {text_len} bytes exceeds the maximum of {self.max_text_size} bytes"
            )
        if ad_len > MAX_AD_SIZE:
            raise ValueTooLargeError(
                f"associated data of {ad_len} bytes exceeds {MAX_AD_SIZE} bytes"
            )
        frame = self.frame
        nonce_at = frame + KEY_SIZE + ad_len
        text_at = nonce_at + NONCE_SIZE + MAC_SIZE
        end = text_at + text_len
        if end > self._size:
            self._ensure(end)
        return frame, nonce_at, text_at, end

    def wipe(self, start: int, end: int) -> None:
        """Zero ``[start, end)`` of guest memory (host side, no call)."""
        if not (self.heap_base <= start <= end <= self._size):
            raise GuestError("wipe outside guest memory")
        ctypes.memset(self._base + start, 0, end - start)

    def memory_snapshot(self) -> bytes:
        """A copy of all of linear memory (for tests of the wipe)."""
        return self._view.tobytes()

    # -- operations -------------------------------------------------------

    def seal(self, key: bytes, nonce: bytes, ad: bytes, text: bytes, prefix: bytes = b"") -> bytes:
        """XChaCha20-Poly1305 lock; returns ``prefix || nonce || mac || ciphertext``.

        ``prefix`` (e.g. the envelope header) is joined in the one copy out of
        guest memory: concatenating it afterwards would allocate and fill a
        second buffer of the value's size (about 0.7 ms for 1 MiB).
        """
        if self._busy:
            # Not inside the try below: its finally would mark the
            # operation in progress as done.
            del key, text
            raise GuestError("this guest is already in use by an operation of this thread")
        try:
            # Set inside the try, so that an exception arriving here (a
            # signal) cannot leave the guest marked busy for good.
            self._busy = True
            if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
                raise ValueError("key must be 32 bytes and nonce 24 bytes")
            ad_len, text_len = len(ad), len(text)
            frame, nonce_at, text_at, end = self._aead_layout(ad_len, text_len)
            try:
                view = self._view
                view[frame:nonce_at + NONCE_SIZE] = b"".join((key, ad, nonce))
                view[text_at:end] = text
                rc = self._seal_call(frame, ad_len, text_len)
                if rc != MC_OK:
                    raise GuestError(f"guest seal failed with code {rc}")
            except BaseException:
                # The guest may not have run, or not to its wipe.  The range
                # was bounds-checked by _aead_layout.
                _memset(self._base + frame, 0, end - frame)
                raise
            # The plaintext was overwritten in place; key and ad were wiped by
            # the guest; what remains is the public ciphertext.
            return b"".join((prefix, view[nonce_at:end]))
        except BaseException:
            # Error reports print every frame's locals: not these.
            del key, text
            raise
        finally:
            self._busy = False

    def open(self, key: bytes, ad: bytes, sealed: bytes | memoryview) -> bytes | None:
        """XChaCha20-Poly1305 unlock of ``nonce || mac || ciphertext``.

        Returns the plaintext, or ``None`` if the MAC does not verify.
        """
        if self._busy:
            # Not inside the try below: its finally would mark the
            # operation in progress as done.
            del key
            raise GuestError("this guest is already in use by an operation of this thread")
        try:
            self._busy = True
            if len(key) != KEY_SIZE:
                raise ValueError("key must be 32 bytes")
            ad_len = len(ad)
            text_len = len(sealed) - NONCE_SIZE - MAC_SIZE
            if text_len < 0:
                return None
            frame, nonce_at, text_at, end = self._aead_layout(ad_len, text_len)
            try:
                view = self._view
                view[frame:nonce_at] = key + ad
                view[nonce_at:end] = sealed
                rc = self._open_call(frame, ad_len, text_len)
                if rc == MC_OK:
                    return view[text_at:end].tobytes()
                if rc != MC_EAUTH:
                    raise GuestError(f"guest open failed with code {rc}")
            except BaseException:
                # Key and ad are still there unless the guest ran to its wipe
                # (a trap, KeyboardInterrupt, or a frame the guest refused).
                _memset(self._base + frame, 0, end - frame)
                raise
            finally:
                # The decrypted text is ours to wipe once copied out (one
                # memset, cheaper than another call).  The range was
                # bounds-checked by _aead_layout.
                _memset(self._base + text_at, 0, end - text_at)
            return None
        except BaseException:
            del key  # not left for error reports to print
            raise
        finally:
            self._busy = False

    def blake2b(self, key: bytes, message: bytes, size: int) -> bytes:
        """Keyed BLAKE2b (RFC 7693) with a ``size``-byte digest."""
        if self._busy:
            # Not inside the try below: its finally would mark the
            # operation in progress as done.
            del key
            raise GuestError("this guest is already in use by an operation of this thread")
        try:
            self._busy = True
            if not 1 <= size <= BLAKE2B_MAX_SIZE or len(key) > BLAKE2B_MAX_SIZE:
                raise ValueError("BLAKE2b digest must be 1..64 bytes and key at most 64 bytes")
            frame = self.frame
            end = frame + size + len(key) + len(message)
            if end > self._size:
                self._ensure(end)
            try:
                view = self._view
                view[frame + size:end] = key + message
                rc = self._calls["mc_blake2b"](frame, size, len(key), len(message))
                if rc != MC_OK:
                    raise GuestError(f"guest blake2b failed with code {rc}")
                return view[frame:frame + size].tobytes()
            finally:
                self.wipe(frame, end)
        except BaseException:
            del key  # not left for error reports to print
            raise
        finally:
            self._busy = False
