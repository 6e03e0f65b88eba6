"""Models for the searchable-field tests (blind indexes)."""

from __future__ import annotations

import uuid

from django.db import models

from mcfields import (
    EncryptedBooleanField,
    EncryptedCharField,
    EncryptedDateField,
    EncryptedDateTimeField,
    EncryptedDecimalField,
    EncryptedEmailField,
    EncryptedIntegerField,
    EncryptedManager,
    EncryptedTextField,
    EncryptedUUIDField,
)


class Person(models.Model):
    name = models.CharField(max_length=50, default="")
    email = EncryptedEmailField(searchable=True, unique=True, normalize="casefold", null=True)
    national_id = EncryptedCharField(max_length=20, searchable=True, null=True)
    note = EncryptedTextField(null=True)

    objects = EncryptedManager()
    plain = models.Manager()  # noqa: DJ012 - a second manager, not a field

    def __str__(self) -> str:
        return self.name


class Member(Person):
    """A multi-table child: its parent's searchable columns live in the
    parent table, its own in its own."""

    level = models.IntegerField(default=0)
    badge = EncryptedCharField(max_length=20, searchable=True, null=True)

    objects = EncryptedManager()


class Visit(models.Model):
    """Related lookups: ``Visit.objects.filter(person__email=...)``."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="visits")
    code = EncryptedCharField(max_length=20, searchable=True, null=True)


class Typed(models.Model):
    """One searchable field of each canonical type, keyed by a UUID pk."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    number = EncryptedIntegerField(searchable=True, null=True)
    amount = EncryptedDecimalField(max_digits=8, decimal_places=2, searchable=True, null=True)
    day = EncryptedDateField(searchable=True, null=True)
    moment = EncryptedDateTimeField(searchable=True, null=True)
    token = EncryptedUUIDField(searchable=True, null=True)
    flag = EncryptedBooleanField(searchable=True, null=True)
    label = EncryptedCharField(max_length=30, searchable=True, null=True)

    objects = EncryptedManager()


class Legacy(models.Model):
    """A column that held plaintext: migration 0002 seals it and indexes it."""

    email = EncryptedEmailField(searchable=True, unique=True, null=True)

    objects = EncryptedManager()


class Contactable(models.Model):
    """An abstract base: each concrete child gets its own blind-index column."""

    phone = EncryptedCharField(max_length=30, searchable=True, null=True)

    class Meta:
        abstract = True


class Supplier(Contactable):
    objects = EncryptedManager()


class Customer(Contactable):
    objects = EncryptedManager()
