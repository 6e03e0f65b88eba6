"""The admin with encrypted fields, through Django's test client.

Covers what the browser test does not: permissions, downloads, clearing a
file, saving a form next to a value that fails to open, and the system
checks and run-time skips for search, ordering, filters and sort links.
"""

from __future__ import annotations

import re

import pytest
from admin_helpers import move_values, raw_values, tables_containing
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from mcfields import EncryptedBinaryField
from mcfields.admin import (
    MARKER_CLASS,
    EncryptedFileField,
    EncryptedModelAdmin,
    check_admin_registrations,
)
from testproject.demo.models import Contact, Note, SignedNote

pytestmark = pytest.mark.django_db

NOTES = "Meet the informant at the north gate, 06:00."
FILE = b"%PDF-1.4 fake\x00\xff" + b"confidential-file-body " * 100  # 2.3 KB


def changelist_url(model, site="admin"):
    opts = model._meta
    return reverse(f"{site}:{opts.app_label}_{opts.model_name}_changelist")


def add_url(model, site="admin"):
    opts = model._meta
    return reverse(f"{site}:{opts.app_label}_{opts.model_name}_add")


def change_url(obj, site="admin"):
    opts = obj._meta
    return reverse(f"{site}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def download_url(obj, field, site="admin"):
    opts = obj._meta
    return reverse(
        f"{site}:{opts.app_label}_{opts.model_name}_mcfields_download", args=[obj.pk, field]
    )


def cells(html: str, name: str) -> list[str]:
    """Inner HTML of the change-list cells of column ``name``."""
    return re.findall(rf'<t[dh] class="field-{re.escape(name)}[^"]*">(.*?)</t[dh]>', html, re.S)


def form_row(html: str, name: str) -> str:
    """The change-form row of field ``name`` (up to the next row)."""
    start = html.index(f"form-row field-{name}")
    end = html.find("form-row field-", start + 10)
    return html[start : end if end != -1 else None]


def view_permission(model):
    return Permission.objects.get(
        codename=f"view_{model._meta.model_name}",
        content_type=ContentType.objects.get_for_model(model),
    )


def assert_no_bytes(html: str) -> None:
    assert "confidential-file-body" not in html
    assert "b&#x27;" not in html and "b'" not in html  # no bytes repr
    assert "\\x00" not in html


@pytest.fixture
def note():
    return Note.objects.create(title="Field report", body=NOTES, attachment=FILE)


@pytest.fixture
def other():
    return Note.objects.create(title="Other", body="other notes", attachment=b"xyz")


def tamper(note, other):
    """Move ``other``'s ciphertext into ``note``'s row: it must fail to open."""
    move_values(Note, other.pk, note.pk, "body", "attachment")


# -- plain use -----------------------------------------------------------------


def test_changelist_shows_plaintext_and_size(client, note):
    response = client.get(changelist_url(Note))
    assert response.status_code == 200
    html = response.content.decode()
    assert cells(html, "body") == [NOTES]
    (attachment,) = cells(html, "attachment")
    assert attachment.startswith("2.3\xa0KB ")
    assert download_url(note, "attachment") in attachment
    assert_no_bytes(html)
    # Encrypted columns are shown but not sortable; plain ones stay sortable.
    assert re.search(r'<th scope="col" class="sortable[^"]*column-title', html)
    assert re.search(r'<th scope="col" class="column-body"', html)


def test_long_text_is_cut_in_the_list(client):
    Note.objects.create(title="Long", body="x" * 200 + "TAIL")
    (body,) = cells(client.get(changelist_url(Note)).content.decode(), "body")
    assert len(body) == 80 and body.endswith("…") and "TAIL" not in body


def test_change_form_edits_text_and_offers_upload(client, note):
    response = client.get(change_url(note))
    assert response.status_code == 200
    html = response.content.decode()
    body = form_row(html, "body")
    assert "<textarea" in body and NOTES in body
    attachment = form_row(html, "attachment")
    assert '<span class="mcfields-size">2.3\xa0KB</span>' in attachment
    assert 'type="file"' in attachment and download_url(note, "attachment") in attachment
    assert 'enctype="multipart/form-data"' in html
    assert_no_bytes(html)


def test_add_with_upload_stores_only_ciphertext(client):
    upload = SimpleUploadedFile("minutes.txt", FILE, content_type="text/plain")
    response = client.post(
        add_url(Note), {"title": "Minutes", "body": NOTES, "attachment": upload}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    note = Note.objects.get(title="Minutes")
    assert (note.body, note.attachment) == (NOTES, FILE)
    stored_body, stored_file = raw_values(Note, note.pk, "body", "attachment")
    assert NOTES not in stored_body and NOTES.encode() not in stored_file
    assert b"confidential-file-body" not in stored_file
    assert tables_containing(NOTES) == set()
    assert tables_containing(b"confidential-file-body") == set()


def test_add_without_file(client):
    response = client.post(add_url(Note), {"title": "No file", "body": "text only"})
    assert response.status_code == 302
    note = Note.objects.get(title="No file")
    assert (note.body, note.attachment) == ("text only", None)


def test_edit_text_keeps_untouched_file_ciphertext(client, note):
    before_body, before_file = raw_values(Note, note.pk, "body", "attachment")
    response = client.post(change_url(note), {"title": note.title, "body": "Revised."})
    assert response.status_code == 302
    after_body, after_file = raw_values(Note, note.pk, "body", "attachment")
    assert after_body != before_body and "Revised." not in after_body
    assert after_file == before_file  # not re-sealed: nobody touched it
    fresh = Note.objects.get(pk=note.pk)
    assert (fresh.body, fresh.attachment) == ("Revised.", FILE)


def test_unchanged_form_save_writes_same_ciphertext(client, note):
    before = raw_values(Note, note.pk, "body", "attachment")
    response = client.post(change_url(note), {"title": "New title", "body": NOTES})
    assert response.status_code == 302
    assert raw_values(Note, note.pk, "body", "attachment") == before
    assert Note.objects.get(pk=note.pk).title == "New title"


def test_replace_and_clear_file(client, note):
    new = SimpleUploadedFile("v2.bin", b"second version", content_type="application/pdf")
    response = client.post(
        change_url(note), {"title": note.title, "body": NOTES, "attachment": new}
    )
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).attachment == b"second version"

    response = client.post(
        change_url(note), {"title": note.title, "body": NOTES, "attachment-clear": "on"}
    )
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).attachment is None
    assert raw_values(Note, note.pk, "attachment") == (None,)


def test_upload_over_the_size_cap_is_a_form_error(client, note, settings):
    settings.MCFIELDS_MAX_VALUE_SIZE = 1000
    before = raw_values(Note, note.pk, "attachment")
    upload = SimpleUploadedFile("big.bin", b"z" * 1001)
    response = client.post(
        change_url(note), {"title": note.title, "body": NOTES, "attachment": upload}
    )
    assert response.status_code == 200  # the form again, with the error
    assert "The file is 1001\xa0bytes; the limit is 1000\xa0bytes." in response.content.decode()
    assert raw_values(Note, note.pk, "attachment") == before


def test_download(client, note):
    response = client.get(download_url(note, "attachment"))
    assert response.status_code == 200
    assert response.content == FILE
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == (
        f'attachment; filename="note-{note.pk}-attachment.bin"'
    )
    assert "no-store" in response["Cache-Control"]


def test_download_refuses_unknown_and_plain_fields(client, note):
    for field in ("title", "body", "nope"):
        assert client.get(download_url(note, field)).status_code == 404


def test_download_needs_view_permission(client, note, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(download_url(note, "attachment")).status_code == 403
    staff.user_permissions.add(view_permission(Note))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.get(download_url(note, "attachment")).content == FILE


def test_view_only_user_sees_plaintext_and_size(client, note, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(view_permission(Note))
    client.force_login(viewer)
    response = client.get(change_url(note))
    assert response.status_code == 200
    html = response.content.decode()
    assert NOTES in form_row(html, "body") and "<textarea" not in html
    assert "2.3\xa0KB" in form_row(html, "attachment") and 'type="file"' not in html
    assert_no_bytes(html)


def test_uuid_pk_model(client):
    contact = Contact.objects.create(
        name="P. Doe", email="p@example.invalid", remarks="allergic", photo=b"\x89PNG" * 300
    )
    html = client.get(changelist_url(Contact)).content.decode()
    assert cells(html, "email") == ["p@example.invalid"]
    assert cells(html, "photo")[0].startswith("1.2\xa0KB ")
    response = client.get(change_url(contact))
    assert response.status_code == 200
    html = response.content.decode()
    assert "p@example.invalid" in form_row(html, "email")
    assert "allergic" in form_row(html, "remarks")
    assert 'type="file"' in form_row(html, "photo")
    assert "PNG" not in html

    upload = SimpleUploadedFile("me.png", b"new photo")
    response = client.post(
        change_url(contact),
        {"name": "P. Doe", "email": "new@example.invalid", "remarks": "allergic",
         "phone": "", "photo": upload},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    fresh = Contact.objects.get(pk=contact.pk)
    assert (fresh.email, fresh.photo) == ("new@example.invalid", b"new photo")
    assert "new@example.invalid" not in raw_values(Contact, contact.pk, "email")[0]


def test_non_editable_binary_not_in_upload_fields_shows_size_only(client):
    signed = SignedNote.objects.create(
        title="Signed", body="b", signer="Ann", signature=b"\x01" * 64, attachment=b"pdf"
    )
    response = client.get(change_url(signed))
    assert response.status_code == 200
    html = response.content.decode()
    signature = form_row(html, "signature")
    assert "64\xa0bytes" in signature and 'type="file"' not in signature
    assert 'type="file"' in form_row(html, "attachment")  # in encrypted_upload_fields
    assert "Ann" in form_row(html, "signer")


def test_editable_binary_field_gets_the_file_field():
    field = EncryptedBinaryField(editable=True, blank=True, null=True)
    field.set_attributes_from_name("blob")
    request = RequestFactory().get("/")
    formfield = EncryptedModelAdmin(Note, admin.AdminSite()).formfield_for_dbfield(
        field, request
    )
    assert isinstance(formfield, EncryptedFileField)
    assert not formfield.required and formfield.null


# -- rows that fail to open ---------------------------------------------------


def test_tampered_row_changelist_shows_marker(client, note, other):
    tamper(note, other)
    response = client.get(changelist_url(Note))
    assert response.status_code == 200
    html = response.content.decode()
    bodies = cells(html, "body")
    assert len(bodies) == 2
    assert "other notes" in bodies  # the healthy row still renders
    bad = [c for c in bodies if MARKER_CLASS in c]
    assert len(bad) == 1 and "⚠ cannot decrypt (key id " in bad[0]
    # A binary value is shown by its size, read from the envelope without
    # opening it (item 15): a value moved from another row is only found out
    # when opened, by its download (test_tampered_download_redirects_with_message).
    # Values under an unknown key still get the marker (test_unknown_key_marker...).
    attachments = cells(html, "attachment")
    assert not any(MARKER_CLASS in c for c in attachments)
    assert sorted(c.split(" <a ")[0] for c in attachments) == ["3\xa0bytes", "3\xa0bytes"]
    assert "Field report" in html  # plain columns of the bad row still show
    assert NOTES not in html


def test_tampered_row_change_form_and_save(client, note, other):
    tamper(note, other)
    stored = raw_values(Note, note.pk, "body", "attachment")
    response = client.get(change_url(note))
    assert response.status_code == 200
    html = response.content.decode()
    row = form_row(html, "body")
    assert MARKER_CLASS in row and "cannot decrypt" in row
    assert 'name="body"' not in html
    # The moved binary is not opened to render the form: its size shows (item 15).
    assert '<span class="mcfields-size">3\xa0bytes</span>' in form_row(html, "attachment")
    assert 'name="title"' in html
    assert "other notes" not in html  # the moved value is not opened anywhere

    # The rest of the row can still be edited; the broken values stay as stored.
    response = client.post(change_url(note), {"title": "Renamed"})
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).title == "Renamed"
    assert raw_values(Note, note.pk, "body", "attachment") == stored


def test_saving_next_to_a_stale_failing_value(client, note, other, settings):
    """A failing value under an old (still configured) key is not re-sealed on save."""
    from mcfields.crypto import generate_key

    tamper(note, other)
    stored = raw_values(Note, note.pk, "body", "attachment")
    settings.MCFIELDS_KEYS = [generate_key(), *settings.MCFIELDS_KEYS]  # rotation pending
    response = client.post(change_url(note), {"title": "Renamed again"})
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).title == "Renamed again"
    assert raw_values(Note, note.pk, "body", "attachment") == stored


def test_tampered_download_redirects_with_message(client, note, other):
    tamper(note, other)
    response = client.get(download_url(note, "attachment"), follow=True)
    assert response.redirect_chain[-1][0] == change_url(note)
    assert "cannot be downloaded" in response.content.decode()


def test_unknown_key_marker_names_key_id(client, note, settings):
    from mcfields.crypto import generate_key

    settings.MCFIELDS_KEYS = [generate_key()]  # the row's key is gone
    html = client.get(changelist_url(Note)).content.decode()
    (marker,) = [c for c in cells(html, "body") if MARKER_CLASS in c]
    assert re.search(r"cannot decrypt \(key id [0-9a-f]{4,}\)", marker)
    # The binary value's header names the missing key: a marker, no opening needed.
    (marker,) = [c for c in cells(html, "attachment") if MARKER_CLASS in c]
    assert re.search(r"cannot decrypt \(key id [0-9a-f]{4,}\)", marker)
    response = client.get(change_url(note))
    assert response.status_code == 200
    html = response.content.decode()
    assert MARKER_CLASS in form_row(html, "body")
    assert MARKER_CLASS in form_row(html, "attachment") and 'type="file"' not in html


# -- misuse: search, ordering, filters, sort links -----------------------------


@pytest.mark.urls("admin_misuse_urls")
def test_search_skips_encrypted_fields_with_message(client, note, other):
    url = changelist_url(Note, site="misuse")
    response = client.get(url, {"q": "Field"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Search did not look in encrypted fields (body)" in html
    assert [re.sub(r"<[^>]+>", "", c) for c in cells(html, "title")] == ["Field report"]

    # Searching for the secret text finds nothing (there is only ciphertext).
    html = client.get(url, {"q": "informant"}).content.decode()
    assert cells(html, "title") == []


@pytest.mark.urls("admin_misuse_urls")
def test_search_unavailable_when_all_fields_encrypted(client):
    Contact.objects.create(name="P", email="flu@example.invalid")
    url = changelist_url(Contact, site="misuse")
    html = client.get(url).content.decode()
    assert 'id="searchbar"' not in html
    response = client.get(url, {"q": "flu"})
    assert response.status_code == 200
    assert "Search is not available: every search field is encrypted (email, remarks)" in (
        response.content.decode()
    )


@pytest.mark.urls("admin_misuse_urls")
def test_ordering_filters_and_sort_links_skip_encrypted(client):
    # Titles in one order, bodies in the reverse order: ordering by the body
    # ciphertext would give one of 6! orders, almost never the title order.
    titles = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    for i, title in enumerate(titles):
        Note.objects.create(title=title, body=f"{9 - i} notes")
    url = changelist_url(Note, site="misuse")
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    shown = [re.sub(r"<[^>]+>", "", c) for c in cells(html, "title")]
    assert shown == titles  # ordering = ["body", "title"]: "body" was skipped
    assert 'id="changelist-filter"' in html
    assert "By body" not in html and "By title" in html
    # Sort links on the encrypted column and on a method ordered by it are ignored.
    for column in ("1", "2", "-1", "1.0"):
        response = client.get(url, {"o": column})
        assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r'class="sortable[^"]*column-body"', html)
    assert not re.search(r'class="sortable[^"]*column-body_preview"', html)


@pytest.mark.parametrize("query", ["body=abc", "body__icontains=a", "o=1&body__gt=a"])
def test_crafted_lookups_on_encrypted_fields_are_refused_not_500(client, note, query):
    response = client.get(f"{changelist_url(Note)}?{query}")
    # Django's answer to a lookup it cannot run: back to the list with ?e=1.
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.urls("admin_misuse_urls")
def test_list_display_method_on_tampered_row_shows_marker(client, note, other):
    tamper(note, other)
    response = client.get(changelist_url(Note, site="misuse"))
    assert response.status_code == 200
    previews = cells(response.content.decode(), "body_preview")
    assert sum(MARKER_CLASS in c for c in previews) == 1
    assert "other" in previews


@pytest.mark.urls("admin_misuse_urls")
def test_related_encrypted_path_in_list_display(client, note, other):
    from testproject.demo.models import Comment

    Comment.objects.create(note=note, text="first")
    Comment.objects.create(note=other, text="second")
    url = changelist_url(Comment, site="misuse")
    html = client.get(url).content.decode()
    assert sorted(cells(html, "note__body")) == sorted([NOTES, "other notes"])
    assert sorted(cells(html, "text")) == ["first", "second"]
    tamper(note, other)
    response = client.get(url)
    assert response.status_code == 200
    bodies = cells(response.content.decode(), "note__body")
    assert "other notes" in bodies and sum(MARKER_CLASS in c for c in bodies) == 1


@pytest.mark.urls("admin_misuse_urls")
def test_upload_name_kept_in_plain_field_and_used_for_download(client):
    upload = SimpleUploadedFile("plan.pdf", FILE)
    response = client.post(add_url(Note, "files"), {"body": "b", "attachment": upload})
    assert response.status_code == 302, response.content.decode()[:3000]
    note = Note.objects.get()
    assert (note.title, note.attachment) == ("plan.pdf", FILE)
    response = client.get(download_url(note, "attachment", site="files"))
    assert response["Content-Disposition"] == 'attachment; filename="plan.pdf"'
    assert response.content == FILE


@pytest.mark.urls("admin_misuse_urls")
def test_readonly_encrypted_fields_in_nested_fieldsets(client, note):
    stored = raw_values(Note, note.pk, "body", "attachment")
    response = client.get(change_url(note, "readonly"))
    assert response.status_code == 200
    html = response.content.decode()
    assert NOTES in html and "<textarea" not in html
    assert "2.3\xa0KB" in html and 'type="file"' not in html
    assert_no_bytes(html)
    response = client.post(change_url(note, "readonly"), {"title": "T2", "body": "ignored"})
    assert response.status_code == 302
    assert Note.objects.get(pk=note.pk).title == "T2"
    assert raw_values(Note, note.pk, "body", "attachment") == stored


# -- system checks --------------------------------------------------------------


def ids(messages):
    return sorted(m.id for m in messages if m.id.startswith("mcfields."))


def test_checks_flag_misuse():
    from admin_misuse_urls import AllEncryptedSearchAdmin, MisusedNoteAdmin, site

    messages = MisusedNoteAdmin(Note, site).check()
    assert ids(messages) == ["mcfields.W201", "mcfields.W202", "mcfields.W203", "mcfields.W204"]
    text = " ".join(m.msg for m in messages)
    assert "search_fields[1] ('body')" in text and "demo.Note.body" in text
    assert ids(AllEncryptedSearchAdmin(Contact, site).check()) == [
        "mcfields.W201",
        "mcfields.W201",
    ]


def test_checks_list_editable_and_prepopulated():
    class EditableAdmin(EncryptedModelAdmin):
        list_display = ["title", "body"]
        list_editable = ["body"]
        prepopulated_fields = {"title": ["body"]}

    messages = EditableAdmin(Note, admin.AdminSite()).check()
    assert ids(messages) == ["mcfields.E205", "mcfields.W206"]
    assert [m.level for m in messages if m.id == "mcfields.E205"] == [40]


def test_checks_follow_prefixes_lookups_and_relations():
    from testproject.demo.models import Comment

    class ViaPathAdmin(EncryptedModelAdmin):
        search_fields = ["=title", "body__icontains", "@body", "^comments__text"]
        ordering = ["-body"]

    assert ids(ViaPathAdmin(Note, admin.AdminSite()).check()) == [
        "mcfields.W201",
        "mcfields.W201",
        "mcfields.W201",
        "mcfields.W202",
    ]

    class CommentAdmin(EncryptedModelAdmin):
        search_fields = ["note__title", "note__body"]

    messages = CommentAdmin(Comment, admin.AdminSite()).check()
    assert ids(messages) == ["mcfields.W201"] and "'note__body'" in messages[0].msg


def test_demo_admin_is_clean_and_plain_admin_is_flagged():
    from django.contrib.admin import site as default_site

    for model in (Note, SignedNote, Contact):
        assert ids(default_site._registry[model].check()) == []
    assert [m for m in check_admin_registrations() if m.id == "mcfields.W210"] == []

    plain = admin.AdminSite(name="plain-test")
    plain.register(Note, admin.ModelAdmin)
    try:
        found = [m for m in check_admin_registrations() if m.id == "mcfields.W210"]
        assert len(found) == 1 and "demo.Note" in found[0].msg
    finally:
        plain.unregister(Note)


# -- sizes without opening (item 15) -------------------------------------------


@pytest.fixture
def binary_opens(monkeypatch):
    """Labels of every value opened through the crypto API (Keyring.open)."""
    from mcfields.crypto import Keyring

    opened: list[bytes] = []
    # Text columns open through open_text (base64url decoded in the guest).
    for name in ("open", "open_text"):
        real = getattr(Keyring, name)

        def counting_open(self, stored, context=b"", _real=real):
            opened.append(bytes(context))
            return _real(self, stored, context)

        monkeypatch.setattr(Keyring, name, counting_open)

    def count(label: bytes = b"demo.Note.attachment") -> int:
        return sum(label in context for context in opened)

    return count


SIZES = (0, 1, 999, 1000, 1023)


def test_changelist_shows_exact_sizes_without_opening(client, binary_opens):
    notes = {
        size: Note.objects.create(title=f"n{size}", body="b", attachment=b"\xff" * size)
        for size in SIZES
    }
    html = client.get(changelist_url(Note)).content.decode()
    assert binary_opens() == 0  # was one full decryption per row
    shown = {c.split(" <a ")[0] for c in cells(html, "attachment")}
    assert shown == {"0\xa0bytes", "1\xa0byte", "999\xa0bytes", "1000\xa0bytes",
                     "1023\xa0bytes"}
    for note in notes.values():
        assert download_url(note, "attachment") in html


def test_change_form_shows_exact_size_without_opening(client, binary_opens):
    note = Note.objects.create(title="t", body="b", attachment=b"\x00" * 1000)
    html = client.get(change_url(note)).content.decode()
    assert binary_opens() == 0
    attachment = form_row(html, "attachment")
    assert '<span class="mcfields-size">1000\xa0bytes</span>' in attachment
    assert download_url(note, "attachment") in attachment
    # Saving the rest of the form does not open (or rewrite) the file either.
    stored = raw_values(Note, note.pk, "attachment")
    response = client.post(change_url(note), {"title": "Renamed", "body": "b"})
    assert response.status_code == 302
    assert binary_opens() == 0
    assert raw_values(Note, note.pk, "attachment") == stored
    # The download still opens on request.
    assert client.get(download_url(note, "attachment")).content == b"\x00" * 1000
    assert binary_opens() == 1


def test_read_only_and_view_only_displays_do_not_open(client, binary_opens, django_user_model):
    signed = SignedNote.objects.create(title="s", body="b", attachment=b"a" * 10,
                                       signature=b"s" * 64)
    html = client.get(change_url(signed)).content.decode()
    assert "64\xa0bytes" in form_row(html, "signature")  # not uploadable: a display
    assert binary_opens(b"demo.SignedNote.signature") == 0
    assert binary_opens(b"attachment") == 0


def test_editable_binary_field_form_does_not_open_unchanged_value(binary_opens, monkeypatch):
    from mcfields.admin import EncryptedModelForm

    # An editable binary field goes through ModelForm's model_to_dict and
    # Model.clean_fields, which both read (and so opened) the value.
    monkeypatch.setattr(Contact._meta.get_field("photo"), "editable", True)

    class EditableForm(EncryptedModelForm):
        photo = EncryptedFileField(required=False, null=True)

        class Meta:
            model = Contact
            fields = ["name", "photo"]

    contact = Contact.objects.create(name="c", photo=b"p" * 77)
    contact = Contact.objects.get(pk=contact.pk)
    form = EditableForm(instance=contact)
    assert "77\xa0bytes" in str(form["photo"])
    form = EditableForm({"name": "d"}, instance=contact)
    assert form.is_valid(), form.errors
    form.save()
    assert binary_opens(b"photo") == 0


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 44, 45, 46, 100, 1000, 4097])
def test_envelope_plaintext_size_is_exact(size):
    from mcfields.admin.display import envelope_plaintext_size
    from mcfields.fields import EncryptedTextField

    blob_field = Note._meta.get_field("attachment")
    text_field = Note._meta.get_field("body")
    assert isinstance(text_field, EncryptedTextField)
    blob = bytes(range(256)) * (size // 256 + 1)
    assert envelope_plaintext_size(blob_field, blob_field.seal_for_pk(blob[:size], 1)) == size
    text = ("é✓a" * size)[:size]  # 1 to 3 bytes per character
    stored = text_field.seal_for_pk(text, 1)
    assert envelope_plaintext_size(text_field, stored) == len(text.encode("utf-8"))
