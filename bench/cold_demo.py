"""Time a cold ``make demo``: a fresh clone, an empty pip cache, no build cache.

A benchmark script, not a test: it prints the wall time of each phase of
``make demo`` as a new user on a fresh machine would see it.  It clones this
checkout's HEAD (committed work only) into a temporary directory and points
every cache make and the build use at empty temporary directories:

* ``PIP_CACHE_DIR``: pip's HTTP and wheel cache (so every package is
  downloaded again);
* ``MCFIELDS_BUILD_CACHE``: guest/build.py's pymonocypher sdist and zig cache;
* ``MCFIELDS_CACHE_DIR``: wasmtime's compiled-module cache.

Usage::

    python bench/cold_demo.py            # one cold run, then the summary
    python bench/cold_demo.py --keep     # keep the temporary clone
    python bench/cold_demo.py --target test   # time another make target

The packages still come from the configured index (network or a local
mirror); what the figure measures is this repository's setup: which
packages it installs and what it compiles.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(target: str, keep: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mcfields-cold-"))
    clone = tmp / "clone"
    try:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
                              check=True, capture_output=True, text=True).stdout.strip()
        env = dict(os.environ)
        for var in ("VIRTUAL_ENV", "MCFIELDS_KEYS", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
            env.pop(var, None)
        env.update(
            PIP_CACHE_DIR=str(tmp / "pip-cache"),
            MCFIELDS_BUILD_CACHE=str(tmp / "build-cache"),
            MCFIELDS_CACHE_DIR=str(tmp / "wasmtime-cache"),
            PYTHON=sys.executable if os.environ.get("COLD_DEMO_SAME_PYTHON") else "python3",
        )
        print(f"cold `make {target}` in {clone} (HEAD {head}), empty caches under {tmp}",
              flush=True)
        start = time.monotonic()
        marks: list[tuple[float, str]] = []
        proc = subprocess.Popen(["make", target], cwd=clone, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for line in proc.stdout:
            elapsed = time.monotonic() - start
            if line.startswith("== "):
                marks.append((elapsed, line.strip()))
            sys.stdout.write(f"[{elapsed:6.1f}s] {line}")
            sys.stdout.flush()
        status = proc.wait()
        total = time.monotonic() - start
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("phases (start time):")
    for at, text in marks:
        print(f"  {at:6.1f} s  {text}")
    verdict = "ok" if status == 0 else f"FAILED (exit {status})"
    print(f"cold `make {target}`: {total:.1f} s wall, {verdict}; "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="demo", help="make target (default: demo)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args(argv)
    return run(args.target, args.keep)


if __name__ == "__main__":
    sys.exit(main())
