"""Helpers for the rotate_keys tests (fixtures are in conftest.py).

Rows are written with the crypto API under an old key (raw INSERTs, fast and
independent of the field layer's save path), rotated, then checked with a
keyring that holds only the new key.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcfields.crypto import Keyring, binding, from_text, key_id_of, to_text
from mcfields.rotation import pk_text
from tests.databases import DirectDB

ROOT = Path(__file__).absolute().parents[2]
ON_POSTGRES = os.environ.get("MCFIELDS_TEST_DB") == "postgres"


@dataclass(frozen=True)
class Keys:
    old: str
    new: str
    other: str  # never configured unless a test says so

    def ring(self, *names: str) -> Keyring:
        return Keyring.from_strings([getattr(self, n) for n in names])

    def key_id(self, name: str) -> str:
        return self.ring(name).primary.id_hex


# -- expected plaintexts ----------------------------------------------------


def text_for(pk: Any, salt: str = "t", size: int = 80) -> str:
    """Deterministic text for a row; includes non-ASCII characters."""
    seed = hashlib.sha256(f"{salt}:{pk}".encode()).hexdigest()
    body = (seed * (size // len(seed) + 1))[: max(size - 2, 0)]
    return "é" + body + "✓" if size >= 2 else body[:size]


def blob_for(pk: Any) -> bytes:
    return hashlib.sha256(f"b:{pk}".encode()).digest() + bytes(range(int(str(pk)[-1:] or 0)))


# -- raw rows ---------------------------------------------------------------


def label_of(model: Any, name: str) -> str:
    return model._meta.get_field(name).binding_label


def seal_text(ring: Keyring, label: str, pk: Any, value: str) -> str:
    return to_text(ring.seal(value.encode("utf-8"), binding(label, pk_text(pk))))


def seal_bytes(ring: Keyring, label: str, pk: Any, value: bytes) -> bytes:
    return ring.seal(value, binding(label, pk_text(pk)))


def open_text(ring: Keyring, label: str, pk: Any, stored: str) -> str:
    return ring.open(from_text(stored), binding(label, pk_text(pk))).decode("utf-8")


def key_id_hex(stored: Any) -> str:
    env = from_text(stored) if isinstance(stored, str) else bytes(stored)
    return key_id_of(env).hex()


def secret_rows(ring: Keyring, pks: range, size: int = 80) -> list[tuple[Any, ...]]:
    """(id, ref, text, blob, note) rows for rotapp.Secret."""
    from tests.rotation.rotapp.models import Secret

    lt, lb, ln = label_of(Secret, "text"), label_of(Secret, "blob"), label_of(Secret, "note")
    rows = []
    for pk in pks:
        rows.append((
            pk,
            pk,
            seal_text(ring, lt, pk, text_for(pk, size=size)),
            seal_bytes(ring, lb, pk, blob_for(pk)) if pk % 3 == 0 else None,
            seal_text(ring, ln, pk, text_for(pk, "n", 20)) if pk % 5 == 0 else None,
        ))
    return rows


INSERT_SECRET = "INSERT INTO rotapp_secret (id, ref, text, blob, note) VALUES (%s, %s, %s, %s, %s)"


def check_secret_rows(ring: Keyring, rows: list[tuple[Any, ...]], size: int = 80,
                      expected_text: dict[Any, str] | None = None) -> list[str]:
    """Problems found in (id, text, blob, note) rows opened with ``ring`` only."""
    from tests.rotation.rotapp.models import Secret

    lt, lb, ln = label_of(Secret, "text"), label_of(Secret, "blob"), label_of(Secret, "note")
    expected_text = expected_text or {}
    problems = []
    for pk, text, blob, note in rows:
        try:
            want = expected_text.get(pk, text_for(pk, size=size))
            if open_text(ring, lt, pk, text) != want:
                problems.append(f"pk={pk} text differs")
            if (pk % 3 == 0) != (blob is not None):
                problems.append(f"pk={pk} blob NULL-ness changed")
            elif blob is not None and (
                ring.open(bytes(blob), binding(lb, pk_text(pk))) != blob_for(pk)
            ):
                problems.append(f"pk={pk} blob differs")
            if (pk % 5 == 0) != (note is not None):
                problems.append(f"pk={pk} note NULL-ness changed")
            elif note is not None and open_text(ring, ln, pk, note) != text_for(pk, "n", 20):
                problems.append(f"pk={pk} note differs")
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            problems.append(f"pk={pk}: {type(exc).__name__}: {exc}")
    return problems


# -- a database that subprocesses can share ----------------------------------


class SharedDB(DirectDB):
    """The shared database, plus running ``rotate_keys`` against it."""

    def command(self, *args: str, keys: list[str], **popen: Any) -> subprocess.Popen[str]:
        """Start ``manage.py rotate_keys ARGS`` against this database."""
        env = dict(self.env, MCFIELDS_KEYS=",".join(keys))
        return subprocess.Popen(
            [sys.executable, "-m", "django", "rotate_keys", *args],
            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            **popen,
        )

    def run(
        self, *args: str, keys: list[str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = self.command(*args, keys=keys)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="testproject.settings", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def raw_values_of(column: str, table: str = "rotapp_secret") -> list[Any]:
    """Every non-NULL stored value of one column, read with plain SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
        return [bytes(v) if isinstance(v, memoryview) else v for (v,) in cursor.fetchall()]
