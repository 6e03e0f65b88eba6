"""Inline rows with encrypted fields: plaintext to edit, and a marker, not a
500, for a row whose value fails to open."""

from __future__ import annotations

import pytest
from admin_helpers import move_values, raw_values
from django.urls import reverse

from mcfields.admin import MARKER_CLASS
from testproject.demo.models import Comment, Note

pytestmark = [pytest.mark.django_db, pytest.mark.urls("admin_inline_urls")]


@pytest.fixture
def note():
    note = Note.objects.create(title="Report", body="the body")
    Comment.objects.create(note=note, text="first comment, confidential", remarks="r1")
    Comment.objects.create(note=note, text="second comment", remarks="r2")
    return note


def url(note):
    return reverse("inlines:demo_note_change", args=[note.pk])


def formset_post(note, rows, **extra):
    """POST data for the change form: the note and its comment rows."""
    data = {"title": note.title, "body": note.body,
            "comments-TOTAL_FORMS": str(len(rows)), "comments-INITIAL_FORMS": str(len(rows)),
            "comments-MIN_NUM_FORMS": "0", "comments-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"comments-{i}-{key}"] = value
    data.update(extra)
    return data


def test_inline_rows_show_plaintext(client, note):
    response = client.get(url(note))
    assert response.status_code == 200
    html = response.content.decode()
    assert "first comment, confidential" in html and "second comment" in html
    assert MARKER_CLASS not in html


def test_inline_row_that_fails_to_open_shows_marker_and_keeps_its_value(client, note):
    first, second = Comment.objects.filter(note=note).order_by("pk")
    move_values(Comment, second.pk, first.pk, "text")  # first.text no longer opens
    stored = raw_values(Comment, first.pk, "text", "remarks")

    response = client.get(url(note))
    assert response.status_code == 200
    html = response.content.decode()
    assert MARKER_CLASS in html and "cannot decrypt (key id " in html
    assert "second comment" in html  # the healthy row is intact
    assert html.count("second comment") == 1  # the moved value was not opened

    # Saving the page (the broken row's remarks edited) keeps the broken
    # value exactly as stored and saves the rest.
    rows = [
        {"id": str(first.pk), "note": str(note.pk), "text": "typed over the marker",
         "remarks": "r1 edited"},
        {"id": str(second.pk), "note": str(note.pk), "text": "second comment",
         "remarks": "r2"},
    ]
    response = client.post(url(note), formset_post(note, rows))
    assert response.status_code == 302, response.content.decode()[:2000]
    after = raw_values(Comment, first.pk, "text", "remarks")
    assert after[0] == stored[0]  # the failing envelope is untouched
    assert Comment.objects.get(pk=first.pk).remarks == "r1 edited"
    assert Comment.objects.get(pk=second.pk).text == "second comment"
