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

Calls go through ``wasmtime_func_call_unchecked`` (about 0.5 µs) instead of
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
import os
import platform
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime

from ..exceptions import GuestError, ValueTooLargeError
from . import (
    AEAD_FRAME_OVERHEAD,
    BLAKE2B_MAX_SIZE,
    DEFAULT_MAX_TEXT_SIZE,
    HEAD_MAX,
    KEY_SIZE,
    MAC_SIZE,
    MAX_AD_SIZE,
    NONCE_SIZE,
    PAGE_SIZE,
    PREFIX_MAX,
    RETIRE_MEMORY_SIZE,
    base64url_chars,
)
from .calls import U32 as _U32
from .calls import WASM32_LIMIT, UncheckedCaller, call_public, wasmtime_build_id

# Return codes of the guest (guest/shim.c).
MC_OK = 0
MC_EAUTH = -1
MC_EBOUNDS = -2
MC_EARG = -3
MC_EFORMAT = -4
#: A frame's result code as its first byte (little-endian i32).
_STATUS_OK, _STATUS_EAUTH, _STATUS_EFORMAT = 0, MC_EAUTH & 0xFF, MC_EFORMAT & 0xFF

# Batch and frame layout (guest/shim.c): [count u32] then, per value,
# [ad_len][text_len][head_len][prefix_len] (u32 each) and the key.
_COUNT = 4
_WORDS = 16
_KEY_AT = _COUNT + _WORDS            # key offset from the batch start
_AD_AT = _KEY_AT + KEY_SIZE          # ad offset from the batch start
_TAG = NONCE_SIZE + MAC_SIZE
_ONE = struct.Struct("<5I").pack     # count = 1 and the frame's words
_WORDS_PACK = struct.Struct("<4I").pack
_NO_MAC = bytes(MAC_SIZE)
#: Values up to this size are joined with the rest of the frame and written
#: with one copy; larger ones are written on their own (no second copy).
_JOIN_MAX = 1 << 14
_ZEROS = memoryview(bytes(_JOIN_MAX + 1024))
_ZEROS_LEN = len(_ZEROS)
#: Bytes of guest memory one batch call may use; larger batches are split.
BATCH_BYTES = 1 << 20

_I32 = wasmtime.ValType.i32()
_memset = ctypes.memset
#: name -> (number of i32 params, number of i32 results)
_EXPORTS: dict[str, tuple[int, int]] = {
    "mc_heap_base": (0, 1),
    "mc_wipe": (2, 1),
    "mc_seal": (1, 1),
    "mc_open": (1, 1),
    "mc_seal_text": (1, 1),
    "mc_open_text": (1, 1),
    "mc_blake2b": (4, 1),
}


def wasm_bytes() -> bytes:
    """The guest module shipped with the package.

    Read next to this file when the package is a directory (an installed
    wheel, a checkout): importlib.resources, for packages inside a zip,
    costs about 1.7 ms of imports the first time, on the path of every
    process's first seal (bench/README.md, P4)."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "mcfields.wasm"), "rb") as handle:
            return handle.read()
    except OSError:
        pass
    from importlib import resources

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

    Compiling takes about 10 ms and loading about 0.2 ms, on top of the
    15 ms of importing wasmtime-py, against a first-seal budget of 30 ms
    (bench/README.md, P4).
    The cache key covers the wasm bytes, wasmtime's version and the engine
    settings, and a file that fails to load is replaced.
    """
    source = wasm_bytes()
    key = hashlib.sha256(
        b"\0".join([source, wasmtime_build_id().encode(), _ENGINE_SETTINGS,
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


_ENGINE_SETTINGS = b"parallel_compilation=0;cranelift_opt_level=none"


class _Compiled:
    """The per-process Engine and Module."""

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.parallel_compilation = False
        # The wasm is already optimized by clang -O3, and Cranelift's own
        # optimizations bought nothing measurable on it (64 B and 1 MiB seal
        # and open within 1-2 %, interleaved A/B) while costing 3 ms of the
        # compile (13.5 -> 10.2 ms) that a process without cached machine
        # code pays before its first seal (bench/README.md, P4).  Measure
        # both again when the guest's C changes.
        config.cranelift_opt_level = "none"
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
        # The envelope operations call these attributes (tests replace them
        # to inject a trap).
        self._seal_call = self._calls["mc_seal"]
        self._open_call = self._calls["mc_open"]
        self._seal_text_call = self._calls["mc_seal_text"]
        self._open_text_call = self._calls["mc_open_text"]

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
        if _EXPORTS[name][0] == 1:
            return caller.bind1(address)  # seal and open: the hot path
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

    def _check_sizes(self, ad_len: int, text_len: int) -> None:
        if text_len > self.max_text_size:
            raise ValueTooLargeError(
                f"value of {text_len} bytes exceeds the maximum of {self.max_text_size} bytes"
            )
        if ad_len > MAX_AD_SIZE:
            raise ValueTooLargeError(
                f"associated data of {ad_len} bytes exceeds {MAX_AD_SIZE} bytes"
            )

    def _zero(self, start: int, end: int) -> None:
        """Zero ``[start, end)``, a range the caller bounds-checked: small
        ranges by slice assignment from a zero buffer (about 0.1 µs), large
        ones with one memset (a ctypes call costs about 0.8 µs)."""
        size = end - start
        if size <= len(_ZEROS):
            self._view[start:end] = _ZEROS[:size]
        else:
            _memset(self._base + start, 0, size)

    def wipe(self, start: int, end: int) -> None:
        """Zero ``[start, end)`` of guest memory (host side, no call)."""
        if not (self.heap_base <= start <= end <= self._size):
            raise GuestError("wipe outside guest memory")
        self._zero(start, end)

    def memory_snapshot(self) -> bytes:
        """A copy of all of linear memory (for tests of the wipe)."""
        return self._view.tobytes()

    def _refuse_nested(self) -> None:
        raise GuestError("this guest is already in use by an operation of this thread")

    # -- operations -------------------------------------------------------
    #
    # Layouts: guest/shim.c, above mc_seal.  Every address below is computed
    # on the host from self.frame and lengths it knows, and the end of the
    # frame is checked against (or grown to) the mapped memory before any
    # write; the guest checks the frame again.  No secret stays in a local
    # when an exception leaves (error reports print frame locals), and every
    # exit path leaves no key or plaintext in guest memory.

    def seal(self, key: bytes, nonce: bytes, ad: bytes, text: bytes, prefix: bytes = b"") -> bytes:
        """XChaCha20-Poly1305 lock; returns ``prefix || nonce || mac || ciphertext``
        (:meth:`seal_envelope` with no header)."""
        try:
            sealed = self.seal_envelope(key, b"", ad, text, nonce)
            return b"".join((prefix, sealed)) if prefix else sealed
        except BaseException:
            key = text = None  # error reports print every frame's locals
            raise

    def seal_envelope(self, key: bytes, header: bytes, ad: bytes, text: bytes,
                      nonce: bytes) -> bytes:
        """``header || nonce || mac || ciphertext``, sealed with associated
        data ``header || ad`` (the envelope, docs/FORMAT.md).

        Written out, without a helper shared with :meth:`seal_text`: this
        is the crypto API's seal (bench/README.md, P1), where each method
        call and attribute load is a measurable share of the 2-3 us an
        operation takes."""
        if self._busy:
            del key, text
            self._refuse_nested()
        try:
            self._busy = True
            head_len = len(header)
            if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE or head_len > HEAD_MAX:
                raise ValueError("key must be 32 bytes, nonce 24 and header at most 16")
            ad_len, text_len = head_len + len(ad), len(text)
            if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                self._check_sizes(ad_len, text_len)
            frame = self.frame
            nonce_at = frame + _AD_AT + ad_len
            end = nonce_at + _TAG + text_len
            if end > self._size:
                self._ensure(end)
            view = self._view
            try:
                if text_len <= _JOIN_MAX:
                    view[frame:end] = b"".join(
                        (_ONE(1, ad_len, text_len, head_len, 0), key, header, ad, nonce,
                         _NO_MAC, text))
                else:
                    view[frame:nonce_at + _TAG] = b"".join(
                        (_ONE(1, ad_len, text_len, head_len, 0), key, header, ad, nonce,
                         _NO_MAC))
                    view[nonce_at + _TAG:end] = text
                rc = self._seal_call(frame)
                if rc != MC_OK:
                    raise GuestError(f"guest seal failed with code {rc}")
            except BaseException:
                # The guest may not have run, or not to its wipe.
                self._zero(frame, end)
                raise
            # Key and ad were wiped by the guest, the plaintext overwritten
            # in place: what remains is the public envelope.
            return view[nonce_at - head_len:end].tobytes()
        except BaseException:
            key = text = None  # error reports print every frame's locals
            raise
        finally:
            self._busy = False

    def _seal_text_one(self, key: bytes, header: bytes, ad: bytes, text: bytes,
                       nonce: bytes, text_prefix: bytes) -> str:
        try:
            head_len = len(header)
            ad_len, text_len = head_len + len(ad), len(text)
            if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                self._check_sizes(ad_len, text_len)
            frame = self.frame
            text_at = frame + _AD_AT + ad_len + _TAG
            end = text_at + text_len
            out_end = end + len(text_prefix) + base64url_chars(head_len + _TAG + text_len)
            words = _ONE(1, ad_len, text_len, head_len, len(text_prefix))
            if out_end > self._size:
                self._ensure(out_end)
            view = self._view
            try:
                if text_len <= _JOIN_MAX:
                    view[frame:end] = b"".join((words, key, header, ad, nonce, _NO_MAC, text))
                else:
                    view[frame:text_at] = b"".join((words, key, header, ad, nonce, _NO_MAC))
                    view[text_at:end] = text
                view[end:end + len(text_prefix)] = text_prefix
                rc = self._seal_text_call(frame)
                if rc != MC_OK:
                    raise GuestError(f"guest seal failed with code {rc}")
            except BaseException:
                # The guest may not have run, or not to its wipe.
                self._zero(frame, out_end)
                del key, text
                raise
            # The plaintext was overwritten in place; key and ad were wiped by
            # the guest; what remains is the envelope's public text.
            return str(view[end:out_end], "ascii")
        except BaseException:
            key = text = None  # error reports print every frame's locals
            raise

    def seal_text(self, key: bytes, header: bytes, ad: bytes, text: bytes, nonce: bytes,
                  text_prefix: bytes) -> str:
        """The envelope of :meth:`seal_envelope` as ``text_prefix`` + unpadded
        base64url (encoded by the guest)."""
        if self._busy:
            del key, text
            self._refuse_nested()
        try:
            self._busy = True
            if (len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE or len(header) > HEAD_MAX
                    or len(text_prefix) > PREFIX_MAX):
                raise ValueError("bad key, nonce, header or prefix size")
            return self._seal_text_one(key, header, ad, text, nonce, text_prefix)
        except BaseException:
            del key, text
            raise
        finally:
            self._busy = False

    def open(self, key: bytes, ad: bytes, sealed: bytes | memoryview) -> bytes | None:
        """XChaCha20-Poly1305 unlock of ``nonce || mac || ciphertext``.

        Returns the plaintext, or ``None`` if the MAC does not verify.
        """
        try:
            result = self.open_envelope(key, b"", ad, sealed)
            return None if result.__class__ is int else result
        except BaseException:
            key = None  # not left for error reports to print
            raise

    def open_envelope(self, key: bytes, header: bytes, ad: bytes,
                      envelope: bytes | memoryview) -> bytes | int:
        """The plaintext of ``envelope`` (``header || nonce || mac ||
        ciphertext``) opened with associated data ``header || ad``, or
        ``MC_EAUTH`` when it does not verify.  ``header`` is the header the
        caller expects; the envelope's own first ``len(header)`` bytes are
        what is authenticated.

        Written out, as :meth:`seal_envelope` is: the crypto API's open."""
        if self._busy:
            del key
            self._refuse_nested()
        try:
            self._busy = True
            head_len = len(header)
            if len(key) != KEY_SIZE or head_len > HEAD_MAX:
                raise ValueError("key must be 32 bytes and header at most 16")
            ad_len = head_len + len(ad)
            sealed_len = len(envelope)
            text_len = sealed_len - head_len - _TAG
            if text_len < 0:
                return MC_EAUTH
            if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                self._check_sizes(ad_len, text_len)
            frame = self.frame
            end = frame + _AD_AT + ad_len + sealed_len
            text_at = end - text_len
            if end > self._size:
                self._ensure(end)
            view = self._view
            try:
                if text_len <= _JOIN_MAX:
                    view[frame:end] = b"".join(
                        (_ONE(1, ad_len, text_len, head_len, 0), key, header, ad, envelope))
                else:
                    view[frame:end - sealed_len] = b"".join(
                        (_ONE(1, ad_len, text_len, head_len, 0), key, header, ad))
                    view[end - sealed_len:end] = envelope
                rc = self._open_call(frame)
                if rc != MC_OK:
                    raise GuestError(f"guest open failed with code {rc}")
                status = view[frame + _COUNT]
                if status == _STATUS_OK:
                    return view[text_at:end].tobytes()
                if status != _STATUS_EAUTH:
                    raise GuestError(f"guest open failed with status {status}")
                return MC_EAUTH
            except BaseException:
                # Key and ad are still there unless the guest ran to its wipe
                # (a trap, KeyboardInterrupt, or a frame the guest refused).
                self._zero(frame, text_at)
                raise
            finally:
                # The decrypted text is ours to wipe once copied out.
                if text_len <= _ZEROS_LEN:
                    view[text_at:end] = _ZEROS[:text_len]
                else:
                    _memset(self._base + text_at, 0, text_len)
        except BaseException:
            key = None  # error reports print every frame's locals
            raise
        finally:
            self._busy = False

    def open_text(self, key: bytes, header: bytes, ad: bytes, stored: str,
                  prefix_len: int) -> bytes | int:
        """The plaintext of ``stored`` (a ``prefix_len``-character prefix,
        then the unpadded base64url of an envelope that starts with
        ``header``), decoded strictly by the guest: ``MC_EFORMAT`` unless the
        text is canonical base64url of an envelope with this header,
        ``MC_EAUTH`` unless it verifies.  The caller checks the prefix."""
        if self._busy:
            del key
            self._refuse_nested()
        try:
            self._busy = True
            if len(key) != KEY_SIZE or len(header) > HEAD_MAX or not 0 <= prefix_len <= PREFIX_MAX:
                raise ValueError("bad key, header or prefix size")
            return self._open_text_one(key, header, ad, stored, prefix_len)
        except BaseException:
            del key
            raise
        finally:
            self._busy = False

    def _open_text_one(self, key: bytes, header: bytes, ad: bytes, stored: str,
                       prefix_len: int) -> bytes | int:
        try:
            try:
                chars = stored.encode("ascii")
            except UnicodeEncodeError:
                return MC_EFORMAT
            body = len(chars) - prefix_len
            if body % 4 == 1:
                return MC_EFORMAT  # no base64 text has this length
            head_len = len(header)
            text_len = body * 3 // 4 - head_len - _TAG
            if text_len < 0:
                return MC_EFORMAT  # shorter than any envelope: the codec says so
            ad_len = head_len + len(ad)
            if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                self._check_sizes(ad_len, text_len)
            frame = self.frame
            nonce_at = frame + _AD_AT + ad_len
            text_at = nonce_at + _TAG
            end = text_at + text_len
            chars_end = end + len(chars)
            if chars_end > self._size:
                self._ensure(chars_end)
            view = self._view
            try:
                view[frame:nonce_at] = b"".join(
                    (_ONE(1, ad_len, text_len, head_len, prefix_len), key, header, ad))
                view[end:chars_end] = chars
                rc = self._open_text_call(frame)
                if rc != MC_OK:
                    raise GuestError(f"guest open failed with code {rc}")
                status = view[frame + _COUNT]
                if status == _STATUS_OK:
                    return view[text_at:end].tobytes()
                if status == _STATUS_EAUTH:
                    return MC_EAUTH
                if status == _STATUS_EFORMAT:
                    return MC_EFORMAT
                raise GuestError(f"guest open failed with status {status}")
            except BaseException:
                self._zero(frame, text_at)
                del key
                raise
            finally:
                self._zero(text_at, end)
        except BaseException:
            key = None  # error reports print every frame's locals
            raise

    # -- many values per call ----------------------------------------------

    def seal_many(self, key: bytes, header: bytes, items: list[tuple[bytes, bytes]],
                  nonces: bytes, text_prefix: bytes | None = None) -> list[bytes] | list[str]:
        """:meth:`seal_envelope` (or :meth:`seal_text` with ``text_prefix``)
        of each ``(ad, text)`` in ``items``, with the nonces in ``nonces``
        (24 bytes each, in order), in as few guest calls as fit in
        ``BATCH_BYTES`` of guest memory."""
        if self._busy:
            del key, items
            self._refuse_nested()
        try:
            self._busy = True
            if (len(key) != KEY_SIZE or len(header) > HEAD_MAX
                    or len(nonces) != NONCE_SIZE * len(items)
                    or (text_prefix is not None and len(text_prefix) > PREFIX_MAX)):
                raise ValueError("bad key, header, nonces or prefix size")
            out: list = []
            for start, stop in self._chunks(items, text_prefix is not None, len(header)):
                self._seal_chunk(key, header, items, start, stop, nonces, text_prefix, out)
            return out
        except BaseException:
            del key, items
            raise
        finally:
            self._busy = False

    def _chunks(self, items: list, text: bool, head_len: int) -> list[tuple[int, int]]:
        """Index ranges of ``items`` whose frames fit in BATCH_BYTES each (a
        single larger value gets a call of its own)."""
        chunks, start, used = [], 0, 0
        extra = _WORDS + KEY_SIZE + head_len + _TAG + (PREFIX_MAX if text else 0)
        for i, (ad, text_or_env) in enumerate(items):
            size = extra + len(ad) + len(text_or_env) * (2 if text else 1)
            if used and used + size > BATCH_BYTES:
                chunks.append((start, i))
                start, used = i, 0
            used += size
        if start < len(items) or not items:
            chunks.append((start, len(items)))
        return chunks

    def _seal_chunk(self, key: bytes, header: bytes, items: list, start: int, stop: int,
                    nonces: bytes, text_prefix: bytes | None, out: list) -> None:
        head_len = len(header)
        prefix_len = 0 if text_prefix is None else len(text_prefix)
        frame = self.frame
        parts: list = [struct.pack("<I", stop - start)]
        spans = []
        at = frame + _COUNT
        for i in range(start, stop):
            ad, text = items[i]
            ad_len, text_len = head_len + len(ad), len(text)
            if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                self._check_sizes(ad_len, text_len)
            nonce_at = at + _WORDS + KEY_SIZE + ad_len
            end = nonce_at + _TAG + text_len
            parts += (_WORDS_PACK(ad_len, text_len, head_len, prefix_len), key, header, ad,
                      nonces[i * NONCE_SIZE:(i + 1) * NONCE_SIZE], _NO_MAC, text)
            if text_prefix is None:
                spans.append((nonce_at - head_len, end))
                at = end
            else:
                parts.append(text_prefix)
                at = end + prefix_len + base64url_chars(head_len + _TAG + text_len)
                parts.append(bytes(at - end - prefix_len))
                spans.append((end, at))
        if at > self._size:
            self._ensure(at)
        view = self._view
        try:
            view[frame:at] = b"".join(parts)
            del parts
            call = self._seal_call if text_prefix is None else self._seal_text_call
            rc = call(frame)
            if rc != MC_OK:
                raise GuestError(f"guest seal failed with code {rc}")
        except BaseException:
            self._zero(frame, at)
            raise
        if text_prefix is None:
            out += [view[a:b].tobytes() for a, b in spans]
        else:
            out += [str(view[a:b], "ascii") for a, b in spans]

    def open_many(self, items: list[tuple[bytes, bytes, bytes, bytes | str]],
                  prefix_len: int | None = None) -> list[bytes | int]:
        """:meth:`open_envelope` (or, with ``prefix_len``, :meth:`open_text`)
        of each ``(key, header, ad, envelope)``: per value the plaintext or
        its status (``MC_EAUTH``, ``MC_EFORMAT``), in as few guest calls as
        fit in ``BATCH_BYTES``."""
        if self._busy:
            del items
            self._refuse_nested()
        try:
            self._busy = True
            if prefix_len is not None and not 0 <= prefix_len <= PREFIX_MAX:
                raise ValueError("bad prefix size")
            out: list = [MC_EFORMAT] * len(items)
            todo: list[tuple[int, tuple]] = []
            for i, (key, header, ad, value) in enumerate(items):
                if len(key) != KEY_SIZE or len(header) > HEAD_MAX:
                    raise ValueError("key must be 32 bytes and header at most 16")
                if prefix_len is not None:
                    try:
                        value = value.encode("ascii")
                    except (UnicodeEncodeError, AttributeError):
                        continue  # stays MC_EFORMAT
                    body = len(value) - prefix_len
                    if body < 0 or body % 4 == 1:
                        continue
                    text_len = body * 3 // 4 - len(header) - _TAG
                else:
                    text_len = len(value) - len(header) - _TAG
                if text_len < 0:
                    out[i] = MC_EFORMAT if prefix_len is not None else MC_EAUTH
                    continue
                ad_len = len(header) + len(ad)
                if text_len > self.max_text_size or ad_len > MAX_AD_SIZE:
                    self._check_sizes(ad_len, text_len)
                todo.append((i, (key, header, ad, value, text_len)))
            key = value = None
            pending = [(ad, value) for _, (_, _, ad, value, _) in todo]
            for start, stop in self._chunks(pending, False, HEAD_MAX):
                self._open_chunk(todo[start:stop], prefix_len, out)
            return out
        except BaseException:
            del items
            key = value = todo = None
            raise
        finally:
            self._busy = False

    def _open_chunk(self, todo: list, prefix_len: int | None, out: list) -> None:
        frame = self.frame
        text = prefix_len is not None
        parts: list = [struct.pack("<I", len(todo))]
        spans = []
        at = frame + _COUNT
        for _, (key, header, ad, value, text_len) in todo:
            head_len = len(header)
            ad_len = head_len + len(ad)
            if text:
                nonce_at = at + _WORDS + KEY_SIZE + ad_len
                end = nonce_at + _TAG + text_len
                parts += (_WORDS_PACK(ad_len, text_len, head_len, prefix_len), key, header, ad,
                          bytes(_TAG + text_len), value)
                spans.append((at, end - text_len, end))
                at = end + len(value)
            else:
                end = at + _WORDS + KEY_SIZE + ad_len + len(value)
                parts += (_WORDS_PACK(ad_len, text_len, head_len, 0), key, header, ad, value)
                spans.append((at, end - text_len, end))
                at = end
        key = None
        if at > self._size:
            self._ensure(at)
        view = self._view
        try:
            view[frame:at] = b"".join(parts)
            del parts
            rc = (self._open_text_call if text else self._open_call)(frame)
            if rc != MC_OK:
                raise GuestError(f"guest open failed with code {rc}")
            for (i, _), (frame_at, text_at, end) in zip(todo, spans, strict=True):
                status = view[frame_at]
                if status == _STATUS_OK:
                    out[i] = view[text_at:end].tobytes()
                elif status == _STATUS_EAUTH:
                    out[i] = MC_EAUTH
                elif status == _STATUS_EFORMAT:
                    out[i] = MC_EFORMAT
                else:
                    raise GuestError(f"guest open failed with status {status}")
        finally:
            # Plaintexts copied out (or not), keys and ads of frames the
            # guest did not reach: the whole batch goes.
            self._zero(frame, at)

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
