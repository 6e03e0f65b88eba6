"""Models for the benchmarks.

ORM benchmark (bench/orm_bench.py): one ``body`` column stored plain, sealed
by mcfields, by django-fernet-encrypted-fields and by django-tink-fields,
and by ``CryptoOnlyField`` (the floor: mcfields' crypto without binding);
each with a database-assigned pk (BigAutoField, the project default) and
with a UUID pk.

Search benchmark (bench/search_bench.py): an email column looked up by
value, stored plain with a database index, in a searchable mcfields field
(blind index in the companion column ``email_bidx``), and in
django-secured-fields' searchable field (Fernet token + SHA-256 suffix).
"""

import uuid

from django.db import models
from encrypted_fields.fields import EncryptedTextField as FernetTextField
from secured_fields import EncryptedCharField as SecuredCharField
from tink_fields import EncryptedTextField as TinkTextField

from mcfields import (
    EncryptedBinaryField,
    EncryptedEmailField,
    EncryptedManager,
    EncryptedTextField,
    conf,
)


class _Note(models.Model):
    class Meta:
        abstract = True
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class _UUIDNote(_Note):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True
        app_label = "benchapp"


class PlainNote(_Note):
    body = models.TextField()


class PlainUUIDNote(_UUIDNote):
    body = models.TextField()


class PlainBinaryNote(_Note):
    body = models.BinaryField()


class PlainBinaryUUIDNote(_UUIDNote):
    body = models.BinaryField()


class SealedNote(_Note):
    body = EncryptedTextField()
    objects = EncryptedManager()


class SealedUUIDNote(_UUIDNote):
    body = EncryptedTextField()
    objects = EncryptedManager()


class SealedBinaryNote(_Note):
    body = EncryptedBinaryField()
    objects = EncryptedManager()


class SealedBinaryUUIDNote(_UUIDNote):
    body = EncryptedBinaryField()
    objects = EncryptedManager()


class FernetNote(_Note):
    body = FernetTextField()


class FernetUUIDNote(_UUIDNote):
    body = FernetTextField()


class TinkNote(_Note):
    body = TinkTextField()


class TinkUUIDNote(_UUIDNote):
    body = TinkTextField()


class CryptoOnlyField(models.TextField):
    """The least this architecture can do per value, for the ORM benchmark's
    floor: mcfields' own ``Keyring.seal_text``/``open_text`` (the same guest
    calls and stored text as ``EncryptedTextField``) in the two hooks a peer
    uses, ``get_db_prep_value`` and ``from_db_value``.  Fixed associated
    data: no binding to the row, no lazy opening, no checks.  Not a field
    to use: every row's value would open in every other row."""

    _AD = b"benchapp.floor"

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        return conf.get_keyring().seal_text(value.encode(), self._AD)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return conf.get_keyring().open_text(value, self._AD).decode()


class FloorNote(_Note):
    body = CryptoOnlyField()


class FloorUUIDNote(_UUIDNote):
    body = CryptoOnlyField()


# -- search benchmark -------------------------------------------------------------------


class PlainEmail(models.Model):
    email = models.CharField(max_length=254, db_index=True)

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class SearchableEmail(models.Model):
    email = EncryptedEmailField(searchable=True)

    objects = EncryptedManager()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class UniqueSearchableEmail(models.Model):
    email = EncryptedEmailField(searchable=True, unique=True, normalize="casefold")

    objects = EncryptedManager()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class SecuredEmail(models.Model):
    email = SecuredCharField(max_length=254, searchable=True)

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"
