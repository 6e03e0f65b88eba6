"""Connection parameters of the PostgreSQL server the suite runs against
(libpq variables, defaulting to what .ci/postgres.sh creates)."""

from __future__ import annotations

import os
from typing import Any


def pg_params(name: str | None) -> dict[str, Any]:
    return {
        "host": os.environ.get("PGHOST", "localhost"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "mcfields"),
        "password": os.environ.get("PGPASSWORD", "mcfields"),
        "dbname": name,
    }
