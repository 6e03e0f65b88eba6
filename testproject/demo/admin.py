"""The demo's admin: every model uses mcfields.admin.EncryptedModelAdmin.

Encrypted text shows and edits as plaintext, typed fields with their plain
field's widgets (a calendar for a date, a checkbox for a flag, the split
date/time inputs for a timestamp); encrypted binary fields show
their size and a download link, and ``encrypted_upload_fields`` gives them a
file input (the model fields stay non-editable, as Django's BinaryField).
See docs/ADMIN.md.
"""

from __future__ import annotations

from django.contrib import admin

from mcfields.admin import EncryptedModelAdmin

from .models import Comment, Contact, Note, Patient, SignedNote


@admin.register(Note)
class NoteAdmin(EncryptedModelAdmin):
    list_display = ("title", "body", "attachment", "created")
    search_fields = ("title",)
    encrypted_upload_fields = ("attachment",)


@admin.register(SignedNote)
class SignedNoteAdmin(EncryptedModelAdmin):
    list_display = ("title", "signer", "body", "signature")
    search_fields = ("title",)
    encrypted_upload_fields = ("attachment",)


@admin.register(Contact)
class ContactAdmin(EncryptedModelAdmin):
    list_display = ("name", "email", "phone", "photo")
    search_fields = ("name",)
    encrypted_upload_fields = ("photo",)


@admin.register(Comment)
class CommentAdmin(EncryptedModelAdmin):
    list_display = ("id", "note", "text")
    list_select_related = ("note",)


@admin.register(Patient)
class PatientAdmin(EncryptedModelAdmin):
    list_display = ("name", "date_of_birth", "email", "balance", "consented", "last_visit")
    search_fields = ("name",)
