"""The guest build fetches Monocypher's pinned sdist as its only source
package: every build requirement pip installs to read that sdist comes as a
wheel, so nothing (Cython, for one) is compiled on the user's machine."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

from pip._internal.commands import create_command

ROOT = Path(__file__).resolve().parents[2]


def _build_module():
    spec = importlib.util.spec_from_file_location("mcfields_guest_build", ROOT / "guest/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()
ARTIFACT = re.compile(
    r"(?:Downloading|Processing|Using cached) \S*?([^/\s]+\.(?:whl|tar\.gz|zip|tar\.bz2))\b"
)


def test_pip_takes_only_the_pinned_sdist_as_source(tmp_path: Path) -> None:
    argv = build.download_command(tmp_path)
    assert argv[1:4] == ["-m", "pip", "download"]
    # Parse the arguments the way pip itself does.
    options, args = create_command("download").parse_args(argv[4:])
    assert args == [f"{build.SDIST_NAME}=={build.SDIST_VERSION}"]
    formats = options.format_control.get_allowed_formats
    assert formats(build.SDIST_NAME) == frozenset({"source"})
    # The sdist's build requirements, and anything else: wheels only.
    for name in ("cython", "setuptools", "wheel", "anything-else"):
        assert formats(name) == frozenset({"binary"}), name
    assert options.ignore_dependencies


def test_a_cold_fetch_downloads_wheels_and_the_one_sdist(tmp_path: Path) -> None:
    # Empty pip cache: every artifact pip touches shows in its log.
    env = dict(os.environ, PIP_CACHE_DIR=str(tmp_path / "pip-cache"))
    result = subprocess.run(
        build.download_command(tmp_path / "out", verbose=True),
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The nested pip that installs the build requirements logs to stderr.
    artifacts = set(ARTIFACT.findall(result.stdout + result.stderr))
    sources = {a for a in artifacts if not a.endswith(".whl")}
    assert sources == {build.SDIST_FILE}, sorted(artifacts)
    # The sdist's build requirements were installed, as wheels.
    assert any(a.lower().startswith(("cython", "setuptools")) for a in artifacts - sources)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [build.SDIST_FILE]
