"""Models for the write-path tests: every kind of primary key and table
layout a write can go wrong on."""

from __future__ import annotations

import uuid

from django.db import models

from mcfields import EncryptedBinaryField, EncryptedManager, EncryptedTextField
from mcfields.fields import EncryptedJSONField


class AutoItem(models.Model):
    """A database-assigned pk."""

    name = models.CharField(max_length=50, default="")
    secret = EncryptedTextField(null=True)
    blob = EncryptedBinaryField(null=True)
    doc = EncryptedJSONField(null=True)

    objects = EncryptedManager()
    plain = models.Manager()  # noqa: DJ012 - a second manager, not a field


class Tag(models.Model):
    """A nullable reverse join from AutoItem (``filter(tags__isnull=True)``)."""

    item = models.ForeignKey(AutoItem, null=True, on_delete=models.CASCADE, related_name="tags")


class UuidItem(models.Model):
    """A pk known before the INSERT, and another unique column (upserts)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    code = models.CharField(max_length=20, unique=True)
    secret = EncryptedTextField(null=True)
    blob = EncryptedBinaryField(null=True)

    objects = EncryptedManager()
    plain = models.Manager()  # noqa: DJ012 - a second manager, not a field


class Base(models.Model):
    title = models.CharField(max_length=50, default="")
    secret = EncryptedTextField(null=True)

    objects = EncryptedManager()


class OwnPkChild(Base):
    """A multi-table child whose pk is not the parent link."""

    number = models.IntegerField(primary_key=True)
    base = models.OneToOneField(
        Base, parent_link=True, on_delete=models.CASCADE, related_name="own_pk_child"
    )
    extra = EncryptedTextField(null=True)

    objects = EncryptedManager()
