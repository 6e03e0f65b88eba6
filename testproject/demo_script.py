"""`make demo`: what mcfields stores, what the app reads, and what it refuses.

Runs on the demo project's SQLite database (testproject/db.sqlite3, the one
`make serve` uses): migrates, creates one row of each demo model (only on
the first run: running it again adds nothing), shows each encrypted
column as the database holds it next to what the application reads, moves
a ciphertext to another row to show that it no longer opens, puts it back,
and ends with how to open the admin. The plaintexts printed here are the
demo's own sample data.
"""

from __future__ import annotations

import datetime
import decimal
import os
import sys
import textwrap
import uuid
from typing import Any


def banner(title: str) -> None:
    print()
    print(f"== {title} " + "=" * max(0, 70 - len(title)))


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def short(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# Fixed identities make the demo idempotent: each run finds the rows of the
# previous one instead of adding more (`make demo` twice, then `make serve`).
CONTACT_ID = uuid.UUID("5f0c6f8e-2d1b-4c1e-9a51-6d0e4b7f3a10")


def demo_rows() -> tuple[Any, Any, Any, Any, Any, Any]:
    """One row of each demo model (two notes), created on the first run."""
    from testproject.demo.models import Comment, Contact, Note, Patient, SignedNote

    note, _ = Note.objects.get_or_create(
        title="Visit 2026-11-24",
        defaults={"body": "Patient reports mild headache; prescribed rest.",
                  "attachment": b"%PDF-1.7 scanned referral letter"},
    )
    other, _ = Note.objects.get_or_create(
        title="Visit 2026-11-25", defaults={"body": "Follow-up: all clear."},
    )
    signed, _ = SignedNote.objects.get_or_create(
        title="Referral 2026-11-26",
        defaults={"body": "Referred to neurology for a second opinion.",
                  "signer": "Dr. Grace Hopper",
                  "attachment": b"%PDF-1.7 referral form",
                  "signature": b"demo signature: Dr. Grace Hopper, 2026-11-26"},
    )
    contact, _ = Contact.objects.get_or_create(
        id=CONTACT_ID,
        defaults={"name": "Ada", "email": "ada@example.org", "phone": "+44 20 7946 0958",
                  "remarks": "prefers email", "photo": b"\x89PNG demo photo"},
    )
    comment, _ = Comment.objects.get_or_create(
        note=note,
        defaults={"text": "Call back on Monday.", "remarks": "internal"},
    )
    patient, _ = Patient.objects.get_or_create(
        name="Grace",
        defaults={"date_of_birth": datetime.date(1906, 12, 9), "email": "grace@example.org",
                  "balance": decimal.Decimal("-12.50"), "consented": True,
                  "record": {"allergies": ["penicillin"], "blood_type": "O+", "visits": 3,
                             "notes": None},
                  "last_visit": datetime.datetime(2026, 11, 24, 9, 30, tzinfo=datetime.UTC)},
    )
    return note, other, signed, contact, comment, patient


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from mcfields import DecryptionError
    from mcfields.conf import get_keyring
    from testproject.demo.models import Comment, Contact, Note, Patient, SignedNote

    banner(f"1. migrate (SQLite: {connection.settings_dict['NAME']})")
    call_command("migrate", interactive=False, verbosity=0)
    print("database is up to date")
    print(f"sealing key id: {get_keyring().primary.id_hex} "
          f"({len(get_keyring().keys)} key(s) configured in MCFIELDS_KEYS)")

    banner("2. rows in every demo model (created once; a rerun finds them)")
    note, other, signed, contact, comment, patient = demo_rows()
    print(f"Note pk={note.pk}, Note pk={other.pk}, SignedNote pk={signed.pk}")
    print(f"Contact pk={contact.pk}, Comment pk={comment.pk} on Note pk={note.pk}")
    print(f"Patient pk={patient.pk}")
    print(f"rows: {count(Note.objects.count(), 'note')} (signed ones included), "
          f"{count(SignedNote.objects.count(), 'signed note')}, "
          f"{count(Contact.objects.count(), 'contact')}, "
          f"{count(Comment.objects.count(), 'comment')}, "
          f"{count(Patient.objects.count(), 'patient')}")

    banner("3. what the database holds vs what the app reads")
    rows = [
        ("demo_note", "body", "id", note.pk, Note, "body"),
        ("demo_note", "attachment", "id", note.pk, Note, "attachment"),
        ("demo_signednote", "signer", "note_ptr_id", signed.pk, SignedNote, "signer"),
        ("demo_signednote", "signature", "note_ptr_id", signed.pk, SignedNote, "signature"),
        ("demo_contact", "email", "id", contact.pk.hex, Contact, "email"),
        ("demo_contact", "phone", "id", contact.pk.hex, Contact, "phone"),
        ("demo_comment", "text", "id", comment.pk, Comment, "text"),
        # Typed fields: the column holds an envelope whatever the type; the
        # app reads a date, a Decimal, a dict, a bool, an aware datetime.
        ("demo_patient", "date_of_birth", "id", patient.pk, Patient, "date_of_birth"),
        ("demo_patient", "email", "id", patient.pk, Patient, "email"),
        ("demo_patient", "balance", "id", patient.pk, Patient, "balance"),
        ("demo_patient", "record", "id", patient.pk, Patient, "record"),
        ("demo_patient", "consented", "id", patient.pk, Patient, "consented"),
        ("demo_patient", "last_visit", "id", patient.pk, Patient, "last_visit"),
    ]
    for table, column, pk_col, db_pk, model, attr in rows:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table} WHERE {pk_col} = %s", [db_pk])
            (raw,) = cursor.fetchone()
        if isinstance(raw, (bytes, memoryview)):
            raw = bytes(raw)
            stored = f"{len(raw)} bytes: {raw[:24].hex()}..."
        else:
            stored = short(raw)
        loaded = getattr(model.objects.get(pk=model._meta.pk.to_python(db_pk)), attr)
        print(f"{model.__name__}.{attr}")
        print(f"   database: {stored}")
        print(f"   app reads: {short(loaded)} ({type(loaded).__name__})")
    print()
    print("values() yields Sealed objects, never plaintext:")
    for sealed in Note.objects.filter(pk=note.pk).values_list("body", flat=True):
        print(f"   {sealed!r}")

    banner("4. a ciphertext moved to another row does not open")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM demo_note WHERE id = %s", [note.pk])
        (stolen,) = cursor.fetchone()
        cursor.execute("SELECT body FROM demo_note WHERE id = %s", [other.pk])
        (original,) = cursor.fetchone()
        cursor.execute("UPDATE demo_note SET body = %s WHERE id = %s", [stolen, other.pk])
    print(f"copied the body column of row {note.pk} into row {other.pk} with raw SQL")
    try:
        Note.objects.get(pk=other.pk).body  # noqa: B018 - the read is the demo
    except DecryptionError as exc:
        print("reading it raises mcfields.DecryptionError:")
        print(textwrap.indent(textwrap.fill(str(exc), 76), "   "))
    else:
        print("UNEXPECTED: the moved value opened")
        return 1
    with connection.cursor() as cursor:
        cursor.execute("UPDATE demo_note SET body = %s WHERE id = %s", [original, other.pk])
    print(f"restored row {other.pk}: {short(Note.objects.get(pk=other.pk).body)}")

    banner("5. next")
    print("Open the admin:  make serve   then http://127.0.0.1:8000/admin/")
    print("                 user: demo   password: demo   (demo only)")
    print("Run the tests:   make test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
