"""Models for the ORM benchmark (bench/orm_bench.py): the same 1 KiB text
column stored plain, sealed by mcfields (both pk kinds), and by
django-fernet-encrypted-fields."""

import uuid

from django.db import models
from encrypted_fields.fields import EncryptedTextField as FernetTextField

from mcfields import EncryptedTextField


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
