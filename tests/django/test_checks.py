"""System checks, settings, deconstruct, management commands."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from mcfields import EncryptedBinaryField, EncryptedTextField, conf
from mcfields.checks import check_settings
from mcfields.crypto import Keyring, generate_key

# -- settings checks (mcfields.E0xx) --------------------------------------------------


def _ids(errors) -> list[str]:
    return [e.id for e in errors]


def test_valid_settings_pass():
    assert check_settings() == []


def test_missing_keys():
    with override_settings():
        del settings.MCFIELDS_KEYS
        conf.clear_cache()  # deleting a setting sends no setting_changed
        errors = check_settings()
        assert _ids(errors) == ["mcfields.E001"]
        assert "generate_key" in errors[0].hint
        with pytest.raises(ImproperlyConfigured, match="MCFIELDS_KEYS is not set"):
            conf.get_keyring()


def test_empty_keys_and_no_secret_key_fallback():
    with override_settings(MCFIELDS_KEYS=[]):
        assert _ids(check_settings()) == ["mcfields.E001"]
        with pytest.raises(ImproperlyConfigured, match="empty"):
            conf.get_keyring()


def test_keys_must_be_a_list():
    key = generate_key()
    with override_settings(MCFIELDS_KEYS=key):
        errors = check_settings()
        assert _ids(errors) == ["mcfields.E002"]
        assert key not in errors[0].msg


def test_malformed_key_names_its_index_not_its_value():
    good = generate_key()
    short = base64.b64encode(b"k" * 16).decode()
    with override_settings(MCFIELDS_KEYS=[good, short, "not base64 at all!!", 42]):
        errors = check_settings()
        assert _ids(errors) == ["mcfields.E003"] * 3
        assert "MCFIELDS_KEYS[1]" in errors[0].msg and "16 bytes" in errors[0].msg
        assert "MCFIELDS_KEYS[2]" in errors[1].msg and "MCFIELDS_KEYS[3]" in errors[2].msg
        for error in errors:
            assert short not in error.msg and good not in error.msg
        with pytest.raises(ImproperlyConfigured, match=r"MCFIELDS_KEYS\[1\]"):
            conf.get_keyring()


def test_duplicate_keys_in_either_alphabet():
    raw = bytes(range(251, 256)) * 6 + b"\xfb\xfc"  # base64 with '+' and '/' vs '-' and '_'
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert standard != urlsafe
    with override_settings(MCFIELDS_KEYS=[standard, generate_key(), urlsafe]):
        errors = check_settings()
        assert _ids(errors) == ["mcfields.E004"]
        assert "MCFIELDS_KEYS[2]" in errors[0].msg and "MCFIELDS_KEYS[0]" in errors[0].msg


def test_max_value_size_setting_is_checked():
    for bad in (0, -1, "10", True, 1 << 40):
        with override_settings(MCFIELDS_MAX_VALUE_SIZE=bad):
            assert _ids(check_settings()) == ["mcfields.E005"]
    with override_settings(MCFIELDS_MAX_VALUE_SIZE=1024):
        assert check_settings() == []
        assert conf.max_value_size() == 1024


def test_keyring_is_cached_and_cleared_when_settings_change():
    first = conf.get_keyring()
    assert conf.get_keyring() is first
    new_key = generate_key()
    with override_settings(MCFIELDS_KEYS=[new_key]):
        ring = conf.get_keyring()
        assert ring is not first
        assert ring.primary.key_id == Keyring.from_strings([new_key]).primary.key_id
    assert conf.get_keyring().primary.key_id == first.primary.key_id


def test_check_command_passes_for_the_project():
    # A fresh process: the admin tests register deliberately misused admin
    # sites in this one, and `check` inspects every AdminSite instance.
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# -- field checks (mcfields.E1xx) ----------------------------------------------------------


@isolate_apps("testproject.demo")
def test_field_options_that_need_comparison_are_errors():
    class Bad(models.Model):  # noqa: DJ008
        a = EncryptedTextField(unique=True)
        b = EncryptedTextField(db_index=True)
        c = EncryptedBinaryField(db_default=b"x")
        d = EncryptedTextField(context="")

        class Meta:
            app_label = "demo"

    ids = {name: _ids(Bad._meta.get_field(name).check()) for name in "abcd"}
    assert "mcfields.E101" in ids["a"]
    assert "mcfields.E102" in ids["b"]
    assert "mcfields.E104" in ids["c"]
    assert "mcfields.E107" in ids["d"]


@isolate_apps("testproject.demo")
def test_primary_key_is_an_error():
    class BadPk(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(primary_key=True)

        class Meta:
            app_label = "demo"

    assert "mcfields.E103" in _ids(BadPk._meta.get_field("secret").check())


@isolate_apps("testproject.demo")
def test_ordering_indexes_and_constraints_on_encrypted_fields_are_errors():
    class Ordered(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)
        secret = EncryptedTextField()
        other = EncryptedTextField()

        class Meta:
            app_label = "demo"
            ordering = ["-secret"]
            indexes = [models.Index(fields=["name", "other"], name="ix_other")]

    assert "mcfields.E105" in _ids(Ordered._meta.get_field("secret").check())
    assert "mcfields.E106" in _ids(Ordered._meta.get_field("other").check())


@isolate_apps("testproject.demo")
def test_ordinary_field_has_no_errors():
    class Fine(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(null=True, blank=True, default="")
        blob = EncryptedBinaryField(editable=True)

        class Meta:
            app_label = "demo"

    for name in ("secret", "blob"):
        assert Fine._meta.get_field(name).check() == []


# -- deconstruct / migrations ---------------------------------------------------------------


def test_deconstruct_writes_only_non_default_options():
    name, path, args, kwargs = EncryptedTextField().deconstruct()
    assert path == "mcfields.fields.EncryptedTextField" and args == [] and kwargs == {}
    _, path, _, kwargs = EncryptedTextField(context="app.old", null=True).deconstruct()
    assert kwargs == {"context": "app.old", "null": True}
    _, path, _, kwargs = EncryptedBinaryField().deconstruct()
    assert path == "mcfields.fields.EncryptedBinaryField" and kwargs == {}
    _, _, _, kwargs = EncryptedBinaryField(editable=True).deconstruct()
    assert kwargs == {"editable": True}


def test_binary_field_is_not_editable_by_default():
    assert EncryptedBinaryField().editable is False
    assert EncryptedTextField().editable is True


@pytest.mark.django_db
def test_demo_migrations_are_up_to_date():
    out = io.StringIO()
    call_command("makemigrations", "demo", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_binding_label_contract():
    from testproject.demo.models import Comment, Note, SignedNote

    assert Note._meta.get_field("body").binding_label == "demo.Note.body"
    assert SignedNote._meta.get_field("body").binding_label == "demo.Note.body"
    assert SignedNote._meta.get_field("signer").binding_label == "demo.signer"
    assert Comment._meta.get_field("text").binding_label == "demo.Comment.text"


def test_table_and_row_columns():
    from mcfields.saving import row_columns, table_columns
    from testproject.demo.models import Note, SignedNote

    assert [f.name for f in table_columns(Note)] == ["body", "attachment"]
    assert [f.name for f in table_columns(SignedNote)] == ["signer", "signature"]
    # A row of a multi-table child spans its parent's table too.
    assert [f.name for f in row_columns(SignedNote)] == [
        "signer", "signature", "body", "attachment"]


def test_seal_for_pk_and_open_for_pk_contract():
    from mcfields import Sealed
    from testproject.demo.models import Note

    text = Note._meta.get_field("body")
    binary = Note._meta.get_field("attachment")
    stored = text.seal_for_pk("hello", 7)
    assert isinstance(stored, str)
    assert text.open_for_pk(stored, 7) == "hello"
    assert text.open_for_pk(Sealed(stored, text), "7") == "hello"
    blob = binary.seal_for_pk(b"\x00", 7)
    assert isinstance(blob, bytes) and binary.open_for_pk(memoryview(blob), 7) == b"\x00"
    assert text.seal_for_pk(None, 7) is None and text.open_for_pk(None, 7) is None


# -- generate_key ------------------------------------------------------------------------------


def test_generate_key_prints_usable_keys():
    out = io.StringIO()
    call_command("generate_key", stdout=out)
    key = out.getvalue().strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    Keyring.from_strings([key])
    out = io.StringIO()
    call_command("generate_key", "--count", "3", stdout=out)
    keys = out.getvalue().split()
    assert len(keys) == 3 and len(set(keys) | {key}) == 4


@isolate_apps("testproject.demo")
def test_composite_primary_key_is_an_error():
    class Pair(models.Model):  # noqa: DJ008
        pk = models.CompositePrimaryKey("a", "b")
        a = models.IntegerField()
        b = models.IntegerField()
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    assert "mcfields.E108" in _ids(Pair._meta.get_field("secret").check())


def test_base_field_checks():
    from django.db import models
    from django.test.utils import isolate_apps

    from mcfields.fields import EncryptedField

    with isolate_apps("testproject.demo"):

        class Odd(models.Model):  # noqa: DJ008 - never shown
            interval = EncryptedField(models.DurationField(), null=True)
            link = EncryptedField(models.ForeignKey("demo.Note", on_delete=models.CASCADE),
                                  null=True)
            unique_base = EncryptedField(models.CharField(max_length=5, unique=True), null=True)
            fine = EncryptedField(models.DateField(), null=True)

            class Meta:
                app_label = "demo"

        ids = {name: [e.id for e in Odd._meta.get_field(name).check()]
               for name in ("interval", "link", "unique_base", "fine")}
    assert "mcfields.E114" in ids["interval"]
    assert "mcfields.E115" in ids["link"]
    assert "mcfields.E115" in ids["unique_base"]
    assert not [i for i in ids["fine"] if i.startswith("mcfields.")]
