"""Models for the typed-field tests: every named field, the generic
``EncryptedField(base_field)`` form, binary storage, and the base fields'
validators (max_length, email/URL syntax, decimal digits, positive)."""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from mcfields import (
    EncryptedBigIntegerField,
    EncryptedBinaryField,
    EncryptedBooleanField,
    EncryptedCharField,
    EncryptedDateField,
    EncryptedDateTimeField,
    EncryptedDecimalField,
    EncryptedEmailField,
    EncryptedField,
    EncryptedFloatField,
    EncryptedIntegerField,
    EncryptedJSONField,
    EncryptedManager,
    EncryptedPositiveIntegerField,
    EncryptedTextField,
    EncryptedTimeField,
    EncryptedURLField,
    EncryptedUUIDField,
)


class Typed(models.Model):
    """One nullable column of every named field (a database-assigned pk)."""

    label = models.CharField(max_length=50, default="", blank=True)
    text = EncryptedTextField(null=True, blank=True)
    binary = EncryptedBinaryField(null=True, blank=True)
    char = EncryptedCharField(max_length=20, null=True, blank=True)
    email = EncryptedEmailField(null=True, blank=True)
    url = EncryptedURLField(null=True, blank=True)
    integer = EncryptedIntegerField(null=True, blank=True)
    big = EncryptedBigIntegerField(null=True, blank=True)
    positive = EncryptedPositiveIntegerField(null=True, blank=True)
    amount = EncryptedDecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    ratio = EncryptedFloatField(null=True, blank=True)
    flag = EncryptedBooleanField(null=True, blank=True)
    day = EncryptedDateField(null=True, blank=True)
    moment = EncryptedDateTimeField(null=True, blank=True)
    clock = EncryptedTimeField(null=True, blank=True)
    token = EncryptedUUIDField(null=True, blank=True)
    data = EncryptedJSONField(null=True, blank=True)

    objects = EncryptedManager()

    def __str__(self) -> str:
        return self.label or f"Typed {self.pk}"


class Required(models.Model):
    """Non-nullable typed columns with a UUID pk (known before the INSERT)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    flag = EncryptedBooleanField(default=False)
    day = EncryptedDateField()
    amount = EncryptedDecimalField(max_digits=6, decimal_places=3)
    data = EncryptedJSONField(default=dict)
    count = EncryptedIntegerField(default=0)

    objects = EncryptedManager()


class Generic(models.Model):
    """``EncryptedField(base_field)`` over plain fields, and binary storage."""

    day = EncryptedField(models.DateField(), null=True, blank=True)
    small = EncryptedField(models.SmallIntegerField(), null=True, blank=True)
    slug = EncryptedField(models.SlugField(max_length=10), null=True, blank=True)
    stamp = EncryptedField(models.DateTimeField(), storage="binary", null=True, blank=True)
    count = EncryptedIntegerField(storage="binary", null=True, blank=True)
    data = EncryptedJSONField(storage="binary", null=True, blank=True)
    price = EncryptedField(models.DecimalField(max_digits=5, decimal_places=1),
                           storage="binary", null=True, blank=True)
    pinned = EncryptedCharField(max_length=30, context="typesapp.pinned", null=True, blank=True)
    # JSON with Django's encoder (dates, Decimals, UUIDs as strings).
    rich = EncryptedJSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    status = EncryptedCharField(max_length=10, null=True, blank=True,
                                choices=[("new", "New"), ("done", "Done")])

    objects = EncryptedManager()


class PlainTyped(models.Model):
    """``Typed`` with Django's plain fields: what the encrypted fields must
    load as (type, value, USE_TZ handling) on the same database."""

    # Nullable like the encrypted twin, whose None is NULL.
    char = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    integer = models.IntegerField(null=True, blank=True)
    big = models.BigIntegerField(null=True, blank=True)
    positive = models.PositiveIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    ratio = models.FloatField(null=True, blank=True)
    flag = models.BooleanField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    moment = models.DateTimeField(null=True, blank=True)
    clock = models.TimeField(null=True, blank=True)
    token = models.UUIDField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
