"""Run by test_write_paths: 8 processes call EncryptedManager.update() on
one SQLite file at once.  Django's own update() waits for the write lock
(the busy timeout), and so must this one.  Prints a JSON report on its last
line."""

from __future__ import annotations

import json
import os

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from tests.writes.writeapp.models import AutoItem  # noqa: E402

WORKERS, CALLS = 8, 30


def work(n: int, out: int) -> None:
    errors = []
    for i in range(CALLS):
        try:
            AutoItem.objects.filter(name__startswith="row").update(secret=f"w{n} c{i}")
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            errors.append(f"{type(exc).__name__}: {exc}")
    os.write(out, (json.dumps({"calls": CALLS - len(errors), "errors": errors[:3]}) + "\n")
             .encode())


def main() -> None:
    call_command("migrate", verbosity=0)
    items = [AutoItem.objects.create(name=f"row{i}", secret="start") for i in range(200)]
    connections.close_all()  # each worker opens its own connection
    read, write = os.pipe()
    children = []
    for n in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            try:
                work(n, write)
            finally:
                os._exit(0)
        children.append(pid)
    os.close(write)
    for pid in children:
        os.waitpid(pid, 0)
    with os.fdopen(read) as lines:
        reports = [json.loads(line) for line in lines]
    all_open = all(AutoItem.objects.get(pk=i.pk).secret.startswith("w") for i in items)
    print(json.dumps({
        "errors": [e for r in reports for e in r["errors"]][:5],
        "calls": sum(r["calls"] for r in reports),
        "expected_calls": WORKERS * CALLS,
        "all_open": all_open,
    }))


main()
