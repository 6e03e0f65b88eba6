"""Commands that read or write no encrypted value run without keys.

``manage.py check`` (and ``check --deploy``) report missing or bad
``MCFIELDS_KEYS`` as errors; ``makemigrations``, ``collectstatic`` and a
``migrate`` without mcfields' column operations only warn, so a CI job or an
image build needs no production secret.  A ``migrate`` plan with
``EncryptColumn`` is refused before anything is applied, and anything that
seals or opens still raises ImproperlyConfigured with the E00x message.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from mcfields import conf

ROOT = Path(__file__).resolve().parents[2]


def check_settings_for_command() -> list[checks.CheckMessage]:
    # Imported here so that the command-level tests below run (and fail)
    # on a checkout without it.
    from mcfields.checks import check_settings_for_command

    return check_settings_for_command()


def _ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages]


@pytest.fixture
def no_keys():
    with override_settings():
        del settings.MCFIELDS_KEYS
        conf.clear_cache()  # deleting a setting sends no setting_changed
        yield
    conf.clear_cache()


def test_key_problems_are_errors_only_under_check(no_keys):
    relaxed = check_settings_for_command()
    assert _ids(relaxed) == ["mcfields.W001"]
    assert relaxed[0].level == checks.WARNING
    assert "MCFIELDS_KEYS is not set" in relaxed[0].msg
    assert "manage.py check" in relaxed[0].msg
    from mcfields.checks import strict_key_checks

    with strict_key_checks():
        strict = check_settings_for_command()
    assert _ids(strict) == ["mcfields.E001"]
    assert strict[0].level == checks.ERROR


def test_bad_keys_warn_without_the_key_value():
    bad = "c2hvcnQ="  # base64 of 5 bytes
    with override_settings(MCFIELDS_KEYS=[bad]):
        relaxed = check_settings_for_command()
        assert _ids(relaxed) == ["mcfields.W003"]
        assert bad not in relaxed[0].msg and "MCFIELDS_KEYS[0]" in relaxed[0].msg


def test_max_size_stays_an_error():
    with override_settings(MCFIELDS_MAX_VALUE_SIZE=-1):
        assert _ids(check_settings_for_command()) == ["mcfields.E005"]


# The model checks may ask every database what it supports (JSONField on
# Django 6.1): these tests may reach the test databases.
@pytest.mark.django_db(databases="__all__")
def test_check_command_fails_without_keys(no_keys):
    with pytest.raises(SystemCheckError, match="mcfields.E001"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db(databases="__all__")
def test_check_deploy_fails_without_keys(no_keys):
    with pytest.raises(SystemCheckError, match="mcfields.E001"):
        call_command("check", "--deploy", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db(databases="__all__")
def test_makemigrations_check_runs_without_keys(no_keys):
    out, err = io.StringIO(), io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=err,
                 skip_checks=False)  # call_command skips the checks by default
    assert "No changes detected" in out.getvalue()


def test_collectstatic_runs_without_keys(no_keys, tmp_path):
    with override_settings(STATIC_ROOT=str(tmp_path / "static")):
        out = io.StringIO()
        call_command("collectstatic", "--noinput", stdout=out, stderr=io.StringIO(),
                     skip_checks=False)
    assert (tmp_path / "static" / "mcfields" / "admin.css").exists()


def test_sealing_still_needs_the_keys(no_keys):
    from testproject.demo.models import Note

    with pytest.raises(ImproperlyConfigured, match="MCFIELDS_KEYS is not set"):
        Note._meta.get_field("body").seal_for_pk("text", 1)


def _manage(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MCFIELDS_KEYS="", MCFIELDS_SQLITE_PATH=str(db),
               DJANGO_SETTINGS_MODULE="testproject.settings")
    env.pop("MCFIELDS_TEST_DB", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_migrate_without_column_operations_runs_without_keys(tmp_path):
    db = tmp_path / "db.sqlite3"
    result = _manage("migrate", "demo", "--noinput", db=db)
    assert result.returncode == 0, result.stderr
    assert "mcfields.W001" in result.stderr  # said, not refused
    assert "demo_note" in _tables(db)


def test_migrate_with_encrypt_column_is_refused_before_anything_runs(tmp_path):
    db = tmp_path / "db.sqlite3"
    # tests.adoption.adoptapp's 0002 is an EncryptColumn migration.
    result = _manage("migrate", "--noinput", db=db)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "adoptapp.0002_encrypt_columns" in result.stderr
    assert "MCFIELDS_KEYS is empty" in result.stderr
    assert "nothing was migrated" in result.stderr
    # Refused before the first migration of the plan was applied.
    tables = _tables(db) if db.exists() else set()
    assert not {t for t in tables if t.startswith(("demo_", "adoptapp_", "auth_"))}
