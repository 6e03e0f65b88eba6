"""P6 probe: RSS growth over N seal/open round trips (default 1M).

Runs in its own interpreter (bench/crypto_bench.py starts it).  64-byte
values through the crypto API (Keyring.seal/open with a binding context),
a fresh value and pk each time.  RSS is read from /proc/self/statm after a
warm-up of 20k round trips, then sampled every tenth of the run.  Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1_000_000)
    args = parser.parse_args()

    from mcfields.crypto import Keyring, binding, generate_key

    ring = Keyring.from_strings([generate_key(), generate_key()])
    prefix = os.urandom(56)

    def round_trip(i: int) -> None:
        value = prefix + i.to_bytes(8, "little")
        context = binding("bench.Rss.field", str(i))
        if ring.open(ring.seal(value, context), context) != value:
            raise SystemExit(f"round trip {i} returned another value")

    for i in range(20_000):
        round_trip(i)
    gc.collect()
    start = rss_mib()
    samples = []
    step = max(1, args.rounds // 10)
    t0 = time.perf_counter()
    for i in range(args.rounds):
        round_trip(i)
        if (i + 1) % step == 0:
            samples.append(rss_mib())
    seconds = time.perf_counter() - t0
    gc.collect()
    end = rss_mib()
    print(json.dumps({
        "rounds": args.rounds,
        "seconds": seconds,
        "rss_start_mib": start,
        "rss_end_mib": end,
        "growth_mib": end - start,
        "samples_mib": samples,
    }))


if __name__ == "__main__":
    main()
