"""Tables for the rotation tests: integer, UUID and multi-table pks."""

from __future__ import annotations

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


class Secret(models.Model):
    """Integer pk; a text, an optional binary and a pinned-label column."""

    ref = models.IntegerField(default=0)
    text = EncryptedTextField()
    blob = EncryptedBinaryField(null=True)
    note = EncryptedTextField(null=True, context="rotapp.legacy_note")

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"Secret {self.pk}"


class UuidSecret(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    text = EncryptedTextField()

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"UuidSecret {self.pk}"


class ChildSecret(Secret):
    """Multi-table child: its own column lives in its own table."""

    extra = EncryptedTextField(null=True)

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"ChildSecret {self.pk}"


class PlainRow(models.Model):
    """Baseline for the benchmark: the same payload in a plain TextField."""

    text = models.TextField()

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"PlainRow {self.pk}"


class Document(models.Model):
    """One encrypted column, for the benchmark against PlainRow."""

    text = EncryptedTextField()

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"Document {self.pk}"


class TypedSecret(models.Model):
    """Typed encrypted fields: text storage, and one in binary storage."""

    number = EncryptedIntegerField(null=True)
    day = EncryptedDateField(null=True)
    amount = EncryptedDecimalField(max_digits=12, decimal_places=2, null=True)
    data = EncryptedJSONField(null=True)
    flag = EncryptedBooleanField(null=True)
    packed = EncryptedIntegerField(storage="binary", null=True)

    class Meta:
        app_label = "rotapp"

    def __str__(self) -> str:
        return f"TypedSecret {self.pk}"
