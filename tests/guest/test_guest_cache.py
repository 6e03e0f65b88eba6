"""The compiled-module cache (MCFIELDS_CACHE_DIR).

Loading cached machine code runs it, so the cache must only be used from a
private directory, must be keyed by the exact wasm and engine, and a bad
file must be replaced rather than trusted or fatal.
"""

from __future__ import annotations

import os
import stat

import pytest
import wasmtime

from mcfields._guest import runtime


def cache_files(directory) -> list:
    return sorted(p for p in directory.iterdir() if p.name.endswith(".cwasm"))


@pytest.fixture
def spy_deserialize(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = wasmtime.Module.deserialize_file

    def spy(engine, path):
        calls.append(path)
        return original(engine, path)

    monkeypatch.setattr(runtime.wasmtime.Module, "deserialize_file", staticmethod(spy))
    return calls


def test_cold_cache_is_filled_then_used(tmp_path, monkeypatch, spy_deserialize) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(cache))
    runtime._Compiled()
    files = cache_files(cache)
    assert len(files) == 1
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert spy_deserialize == []  # nothing to load yet: compiled
    written = files[0].read_bytes()

    compiled = runtime._Compiled()  # a second "process": loads the file
    assert spy_deserialize == [str(files[0])]
    assert files[0].read_bytes() == written
    instance = wasmtime.Instance(store := wasmtime.Store(compiled.engine), compiled.module, [])
    assert instance.exports(store)["mc_heap_base"](store) > 0


def test_garbage_cache_file_is_replaced(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(tmp_path))
    runtime._Compiled()
    (path,) = cache_files(tmp_path)
    good = path.read_bytes()
    path.write_bytes(b"\x7fELF garbage, not wasmtime code")
    compiled = runtime._Compiled()
    assert path.read_bytes() == good
    store = wasmtime.Store(compiled.engine)
    assert wasmtime.Instance(store, compiled.module, []).exports(store)["mc_heap_base"](store) > 0


def test_cache_key_changes_with_the_wasm(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(tmp_path))
    runtime._Compiled()
    original = runtime.wasm_bytes()
    # Same code plus a custom section: different bytes, so a different key.
    extra = b"\x00" + bytes([len(b"\x04test") + 1]) + b"\x04test" + b"x"
    monkeypatch.setattr(runtime, "wasm_bytes", lambda: original + extra)
    runtime._Compiled()
    assert len(cache_files(tmp_path)) == 2


def test_shared_directory_is_not_used(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(shared))
    assert runtime._cache_dir() is None
    runtime._Compiled()
    assert cache_files(shared) == []


def test_directory_of_another_user_is_not_used(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(tmp_path))
    assert runtime._cache_dir() == tmp_path
    monkeypatch.setattr(runtime.os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    assert runtime._cache_dir() is None


def test_empty_setting_turns_cache_off(monkeypatch) -> None:
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", "")
    assert runtime._cache_dir() is None


def test_unwritable_location_falls_back_to_compiling(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(blocker / "cache"))
    assert runtime._cache_dir() is None
    compiled = runtime._Compiled()
    assert compiled.module is not None
