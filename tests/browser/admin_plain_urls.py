"""A plain ``ModelAdmin`` (no EncryptedAdminMixin) that names encrypted fields,
for test_admin_checks_plain.py: what the checks E211-E213 prevent."""

from django.contrib import admin
from django.urls import path

from testproject.demo.models import Note

site = admin.AdminSite(name="plain")


@admin.register(Note, site=site)
class PlainSearchNoteAdmin(admin.ModelAdmin):
    search_fields = ["title", "body"]


urlpatterns = [path("plain/", site.urls)]
