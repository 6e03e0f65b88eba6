"""Loading: Sealed from the database, opened lazily by the descriptor."""

from __future__ import annotations

import pickle

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from mcfields import DecryptionError, Sealed
from mcfields.crypto import Keyring, generate_key, key_id_of
from testproject.demo.models import Comment, Contact, Note, SignedNote

from .conftest import envelope_of, open_stored, raw_value, set_raw_value

pytestmark = pytest.mark.django_db


@pytest.fixture
def count_opens(monkeypatch):
    """Count calls to Keyring.open (every decryption goes through it)."""
    calls: list[bytes] = []
    # Text columns open through open_text (base64url decoded in the guest).
    for name in ("open", "open_text"):
        real = getattr(Keyring, name)

        def counting_open(self, stored, context=b"", _real=real):
            calls.append(context)
            return _real(self, stored, context)

        monkeypatch.setattr(Keyring, name, counting_open)
    return calls


def test_loading_decrypts_nothing_until_the_attribute_is_read(count_opens):
    note = Note.objects.create(title="t", body="lazy", attachment=b"also lazy")
    loaded = Note.objects.get(pk=note.pk)
    assert isinstance(loaded.__dict__["body"], Sealed)
    assert count_opens == []
    assert loaded.body == "lazy"
    assert loaded.body == "lazy"
    assert len(count_opens) == 1  # opened once, then cached
    assert loaded.attachment == b"also lazy"
    assert len(count_opens) == 2


def test_values_and_values_list_yield_sealed(ring):
    note = Note.objects.create(title="t", body="in values", attachment=b"bin")
    row = Note.objects.values("body", "attachment").get(pk=note.pk)
    sealed = row["body"]
    assert isinstance(sealed, Sealed) and isinstance(row["attachment"], Sealed)
    assert sealed.open(note.pk) == "in values"
    assert row["attachment"].open(note.pk) == b"bin"
    assert sealed.db_value == raw_value(Note, "body", note.pk)
    assert sealed.envelope == envelope_of(sealed.db_value)
    assert sealed.key_id == ring.primary.id_hex == key_id_of(sealed.envelope).hex()
    assert sealed.field is Note._meta.get_field("body")
    flat = Note.objects.values_list("body", flat=True).get(pk=note.pk)
    assert isinstance(flat, Sealed) and flat.open(str(note.pk)) == "in values"
    with pytest.raises(DecryptionError):
        sealed.open(note.pk + 1)


def test_sealed_str_and_repr_never_show_plaintext():
    note = Note.objects.create(title="t", body="TOPSECRET-plaintext")
    sealed = Note.objects.values_list("body", flat=True).get(pk=note.pk)
    loaded = Note.objects.get(pk=note.pk)
    assert loaded.body == "TOPSECRET-plaintext"  # opened: the cache holds plaintext now
    for text in (str(sealed), repr(sealed), repr(loaded.__dict__["body"]), f"{sealed}"):
        assert "TOPSECRET" not in text
        assert "demo.Note.body" in text


def test_value_moved_to_another_row_fails_with_a_precise_error():
    a = Note.objects.create(title="a", body="belongs to a")
    b = Note.objects.create(title="b", body="belongs to b")
    set_raw_value(Note, "body", b.pk, raw_value(Note, "body", a.pk))
    moved = Note.objects.get(pk=b.pk)
    with pytest.raises(DecryptionError) as info:
        moved.body  # noqa: B018
    message = str(info.value)
    assert "demo.Note.body" in message and f"pk={b.pk}" in message
    assert "key id" in message and "belongs to" not in message
    assert info.value.pk == b.pk and info.value.field == "body"
    assert info.value.model == "demo.Note"
    # The other fields of the row are still readable.
    assert moved.title == "b"


def test_value_moved_to_another_column_or_table_fails():
    contact = Contact.objects.create(name="c", email="email value", phone="phone value")
    set_raw_value(Contact, "phone", contact.pk, raw_value(Contact, "email", contact.pk))
    with pytest.raises(DecryptionError, match="demo.Contact.phone"):
        Contact.objects.get(pk=contact.pk).phone  # noqa: B018
    # Same pk, another table: fails because the label differs.
    note = Note.objects.create(pk=777_777, title="n", body="note body")
    comment = Comment.objects.create(pk=777_777, note=note, text="comment")
    set_raw_value(Comment, "text", comment.pk, raw_value(Note, "body", note.pk))
    with pytest.raises(DecryptionError, match="demo.Comment.text"):
        Comment.objects.get(pk=comment.pk).text  # noqa: B018


def test_tampered_and_foreign_key_values_fail():
    note = Note.objects.create(title="t", body="tamper", attachment=b"bytes")
    stored = raw_value(Note, "attachment", note.pk)
    flipped = bytearray(stored)
    flipped[-1] ^= 1
    set_raw_value(Note, "attachment", note.pk, bytes(flipped))
    with pytest.raises(DecryptionError):
        Note.objects.get(pk=note.pk).attachment  # noqa: B018
    set_raw_value(Note, "body", note.pk, "not an envelope")
    with pytest.raises(DecryptionError, match="demo.Note.body"):
        Note.objects.get(pk=note.pk).body  # noqa: B018
    other = Note.objects.create(title="t", body="under the demo key")
    with override_settings(MCFIELDS_KEYS=[generate_key()]):
        with pytest.raises(DecryptionError, match="not configured"):
            Note.objects.get(pk=other.pk).body  # noqa: B018


def test_old_key_still_opens_and_an_untouched_save_moves_it_to_the_first_key(ring):
    old = ring  # the demo key
    note = Note.objects.create(title="t", body="rotating")
    old_stored = raw_value(Note, "body", note.pk)
    new_key = generate_key()
    with override_settings(MCFIELDS_KEYS=[new_key, *old_key_strings()]):
        loaded = Note.objects.get(pk=note.pk)
        loaded.title = "t2"
        loaded.save()  # body untouched, but under a key that is no longer first
        stored = raw_value(Note, "body", note.pk)
        assert stored != old_stored
        new_ring = Keyring.from_strings([new_key])
        assert open_stored(new_ring, stored, "demo.Note.body", str(note.pk)) == b"rotating"
        assert Note.objects.get(pk=note.pk).body == "rotating"
    with pytest.raises(DecryptionError):
        open_stored(old, stored, "demo.Note.body", str(note.pk))


def old_key_strings() -> list[str]:
    from django.conf import settings

    return list(settings.MCFIELDS_KEYS)


def test_refresh_from_db_reads_the_new_value_and_keeps_the_envelope():
    note = Note.objects.create(title="t", body="first")
    loaded = Note.objects.get(pk=note.pk)
    assert loaded.body == "first"
    other = Note.objects.get(pk=note.pk)
    other.body = "second"
    other.save()
    loaded.refresh_from_db()
    assert loaded.body == "second"
    stored = raw_value(Note, "body", note.pk)
    loaded.save()
    assert raw_value(Note, "body", note.pk) == stored  # not re-sealed after refresh
    loaded.refresh_from_db(fields=["body"])
    assert loaded.body == "second"


def test_only_and_defer_load_the_field_when_read():
    note = Note.objects.create(title="t", body="deferred", attachment=b"d")
    only = Note.objects.only("title").get(pk=note.pk)
    assert "body" in only.get_deferred_fields()
    with CaptureQueriesContext(connection) as ctx:
        assert only.body == "deferred"
    assert len(ctx.captured_queries) == 1
    deferred = Note.objects.defer("body", "attachment").get(pk=note.pk)
    assert deferred.attachment == b"d" and deferred.body == "deferred"
    # Saving an instance with deferred encrypted fields leaves them alone.
    stored = raw_value(Note, "body", note.pk)
    partial = Note.objects.defer("body").get(pk=note.pk)
    partial.title = "new title"
    partial.save()
    assert raw_value(Note, "body", note.pk) == stored
    assert Note.objects.get(pk=note.pk).title == "new title"


def test_select_related_and_prefetch_related():
    note = Note.objects.create(title="t", body="parent body")
    Comment.objects.create(note=note, text="c1")
    Comment.objects.create(note=note, text="c2")
    comments = list(Comment.objects.select_related("note").order_by("pk"))
    assert [c.note.body for c in comments] == ["parent body", "parent body"]
    assert [c.text for c in comments] == ["c1", "c2"]
    with CaptureQueriesContext(connection) as ctx:
        notes = list(Note.objects.prefetch_related("comments").filter(pk=note.pk))
        texts = sorted(c.text for c in notes[0].comments.all())
    assert texts == ["c1", "c2"] and len(ctx.captured_queries) == 2


def test_multi_table_inheritance_loads_through_parent_and_child():
    signed = SignedNote.objects.create(title="s", body="b", signer="S", signature=b"sig")
    parent = Note.objects.get(pk=signed.pk)
    assert parent.body == "b"
    child = parent.signednote
    assert (child.signer, child.signature, child.body) == ("S", b"sig", "b")
    rows = SignedNote.objects.values("body", "signer").get(pk=signed.pk)
    assert rows["signer"].open(signed.pk) == "S" and rows["body"].open(signed.pk) == "b"


def test_async_orm():
    async def work() -> tuple[str, str | None]:
        contact = await Contact.objects.acreate(name="async", email="async@example.com")
        note = await Note.objects.acreate(title="async", body="async body")
        loaded = await Contact.objects.aget(pk=contact.pk)
        loaded_note = await Note.objects.aget(pk=note.pk)
        return loaded.email, loaded_note.body

    assert async_to_sync(work)() == ("async@example.com", "async body")


def test_pickled_instance_carries_no_plaintext():
    note = Note.objects.create(title="t", body="PICKLE-SECRET")
    loaded = Note.objects.get(pk=note.pk)
    assert loaded.body == "PICKLE-SECRET"
    data = pickle.dumps(loaded)
    assert b"PICKLE-SECRET" not in data
    restored = pickle.loads(data)
    assert restored.body == "PICKLE-SECRET"


def test_descriptor_binds_with_the_pk_the_row_was_loaded_with():
    note = Note.objects.create(title="t", body="loaded with its pk")
    loaded = Note.objects.get(pk=note.pk)
    loaded.pk = 999_999  # changed before the first read
    assert loaded.body == "loaded with its pk"


def test_a_sealed_value_assigned_to_another_row_is_resealed():
    a = Note.objects.create(title="a", body="copied value")
    b = Note.objects.create(title="b", body="old")
    loaded_a = Note.objects.get(pk=a.pk)
    loaded_b = Note.objects.get(pk=b.pk)
    loaded_b.body = loaded_a.body
    loaded_b.save()
    assert Note.objects.get(pk=b.pk).body == "copied value"
    assert raw_value(Note, "body", b.pk) != raw_value(Note, "body", a.pk)


def test_untouched_value_that_does_not_open_is_written_back_unchanged():
    note = Note.objects.create(title="t", body="x")
    broken = raw_value(Note, "body", note.pk)[:-4] + "AAAA"
    set_raw_value(Note, "body", note.pk, broken)
    with override_settings(MCFIELDS_KEYS=[generate_key(), *old_key_strings()]):
        loaded = Note.objects.get(pk=note.pk)
        loaded.title = "still saves"
        loaded.save()  # body is under an old key and broken: left as it is
    assert raw_value(Note, "body", note.pk) == broken
    assert Note.objects.get(pk=note.pk).title == "still saves"


def test_sealed_from_values_can_only_be_saved_back_into_its_own_row():
    from django.db import transaction

    a = Note.objects.create(title="a", body="value of a")
    sealed_a = Note.objects.values_list("body", flat=True).get(pk=a.pk)
    same = Note.objects.get(pk=a.pk)
    same.body = sealed_a
    same.save()
    assert Note.objects.get(pk=a.pk).body == "value of a"
    b = Note.objects.create(title="b", body="value of b")
    b.body = Note.objects.values_list("body", flat=True).get(pk=a.pk)
    with pytest.raises(TypeError, match="Open it with sealed.open"), transaction.atomic():
        b.save()
    unplaced = Note.objects.values_list("body", flat=True).get(pk=a.pk)
    with pytest.raises(TypeError, match="does not belong"), transaction.atomic():
        Note.objects.create(title="c", body=unplaced)
    assert Note.objects.get(pk=b.pk).body == "value of b"
    b.body = sealed_a.open(a.pk)
    b.save()
    assert Note.objects.get(pk=b.pk).body == "value of a"
