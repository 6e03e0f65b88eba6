"""Models for the benchmarks.

ORM benchmark (bench/orm_bench.py): the same 1 KiB text column stored plain,
sealed by mcfields (both pk kinds), and by django-fernet-encrypted-fields.

Search benchmark (bench/search_bench.py): an email column looked up by
value, stored plain with a database index, in a searchable mcfields field
(blind index in the companion column ``email_bidx``), and in
django-secured-fields' searchable field (Fernet token + SHA-256 suffix).
"""

import uuid

from django.db import models
from encrypted_fields.fields import EncryptedTextField as FernetTextField
from secured_fields import EncryptedCharField as SecuredCharField

from mcfields import EncryptedEmailField, EncryptedManager, EncryptedTextField


class PlainNote(models.Model):
    body = models.TextField()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class PlainUUIDNote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    body = models.TextField()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class SealedNote(models.Model):
    body = EncryptedTextField()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class SealedUUIDNote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    body = EncryptedTextField()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class FernetNote(models.Model):
    body = FernetTextField()

    class Meta:
        app_label = "benchapp"

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


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
