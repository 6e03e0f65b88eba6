"""Encrypted fields in ordinary ModelForms (no admin).

``EncryptedBinaryField(editable=True)`` gets a file upload capped at
``MCFIELDS_MAX_VALUE_SIZE`` with FileField semantics; ``EncryptedModelForm``
builds on a row whose value fails to open and keeps that value on save.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings

from mcfields import DecryptionError
from tests.forms.formsapp.models import Document

pytestmark = pytest.mark.django_db

SECRET = b"%PDF-1.7 scan \x00\x01\x02 of a referral"


class PlainDocumentForm(forms.ModelForm):
    class Meta:
        model = Document
        fields = ["title", "notes", "scan", "blob"]


def _encrypted_form() -> type[forms.ModelForm]:
    # Imported here so the plain-ModelForm tests run on code without it.
    from mcfields.forms import EncryptedModelForm

    class DocumentForm(EncryptedModelForm):
        class Meta:
            model = Document
            fields = ["title", "notes", "scan", "blob"]

    return DocumentForm


def raw(pk: Any, column: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM formsapp_document WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return bytes(value) if isinstance(value, memoryview) else value


def set_raw(pk: Any, column: str, value: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE formsapp_document SET {column} = %s WHERE id = %s", [value, pk])


def data(doc: Document, **changes: str) -> dict[str, str]:
    return {"title": doc.title, "notes": doc.notes, **changes}


@pytest.fixture
def doc() -> Document:
    return Document.objects.create(title="t", notes="n", scan=SECRET, blob=b"")


def test_binary_field_gets_a_file_upload_in_a_plain_model_form(doc):
    from mcfields.forms import EncryptedFileField, EncryptedFileInput

    form = PlainDocumentForm(instance=Document.objects.get(pk=doc.pk))
    assert isinstance(form.fields["scan"], EncryptedFileField)
    assert isinstance(form.fields["scan"].widget, EncryptedFileInput)
    assert form.is_multipart()
    html = str(form["scan"])
    assert 'type="file"' in html
    assert "Currently" in html and f"{len(SECRET)}\xa0bytes" in html
    # Neither the bytes nor their repr reach the page.
    assert "PDF" not in html and "\\x00" not in html and "b&#x27;" not in html


def test_upload_replaces_the_value(doc):
    upload = SimpleUploadedFile("new.bin", b"new bytes")
    form = PlainDocumentForm(data(doc), {"scan": upload}, instance=Document.objects.get(pk=doc.pk))
    assert form.is_valid(), form.errors
    form.save()
    assert Document.objects.get(pk=doc.pk).scan == b"new bytes"


def test_editing_another_field_keeps_the_files(doc):
    form = PlainDocumentForm(data(doc, title="renamed"), {},
                             instance=Document.objects.get(pk=doc.pk))
    assert form.is_valid(), form.errors
    form.save()
    saved = Document.objects.get(pk=doc.pk)
    assert saved.title == "renamed"
    assert saved.scan == SECRET
    assert saved.blob == b""


def test_clear_stores_null_or_empty_bytes(doc):
    loaded = Document.objects.get(pk=doc.pk)
    loaded.blob = b"something"
    loaded.save()
    form = PlainDocumentForm(data(doc, **{"scan-clear": "on", "blob-clear": "on"}), {},
                             instance=Document.objects.get(pk=doc.pk))
    assert form.is_valid(), form.errors
    form.save()
    saved = Document.objects.get(pk=doc.pk)
    assert saved.scan is None  # null=True
    assert saved.blob == b""  # null=False
    assert raw(doc.pk, "scan") is None


@override_settings(MCFIELDS_MAX_VALUE_SIZE=10)
def test_a_file_over_the_limit_is_a_form_error(doc):
    upload = SimpleUploadedFile("big.bin", b"x" * 11)
    form = PlainDocumentForm(data(doc), {"scan": upload}, instance=Document.objects.get(pk=doc.pk))
    assert not form.is_valid()
    assert form.errors["scan"] == ["The file is 11\xa0bytes; the limit is 10\xa0bytes."]


def test_text_posted_for_the_file_is_not_a_server_error(doc):
    # What used to raise binascii.Error: a value in POST data instead of a file.
    form = PlainDocumentForm(data(doc, scan="not base64!!"), {},
                             instance=Document.objects.get(pk=doc.pk))
    assert form.is_valid(), form.errors
    form.save()
    assert Document.objects.get(pk=doc.pk).scan == SECRET


def test_new_row_with_an_upload():
    form = PlainDocumentForm({"title": "new", "notes": ""},
                             {"scan": SimpleUploadedFile("a.bin", b"abc")})
    assert form.is_valid(), form.errors
    saved = Document.objects.get(pk=form.save().pk)
    assert saved.scan == b"abc" and saved.blob == b""


# -- a row that fails to open ------------------------------------------------


@pytest.fixture
def broken(doc) -> Document:
    """``doc`` with values that fail to open: notes copied from another row,
    scan sealed under a key that is not configured (a binary value is not
    opened to show its size, so the form finds what the envelope tells:
    docs/ADMIN.md)."""
    other = Document.objects.create(title="o", notes="other notes", scan=b"other scan")
    set_raw(doc.pk, "notes", raw(other.pk, "notes"))
    scan = bytearray(raw(other.pk, "scan"))
    scan[1] ^= 0xFF  # the key id: no configured key has it
    set_raw(doc.pk, "scan", bytes(scan))
    return doc


def test_plain_model_form_cannot_be_built_on_such_a_row(broken):
    # Documented limit (docs/FORMS.md): a plain ModelForm reads every value.
    with pytest.raises(DecryptionError):
        PlainDocumentForm(instance=Document.objects.get(pk=broken.pk))


def test_encrypted_model_form_renders_a_per_field_marker(broken):
    form = _encrypted_form()(instance=Document.objects.get(pk=broken.pk))
    for name in ("notes", "scan"):
        field = form.fields[name]
        assert field.disabled
        html = str(form[name])
        assert "cannot decrypt" in html and "mcfields-undecryptable" in html
        assert f"formsapp.Document.{name}" in html  # the tooltip names model and field
        assert f"pk={broken.pk}" in html
        assert "Saving this form leaves it as stored" in str(field.help_text)
    assert "other notes" not in str(form) and "other scan" not in str(form)
    assert not form.fields["title"].disabled


def test_saving_such_a_row_keeps_the_stored_values(broken):
    before = raw(broken.pk, "notes"), raw(broken.pk, "scan")
    form = _encrypted_form()(data(broken, title="edited", notes="ignored"), {},
                             instance=Document.objects.get(pk=broken.pk))
    assert form.is_valid(), form.errors
    form.save()
    assert Document.objects.get(pk=broken.pk).title == "edited"
    assert (raw(broken.pk, "notes"), raw(broken.pk, "scan")) == before


def test_encrypted_model_form_does_not_reseal_unchanged_values(doc):
    before = raw(doc.pk, "notes"), raw(doc.pk, "scan")
    form = _encrypted_form()(data(doc, title="x"), {}, instance=Document.objects.get(pk=doc.pk))
    assert form.is_valid(), form.errors
    form.save()
    assert (raw(doc.pk, "notes"), raw(doc.pk, "scan")) == before
