"""The guest build: reproducible, pinned, hash-checked, minimal exports."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from mcfields._guest import wasm_bytes

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "guest" / "build.py"
RECORDED = (ROOT / "guest" / "wasm.sha256").read_text().split()[0]
INSTALLED = ROOT / "mcfields" / "_guest" / "mcfields.wasm"
# (README, "Quick start": the build is reproducible.)
PINNED_SDIST_SHA256 = "5e56e3d3eb770a53e0b9f6274146663c11a11f3d0de5cd48e3be0428d1b07a4a"


def load_build_module():
    spec = importlib.util.spec_from_file_location("mcfields_guest_build", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recorded_digest_is_a_sha256() -> None:
    assert len(RECORDED) == 64 and int(RECORDED, 16) >= 0


def test_installed_wasm_matches_recorded_digest() -> None:
    assert hashlib.sha256(INSTALLED.read_bytes()).hexdigest() == RECORDED


def test_runtime_loads_the_installed_wasm() -> None:
    assert hashlib.sha256(wasm_bytes()).hexdigest() == RECORDED


def test_rebuild_is_reproducible(tmp_path) -> None:
    """`python guest/build.py --check` rebuilds into a temp dir and compares.

    zig's compile cache is normally kept in guest/.cache/zig, and a cache hit
    would not prove anything, so the build runs with an empty cache directory
    (the verified sdist is copied in when present, else pip downloads it).
    """
    build = load_build_module()
    cached_sdist = build.CACHE_DIR / build.SDIST_FILE
    if cached_sdist.exists():
        shutil.copyfile(cached_sdist, tmp_path / build.SDIST_FILE)
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=dict(os.environ, MCFIELDS_BUILD_CACHE=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    assert f"reproducible: sha256 {RECORDED}" in result.stdout


def test_build_pins_the_design_sdist() -> None:
    build = load_build_module()
    assert build.SDIST_NAME == "pymonocypher"
    assert build.SDIST_VERSION == "4.0.3.4"
    assert build.SDIST_SHA256 == PINNED_SDIST_SHA256


def test_build_rejects_a_tampered_sdist(tmp_path, monkeypatch) -> None:
    """A download whose sha256 is not the pinned one is refused and removed."""
    build = load_build_module()
    monkeypatch.setattr(build, "CACHE_DIR", tmp_path)

    def fake_pip_download(cmd, **kwargs):
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / build.SDIST_FILE).write_bytes(b"not the pinned sdist")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(build.subprocess, "run", fake_pip_download)
    with pytest.raises(build.BuildError, match="does not match the pinned"):
        build.fetch_sdist()
    assert not (tmp_path / build.SDIST_FILE).exists()


def _cached_sdist(build) -> Path:
    sdist = build.CACHE_DIR / build.SDIST_FILE
    if not sdist.exists():
        pytest.skip("the pinned sdist is not in the build cache (run guest/build.py)")
    return sdist


def test_build_patches_monocypher_wipe(tmp_path) -> None:
    """The one change to Monocypher's source: crypto_wipe's volatile byte
    loop becomes a memset behind an asm memory barrier (MONOCYPHER_PATCHES)."""
    build = load_build_module()
    build.extract_monocypher(_cached_sdist(build), tmp_path)
    source = (tmp_path / "monocypher.c").read_text()
    wipe = source[source.index("void crypto_wipe("):]
    wipe = wipe[:wipe.index("}")]
    assert "__builtin_memset(secret, 0, size);" in wipe
    assert '__asm__ __volatile__("" : : "r"(secret) : "memory");' in wipe
    assert "volatile u8" not in wipe


def test_build_refuses_a_patch_that_does_not_apply(tmp_path, monkeypatch) -> None:
    build = load_build_module()
    sdist = _cached_sdist(build)
    monkeypatch.setattr(build, "MONOCYPHER_PATCHES",
                        (("monocypher.c", "text that is not in Monocypher", "x"),))
    with pytest.raises(build.BuildError, match="not found exactly once"):
        build.extract_monocypher(sdist, tmp_path)


def test_module_exports_only_what_the_host_calls() -> None:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm_bytes())
    assert sorted(e.name for e in module.exports) == sorted(
        ["memory", "mc_heap_base", "mc_wipe", "mc_seal", "mc_open", "mc_seal_text",
         "mc_open_text", "mc_blake2b"]
    )
    # The guest cannot call out to the host at all.
    assert list(module.imports) == []


def test_wasm_is_stripped() -> None:
    data = wasm_bytes()
    assert len(data) < 64 * 1024
    for section in (b".debug_info", b"producers", b"shim.c", str(ROOT).encode()):
        assert section not in data


def test_sizes_are_the_guests() -> None:
    """The sizes the host uses (defined once, in mcfields._guest) are the
    ones the guest was compiled with."""
    import re

    from mcfields._guest import KEY_SIZE, MAC_SIZE, NONCE_SIZE
    from mcfields.crypto import KEY_SIZE as CRYPTO_KEY_SIZE
    from mcfields.crypto import MAC_SIZE as CRYPTO_MAC_SIZE
    from mcfields.crypto import NONCE_SIZE as CRYPTO_NONCE_SIZE

    shim = (ROOT / "guest" / "shim.c").read_text()
    defined = {m[1]: int(m[2]) for m in re.finditer(r"#define (\w+_SIZE)\s+(\d+)", shim)}
    assert defined["KEY_SIZE"] == KEY_SIZE == CRYPTO_KEY_SIZE
    assert defined["NONCE_SIZE"] == NONCE_SIZE == CRYPTO_NONCE_SIZE
    assert defined["MAC_SIZE"] == MAC_SIZE == CRYPTO_MAC_SIZE
