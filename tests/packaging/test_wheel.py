"""`pip wheel .` gives a py3-none-any wheel that carries the guest, and the
installed wheel works in a fresh virtualenv with no ziglang and no compiler."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("mcfields-*.whl")
    return built


def test_wheel_is_pure_and_contains_the_recorded_guest(wheel):
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "mcfields/_guest/mcfields.wasm" in names
        wasm = archive.read("mcfields/_guest/mcfields.wasm")
    expected = (ROOT / "guest" / "wasm.sha256").read_text().split()[0]
    assert hashlib.sha256(wasm).hexdigest() == expected
    # Nothing native and no Monocypher source in the wheel.
    assert not [n for n in names if n.endswith((".so", ".c", ".h", ".pyd", ".dylib"))]


def test_installed_wheel_seals_without_a_toolchain(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import importlib.util, mcfields.crypto as c\n"
        "assert importlib.util.find_spec('ziglang') is None\n"
        "ring = c.Keyring.from_strings([c.generate_key()])\n"
        "ctx = c.binding('app.Model.field', '1')\n"
        "assert ring.open(ring.seal(b'hello', ctx), ctx) == b'hello'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "MCFIELDS_CACHE_DIR": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
