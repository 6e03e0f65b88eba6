"""Crypto benchmark (P1, P2, P4, P6, bench/README.md), side by side in one process.

    python bench/crypto_bench.py            # everything (about 2-3 minutes)
    python bench/crypto_bench.py --quick    # fewer repeats, P6 over 100k round trips

For 64 B, 1 KiB, 64 KiB and 1 MiB values it times seal and open of:

* mcfields           Keyring.seal/open with a binding context (the crypto API)
* guest public API   the same guest through wasmtime-py's public API
                     (Guest(unchecked=False)), nonce from os.urandom
* PyNaCl bindings    libsodium crypto_aead_xchacha20poly1305_ietf_*, nonce
                     from os.urandom, nonce prepended (what one would store)
* PyNaCl Aead        nacl.secret.Aead (the same, high-level API)
* Monocypher native  pymonocypher lock/unlock, nonce from os.urandom
* tink               tink's XChaCha20-Poly1305 (XCHACHA20_POLY1305_RAW key
                     template: no 5-byte tink prefix), nonce drawn by tink
* pyca ChaCha20Poly1305  cryptography's ChaCha20Poly1305 (12-byte nonce from
                     os.urandom, prepended); pyca/cryptography has no
                     XChaCha20-Poly1305, so this IETF variant is the anchor
* Fernet             cryptography's Fernet encrypt/decrypt (no associated data)

Every AEAD gets the same associated data as mcfields (envelope header and
binding).  Each figure is the best of several rounds (timeit style); rounds
go through all implementations in turn, so a burst of load on the machine
hits all of them alike.

P4 runs fresh interpreters (bench/first_seal.py): django.setup() with the
testproject settings, then the time to build the keyring from settings and
seal the first value, with a warm and with an empty compiled-module cache.
P6 runs bench/rss_bench.py: RSS growth over 1M seal/open round trips.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

SIZES = [64, 1024, 64 * 1024, 1 << 20]
LABEL, PK = "demo.Patient.notes", "123456"


def size_name(size: int) -> str:
    if size >= 1 << 20:
        return f"{size >> 20} MiB"
    if size >= 1024:
        return f"{size >> 10} KiB"
    return f"{size} B"


# -- implementations ------------------------------------------------------------


class Impl:
    name: str

    def seal(self, data: bytes):  # returns what open() takes
        raise NotImplementedError

    def open(self, sealed) -> bytes:
        raise NotImplementedError


class McfieldsImpl(Impl):
    name = "mcfields"

    def __init__(self) -> None:
        from mcfields.crypto import Keyring, binding, generate_key

        self.ring = Keyring.from_strings([generate_key()])
        self.context = binding(LABEL, PK)
        self.ad = b"\x01" + self.ring.primary.key_id + self.context

    def seal(self, data):
        return self.ring.seal(data, self.context)

    def open(self, sealed):
        return self.ring.open(sealed, self.context)


class GuestPublicImpl(Impl):
    name = "guest public API"

    def __init__(self, ad: bytes) -> None:
        from mcfields._guest import Guest

        self.guest = Guest(unchecked=False)
        assert not self.guest.unchecked
        self.key = os.urandom(32)
        self.ad = ad

    def seal(self, data):
        return self.guest.seal(self.key, os.urandom(24), self.ad, data)

    def open(self, sealed):
        result = self.guest.open(self.key, self.ad, sealed)
        assert result is not None
        return result


class NaclBindingsImpl(Impl):
    name = "PyNaCl bindings"

    def __init__(self, ad: bytes) -> None:
        import nacl.bindings

        self.encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
        self.decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt
        self.key = os.urandom(32)
        self.ad = ad

    def seal(self, data):
        nonce = os.urandom(24)
        return nonce + self.encrypt(data, self.ad, nonce, self.key)

    def open(self, sealed):
        view = memoryview(sealed)
        return self.decrypt(view[24:].tobytes(), self.ad, view[:24].tobytes(), self.key)


class NaclAeadImpl(Impl):
    name = "PyNaCl Aead"

    def __init__(self, ad: bytes) -> None:
        import nacl.secret

        self.box = nacl.secret.Aead(os.urandom(32))
        self.ad = ad

    def seal(self, data):
        return self.box.encrypt(data, self.ad)

    def open(self, sealed):
        return self.box.decrypt(sealed, self.ad)


class MonocypherImpl(Impl):
    name = "Monocypher native"

    def __init__(self, ad: bytes) -> None:
        import monocypher

        self.lock, self.unlock = monocypher.lock, monocypher.unlock
        self.key = os.urandom(32)
        self.ad = ad

    def seal(self, data):
        nonce = os.urandom(24)
        mac, ciphertext = self.lock(self.key, nonce, data, self.ad)
        return nonce, mac, ciphertext

    def open(self, sealed):
        nonce, mac, ciphertext = sealed
        result = self.unlock(self.key, nonce, mac, ciphertext, self.ad)
        assert result is not None
        return result


class TinkImpl(Impl):
    name = "tink"

    def __init__(self, ad: bytes) -> None:
        import tink
        from tink import aead

        aead.register()
        handle = tink.new_keyset_handle(aead.aead_key_templates.XCHACHA20_POLY1305_RAW)
        self.primitive = handle.primitive(aead.Aead)
        self.ad = ad

    def seal(self, data):
        return self.primitive.encrypt(data, self.ad)

    def open(self, sealed):
        return self.primitive.decrypt(sealed, self.ad)


class PycaChaChaImpl(Impl):
    name = "pyca ChaCha20Poly1305"

    def __init__(self, ad: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self.aead = ChaCha20Poly1305(os.urandom(32))
        self.ad = ad

    def seal(self, data):
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, data, self.ad)

    def open(self, sealed):
        view = memoryview(sealed)
        return self.aead.decrypt(view[:12], view[12:], self.ad)


class FernetImpl(Impl):
    name = "Fernet"

    def __init__(self) -> None:
        from cryptography.fernet import Fernet

        self.fernet = Fernet(Fernet.generate_key())

    def seal(self, data):
        return self.fernet.encrypt(data)

    def open(self, sealed):
        return self.fernet.decrypt(sealed)


class McfieldsTextImpl(McfieldsImpl):
    """The text column's form: ``mcf1:`` + base64url, as EncryptedTextField
    stores it (Keyring.seal_text/open_text, or the envelope's codec before
    those existed)."""

    name = "mcfields text"

    def __init__(self) -> None:
        super().__init__()
        from mcfields.crypto import from_text, to_text

        ring, context = self.ring, self.context
        if hasattr(ring, "seal_text"):
            self.seal = functools.partial(ring.seal_text, associated_data=context)
            self.open = functools.partial(ring.open_text, associated_data=context)
        else:
            self.seal = lambda data: to_text(ring.seal(data, context))
            self.open = lambda text: ring.open(from_text(text), context)


class McfieldsBatchImpl(McfieldsImpl):
    """Keyring.seal_many/open_many over BATCH values (one binding each);
    times are per value."""

    name = f"mcfields batch/{100}"
    batch = 100

    def __init__(self) -> None:
        super().__init__()
        from mcfields.crypto import binding

        self.contexts = [binding(LABEL, str(pk)) for pk in range(self.batch)]

    def seal(self, data):
        return self.ring.seal_many([data] * self.batch, self.contexts)

    def open(self, sealed):
        return self.ring.open_many(sealed, self.contexts)


def make_impls() -> list[Impl]:
    mc = McfieldsImpl()
    impls = [mc, McfieldsTextImpl()]
    if hasattr(mc.ring, "seal_many"):
        impls.append(McfieldsBatchImpl())
    return impls + [GuestPublicImpl(mc.ad), TinkImpl(mc.ad), PycaChaChaImpl(mc.ad),
                    NaclBindingsImpl(mc.ad), NaclAeadImpl(mc.ad), MonocypherImpl(mc.ad),
                    FernetImpl()]


# -- timing ---------------------------------------------------------------------


def loops_for(fn: Callable[[], object], target: float) -> int:
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target / 4 or number >= 1 << 20:
            return max(1, int(number * target / max(elapsed, 1e-9)))
        number *= 4


def time_once(fn: Callable[[], object], number: int) -> float:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number
    finally:
        if gc_was:
            gc.enable()


def measure(impls: list[Impl], rounds: int, target: float) -> tuple[dict, dict]:
    """Best of ``rounds`` per (impl name, size): {"seal": s, "open": s}, and
    every round's times: {(impl name, size): [{"seal": s, "open": s}, ...]}
    (per value: batched implementations divide by their batch size)."""
    results: dict = {}
    per_round: dict = {}
    for size in SIZES:
        data = os.urandom(size)
        jobs = []
        for impl in impls:
            batch = getattr(impl, "batch", 1)
            if batch > 1 and size > 64 * 1024:
                continue  # a batch of 1 MiB values says nothing new
            sealed = impl.seal(data)
            expected = [data] * batch if batch > 1 else data
            assert impl.open(sealed) == expected, impl.name
            seal = functools.partial(impl.seal, data)
            open_ = functools.partial(impl.open, sealed)
            jobs.append((impl.name, "seal", seal, loops_for(seal, target), batch))
            jobs.append((impl.name, "open", open_, loops_for(open_, target), batch))
        best: dict = {}
        for r in range(rounds):
            for name, op, fn, number, batch in jobs:
                t = time_once(fn, number) / batch
                key = (name, size)
                best.setdefault(key, {}).setdefault(op, t)
                best[key][op] = min(best[key][op], t)
                rows = per_round.setdefault(key, [])
                if len(rows) <= r:
                    rows.append({})
                rows[r][op] = t
        results.update(best)
    return results, per_round


def round_ratios(per_round: dict, size: int, anchors: list[str]) -> list[str]:
    """mcfields' seal+open over each anchor's, round by round (the rounds
    visit every implementation in turn, so each ratio is from one moment)."""
    lines = [f"| {'anchor':<22} | per-round ratio of mcfields seal+open at {size_name(size)} | "
             "median | spread |", "|---|---|---:|---:|"]
    ours = [r["seal"] + r["open"] for r in per_round[("mcfields", size)]]
    for anchor in anchors:
        if (anchor, size) not in per_round:
            continue
        theirs = [r["seal"] + r["open"] for r in per_round[(anchor, size)]]
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        lines.append(f"| {anchor:<22} | {' '.join(f'{x:.2f}' for x in ratios)} | "
                     f"{statistics.median(ratios):.2f}× | {min(ratios):.2f}–{max(ratios):.2f} |")
    return lines


def print_table(impls: list[Impl], results: dict) -> list[str]:
    lines = []
    header = (f"| {'size':>6} | {'implementation':<22} | {'seal µs':>9} | {'open µs':>9} | "
              f"{'seal MB/s':>9} | {'open MB/s':>9} | {'seal+open µs':>12} |")
    lines.append(header)
    lines.append("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for size in SIZES:
        for impl in impls:
            if (impl.name, size) not in results:
                continue
            r = results[(impl.name, size)]
            lines.append(
                f"| {size_name(size):>6} | {impl.name:<22} | {r['seal'] * 1e6:9.1f} | "
                f"{r['open'] * 1e6:9.1f} | {size / r['seal'] / 1e6:9.1f} | "
                f"{size / r['open'] / 1e6:9.1f} | {(r['seal'] + r['open']) * 1e6:12.1f} |"
            )
    return lines


def bars(results: dict, p4: dict | None, p6: dict | None) -> list[str]:
    def both(name, size):
        r = results[(name, size)]
        return r["seal"] + r["open"]

    mc64 = both("mcfields", 64)
    mc1m = both("mcfields", 1 << 20)
    rows = [
        ("P1", "64 B seal+open vs tink XChaCha20-Poly1305", mc64 / both("tink", 64),
         "≤ 1.5×", mc64 / both("tink", 64) <= 1.5),
        ("P1", "64 B seal+open vs pyca ChaCha20Poly1305 (info)",
         mc64 / both("pyca ChaCha20Poly1305", 64), "—", True),
        ("P1", "64 B seal+open vs PyNaCl bindings (info)", mc64 / both("PyNaCl bindings", 64),
         "—", True),
        ("P1", "64 B seal+open vs Fernet", mc64 / both("Fernet", 64), "≤ 0.5×",
         mc64 / both("Fernet", 64) <= 0.5),
        ("P2", "1 MiB throughput vs Monocypher native", both("Monocypher native", 1 << 20) / mc1m,
         "≥ 1.0×", both("Monocypher native", 1 << 20) / mc1m >= 1.0),
        ("P2", "1 MiB throughput vs Fernet", both("Fernet", 1 << 20) / mc1m, "≥ 2.5×",
         both("Fernet", 1 << 20) / mc1m >= 2.5),
    ]
    lines = ["| bar | measure | mcfields | bar | met |", "|---|---|---|---|---|"]
    for bar_id, what, ratio, target, ok in rows:
        met = "—" if target == "—" else ("yes" if ok else "NO")
        lines.append(f"| {bar_id} | {what} | {ratio:.2f}× | {target} | {met} |")
    if p4:
        for label in P4_VARIANTS:
            ms = p4[label]["median_ms"]
            what = label.replace("+preload", " cache, simulated preload in ready()")
            if "preload" not in label:
                what += " cache, as is"
            lines.append(f"| P4 | first seal after django.setup(), {what} (median of "
                         f"{p4[label]['runs']}) | {ms:.1f} ms | ≤ 30 ms | "
                         f"{'yes' if ms <= 30 else 'NO'} |")
    if p4 and "setup" in p4:
        ms = p4["setup"]["median_ms"]
        lines.append(f"| P4 | django.setup() with mcfields minus without (median of "
                     f"{p4['setup']['runs']}) | {ms:.1f} ms | ≤ 30 ms | "
                     f"{'yes' if ms <= 30 else 'NO'} |")
    if p6:
        growth = p6["growth_mib"]
        lines.append(f"| P6 | RSS growth over {p6['rounds']:,} round trips | {growth:.2f} MiB | "
                     f"< 5 MiB | {'yes' if growth < 5 else 'NO'} |")
    return lines


# -- P4 and P6 (fresh processes) ----------------------------------------------------


def run_json(cmd: list[str], env: dict) -> dict:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


P4_VARIANTS = ("warm", "cold", "warm+preload", "cold+preload")


def fresh_env(bytecode_dir: str | None) -> dict:
    """The environment of the fresh interpreters.  With ``bytecode_dir``,
    Python caches the bytecode of the modules it compiles there (and not
    next to the sources): an installed mcfields has its .pyc files (pip
    compiles them at install), and without them each fresh process of
    this checkout would compile mcfields' runtime from source again, about
    6 ms that a deployment does not pay, wherever PYTHONDONTWRITEBYTECODE
    is set (as on the machine of bench/README.md's numbers).  None: as the
    caller's environment says."""
    env = dict(os.environ)
    if bytecode_dir is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode_dir
    return env


def p4(runs: int, bytecode_dir: str | None) -> dict:
    out: dict = {}
    samples: dict[str, list] = {label: [] for label in P4_VARIANTS}
    base = fresh_env(bytecode_dir)
    with tempfile.TemporaryDirectory() as warm_dir:
        # Fills the warm cache (and the bytecode cache).
        run_json([sys.executable, str(BENCH / "first_seal.py")],
                 dict(base, MCFIELDS_CACHE_DIR=warm_dir))
        for _ in range(runs):
            for label in P4_VARIANTS:
                cmd = [sys.executable, str(BENCH / "first_seal.py")]
                if label.endswith("preload"):
                    cmd.append("--preload")
                with tempfile.TemporaryDirectory() as empty:
                    cache = warm_dir if label.startswith("warm") else empty
                    samples[label].append(run_json(cmd, dict(base, MCFIELDS_CACHE_DIR=cache)))
    for label in P4_VARIANTS:
        out[label] = _summarize(samples[label])
    return out


def setup_time(runs: int, bytecode_dir: str | None) -> dict:
    """django.setup() with vs without mcfields, fresh interpreters, the two
    alternating; per-round differences, median and spread."""
    rows: dict[str, list] = {"with": [], "without": []}
    env = fresh_env(bytecode_dir)
    for _ in range(runs):
        for mode in ("without", "with"):
            rows[mode].append(run_json([sys.executable, str(BENCH / "first_seal.py"),
                                        "--setup-only", mode], env))
    diff = [w["setup_ms"] - wo["setup_ms"] for w, wo in zip(rows["with"], rows["without"],
                                                             strict=True)]
    rss = [w["rss_mib"] - wo["rss_mib"] for w, wo in zip(rows["with"], rows["without"],
                                                          strict=True)]
    return {"runs": runs, "diff_ms": diff, "median_ms": statistics.median(diff),
            "rss_mib": statistics.median(rss),
            "without_ms": statistics.median(r["setup_ms"] for r in rows["without"]),
            "with_ms": statistics.median(r["setup_ms"] for r in rows["with"]),
            "wasmtime_imported": rows["with"][0]["wasmtime_imported"]}


def _summarize(samples: list) -> dict:
    return {
        "runs": len(samples),
        "median_ms": statistics.median(s["total_ms"] for s in samples),
        "min_ms": min(s["total_ms"] for s in samples),
        "breakdown_ms": {k: statistics.median(s["steps_ms"][k] for s in samples)
                         for k in samples[0]["steps_ms"]},
        "setup_ms": statistics.median(s["django_setup_ms"] for s in samples),
        "wasmtime_imported_by_setup": samples[0]["wasmtime_imported_by_setup"],
        "note": samples[0].get("note", ""),
        "settings_reader": samples[0].get("settings_reader", ""),
    }


def p6(rounds: int) -> dict:
    return run_json([sys.executable, str(BENCH / "rss_bench.py"), "--rounds", str(rounds)],
                    dict(os.environ))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; P6 over 100k")
    parser.add_argument("--rounds", type=int, help="timing rounds per measurement")
    parser.add_argument("--skip-p4", action="store_true")
    parser.add_argument("--skip-p6", action="store_true")
    parser.add_argument("--p6-rounds", type=int)
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="P4: leave PYTHONDONTWRITEBYTECODE as it is (fresh processes "
                             "may then compile mcfields from source)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    target = 0.02 if args.quick else 0.05

    from importlib.metadata import version

    import cryptography
    import monocypher  # noqa: F401
    import nacl
    import wasmtime  # noqa: F401

    print(f"# mcfields crypto benchmark — Python {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} CPUs; PyNaCl {nacl.__version__}, "
          f"cryptography {cryptography.__version__}, tink {version('tink')}, wasmtime "
          f"{version('wasmtime')}")
    print(f"# best of {rounds} rounds, each ≥ {target * 1000:.0f} ms; MB = 10^6 bytes\n")
    impls = make_impls()
    results, per_round = measure(impls, rounds, target)
    print("\n".join(print_table(impls, results)))
    print("\n## P1 round by round (64 B seal+open)\n")
    print("\n".join(round_ratios(per_round, 64, [
        "tink", "pyca ChaCha20Poly1305", "PyNaCl bindings", "PyNaCl Aead",
        "Monocypher native", "Fernet"])))
    sys.stdout.flush()

    p4_result = None
    if not args.skip_p4:
        bytecode = None if args.no_bytecode_cache else tempfile.mkdtemp(prefix="mcfields-pyc-")
        p4_result = p4(3 if args.quick else 7, bytecode)
        print("\n## P4: first seal in a fresh process after django.setup()\n")
        print("(+preload: simulated AppConfig.ready() that imports the runtime and loads "
              "the module inside django.setup())\n")
        for label in P4_VARIANTS:
            r = p4_result[label]
            steps = ", ".join(f"{k} {v:.1f}" for k, v in r["breakdown_ms"].items())
            print(f"- {label} compiled-module cache: median {r['median_ms']:.1f} ms "
                  f"(min {r['min_ms']:.1f}) = {steps} ms; django.setup() itself "
                  f"{r['setup_ms']:.0f} ms; wasmtime imported by setup: "
                  f"{r['wasmtime_imported_by_setup']}")
        print(f"- keyring built with {p4_result['warm']['settings_reader']}")
        no_write = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
        print("- bytecode: " + ("cached in a temporary PYTHONPYCACHEPREFIX (as installed)"
                                if bytecode else "as the environment says "
                                f"(PYTHONDONTWRITEBYTECODE={no_write!r})"))
        st = setup_time(5 if args.quick else 9, bytecode)
        p4_result["setup"] = st
        print("- django.setup() with mcfields minus without, per round (ms): "
              + " ".join(f"{d:.1f}" for d in st["diff_ms"])
              + f"; median {st['median_ms']:.1f} ms (without {st['without_ms']:.0f} ms, "
              f"with {st['with_ms']:.0f} ms), RSS +{st['rss_mib']:.1f} MiB; wasmtime "
              f"imported by setup: {st['wasmtime_imported']}")
        if p4_result["warm"]["note"]:
            print(f"- note: {p4_result['warm']['note']}")
        if bytecode:
            shutil.rmtree(bytecode, ignore_errors=True)
        sys.stdout.flush()

    p6_result = None
    if not args.skip_p6:
        p6_result = p6(args.p6_rounds or (100_000 if args.quick else 1_000_000))
        print("\n## P6: RSS over seal/open round trips (64 B, Keyring with binding)\n")
        print(f"- {p6_result['rounds']:,} round trips in {p6_result['seconds']:.1f} s; RSS "
              f"{p6_result['rss_start_mib']:.2f} → {p6_result['rss_end_mib']:.2f} MiB "
              f"(growth {p6_result['growth_mib']:.2f} MiB); samples (MiB): "
              + " ".join(f"{x:.2f}" for x in p6_result["samples_mib"]))

    print("\n## Bars\n")
    print("\n".join(bars(results, p4_result, p6_result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
