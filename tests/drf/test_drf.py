"""Django REST Framework: a plain ModelSerializer over encrypted fields,
through DRF's APIClient (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from tests.forms.formsapp.models import Document

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf.urls")]

URL = "/api/documents/"
SCAN = b"\x00\x01binary \xff scan"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def raw(pk: int, column: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM formsapp_document WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def test_fields_are_mapped_for_model_serializer():
    from mcfields.drf import EncryptedBase64Field, EncryptedCharField
    from tests.drf.urls import DocumentSerializer

    fields = DocumentSerializer().fields
    assert isinstance(fields["notes"], EncryptedCharField)
    assert isinstance(fields["scan"], EncryptedBase64Field)
    assert fields["scan"].allow_null and not fields["scan"].required


def test_create_and_read_round_trip(api):
    response = api.post(URL, {"title": "t", "notes": "private", "scan": b64(SCAN)},
                        format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    saved = Document.objects.get(pk=pk)
    assert saved.notes == "private" and saved.scan == SCAN
    # The database holds ciphertext only.
    assert raw(pk, "notes").startswith("mcf1:") and SCAN not in raw(pk, "scan")
    body = api.get(f"{URL}{pk}/").json()
    assert body["notes"] == "private"
    assert body["scan"] == b64(SCAN) and body["blob"] == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (123, "Expected a base64 string, got int."),
        (["a"], "Expected a base64 string, got list."),
        ("not base64!!", "Not valid base64 (standard alphabet, with padding)."),
        ("YWJj\n", "Not valid base64 (standard alphabet, with padding)."),
        ("é", "Not valid base64 (standard alphabet, with padding)."),
    ],
)
def test_bad_binary_input_is_a_400(api, value, message):
    response = api.post(URL, {"title": "t", "scan": value}, format="json")
    assert response.status_code == 400
    assert response.json() == {"scan": [message]}
    assert not Document.objects.exists()


@override_settings(MCFIELDS_MAX_VALUE_SIZE=8)
def test_binary_over_the_limit_is_a_400(api):
    response = api.post(URL, {"title": "t", "scan": b64(b"x" * 9)}, format="json")
    assert response.status_code == 400
    assert response.json() == {"scan": ["The value is 9 bytes; the limit is 8 bytes."]}
    huge = api.post(URL, {"title": "t", "scan": "A" * 1000}, format="json")
    assert huge.status_code == 400 and "limit is 8 bytes" in huge.json()["scan"][0]


def test_null_and_patch(api):
    doc = Document.objects.create(title="t", notes="n", scan=SCAN)
    response = api.patch(f"{URL}{doc.pk}/", {"scan": None}, format="json")
    assert response.status_code == 200, response.content
    assert Document.objects.get(pk=doc.pk).scan is None
    response = api.patch(f"{URL}{doc.pk}/", {"notes": "changed"}, format="json")
    assert response.status_code == 200
    assert Document.objects.get(pk=doc.pk).notes == "changed"


def test_list_with_a_row_that_fails_to_open_is_a_clear_error(api):
    good = Document.objects.create(title="good", notes="fine")
    bad = Document.objects.create(title="bad", notes="will not open")
    # Copy the good row's ciphertext into the bad row: bound to another pk.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE formsapp_document SET notes = %s WHERE id = %s",
                       [raw(good.pk, "notes"), bad.pk])
    response = api.get(URL)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "undecryptable"
    assert (body["model"], body["field"], body["pk"]) == ("formsapp.Document", "notes",
                                                            str(bad.pk))
    assert f"pk={bad.pk}" in body["detail"]
    # No plaintext of either row.
    assert "fine" not in response.content.decode() and "will not" not in response.content.decode()
    # The good row alone still reads.
    assert api.get(f"{URL}{good.pk}/").json()["notes"] == "fine"


def test_fields_are_registered_when_rest_framework_is_installed() -> None:
    """No import of mcfields.drf needed: "rest_framework" in INSTALLED_APPS
    is enough (a fresh process, so no test module has imported it)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django; django.setup(); import sys\n"
        "from rest_framework.serializers import ModelSerializer\n"
        "from mcfields.fields import EncryptedBinaryField, EncryptedTextField\n"
        "from tests.forms.formsapp.models import Document\n"
        "mapping = ModelSerializer.serializer_field_mapping\n"
        "class S(ModelSerializer):\n"
        "    class Meta:\n"
        "        model = Document\n"
        "        fields = ['notes', 'scan']\n"
        "fields = S().fields\n"
        "print(mapping[EncryptedBinaryField].__module__, mapping[EncryptedTextField].__module__,\n"
        "      type(fields['notes']).__name__, type(fields['scan']).__name__)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True,
                         env={**__import__("os").environ,
                              "DJANGO_SETTINGS_MODULE": "testproject.settings"})
    assert out.stdout.split() == [
        "mcfields.drf", "mcfields.drf", "EncryptedCharField", "EncryptedBase64Field"]
