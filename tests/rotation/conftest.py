"""Fixtures for the rotate_keys tests; helpers live in support.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from mcfields.crypto import generate_key
from tests.rotation.support import ON_POSTGRES, ROOT, Keys, SharedDB, base_env


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(generate_key(), generate_key(), generate_key())


@pytest.fixture
def shared_db(transactional_db: None, tmp_path: Path) -> Iterator[SharedDB]:
    """PostgreSQL: the committed test database; SQLite: a migrated file.

    (On SQLite the in-memory test database cannot be shared with another
    process, so the subprocesses get a file of their own.)
    """
    env = base_env()
    if ON_POSTGRES:
        name = connection.settings_dict["NAME"]
        assert name.startswith("test_"), name
        env.update(MCFIELDS_TEST_DB="postgres", PGDATABASE=name)
        db = SharedDB("postgresql", env, pg_name=name)
    else:
        path = str(tmp_path / "shared.sqlite3")
        env.pop("MCFIELDS_TEST_DB", None)
        env["MCFIELDS_SQLITE_PATH"] = path
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=env, check=True, timeout=120,
        )
        db = SharedDB("sqlite", env, sqlite_path=path)
    try:
        yield db
    finally:
        db.close()
