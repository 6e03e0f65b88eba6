"""Forms and the admin: plaintext in, ciphertext in the database."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.auth.models import User
from django.urls import reverse

from mcfields.crypto import TEXT_PREFIX
from testproject.demo.models import Contact, Note

from .conftest import open_stored, raw_value

pytestmark = pytest.mark.django_db


class NoteForm(forms.ModelForm):
    class Meta:
        model = Note
        fields = "__all__"  # noqa: DJ007 - shows which fields a form gets by default


def test_model_form_edits_plaintext_and_saves_ciphertext(ring):
    # Binary fields are not editable by default, like Django's BinaryField.
    assert set(NoteForm.base_fields) == {"title", "body"}
    assert isinstance(NoteForm.base_fields["body"].widget, forms.Textarea)
    form = NoteForm(data={"title": "t", "body": "from a form"})
    assert form.is_valid(), form.errors
    note = form.save()
    assert open_stored(
        ring, raw_value(Note, "body", note.pk), "demo.Note.body", str(note.pk)
    ) == b"from a form"
    edit = NoteForm(instance=Note.objects.get(pk=note.pk))
    assert edit.initial["body"] == "from a form"
    assert "from a form" in str(edit["body"])


def test_unchanged_form_field_keeps_the_stored_envelope():
    note = Note.objects.create(title="t", body="unchanged")
    stored = raw_value(Note, "body", note.pk)
    form = NoteForm(data={"title": "new title", "body": "unchanged"},
                    instance=Note.objects.get(pk=note.pk))
    assert form.is_valid()
    form.save()
    assert raw_value(Note, "body", note.pk) == stored
    assert Note.objects.get(pk=note.pk).title == "new title"


def test_full_clean_validates_the_plaintext():
    note = Note(title="t", body="")
    with pytest.raises(Exception, match="body"):
        note.full_clean()
    Note(title="t", body="ok").full_clean()


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_changelist_and_change_form_show_plaintext(admin_client):
    note = Note.objects.create(title="listed", body="LISTED-BODY")
    contact = Contact.objects.create(name="Ann", email="ann@example.com")
    page = admin_client.get(reverse("admin:demo_note_changelist"))
    assert page.status_code == 200
    assert "LISTED-BODY" in page.content.decode()
    page = admin_client.get(reverse("admin:demo_note_change", args=[note.pk]))
    assert page.status_code == 200 and "LISTED-BODY" in page.content.decode()
    page = admin_client.get(reverse("admin:demo_contact_change", args=[contact.pk]))
    assert page.status_code == 200 and "ann@example.com" in page.content.decode()
    assert TEXT_PREFIX not in page.content.decode()


def test_admin_add_and_change_store_ciphertext(admin_client, ring):
    response = admin_client.post(
        reverse("admin:demo_contact_add"),
        {"name": "Bo", "email": "bo@example.com", "phone": "", "remarks": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    contact = Contact.objects.get(name="Bo")
    stored = raw_value(Contact, "email", contact.pk)
    assert open_stored(ring, stored, "demo.Contact.email", str(contact.pk)) == b"bo@example.com"
    response = admin_client.post(
        reverse("admin:demo_note_add"), {"title": "added", "body": "added in admin"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    note = Note.objects.get(title="added")
    assert open_stored(
        ring, raw_value(Note, "body", note.pk), "demo.Note.body", str(note.pk)
    ) == b"added in admin"
    response = admin_client.post(
        reverse("admin:demo_note_change", args=[note.pk]),
        {"title": "added", "body": "changed in admin"},
    )
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).body == "changed in admin"
