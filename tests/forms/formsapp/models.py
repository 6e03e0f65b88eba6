"""Models for the forms and DRF tests: editable encrypted binary fields, as
a project that does not use the admin's upload fields would declare them."""

from __future__ import annotations

from django.db import models

from mcfields import EncryptedBinaryField, EncryptedTextField


class Document(models.Model):
    title = models.CharField(max_length=100)
    notes = EncryptedTextField(blank=True, default="")
    # Nullable: "Clear" stores NULL.
    scan = EncryptedBinaryField(editable=True, null=True, blank=True)
    # Not nullable: "Clear" stores b"".
    blob = EncryptedBinaryField(editable=True, blank=True, default=b"")

    def __str__(self) -> str:
        return self.title
