"""Models whose columns started as plain TextField/BinaryField (migration
0001) and were turned into encrypted fields by migration 0002, which seals
the existing values with mcfields.operations.EncryptColumn."""

import uuid

from django.db import models

from mcfields.fields import (
    EncryptedBinaryField,
    EncryptedBooleanField,
    EncryptedDateField,
    EncryptedDecimalField,
    EncryptedIntegerField,
    EncryptedJSONField,
    EncryptedTextField,
)


class Note(models.Model):
    text = EncryptedTextField()
    blob = EncryptedBinaryField(null=True)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class UUIDNote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    text = EncryptedTextField()
    blob = EncryptedBinaryField(null=True)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class Typed(models.Model):
    """Plain typed columns (migration 0003) adopted by 0004: AlterField to
    the encrypted twin, then EncryptColumn."""

    number = EncryptedIntegerField()
    day = EncryptedDateField()
    amount = EncryptedDecimalField(max_digits=12, decimal_places=2)
    data = EncryptedJSONField()
    flag = EncryptedBooleanField()
    maybe = EncryptedIntegerField(null=True)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"
