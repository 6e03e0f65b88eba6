"""A release: ``python -m build`` makes an sdist, builds the wheel from that
sdist (so the sdist holds everything the build needs), and ``twine check``
accepts both."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"

pytest.importorskip("build", reason="the release extra (build, twine) is not installed")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Without --sdist/--wheel, build makes the sdist and then the wheel from
    # the unpacked sdist, not from the checkout.
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_build_makes_an_sdist_and_a_wheel_from_it(dist):
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"mcfields-{VERSION}-py3-none-any.whl", f"mcfields-{VERSION}.tar.gz"]


def test_sdist_holds_what_the_wheel_build_needs(dist):
    with tarfile.open(dist / f"mcfields-{VERSION}.tar.gz") as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md",
                   "guest/build.py", "guest/hatch_build.py", "guest/shim.c",
                   "guest/wasm.sha256", "mcfields/__init__.py", "mcfields/forms.py",
                   "mcfields/drf.py", "mcfields/static/mcfields/admin.css",
                   "mcfields/templates/mcfields/widgets/encrypted_file_input.html",
                   "mcfields/management/commands/check.py"):
        assert needed in names, needed
    # A build output, and the development tree, stay out.
    assert "mcfields/_guest/mcfields.wasm" not in names
    assert not [n for n in names if n.startswith(("tests/", "testproject/", "bench/", ".venv"))]


def test_wheel_carries_the_license(dist):
    with zipfile.ZipFile(dist / f"mcfields-{VERSION}-py3-none-any.whl") as archive:
        names = archive.namelist()
        metadata = archive.read(f"mcfields-{VERSION}.dist-info/METADATA").decode()
    assert any(n.startswith(f"mcfields-{VERSION}.dist-info/") and n.endswith("LICENSE")
               for n in names), names
    assert "mcfields/_guest/mcfields.wasm" in names
    assert "License: MIT" in metadata or "License-Expression: MIT" in metadata
    assert "Provides-Extra: drf" in metadata


def test_twine_check_passes(dist):
    pytest.importorskip("twine")
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                             *map(str, sorted(dist.iterdir()))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2
