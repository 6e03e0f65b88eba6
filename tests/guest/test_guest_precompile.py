"""Compiling the guest on a helper thread while wasmtime-py is imported
(mcfields._guest.precompile): the file it writes is the runtime's cache
entry, loaded as an earlier process's would be; a failure leaves nothing
behind and the runtime compiles itself."""

from __future__ import annotations

import os
import stat

import pytest
import wasmtime

from mcfields._guest import precompile, runtime


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(directory))
    monkeypatch.setattr(precompile, "_spare_cpu", lambda: True)
    precompile.wait()  # nothing of another test still pending
    yield directory
    precompile.wait()


def cache_files(directory) -> list:
    return sorted(p for p in directory.iterdir() if p.name.endswith(".cwasm"))


def test_the_library_is_found_without_importing_wasmtime_py() -> None:
    from wasmtime import _ffi  # the test may; precompile does not

    assert precompile.library_path() == str(_ffi.filename)


def test_helper_thread_fills_the_cache_and_the_runtime_loads_it(cache, monkeypatch) -> None:
    precompile.start()
    precompile.wait()
    (path,) = cache_files(cache)
    assert path == precompile.cache_file(cache, runtime.wasm_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_bytes()

    loaded: list[str] = []
    original = wasmtime.Module.deserialize_file

    def spy(engine, file):
        loaded.append(file)
        return original(engine, file)

    monkeypatch.setattr(runtime.wasmtime.Module, "deserialize_file", staticmethod(spy))
    compiled = runtime._Compiled()
    assert loaded == [str(path)]  # the engines agree: nothing recompiled
    assert path.read_bytes() == written
    store = wasmtime.Store(compiled.engine)
    assert wasmtime.Instance(store, compiled.module, []).exports(store)["mc_heap_base"](store) > 0


def test_nothing_starts_when_the_cache_has_the_module(cache) -> None:
    runtime._Compiled()
    before = {p: p.stat().st_mtime_ns for p in cache_files(cache)}
    precompile.start()
    assert precompile._pending is None
    assert {p: p.stat().st_mtime_ns for p in cache_files(cache)} == before


def test_nothing_starts_without_a_spare_cpu(cache, monkeypatch) -> None:
    monkeypatch.setattr(precompile, "_spare_cpu", lambda: False)
    precompile.start()
    assert precompile._pending is None
    assert not cache.exists() or cache_files(cache) == []


def test_a_module_that_does_not_compile_leaves_nothing(cache) -> None:
    precompile.start(b"\0asm\1\0\0\0 not a module")
    precompile.wait()
    assert cache_files(cache) == []
    assert [p for p in cache.iterdir() if p.name.startswith(".guest-")] == []
    assert runtime._Compiled().module is not None


@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)
def test_a_fork_waits_for_the_pending_compile(cache) -> None:
    precompile.start()
    pid = os.fork()
    if pid == 0:  # the child: no compile of the parent's is pending here
        os._exit(0 if precompile._pending is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    # The parent's compile was over before the fork (register_at_fork).
    assert precompile._pending is None
    assert len(cache_files(cache)) == 1
