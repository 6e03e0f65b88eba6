"""Saving: sealed on save, bound to the row, plaintext kept on the instance."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Upper
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import mcfields.preallocate
import mcfields.saving
from mcfields import DecryptionError, Sealed
from mcfields.crypto import TEXT_PREFIX
from mcfields.exceptions import ValueTooLargeError
from testproject.demo.models import Comment, Contact, Note, SignedNote

from .conftest import count_rows, open_stored, raw_value

pytestmark = pytest.mark.django_db


def test_text_value_is_stored_sealed_and_bound_to_its_row(ring):
    note = Note.objects.create(title="t", body="the secret body")
    stored = raw_value(Note, "body", note.pk)
    assert isinstance(stored, str) and stored.startswith(TEXT_PREFIX)
    assert "secret" not in stored
    # Independent check with the crypto API: label + canonical pk text.
    assert open_stored(ring, stored, "demo.Note.body", str(note.pk)) == b"the secret body"
    with pytest.raises(DecryptionError):
        open_stored(ring, stored, "demo.Note.body", str(note.pk + 1))


def test_binary_value_is_stored_as_envelope_bytes(ring):
    payload = b"\x00\x01binary\xff" * 10
    note = Note.objects.create(title="t", body="b", attachment=payload)
    stored = raw_value(Note, "attachment", note.pk)
    assert isinstance(stored, bytes) and payload not in stored
    assert stored[0] == 1  # envelope version byte
    assert open_stored(ring, stored, "demo.Note.attachment", str(note.pk)) == payload


def test_instance_keeps_its_plaintext_after_save():
    text = "plain on the instance"
    note = Note(title="t", body=text, attachment=b"xyz")
    note.save()
    assert note.body is text
    assert note.attachment == b"xyz"
    note.save()
    assert note.body is text


def test_none_is_null_and_empty_values_are_sealed(ring):
    note = Note.objects.create(title="t", body="", attachment=None)
    assert raw_value(Note, "attachment", note.pk) is None
    stored = raw_value(Note, "body", note.pk)
    assert stored not in ("", None)
    assert open_stored(ring, stored, "demo.Note.body", str(note.pk)) == b""
    note2 = Note.objects.create(title="t", body="x", attachment=b"")
    stored2 = raw_value(Note, "attachment", note2.pk)
    assert stored2 not in (b"", None)
    assert open_stored(ring, stored2, "demo.Note.attachment", str(note2.pk)) == b""
    loaded = Note.objects.get(pk=note.pk)
    assert loaded.body == "" and loaded.attachment is None
    assert Note.objects.get(pk=note2.pk).attachment == b""


def test_uuid_pk_is_sealed_in_a_single_insert(ring):
    with CaptureQueriesContext(connection) as ctx:
        contact = Contact.objects.create(name="Ann", email="ann@example.com")
    statements = [q["sql"] for q in ctx.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("INSERT")
    stored = raw_value(Contact, "email", contact.pk)
    pk_text = str(contact.pk)
    assert pk_text == str(uuid.UUID(pk_text)) and pk_text.islower()
    assert open_stored(ring, stored, "demo.Contact.email", pk_text) == b"ann@example.com"


@pytest.fixture
def two_statements(monkeypatch):
    """The general path for database-assigned pks (INSERT, then the binding
    UPDATE), which SQLite and PostgreSQL otherwise skip by pre-allocating the pk
    (tests/writes/test_pg_sequence.py for PostgreSQL's sequence blocks)."""
    monkeypatch.setattr(mcfields.preallocate, "ENABLED", False)


def test_database_assigned_pk_is_bound_by_one_update_after_the_insert(ring, two_statements):
    with CaptureQueriesContext(connection) as ctx:
        note = Note.objects.create(title="t", body="bound after insert")
    statements = [q["sql"].split()[0] for q in ctx.captured_queries]
    # Inside the test's transaction, a savepoint of its own undoes the
    # INSERT if binding fails (the caller's transaction stays usable).
    assert statements == ["SAVEPOINT", "INSERT", "UPDATE", "RELEASE"]
    stored = raw_value(Note, "body", note.pk)
    assert open_stored(ring, stored, "demo.Note.body", str(note.pk)) == b"bound after insert"


on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="pk pre-allocation is SQLite's path"
)


@on_sqlite
def test_sqlite_preallocates_the_pk_and_inserts_once(ring):
    Note.objects.create(title="earlier", body="x")
    with CaptureQueriesContext(connection) as ctx:
        note = Note.objects.create(title="t", body="sealed before the insert")
    statements = [q["sql"].split()[0] for q in ctx.captured_queries]
    assert statements == ["SELECT", "INSERT"]
    stored = raw_value(Note, "body", note.pk)
    assert open_stored(ring, stored, "demo.Note.body", str(note.pk)) == b"sealed before the insert"
    # The pk is what AUTOINCREMENT gives: one more than any ever used, even
    # after the highest row is deleted.
    Note.objects.filter(pk=note.pk).delete()
    assert Note.objects.create(title="t", body="y").pk == note.pk + 1


@on_sqlite
def test_sqlite_preallocation_retries_when_another_writer_took_the_pk(ring, monkeypatch):
    taken = Note.objects.create(title="other writer", body="theirs")
    real_next_pk = mcfields.preallocate.next_pk
    offered: list[int] = []

    def stale_then_real(conn, meta):
        # First answer: a pk that another connection has just used.
        pk = taken.pk if not offered else real_next_pk(conn, meta)
        offered.append(pk)
        return pk

    monkeypatch.setattr(mcfields.preallocate, "next_pk", stale_then_real)
    note = Note.objects.create(title="mine", body="bound to the retried pk")
    assert offered == [taken.pk, taken.pk + 1] and note.pk == taken.pk + 1
    assert open_stored(ring, raw_value(Note, "body", note.pk), "demo.Note.body",
                       str(note.pk)) == b"bound to the retried pk"
    # The other writer's row is untouched and still opens for its own pk.
    assert Note.objects.get(pk=taken.pk).body == "theirs"


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_sqlite_preallocation_reraises_other_integrity_errors():
    from django.db import IntegrityError

    note = Note(title=None, body="x")  # violates NOT NULL on title, not the pk
    with pytest.raises(IntegrityError, match="NOT NULL"):
        note.save()
    assert note.pk is None
    assert count_rows(Note) == 0
    note.title = "fixed"
    note.save()
    assert Note.objects.get(pk=note.pk).body == "x"


@pytest.mark.django_db(transaction=True)
def test_failure_between_insert_and_binding_update_leaves_no_row(monkeypatch, two_statements):
    seen_inside: list[int] = []
    real_bind = mcfields.saving.write_sealed

    def failing_bind(instance, *args, **kwargs):
        # The INSERT has run (inside the transaction): the row is there...
        seen_inside.append(count_rows(Note))
        raise RuntimeError("injected failure between INSERT and binding UPDATE")

    monkeypatch.setattr(mcfields.saving, "write_sealed", failing_bind)
    note = Note(title="t", body="never committed")
    with pytest.raises(RuntimeError, match="injected"):
        note.save()
    assert seen_inside == [1]
    # ...and after the failure it is gone, and the instance has no pk.
    assert count_rows(Note) == 0
    assert note.pk is None
    monkeypatch.setattr(mcfields.saving, "write_sealed", real_bind)
    note.save()
    assert Note.objects.get(pk=note.pk).body == "never committed"


@pytest.mark.django_db(transaction=True)
def test_database_error_in_binding_update_rolls_back_the_insert(two_statements):
    def fail_update(execute, sql, params, many, context):
        if sql.startswith("UPDATE"):
            raise connection.Database.OperationalError("injected: binding UPDATE failed")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_update):
        with pytest.raises(Exception, match="injected"):
            Note.objects.create(title="t", body="x")
    assert count_rows(Note) == 0


@pytest.mark.django_db(transaction=True)
def test_binding_failure_inside_outer_atomic_marks_it_for_rollback(monkeypatch, two_statements):
    def failing_bind(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(mcfields.saving, "write_sealed", failing_bind)
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            Note.objects.create(title="t", body="x")
        # Catching the error cannot commit the placeholder row.
        assert transaction.get_rollback()
        transaction.set_rollback(True)
    assert count_rows(Note) == 0


def test_loaded_value_is_not_re_encrypted_on_save():
    note = Note.objects.create(title="t", body="stable", attachment=b"bin")
    before = raw_value(Note, "body", note.pk), raw_value(Note, "attachment", note.pk)
    loaded = Note.objects.get(pk=note.pk)
    loaded.title = "changed title"
    loaded.save()
    assert (raw_value(Note, "body", note.pk), raw_value(Note, "attachment", note.pk)) == before
    # Reading the value, or assigning an equal one, does not change it either.
    assert loaded.body == "stable"
    loaded.body = "sta" + "ble"
    loaded.save()
    assert raw_value(Note, "body", note.pk) == before[0]
    loaded.body = "different"
    loaded.save()
    after = raw_value(Note, "body", note.pk)
    assert after != before[0]
    assert Note.objects.get(pk=note.pk).body == "different"


def test_saving_twice_does_not_seal_twice():
    note = Note.objects.create(title="t", body="once")
    first = raw_value(Note, "body", note.pk)
    note.save()
    assert raw_value(Note, "body", note.pk) == first


def test_copy_with_pk_none_reseals_for_the_new_row(ring):
    original = Note.objects.create(title="t", body="copy me", attachment=b"att")
    old_stored = raw_value(Note, "body", original.pk)
    copy = Note.objects.get(pk=original.pk)
    copy.pk = None  # field never read before the copy
    copy._state.adding = True
    copy.save()
    assert copy.pk != original.pk
    new_stored = raw_value(Note, "body", copy.pk)
    assert new_stored != old_stored
    assert open_stored(ring, new_stored, "demo.Note.body", str(copy.pk)) == b"copy me"
    assert Note.objects.get(pk=copy.pk).attachment == b"att"
    assert raw_value(Note, "body", original.pk) == old_stored
    assert Note.objects.get(pk=original.pk).body == "copy me"


def test_copy_of_uuid_row(ring):
    contact = Contact.objects.create(name="a", email="a@example.com", phone="123")
    copy = Contact.objects.get(pk=contact.pk)
    assert copy.phone == "123"  # read before the copy this time
    copy.pk = None
    copy._state.adding = True
    copy.save()
    assert copy.pk != contact.pk
    stored = raw_value(Contact, "email", copy.pk)
    assert open_stored(ring, stored, "demo.Contact.email", str(copy.pk)) == b"a@example.com"
    assert Contact.objects.get(pk=copy.pk).phone == "123"


def test_multi_table_child_binds_each_table_with_its_label(ring):
    signed = SignedNote.objects.create(title="s", body="parent col", signer="Ann", signature=b"sig")
    assert open_stored(
        ring, raw_value(SignedNote, "body", signed.pk), "demo.Note.body", str(signed.pk)
    ) == b"parent col"
    # context= pins the label of the child's column.
    assert open_stored(
        ring, raw_value(SignedNote, "signer", signed.pk), "demo.signer", str(signed.pk)
    ) == b"Ann"
    loaded = SignedNote.objects.get(pk=signed.pk)
    assert (loaded.body, loaded.signer, loaded.signature) == ("parent col", "Ann", b"sig")
    assert Note.objects.get(pk=signed.pk).signednote.signer == "Ann"


def test_multi_table_child_copy(ring):
    signed = SignedNote.objects.create(title="s", body="b", signer="Bob")
    copy = SignedNote.objects.get(pk=signed.pk)
    copy.pk = None
    copy.id = None
    copy._state.adding = True
    copy.save()
    assert copy.pk != signed.pk
    fresh = SignedNote.objects.get(pk=copy.pk)
    assert (fresh.body, fresh.signer) == ("b", "Bob")
    assert open_stored(
        ring, raw_value(SignedNote, "signer", copy.pk), "demo.signer", str(copy.pk)
    ) == b"Bob"


def test_abstract_base_field_is_labelled_by_the_concrete_model(ring):
    note = Note.objects.create(title="t", body="b")
    comment = Comment.objects.create(note=note, text="c", remarks="comment remark")
    contact = Contact.objects.create(name="n", email="e", remarks="contact remark")
    assert Comment._meta.get_field("remarks").binding_label == "demo.Comment.remarks"
    assert Contact._meta.get_field("remarks").binding_label == "demo.Contact.remarks"
    assert open_stored(
        ring, raw_value(Comment, "remarks", comment.pk), "demo.Comment.remarks", str(comment.pk)
    ) == b"comment remark"
    assert Contact.objects.get(pk=contact.pk).remarks == "contact remark"


def test_explicit_and_string_pks_bind_canonically(ring):
    note = Note(pk=4242, title="t", body="explicit")
    note.save()
    assert open_stored(
        ring, raw_value(Note, "body", 4242), "demo.Note.body", "4242"
    ) == b"explicit"
    as_text = Note(pk="4243", title="t", body="string pk")  # a str for an integer pk
    as_text.save()
    assert Note.objects.get(pk=4243).body == "string pk"
    hexed = uuid.uuid4()
    Contact.objects.create(id=hexed.hex, name="n", email="hex pk")  # undashed UUID string
    assert open_stored(
        ring, raw_value(Contact, "email", hexed), "demo.Contact.email", str(hexed)
    ) == b"hex pk"


def test_update_fields_only_writes_named_fields():
    note = Note.objects.create(title="t", body="b1")
    before = raw_value(Note, "body", note.pk)
    note.body = "b2"
    note.title = "t2"
    note.save(update_fields=["title"])
    assert raw_value(Note, "body", note.pk) == before
    note.save(update_fields=["body"])
    assert Note.objects.get(pk=note.pk).body == "b2"


def test_expressions_assigned_to_an_encrypted_field_are_refused():
    note = Note.objects.create(title="title", body="b")
    before = raw_value(Note, "body", note.pk)
    # Each attempt in a savepoint: a failed save() marks the transaction.
    for expression in (F("title"), Value("plain"), Upper(Value("x"))):
        note.body = expression
        with pytest.raises(FieldError, match="expression"), transaction.atomic():
            note.save()
    assert raw_value(Note, "body", note.pk) == before
    with pytest.raises(FieldError, match="expression"), transaction.atomic():
        Note.objects.create(title="t", body=F("title"))
    with pytest.raises(FieldError, match="expression"), transaction.atomic():
        Contact.objects.create(name="n", email=Value("plain@example.com"))
    assert not Contact.objects.exists()


def test_value_over_the_size_cap_is_refused_and_nothing_written():
    with override_settings(MCFIELDS_MAX_VALUE_SIZE=16):
        with pytest.raises(ValueTooLargeError, match="demo.Contact.email"), transaction.atomic():
            Contact.objects.create(name="n", email="x" * 17)
        assert not Contact.objects.exists()
        Contact.objects.create(name="n", email="x" * 16)
    assert Contact.objects.count() == 1


def test_wrong_python_types_are_refused():
    with pytest.raises(TypeError, match="bytes"), transaction.atomic():
        Note.objects.create(title="t", body="b", attachment="not bytes")
    with pytest.raises(TypeError, match="text"), transaction.atomic():
        Contact.objects.create(name="n", email=b"bytes")


def test_non_str_text_values_are_stored_as_their_text():
    contact = Contact.objects.create(name="n", email=12345)
    assert Contact.objects.get(pk=contact.pk).email == "12345"


def test_loaddata_binds_with_the_fixture_pk(ring, tmp_path):
    fixture = tmp_path / "notes.json"
    contact_id = uuid.uuid4()
    fixture.write_text(
        json.dumps(
            [
                {"model": "demo.note", "pk": 901, "fields": {
                    "title": "fx", "body": "from fixture", "attachment": "AAEC",
                    "created": "2024-01-01T00:00:00Z"}},
                {"model": "demo.contact", "pk": str(contact_id), "fields": {
                    "name": "fx", "email": "fx@example.com", "phone": None, "photo": None,
                    "remarks": ""}},
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    stored = raw_value(Note, "body", 901)
    assert stored.startswith(TEXT_PREFIX)
    assert open_stored(ring, stored, "demo.Note.body", "901") == b"from fixture"
    assert open_stored(
        ring, raw_value(Note, "attachment", 901), "demo.Note.attachment", "901"
    ) == b"\x00\x01\x02"
    assert raw_value(Contact, "phone", contact_id) is None
    assert Contact.objects.get(pk=contact_id).email == "fx@example.com"
    # Loading the same fixture again updates the rows in place (raw UPDATE path).
    call_command("loaddata", str(fixture), verbosity=0)
    assert Note.objects.get(pk=901).body == "from fixture"


def test_dumpdata_writes_plaintext_and_round_trips(tmp_path):
    note = Note.objects.create(title="t", body="dumped body", attachment=b"\x00bin")
    contact = Contact.objects.create(name="n", email="dump@example.com")
    out = io.StringIO()
    call_command("dumpdata", "demo.note", "demo.contact", stdout=out)
    data = json.loads(out.getvalue())
    by_model = {row["model"]: row for row in data}
    assert by_model["demo.note"]["fields"]["body"] == "dumped body"
    assert by_model["demo.note"]["fields"]["attachment"] == "AGJpbg=="  # base64 of plaintext
    assert by_model["demo.contact"]["fields"]["email"] == "dump@example.com"
    fixture = tmp_path / "dump.json"
    fixture.write_text(out.getvalue())
    Note.objects.all().delete()
    Contact.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    assert Note.objects.get(pk=note.pk).attachment == b"\x00bin"
    assert Contact.objects.get(pk=contact.pk).email == "dump@example.com"


def test_pre_save_returns_an_envelope_and_keeps_the_instance_value():
    note = Note.objects.create(title="t", body="x")
    field = Note._meta.get_field("body")
    note.body = "new"
    db_value = field.get_db_prep_save(field.pre_save(note, False), connection)
    assert isinstance(db_value, str) and db_value.startswith(TEXT_PREFIX)
    assert note.body == "new"
    assert "new" not in repr(note.__dict__["body"])
    assert isinstance(note.__dict__["body"], Sealed)


def test_deep_copied_instance_keeps_untouched_values():
    import copy

    note = Note.objects.create(title="t", body="deep")
    stored = raw_value(Note, "body", note.pk)
    clone = copy.deepcopy(Note.objects.get(pk=note.pk))
    clone.title = "t2"
    clone.save()
    assert raw_value(Note, "body", note.pk) == stored
    assert clone.body == "deep"


def test_historical_models_in_data_migrations_seal_and_bind(ring):
    from django.db.migrations.executor import MigrationExecutor

    state = MigrationExecutor(connection).loader.project_state()
    HistoricalNote = state.apps.get_model("demo", "Note")  # noqa: N806
    created = HistoricalNote.objects.create(title="h", body="from a migration")
    stored = raw_value(Note, "body", created.pk)
    assert open_stored(ring, stored, "demo.Note.body", str(created.pk)) == b"from a migration"
    assert Note.objects.get(pk=created.pk).body == "from a migration"
    loaded = HistoricalNote.objects.get(pk=created.pk)
    assert loaded.body == "from a migration"
    loaded.title = "h2"
    loaded.save()
    assert raw_value(Note, "body", created.pk) == stored
