"""P4 probe: run in a fresh interpreter by bench/crypto_bench.py.

Sets up Django with the testproject settings, then times what the first
request that touches an encrypted field pays: importing the crypto layer
(wasmtime included, unless django.setup() already imported it), loading the
compiled guest (from MCFIELDS_CACHE_DIR, or compiling it), creating this
thread's guest and the keyring from settings.MCFIELDS_KEYS, and sealing one
64-byte value.  Prints one JSON line.

``--setup-only with|without`` times django.setup() alone, with Django's
contrib apps from the settings plus (``with``) or without ``mcfields``,
and says whether wasmtime got imported (bench/crypto_bench.py compares).

``--preload`` simulates an ``AppConfig.ready()`` that imports the runtime
and loads the compiled module during django.setup().
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")


def setup_only(mode: str) -> None:
    import django
    from django.conf import settings

    base = [a for a in settings.INSTALLED_APPS if a.startswith("django.")]
    settings.INSTALLED_APPS = base + (["mcfields"] if mode == "with" else [])
    t0 = time.perf_counter()
    django.setup()
    t1 = time.perf_counter()
    statm = open("/proc/self/statm").read().split()
    print(json.dumps({"setup_ms": (t1 - t0) * 1000.0, "mode": mode,
                      "rss_mib": int(statm[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20,
                      "wasmtime_imported": "wasmtime" in sys.modules}))


def main() -> None:
    if "--setup-only" in sys.argv:
        return setup_only(sys.argv[sys.argv.index("--setup-only") + 1])
    import django
    from django.conf import settings

    note = ""
    missing = []
    for app in settings.INSTALLED_APPS:
        try:
            found = importlib.util.find_spec(app) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(app)
    if missing:
        settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a not in missing]
        note = f"apps not importable yet, left out of INSTALLED_APPS: {', '.join(missing)}"

    t0 = time.perf_counter()
    django.setup()
    if "--preload" in sys.argv:
        # What an AppConfig.ready() that warms the guest would do.
        from mcfields._guest import runtime as preloaded

        preloaded._compiled_module()
    t1 = time.perf_counter()
    wasmtime_imported = "wasmtime" in sys.modules

    # -- the P4 budget starts here ---------------------------------------------
    t2 = time.perf_counter()
    from mcfields._guest import runtime
    from mcfields.crypto import Keyring, binding

    try:  # the Django layer's settings reader, when present
        from mcfields.conf import get_keyring
    except ImportError:
        get_keyring = None
    t3 = time.perf_counter()
    runtime._compiled_module()  # Engine + Module: cache load or compile
    t4 = time.perf_counter()
    # Store/Instance + key derivation
    ring = get_keyring() if get_keyring else Keyring.from_strings(settings.MCFIELDS_KEYS)
    t5 = time.perf_counter()
    context = binding("demo.Patient.notes", "1")
    envelope = ring.seal(b"x" * 64, context)
    t6 = time.perf_counter()
    # -- end ----------------------------------------------------------------------
    assert ring.open(envelope, context) == b"x" * 64
    ms = 1000.0
    print(json.dumps({
        "total_ms": (t6 - t2) * ms,
        "steps_ms": {
            "import": (t3 - t2) * ms,
            "engine+module": (t4 - t3) * ms,
            "guest+keyring": (t5 - t4) * ms,
            "seal": (t6 - t5) * ms,
        },
        "django_setup_ms": (t1 - t0) * ms,
        "wasmtime_imported_by_setup": wasmtime_imported,
        "note": note,
        "settings_reader": "mcfields.conf.get_keyring" if get_keyring else "Keyring.from_strings",
    }))


if __name__ == "__main__":
    main()
