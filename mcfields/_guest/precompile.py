"""The guest's compiled-module cache, and compiling into it while wasmtime-py
is still being imported.  Imports nothing of wasmtime-py.

A process that finds no compiled guest in the cache (bench/README.md, P4
"cold") pays for two things before its first seal: importing wasmtime-py
(about 15 ms, mostly the ctypes declarations of its whole C API, in Python,
holding the GIL) and compiling the guest (about 12 ms, in Cranelift, native
code).  They do not depend on each other, so :func:`start` compiles on a
helper thread, through a handful of C functions bound here with ctypes
(loading the shared library is 0.6 ms), while the importing thread goes on;
the runtime then loads the result from the cache file as a warm process
would.  On a machine with a free core the two overlap.

Fork safety (why ``parallel_compilation`` stays off in the runtime): no
compile may be in flight when the process forks, or the child could inherit
a lock that the compiling thread held.  A fork waits for a pending compile
(``os.register_at_fork(before=...)``), and the runtime waits for it before
its first call returns, so a compile is only in flight during that call.

The engine settings are the runtime's (``ENGINE_SETTINGS``); if the file
written here is not one the runtime's engine accepts, the runtime compiles
again and replaces it, as for any unusable cache file.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import platform
import stat
import sys
import tempfile
import threading
from pathlib import Path

#: Part of the cache key; the runtime's engine is configured to match.
ENGINE_SETTINGS = b"parallel_compilation=0;cranelift_opt_level=speed"
_OPT_LEVEL_SPEED = 1  # wasmtime_opt_level_t: NONE, SPEED, SPEED_AND_SIZE


def wasm_bytes() -> bytes | None:
    """The guest module next to this file, or None (a zipped package: the
    runtime reads it through importlib.resources then)."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "mcfields.wasm"), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def library_path() -> str | None:
    """wasmtime-py's shared library, found as wasmtime-py's ``_ffi`` finds it,
    without importing wasmtime-py."""
    try:
        spec = importlib.util.find_spec("wasmtime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    system = sys.platform
    names = {"linux": "_libwasmtime.so", "win32": "_wasmtime.dll",
             "darwin": "_libwasmtime.dylib"}
    if system not in names:
        return None
    machine = platform.machine()
    machine = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)
    path = os.path.join(os.path.dirname(spec.origin), f"{system}-{machine}", names[system])
    return path if os.path.isfile(path) else None


def build_id() -> str:
    """Which wasmtime build this is, for the cache key: the path, size and
    mtime of its shared library (a stat instead of
    ``importlib.metadata.version``, whose import alone costs about 15 ms of
    start-up), else the distribution's version.  (A module compiled by
    another build is refused by wasmtime's own check anyway, and then
    recompiled.)"""
    path = library_path()
    if path is not None:
        try:
            info = os.stat(path)
            return f"{path}:{info.st_size}:{info.st_mtime_ns}"
        except OSError:
            pass
    import importlib.metadata

    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored
        return "unknown"


def cache_dir() -> Path | None:
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


def cache_file(directory: Path, source: bytes) -> Path:
    """The file for ``source`` compiled by this wasmtime build, these
    engine settings, on this machine."""
    key = hashlib.sha256(
        b"\0".join([source, build_id().encode(), ENGINE_SETTINGS, platform.machine().encode()])
    ).hexdigest()[:32]
    return directory / f"guest-{key}.cwasm"


def write_cache(target: Path, data: bytes) -> None:
    """Atomically, private to this user (mkstemp's 0600)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".guest-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _ByteVec(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]


def _compile_to(library: str, source: bytes, target: Path) -> None:
    """Compile ``source`` with the runtime's engine settings and write the
    serialized module to ``target``; on any failure, write nothing."""
    lib = ctypes.CDLL(library)
    ptr = ctypes.c_void_p

    def bind(name: str, restype, *argtypes):
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, list(argtypes)
        return func

    config_new = bind("wasm_config_new", ptr)
    parallel_set = bind("wasmtime_config_parallel_compilation_set", None, ptr, ctypes.c_bool)
    opt_level_set = bind("wasmtime_config_cranelift_opt_level_set", None, ptr, ctypes.c_uint8)
    engine_new = bind("wasm_engine_new_with_config", ptr, ptr)
    engine_delete = bind("wasm_engine_delete", None, ptr)
    module_new = bind("wasmtime_module_new", ptr, ptr, ctypes.c_char_p, ctypes.c_size_t,
                      ctypes.POINTER(ptr))
    module_serialize = bind("wasmtime_module_serialize", ptr, ptr, ctypes.POINTER(_ByteVec))
    module_delete = bind("wasmtime_module_delete", None, ptr)
    byte_vec_delete = bind("wasm_byte_vec_delete", None, ctypes.POINTER(_ByteVec))
    error_delete = bind("wasmtime_error_delete", None, ptr)

    config = config_new()
    if not config:
        return
    parallel_set(config, False)
    opt_level_set(config, _OPT_LEVEL_SPEED)
    engine = engine_new(config)  # takes the config
    if not engine:
        return
    try:
        module = ptr()
        error = module_new(engine, source, len(source), ctypes.byref(module))
        if error:
            error_delete(error)
            return
        try:
            serialized = _ByteVec()
            error = module_serialize(module, ctypes.byref(serialized))
            if error:
                error_delete(error)
                return
            try:
                data = ctypes.string_at(serialized.data, serialized.size)
            finally:
                byte_vec_delete(ctypes.byref(serialized))
        finally:
            module_delete(module)
    finally:
        engine_delete(engine)
    write_cache(target, data)


_pending_lock = threading.Lock()
_pending: tuple[Path, threading.Thread] | None = None


def start(source: bytes | None = None) -> None:
    """Start compiling the guest into the cache on a helper thread, unless
    it is there already, caching is off, or wasmtime-py's library is not
    where this module looks for it."""
    global _pending
    if source is None:
        source = wasm_bytes()
    library = library_path()
    directory = cache_dir()
    if source is None or library is None or directory is None:
        return
    target = cache_file(directory, source)
    if target.exists():
        return

    def run() -> None:
        try:
            _compile_to(library, source, target)
        except Exception:  # noqa: BLE001 - the runtime compiles itself then
            pass

    thread = threading.Thread(target=run, name="mcfields-guest-compile", daemon=True)
    with _pending_lock:
        if _pending is not None:
            return
        _pending = (target, thread)
        thread.start()


def wait(target: Path | None = None) -> None:
    """Wait for a pending compile (of ``target``, or any)."""
    global _pending
    with _pending_lock:
        pending = _pending
        if pending is None or (target is not None and pending[0] != target):
            return
    pending[1].join()
    with _pending_lock:
        if _pending is pending:
            _pending = None


def _forget_in_child() -> None:
    global _pending, _pending_lock
    _pending = None
    _pending_lock = threading.Lock()


os.register_at_fork(before=wait, after_in_child=_forget_in_child)
