"""Item 14: a well-formed envelope that does not open for its row, whatever
its key id, is neither plaintext nor a sealed value of the column.

EncryptColumn used to seal an envelope under a key that is not configured
again (the application then read "mcf1:..." as data) and DecryptColumn
passed it off as plaintext.  Now the run stops: a read-only pre-scan raises
before anything is written, naming model, field, pk and key id; a value that
turns ambiguous mid-run rolls its batch back.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from mcfields.adoption import (
    SEAL,
    UNSEAL,
    AdoptionPolicy,
    ColumnConversionError,
    ConversionReport,
    convert_column,
)
from mcfields.binding import pk_text
from mcfields.crypto import Keyring, binding, from_text, generate_key, to_text
from mcfields.operations import DecryptColumn, EncryptColumn
from mcfields.walker import Walker
from tests.adoption.adoptapp.models import Note

pytestmark = pytest.mark.django_db

CONFIGURED = generate_key()
FOREIGN = generate_key()  # never in MCFIELDS_KEYS: another environment's key
LABELS = {"text": "adoptapp.Note.text", "blob": "adoptapp.Note.blob"}


@pytest.fixture(autouse=True)
def keys(settings: Any) -> None:
    settings.MCFIELDS_KEYS = [CONFIGURED]


def ring(key: str) -> Keyring:
    return Keyring.from_strings([key])


def key_hex(key: str) -> str:
    return ring(key).primary.id_hex


def plain(name: str, pk: int) -> Any:
    return f"plain {pk} ✓" if name == "text" else b"\x01" * 3 + f"plain {pk}".encode()


def sealed(key: str, name: str, pk: int, value: Any = None) -> Any:
    """The stored form of ``value`` sealed for row ``pk`` under ``key``."""
    value = plain(name, pk) if value is None else value
    data = value.encode("utf-8") if isinstance(value, str) else value
    envelope = ring(key).seal(data, binding(LABELS[name], pk_text(pk)))
    return to_text(envelope) if name == "text" else envelope


def put(rows: dict[int, Any], name: str) -> None:
    other = "blob" if name == "text" else "text"
    with connection.cursor() as cursor:
        for pk, value in rows.items():
            filler = "" if other == "text" else None
            cursor.execute(
                f"INSERT INTO adoptapp_note (id, {name}, {other}) VALUES (%s, %s, %s)",
                [pk, value, filler],
            )


def raw(name: str) -> dict[int, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {name} FROM adoptapp_note ORDER BY id")
        return {pk: bytes(v) if isinstance(v, memoryview) else v for pk, v in cursor.fetchall()}


def field(name: str) -> Any:
    return Note._meta.get_field(name)


@pytest.mark.parametrize("name", ["text", "blob"])
def test_encrypt_stops_on_envelope_under_unconfigured_key(name: str) -> None:
    rows = {pk: plain(name, pk) for pk in range(1, 11)}
    rows[7] = sealed(FOREIGN, name, 7)  # correctly bound, but under a key we lack
    put(rows, name)
    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field(name), direction=SEAL, using="default", batch_size=3)
    message = str(info.value)
    assert f"adoptapp.Note.{name}" in message
    assert "pk=7" in message and f"key id {key_hex(FOREIGN)}" in message
    assert "Nothing was written" in message
    assert "plain 7" not in message  # never plaintext in errors
    assert raw(name) == rows  # nothing written, the plaintext rows included


@pytest.mark.parametrize("name", ["text", "blob"])
def test_decrypt_stops_on_envelope_under_unconfigured_key(name: str) -> None:
    rows = {pk: sealed(CONFIGURED, name, pk) for pk in range(1, 11)}
    rows[4] = sealed(FOREIGN, name, 4)
    put(rows, name)
    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field(name), direction=UNSEAL, using="default", batch_size=3)
    message = str(info.value)
    assert f"adoptapp.Note.{name}" in message
    assert "pk=4" in message and f"key id {key_hex(FOREIGN)}" in message
    assert raw(name) == rows  # not one value opened back


def test_envelope_moved_from_another_row_stops_before_writing() -> None:
    rows = {pk: plain("text", pk) for pk in range(1, 6)}
    rows[5] = sealed(CONFIGURED, "text", 2)  # configured key, bound to row 2
    put(rows, "text")
    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field("text"), direction=SEAL, using="default")
    assert f"pk=5 key id {key_hex(CONFIGURED)}: authentication failed" in str(info.value)
    assert raw("text") == rows


def test_value_turning_ambiguous_mid_run_rolls_back_its_batch() -> None:
    rows = {pk: plain("text", pk) for pk in range(1, 11)}
    put(rows, "text")
    intruder = sealed(FOREIGN, "text", 8)

    def after_batch(report: Any) -> None:
        if report.batches == 1:  # after the pre-scan, before the batch of rows 7-9
            with connection.cursor() as cursor:
                cursor.execute("UPDATE adoptapp_note SET text = %s WHERE id = 8", [intruder])

    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field("text"), direction=SEAL, using="default", batch_size=3,
                       after_batch=after_batch)
    assert "pk=8" in str(info.value) and "rolled back" in str(info.value)
    now = raw("text")
    ring_ok = ring(CONFIGURED)
    for pk in (1, 2, 3, 4, 5, 6):  # the committed batches are correctly sealed
        opened = ring_ok.open(from_text(now[pk]), binding(LABELS["text"], pk_text(pk)))
        assert opened.decode() == plain("text", pk)
    assert now[7] == rows[7]  # same batch as the intruder: rolled back
    assert now[8] == intruder  # left exactly as it was, not sealed again
    assert now[9] == rows[9] and now[10] == rows[10]


def test_binary_plaintext_shaped_like_an_envelope_needs_the_escape_hatch() -> None:
    # 0x01 then 60 bytes: a well-formed envelope header naming an unknown key id.
    shaped = b"\x01" + bytes(range(60))
    rows = {1: plain("blob", 1), 2: shaped}
    put(rows, "blob")
    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field("blob"), direction=SEAL, using="default")
    assert f"pk=2 key id {bytes(range(4)).hex()}" in str(info.value)
    assert raw("blob") == rows

    report = convert_column(Note, field("blob"), direction=SEAL, using="default",
                            unknown_key_ids_are_plaintext=True)
    assert report.converted == 2
    assert Note.objects.get(pk=2).blob == shaped
    # Reversing with the same flag restores the exact bytes.
    convert_column(Note, field("blob"), direction=UNSEAL, using="default",
                   unknown_key_ids_are_plaintext=True)
    assert raw("blob") == rows


def test_escape_hatch_never_covers_configured_key_ids() -> None:
    rows = {1: plain("blob", 1), 2: sealed(CONFIGURED, "blob", 1)}  # moved from row 1
    put(rows, "blob")
    with pytest.raises(ColumnConversionError):
        convert_column(Note, field("blob"), direction=SEAL, using="default",
                       unknown_key_ids_are_plaintext=True)
    assert raw("blob") == rows


def test_operation_deconstructs_the_escape_hatch() -> None:
    assert EncryptColumn("note", "blob").deconstruct() == ("EncryptColumn", ["note", "blob"], {})
    op = DecryptColumn("note", "blob", unknown_key_ids_are_plaintext=True)
    assert op.deconstruct() == (
        "DecryptColumn", ["note", "blob"], {"unknown_key_ids_are_plaintext": True}
    )


def test_value_over_the_size_cap_stops_before_writing(settings: Any) -> None:
    # EncryptColumn seals through the field (seal_for_pk), size cap included;
    # the pre-scan finds the value before anything is written.
    settings.MCFIELDS_MAX_VALUE_SIZE = 64
    rows = {pk: plain("text", pk) for pk in range(1, 8)}
    rows[6] = "secret " + "x" * 100
    put(rows, "text")
    with pytest.raises(ColumnConversionError) as info:
        convert_column(Note, field("text"), direction=SEAL, using="default", batch_size=3)
    message = str(info.value)
    assert "adoptapp.Note.text" in message and "pk=6" in message
    assert "exceeds the maximum of 64 bytes" in message and "Nothing was written" in message
    assert "secret" not in message
    assert raw("text") == rows


def test_decrypt_retries_rows_written_concurrently() -> None:
    # DecryptColumn's compare-and-swap: a row whose write did not apply is
    # told apart by what it holds now (the database may return the written
    # value in another form, "42" for 42): plaintext is done, a new
    # envelope is re-read and opened.
    rows = {pk: sealed(CONFIGURED, "text", pk) for pk in range(1, 6)}
    put(rows, "text")
    raced: list[Any] = []

    def race(model: type, pks: list[Any]) -> None:
        if raced:
            return
        raced.append(pks)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE adoptapp_note SET text = %s WHERE id = 2",
                           [sealed(CONFIGURED, "text", 2, "app write ✓")])
            cursor.execute("UPDATE adoptapp_note SET text = %s WHERE id = 3", ["plain already"])

    report = ConversionReport("adoptapp.Note", "text", direction=UNSEAL)
    walker = Walker(AdoptionPolicy(UNSEAL, connection), after_read=race)
    walker.walk(Note, walker.columns(Note, [(field("text"), report)]))
    assert raced
    assert (report.converted, report.retried, report.contended) == (5, 1, [])
    expected = {pk: plain("text", pk) for pk in range(1, 6)}
    expected.update({2: "app write ✓", 3: "plain already"})
    assert raw("text") == expected
