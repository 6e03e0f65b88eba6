from django.contrib import admin

from mcfields.admin import EncryptedModelAdmin

from .models import Person, Typed, Visit


@admin.register(Person)
class PersonAdmin(EncryptedModelAdmin):
    list_display = ["name", "email"]
    # "=field" on a searchable field: exact search through the blind index.
    search_fields = ["=email", "=national_id", "name"]


@admin.register(Visit)
class VisitAdmin(EncryptedModelAdmin):
    search_fields = ["=person__email", "=code"]


@admin.register(Typed)
class TypedAdmin(EncryptedModelAdmin):
    search_fields = ["=day", "=number"]
