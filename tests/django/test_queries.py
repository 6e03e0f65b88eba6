"""Querying and bulk writes through plain querysets: refused clearly, never stored unbound."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import FieldError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Lower

from testproject.demo.models import Comment, Contact, Note

from .conftest import count_rows, open_stored, raw_value

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "lookup",
    ["body", "body__exact", "body__iexact", "body__icontains", "body__startswith",
     "body__in", "body__gt", "body__regex", "body__lower", "body__length"],
)
def test_lookups_other_than_null_tests_are_refused(lookup):
    value = ["x"] if lookup.endswith("__in") else "x"
    with pytest.raises(FieldError) as info:
        Note.objects.filter(**{lookup: value})
    message = str(info.value)
    assert "EncryptedTextField" in message
    name = lookup.split("__", 1)[1] if "__" in lookup else "exact"
    assert f"'{name}'" in message


def test_binary_lookups_are_refused_too():
    with pytest.raises(FieldError, match="'contains' for EncryptedBinaryField"):
        Note.objects.filter(attachment__contains=b"x")


def test_comparing_with_another_column_is_refused():
    with pytest.raises(FieldError, match="'exact'"):
        Note.objects.filter(body=F("title"))


def test_isnull_and_exact_none_work():
    with_attachment = Note.objects.create(title="a", body="b", attachment=b"x")
    without = Note.objects.create(title="a", body="b", attachment=None)
    assert list(Note.objects.filter(attachment__isnull=True)) == [without]
    assert list(Note.objects.filter(attachment=None)) == [without]
    assert list(Note.objects.exclude(attachment=None)) == [with_attachment]
    assert list(Note.objects.filter(attachment__exact=None)) == [without]
    assert Note.objects.filter(body__isnull=False).count() == 2


def test_plain_update_is_refused_and_nothing_changes():
    note = Note.objects.create(title="t", body="b")
    before = raw_value(Note, "body", note.pk)
    with pytest.raises(FieldError, match="EncryptedManager"), transaction.atomic():
        Note.objects.update(body="unbound")
    for expression in (F("title"), Value("plain"), Lower("title")):
        with pytest.raises(FieldError, match="expression"), transaction.atomic():
            Note.objects.update(body=expression)
    assert raw_value(Note, "body", note.pk) == before


def test_plain_update_to_null_is_allowed():
    note = Note.objects.create(title="t", body="b", attachment=b"x")
    assert Note.objects.filter(pk=note.pk).update(attachment=None) == 1
    assert raw_value(Note, "attachment", note.pk) is None


def test_plain_bulk_update_is_refused_and_nothing_changes():
    notes = [Note.objects.create(title="t", body=f"b{i}") for i in range(3)]
    before = [raw_value(Note, "body", n.pk) for n in notes]
    for n in notes:
        n.body = "changed"
    with pytest.raises(FieldError, match="bulk_update"), transaction.atomic():
        Note.objects.bulk_update(notes, ["body"])
    assert [raw_value(Note, "body", n.pk) for n in notes] == before
    # Plain fields alone still work through the plain manager.
    for n in notes:
        n.title = "new"
    assert Note.objects.bulk_update(notes, ["title"]) == 3


def test_plain_bulk_create_with_database_pks_is_refused():
    with pytest.raises(FieldError, match="EncryptedManager"), transaction.atomic():
        Note.objects.bulk_create([Note(title="t", body="b") for _ in range(3)])
    assert count_rows(Note) == 0


def test_plain_bulk_create_with_known_pks_binds_each_row(ring):
    notes = Note.objects.bulk_create(
        [Note(pk=5000 + i, title="t", body=f"body {i}") for i in range(3)]
    )
    for i, note in enumerate(notes):
        stored = raw_value(Note, "body", note.pk)
        assert open_stored(ring, stored, "demo.Note.body", str(5000 + i)) == f"body {i}".encode()
    contacts = Contact._base_manager.bulk_create(
        [Contact(name="n", email=f"{i}@example.com") for i in range(2)]
    )
    assert all(isinstance(c.pk, uuid.UUID) for c in contacts)
    assert {Contact.objects.get(pk=c.pk).email for c in contacts} == {
        "0@example.com", "1@example.com"
    }


def test_ordering_by_an_encrypted_field_is_refused_by_the_encrypted_manager():
    for order in ("email", "-email", "remarks"):
        with pytest.raises(FieldError, match="order"):
            Contact.objects.order_by(order)
    with pytest.raises(FieldError, match="order"):
        Comment.objects.order_by("note__body")
    with pytest.raises(FieldError, match="order"):
        Contact.objects.order_by(F("email").desc())
    assert list(Contact.objects.order_by("name")) == []
