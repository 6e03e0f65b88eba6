"""Demo models: both encrypted fields, with both kinds of primary key.

* ``Note``: Django's default BigAutoField pk (assigned by the database, so
  mcfields binds the values right after the INSERT), a plain manager.
* ``SignedNote``: a multi-table child of ``Note`` with its own encrypted
  columns; one of them pins its binding label with ``context=``.
* ``Contact``: a UUID pk (known before the INSERT: sealed in one statement),
  an encrypted field inherited from the abstract ``Confidential`` base, and
  ``EncryptedManager`` so that ``update()``/``bulk_*()`` bind each row.
* ``Comment``: a foreign key to ``Note`` (select_related/prefetch_related).
* ``Patient``: typed encrypted fields (a date, an email address, a Decimal
  balance, a JSON document, a flag, a timestamp): each loads as its plain
  field's type, and the admin shows the plain field's widgets.
"""

from __future__ import annotations

import uuid

from django.db import models

from mcfields import (
    EncryptedBinaryField,
    EncryptedBooleanField,
    EncryptedDateField,
    EncryptedDateTimeField,
    EncryptedDecimalField,
    EncryptedEmailField,
    EncryptedJSONField,
    EncryptedManager,
    EncryptedTextField,
)


class Note(models.Model):
    title = models.CharField(max_length=200)
    body = EncryptedTextField()
    attachment = EncryptedBinaryField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.title


class SignedNote(Note):
    signer = EncryptedTextField(context="demo.signer")
    signature = EncryptedBinaryField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.title} (signed)"


class Confidential(models.Model):
    """Abstract base: each concrete child gets its own ``remarks`` column."""

    remarks = EncryptedTextField(blank=True, default="")

    class Meta:
        abstract = True


class Contact(Confidential):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = EncryptedTextField()
    phone = EncryptedTextField(null=True, blank=True)
    photo = EncryptedBinaryField(null=True, blank=True)

    objects = EncryptedManager()

    def __str__(self) -> str:
        return self.name


class Comment(Confidential):
    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="comments")
    text = EncryptedTextField()

    objects = EncryptedManager()

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.note_id}"


class Patient(models.Model):
    """Typed encrypted fields next to a plain name (what the admin lists)."""

    name = models.CharField(max_length=200, unique=True)
    date_of_birth = EncryptedDateField()
    email = EncryptedEmailField(blank=True, default="")
    balance = EncryptedDecimalField(max_digits=10, decimal_places=2, default=0)
    record = EncryptedJSONField(default=dict, blank=True)
    consented = EncryptedBooleanField(default=False)
    last_visit = EncryptedDateTimeField(null=True, blank=True)

    objects = EncryptedManager()

    def __str__(self) -> str:
        return self.name
