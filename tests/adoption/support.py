"""Helpers for the adoption tests: a database of the test's own, driven with
``manage.py migrate`` in subprocesses as a user would (fixture in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.databases import DirectDB

ROOT = Path(__file__).absolute().parents[2]
ON_POSTGRES = os.environ.get("MCFIELDS_TEST_DB") == "postgres"
KEY = "yQdKUEt1Y0kKT2GZc7D2UHP7nvyrn2Ky6TguP3tfx1Q="  # testproject's demo key


class Target(DirectDB):
    """The test's own database, plus ``manage.py migrate adoptapp``."""

    def db_pk(self, pk: Any) -> Any:
        if isinstance(pk, uuid.UUID) and self.vendor == "sqlite":
            return pk.hex  # Django stores UUIDField as char(32) on SQLite
        return pk

    def migrate(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.migrate_cmd(name), cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def migrate_cmd(self, name: str) -> list[str]:
        return [sys.executable, "-m", "django", "migrate", "adoptapp", name, "--noinput",
                "-v", "0"]


def django_shell(target: Target, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "django", "shell", "-v", "0", "-c", script],
                          cwd=ROOT, env=target.env, text=True, capture_output=True, timeout=120)
