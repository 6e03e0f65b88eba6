"""Run the whole suite: every test on SQLite, then the database tests on
PostgreSQL when a server is reachable, and say which ran.

``MCFIELDS_REQUIRE_POSTGRES=1`` (set by .ci/run) turns an unreachable
server into a failure instead of a skip.  ``MCFIELDS_RUN_SLOW=0`` leaves
out the slow sets (tox.ini runs them in one cell of the matrix only).
Django's own deprecation warnings are errors (pyproject's pytest options).
"""

from __future__ import annotations

import sys

# Run as a script, this folder comes first on sys.path, where tests/django,
# tests/packaging... would shadow the real packages: take it off.
_here = __import__("os").path
if sys.path and _here.realpath(sys.path[0]) == _here.dirname(_here.realpath(__file__)):
    del sys.path[0]

import os  # noqa: E402
import subprocess  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Test folders whose tests talk to the database; they run on both backends.
DB_SUITES = [
    "tests/django", "tests/rotation", "tests/adoption", "tests/writes", "tests/browser",
    "tests/forms", "tests/drf", "tests/demo", "tests/typed", "tests/search",
]


def postgres_reachable() -> str | None:
    """None when reachable, else the reason."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(
            host=os.environ.get("PGHOST", "localhost"),
            port=os.environ.get("PGPORT", "5432"),
            user=os.environ.get("PGUSER", "mcfields"),
            password=os.environ.get("PGPASSWORD", "mcfields"),
            dbname=os.environ.get("PGDATABASE", "mcfields"),
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def pytest(args: list[str], env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "pytest", *args]
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main() -> int:
    env = dict(os.environ)
    env.pop("MCFIELDS_TEST_DB", None)
    ran = []
    # Versions from the installed distributions (not `import django`: next
    # to this file, that name is tests/django).
    cell = (f"{env.get('MCFIELDS_CELL', 'local')}: Python {sys.version.split()[0]}, "
            f"Django {version('Django')}, wasmtime {version('wasmtime')}")
    print(f"== cell {cell} ==", flush=True)
    slow = env.get("MCFIELDS_RUN_SLOW", "1") != "0"
    if slow:
        # "Every test": the slow sets too (R1's 10k differential cases, R3's
        # 100k fuzzed envelopes, R5's 16 x 10k round trips), which plain
        # pytest skips.
        print("== SQLite: full suite, slow tests included ==", flush=True)
        status = pytest(["-m", "slow or not slow", *sys.argv[1:]], env)
    else:
        print("== SQLite: full suite (slow sets run in another cell) ==", flush=True)
        status = pytest(sys.argv[1:], env)
    ran.append(f"SQLite{' (with slow sets)' if slow else ''}: "
               f"{'passed' if status == 0 else 'FAILED'}")

    suites = [s for s in DB_SUITES if (ROOT / s).is_dir()]
    reason = postgres_reachable()
    if reason is None and suites:
        print("== PostgreSQL: database suites ==", flush=True)
        pg_status = pytest([*suites, *sys.argv[1:]], dict(env, MCFIELDS_TEST_DB="postgres"))
        ran.append(f"PostgreSQL: {'passed' if pg_status == 0 else 'FAILED'}")
        status = status or pg_status
    elif reason is not None:
        if os.environ.get("MCFIELDS_REQUIRE_POSTGRES") == "1":
            ran.append(f"PostgreSQL: REQUIRED but unreachable ({reason})")
            status = status or 1
        else:
            ran.append(f"PostgreSQL: skipped, server not reachable ({reason})")
    print(f"== summary of cell {cell} ==")
    for line in ran:
        print("  " + line)
    return status


if __name__ == "__main__":
    sys.exit(main())
