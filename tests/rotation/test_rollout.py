"""The key rollout runbook of docs/OPERATIONS.md, end to end, across a
rolling deploy: at every moment some servers run the old settings and some
the new ones, and each must read what the other wrote.

A "server" is a value of MCFIELDS_KEYS; switching ``settings.MCFIELDS_KEYS``
switches which server reads or writes (the keyring follows the setting).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from mcfields import DecryptionError
from tests.rotation.rotapp.models import Secret
from tests.rotation.support import Keys, key_id_hex, raw_values_of

pytestmark = pytest.mark.django_db


class Fleet:
    """Servers during a deploy, each with its own MCFIELDS_KEYS."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.written: dict[int, str] = {}

    def write(self, keys: list[str], text: str) -> int:
        self.settings.MCFIELDS_KEYS = keys
        obj = Secret.objects.create(text=text)
        self.written[obj.pk] = text
        return obj.pk

    def update_all(self, keys: list[str], suffix: str) -> None:
        self.settings.MCFIELDS_KEYS = keys
        for obj in Secret.objects.all():
            obj.text = obj.text + suffix
            obj.save()
            self.written[obj.pk] = obj.text

    def unreadable_on(self, keys: list[str]) -> list[tuple[int, str]]:
        """Rows that a server with ``keys`` cannot open (or reads wrongly)."""
        self.settings.MCFIELDS_KEYS = keys
        problems = []
        for pk, text in self.written.items():
            try:
                if Secret.objects.get(pk=pk).text != text:
                    problems.append((pk, "wrong value"))
            except DecryptionError as exc:
                problems.append((pk, exc.reason))
        return problems


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", "rotapp.Secret", *args, stdout=out, stderr=out)
    return out.getvalue()


def check_fails() -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("rotate_keys", "rotapp.Secret", "--check", stdout=out, stderr=out)
    assert info.value.returncode == 1
    return str(info.value), out.getvalue()


def test_two_phase_rollout_never_breaks_a_server(settings: Any, keys: Keys) -> None:
    old, new = keys.old, keys.new
    old_id, new_id = keys.key_id("old"), keys.key_id("new")
    fleet = Fleet(settings)
    OLD_SERVER, PHASE1_SERVER, PHASE2_SERVER, FINAL_SERVER = [old], [old, new], [new, old], [new]

    # Before: every server runs [OLD].
    for i in range(5):
        fleet.write(OLD_SERVER, f"before {i} ✓")

    # Phase 1 (rolling deploy): the new key is added *second*: it only opens.
    # Servers already deployed and servers not yet deployed both write.
    for i in range(5):
        fleet.write(PHASE1_SERVER, f"phase 1 new-settings server {i}")
        fleet.write(OLD_SERVER, f"phase 1 old-settings server {i}")
    fleet.update_all(PHASE1_SERVER, " (edited on a phase-1 server)")
    # Nothing a phase-1 server wrote is unreadable on a server still on the
    # old settings: it still seals under the old key.
    assert fleet.unreadable_on(OLD_SERVER) == []
    assert fleet.unreadable_on(PHASE1_SERVER) == []
    assert {key_id_hex(v) for v in raw_values_of("text")} == {old_id}
    # A dry run on a phase-1 server says which key seals and which only opens.
    settings.MCFIELDS_KEYS = PHASE1_SERVER
    out = rotate("--dry-run")
    assert f"MCFIELDS_KEYS here: {old_id} seals (first); open only: {new_id}" in out

    # Phase 2 (rolling deploy): the new key becomes first; every server,
    # deployed or not, already has both keys.
    for i in range(5):
        fleet.write(PHASE2_SERVER, f"phase 2 new-settings server {i}")
        fleet.write(PHASE1_SERVER, f"phase 2 old-settings server {i}")
    assert fleet.unreadable_on(PHASE1_SERVER) == []
    assert fleet.unreadable_on(PHASE2_SERVER) == []

    # --check fails while values remain under the old key, and says which
    # key must be first and which key ids still hold values.
    settings.MCFIELDS_KEYS = PHASE2_SERVER
    under_old = sum(key_id_hex(v) == old_id for v in raw_values_of("text"))
    assert under_old > 0
    message, out = check_fails()
    assert f"not under the first key {new_id}" in message
    assert f"key ids still holding values: {old_id} ({under_old:,} values)" in message
    assert f"With {new_id} first in MCFIELDS_KEYS on every server, run rotate_keys" in message
    dry = rotate("--dry-run")
    assert f"A run would re-seal {under_old:,} values under the first key {new_id}" in dry
    assert f"(now under key id {old_id} ({under_old:,} values))" in dry

    # Rotate; --check passes only now, and names the key that can go.
    rotate()
    out = rotate("--check")
    assert f"Every value is under the first key {new_id}." in out
    assert f"No value in scope is under {old_id}: those keys can be removed" in out

    # Phase 3: the old key is removed everywhere; everything still opens.
    assert fleet.unreadable_on(FINAL_SERVER) == []
    assert len(fleet.written) == 25


def test_putting_the_new_key_first_at_once_breaks_old_servers(
    settings: Any, keys: Keys
) -> None:
    """Why phase 1 exists: the former one-step runbook, during its deploy."""
    fleet = Fleet(settings)
    fleet.write([keys.new, keys.old], "written by an already deployed server")
    problems = fleet.unreadable_on([keys.old])
    assert problems == [(next(iter(fleet.written)), "sealed under a key that is not configured")]
