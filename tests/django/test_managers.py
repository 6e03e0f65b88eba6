"""EncryptedManager: update(), bulk_update() and bulk_create() bind every row."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import FieldError
from django.db import transaction
from django.db.models import F

import mcfields.managers
import mcfields.preallocate
import mcfields.saving
from mcfields.managers import EncryptedQuerySet
from testproject.demo.models import Comment, Contact, Note, SignedNote

from .conftest import count_rows, open_stored, raw_value

pytestmark = pytest.mark.django_db


def _contacts(n: int) -> list[Contact]:
    return [Contact.objects.create(name=f"c{i}", email=f"old{i}@example.com") for i in range(n)]


def test_update_seals_the_value_for_each_row(ring):
    contacts = _contacts(3)
    assert Contact.objects.update(email="same@example.com") == 3
    stored = [raw_value(Contact, "email", c.pk) for c in contacts]
    assert len(set(stored)) == 3  # one envelope per row, not one shared value
    for c, s in zip(contacts, stored, strict=True):
        assert open_stored(ring, s, "demo.Contact.email", str(c.pk)) == b"same@example.com"


def test_update_with_filter_and_plain_fields():
    contacts = _contacts(3)
    count = Contact.objects.filter(name__in=["c0", "c2"]).update(
        name="renamed", phone="555", remarks=""
    )
    assert count == 2
    fresh = {c.pk: Contact.objects.get(pk=c.pk) for c in contacts}
    assert fresh[contacts[0].pk].name == "renamed" and fresh[contacts[0].pk].phone == "555"
    assert fresh[contacts[2].pk].remarks == ""
    assert fresh[contacts[1].pk].name == "c1" and fresh[contacts[1].pk].phone is None
    # A filter on a field the update changes: the rows matched before are updated.
    assert Contact.objects.filter(name="renamed").update(name="again", email="e") == 2
    assert Contact.objects.filter(name="again").count() == 2


def test_update_to_none_and_nothing_matched():
    contacts = _contacts(2)
    Contact.objects.update(phone="1")
    assert Contact.objects.update(phone=None) == 2
    assert raw_value(Contact, "phone", contacts[0].pk) is None
    assert Contact.objects.filter(name="nobody").update(email="x") == 0


def test_update_refuses_expressions_and_slices():
    _contacts(1)
    with pytest.raises(FieldError, match="expression"):
        Contact.objects.update(email=F("name"))
    with pytest.raises(TypeError, match="slice"):
        Contact.objects.all()[:1].update(email="x")


def test_update_of_a_parent_table_field_through_a_child_queryset(ring):
    signed = SignedNote.objects.create(title="s", body="old body", signer="old signer")
    qs = EncryptedQuerySet(model=SignedNote).filter(pk=signed.pk)
    assert qs.update(body="new body", signer="new signer", title="new") == 1
    fresh = SignedNote.objects.get(pk=signed.pk)
    assert (fresh.body, fresh.signer, fresh.title) == ("new body", "new signer", "new")
    assert open_stored(
        ring, raw_value(SignedNote, "body", signed.pk), "demo.Note.body", str(signed.pk)
    ) == b"new body"


def test_bulk_update_seals_changed_values_and_keeps_untouched_ones(ring):
    _contacts(3)
    contacts = list(Contact.objects.order_by("name"))
    untouched = raw_value(Contact, "email", contacts[2].pk)
    for i, c in enumerate(contacts[:2]):
        c.email = f"new{i}@example.com"
        c.name = f"n{i}"
    assert Contact.objects.bulk_update(contacts, ["email", "name"]) == 3
    for i, c in enumerate(contacts[:2]):
        stored = raw_value(Contact, "email", c.pk)
        assert open_stored(ring, stored, "demo.Contact.email", str(c.pk)) == (
            f"new{i}@example.com".encode()
        )
        assert Contact.objects.get(pk=c.pk).name == f"n{i}"
    assert raw_value(Contact, "email", contacts[2].pk) == untouched
    assert Contact.objects.bulk_update(contacts, ["email"]) == 3
    assert Contact.objects.bulk_update([], ["email"]) == 0


def test_bulk_create_binds_database_assigned_pks(ring):
    note = Note.objects.create(title="t", body="b")
    comments = Comment.objects.bulk_create(
        [Comment(note=note, text=f"text {i}", remarks="" if i else "r") for i in range(5)]
    )
    assert all(c.pk is not None for c in comments)
    for i, c in enumerate(comments):
        assert c.text == f"text {i}"  # the instances keep their plaintext
        stored = raw_value(Comment, "text", c.pk)
        assert open_stored(ring, stored, "demo.Comment.text", str(c.pk)) == f"text {i}".encode()
    assert Comment.objects.get(pk=comments[0].pk).remarks == "r"


def test_bulk_create_with_uuid_pks_is_sealed_directly(ring):
    created = Contact.objects.bulk_create([Contact(name="u", email=f"u{i}") for i in range(3)])
    for i, c in enumerate(created):
        stored = raw_value(Contact, "email", c.pk)
        assert open_stored(ring, stored, "demo.Contact.email", str(c.pk)) == f"u{i}".encode()


@pytest.mark.django_db(transaction=True)
def test_bulk_create_failure_before_binding_leaves_no_row(monkeypatch):
    note = Note.objects.create(title="t", body="b")
    monkeypatch.setattr(mcfields.preallocate, "ENABLED", False)  # the general path

    def failing_write(*args, **kwargs):
        raise RuntimeError("injected failure before the binding writes")

    monkeypatch.setattr(mcfields.saving, "write_sealed", failing_write)
    with pytest.raises(RuntimeError, match="injected"):
        Comment.objects.bulk_create([Comment(note=note, text="x") for _ in range(3)])
    assert count_rows(Comment) == 0


def test_bulk_create_refuses_what_it_cannot_bind():
    note = Note.objects.create(title="t", body="b")
    with pytest.raises(ValueError, match="ignore_conflicts"):
        Comment.objects.bulk_create([Comment(note=note, text="x")], ignore_conflicts=True)
    with pytest.raises(ValueError, match="update_conflicts"):
        Contact.objects.bulk_create(
            [Contact(name="n", email="e")],
            update_conflicts=True,
            update_fields=["email"],
            unique_fields=["name"],
        )
    assert count_rows(Comment) == 0


def test_async_bulk_operations():
    async def work() -> list[str]:
        await Contact.objects.abulk_create(
            [Contact(name="a", email="a1"), Contact(name="b", email="b1")]
        )
        await Contact.objects.filter(name="a").aupdate(email="a2")
        return [c.email async for c in Contact.objects.order_by("name")]

    assert async_to_sync(work)() == ["a2", "b1"]


def test_manager_with_no_encrypted_fields_in_the_call_is_plain_django():
    contacts = _contacts(2)
    assert Contact.objects.filter(pk=contacts[0].pk).update(name="x") == 1
    with transaction.atomic():
        assert Contact.objects.bulk_update(contacts, ["name"]) == 2
