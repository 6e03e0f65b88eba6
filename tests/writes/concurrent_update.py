"""Run by test_write_paths: 8 threads call EncryptedManager.update() on one
SQLite file at once; Django's own update() waits for the write lock, and so
must this one.  Prints a JSON report on its last line."""

from __future__ import annotations

import json
import threading

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from tests.writes.writeapp.models import AutoItem  # noqa: E402

THREADS, CALLS = 8, 30


def main() -> None:
    call_command("migrate", "--run-syncdb", verbosity=0)
    items = [AutoItem.objects.create(name=f"row{i}", secret="start") for i in range(20)]
    errors: list[str] = []
    calls = [0]
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        start.wait()
        try:
            for i in range(CALLS):
                try:
                    AutoItem.objects.filter(name__startswith="row").update(
                        secret=f"t{n} c{i}", name=f"row{n}")
                    with lock:
                        calls[0] += 1
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_open = all(AutoItem.objects.get(pk=i.pk).secret.startswith("t") for i in items)
    print(json.dumps({"errors": errors[:5], "calls": calls[0],
                      "expected_calls": THREADS * CALLS, "all_open": all_open}))


main()
