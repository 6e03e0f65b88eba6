"""The adoption tests' own database (see support.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adoption.support import KEY, ON_POSTGRES, ROOT, Target
from tests.databases import pg_params


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="testproject.settings", MCFIELDS_KEYS=KEY,
               PYTHONPATH=str(ROOT))
    if ON_POSTGRES:
        import psycopg

        name = f"mcfields_adopt_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(**pg_params(os.environ.get("PGDATABASE", "mcfields")),
                             autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        env.update(MCFIELDS_TEST_DB="postgres", PGDATABASE=name)
        yield Target("postgresql", env, pg_name=name)
        with psycopg.connect(**pg_params(os.environ.get("PGDATABASE", "mcfields")),
                             autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        env.pop("MCFIELDS_TEST_DB", None)
        env["MCFIELDS_SQLITE_PATH"] = str(tmp_path / "adopt.sqlite3")
        yield Target("sqlite", env, sqlite_path=env["MCFIELDS_SQLITE_PATH"])
