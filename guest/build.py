"""Build mcfields' WebAssembly guest from pinned, hash-checked sources.

Monocypher is not committed to this repository.  Its C source comes from the
``pymonocypher`` source distribution on PyPI, pinned by version and sha256,
and is compiled together with ``guest/shim.c`` by the ``ziglang`` package
(also from PyPI), so building needs pip and nothing else.

Monocypher's crypto_wipe is patched (MONOCYPHER_PATCHES below) before
compiling; everything else is compiled as published.

Usage::

    python guest/build.py            # build mcfields/_guest/mcfields.wasm
    python guest/build.py --check    # build to a temp file, compare to wasm.sha256

The output is reproducible: the same inputs give the same bytes, and
``guest/wasm.sha256`` records the expected digest.

Offline: the verified sdist and zig's cache live in ``guest/.cache/`` or in
``MCFIELDS_BUILD_CACHE``; with the sdist there, nothing is downloaded
(README, "Building offline").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

GUEST_DIR = Path(__file__).resolve().parent
ROOT = GUEST_DIR.parent
OUTPUT = ROOT / "mcfields" / "_guest" / "mcfields.wasm"
EXPECTED_DIGEST_FILE = GUEST_DIR / "wasm.sha256"
CACHE_DIR = Path(os.environ.get("MCFIELDS_BUILD_CACHE", GUEST_DIR / ".cache"))

SDIST_NAME = "pymonocypher"
SDIST_VERSION = "4.0.3.4"
SDIST_FILE = f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "5e56e3d3eb770a53e0b9f6274146663c11a11f3d0de5cd48e3be0428d1b07a4a"
MONOCYPHER_FILES = ("monocypher.c", "monocypher.h")

# Every flag matters for reproducibility and size: -s strips debug info (which
# would embed paths), no libc, no entry point, a small shadow stack, and only
# the functions marked export_name in shim.c are exported.
# BLAKE2_NO_UNROLLING (as pymonocypher's own build): BLAKE2b only derives keys
# and blind indexes (one or two compressions a call), and the unrolled rounds
# were a third of the module's code.  wasmtime compiles the module in every
# process without cached machine code, at about 1 ms per KiB here
# (bench/README.md, P4); rolled, the module shrinks from 20.5 to 15.9 KB
# and its compile from 17.5 to 14.1 ms, for 0.05 us more per BLAKE2b call.
CFLAGS = (
    "--target=wasm32-freestanding",
    "-O3",
    "-DBLAKE2_NO_UNROLLING",
    # memory.fill for the wipes (MONOCYPHER_PATCHES): the target's default
    # today, named so that the build does not depend on that default
    # (without it the memset would be a call to a function nobody defines).
    "-mbulk-memory",
    "-nostdlib",
    "-s",
    "-fno-builtin-memcpy",
    "-Wall",
    "-Werror",
    "-Wl,--no-entry",
    "-Wl,-z,stack-size=65536",
)


class BuildError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_command(dest: Path, *, verbose: bool = False) -> list[str]:
    """The pip command that fetches the pinned sdist into ``dest``.

    Only Monocypher's sdist comes as source: pip reads its metadata by
    installing its build requirements (setuptools, Cython) into a temporary
    environment, and ``--only-binary :all:`` makes those wheels (pip hands
    the format control on to that environment), so nothing is compiled.
    The order matters: pip applies ``--only-binary :all:`` first and the
    named ``--no-binary`` exception after it.
    """
    return [
        sys.executable, "-m", "pip", "download", "--verbose" if verbose else "--quiet",
        "--no-deps", "--only-binary", ":all:", "--no-binary", SDIST_NAME,
        "--dest", str(dest), f"{SDIST_NAME}=={SDIST_VERSION}",
    ]


def fetch_sdist() -> Path:
    """Return the verified pymonocypher sdist, downloading it with pip if needed."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    sdist = CACHE_DIR / SDIST_FILE
    if not sdist.exists() or sha256_file(sdist) != SDIST_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(download_command(Path(tmp)), capture_output=True, text=True)
            if result.returncode != 0:
                raise BuildError(f"pip download failed:\n{result.stderr}")
            downloaded = Path(tmp) / SDIST_FILE
            if not downloaded.exists():
                raise BuildError(f"pip did not produce {SDIST_FILE}")
            shutil.copyfile(downloaded, sdist)
    actual = sha256_file(sdist)
    if actual != SDIST_SHA256:
        sdist.unlink()
        raise BuildError(
            f"{SDIST_FILE}: sha256 {actual} does not match the pinned {SDIST_SHA256}"
        )
    return sdist


# Monocypher's crypto_wipe zeroes one volatile byte at a time.  In wasm that
# is a loop of single-byte stores, and Monocypher and the shim wipe about
# 700 bytes per seal or open of a short value (ChaCha20 blocks and state,
# Poly1305 context, one-time key, the key and associated data): 0.1 us of
# the 0.5 us a 64-byte seal takes in the guest (bench/README.md, P1), and
# the loops were 2 KB of the module that every process without cached
# machine code compiles (P4).  The replacement is libsodium's fallback for
# sodium_memzero: a plain memset, which becomes one memory.fill (bulk memory
# is part of the wasm target), kept by an empty asm statement that takes the
# address and clobbers memory, so the compiler cannot drop the stores as
# dead.  Applied to the pinned source, each exactly once, or the build fails.
MONOCYPHER_PATCHES = (
    ("monocypher.c",
     "\tvolatile u8 *v_secret = (u8*)secret;\n\tZERO(v_secret, size);\n",
     "\t__builtin_memset(secret, 0, size);\n"
     "\t__asm__ __volatile__(\"\" : : \"r\"(secret) : \"memory\");\n"),
)


def extract_monocypher(sdist: Path, dest: Path) -> None:
    prefix = f"{SDIST_NAME}-{SDIST_VERSION}/"
    with tarfile.open(sdist) as archive:
        for name in MONOCYPHER_FILES:
            member = archive.getmember(prefix + name)
            source = archive.extractfile(member)
            if source is None:
                raise BuildError(f"{name} missing from {SDIST_FILE}")
            text = source.read()
            for target, old, new in MONOCYPHER_PATCHES:
                if target != name:
                    continue
                if text.count(old.encode()) != 1:
                    raise BuildError(f"{name}: the text to patch is not found exactly once")
                text = text.replace(old.encode(), new.encode())
            (dest / name).write_bytes(text)


def compile_guest(output: Path) -> str:
    """Compile shim.c + Monocypher into ``output``; return its sha256."""
    sdist = fetch_sdist()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        extract_monocypher(sdist, work)
        shutil.copyfile(GUEST_DIR / "shim.c", work / "shim.c")
        target = work / "mcfields.wasm"
        # Relative paths and a fixed working directory keep the build
        # independent of where the checkout lives.
        cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, "-I.", "-o", target.name, "shim.c"]
        env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(CACHE_DIR / "zig"),
                   ZIG_LOCAL_CACHE_DIR=str(CACHE_DIR / "zig"))
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise BuildError(f"compiling the guest failed:\n{result.stderr}")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, output)
    return sha256_file(output)


def expected_digest() -> str:
    return EXPECTED_DIGEST_FILE.read_text().split()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="build into a temp dir and compare with guest/wasm.sha256")
    parser.add_argument("--record", action="store_true",
                        help="write the digest of this build to guest/wasm.sha256")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            digest = compile_guest(Path(tmp) / "mcfields.wasm")
    else:
        digest = compile_guest(args.output)
        print(f"built {args.output} sha256 {digest}")
    if args.record:
        EXPECTED_DIGEST_FILE.write_text(f"{digest}  mcfields.wasm\n")
        return 0
    if digest != expected_digest():
        print(f"sha256 {digest} differs from the recorded {expected_digest()}", file=sys.stderr)
        return 1
    if args.check:
        print(f"reproducible: sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
