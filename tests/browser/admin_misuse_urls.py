"""URLconfs with admin sites for test_admin_views.py (``@pytest.mark.urls``).

``misuse``: admin classes that name encrypted fields where the database
cannot help (search, ordering, filters, sort links); the admin must skip
them instead of failing.  ``files``: ``encrypted_file_name_fields`` (the
upload's name kept in a plain column, used for downloads).  ``readonly``:
encrypted fields named in ``readonly_fields`` and in nested ``fieldsets``.
"""

from django.contrib import admin
from django.urls import path

from mcfields.admin import EncryptedModelAdmin
from testproject.demo.models import Comment, Contact, Note

site = admin.AdminSite(name="misuse")
files_site = admin.AdminSite(name="files")
readonly_site = admin.AdminSite(name="readonly")


@admin.register(Note, site=site)
class MisusedNoteAdmin(EncryptedModelAdmin):
    list_display = ["title", "body", "body_preview", "attachment"]
    search_fields = ["title", "body"]
    ordering = ["body", "title"]
    list_filter = ["body", "title"]

    @admin.display(description="Preview", ordering="body")
    def body_preview(self, obj):
        return obj.body[:5]


@admin.register(Contact, site=site)
class AllEncryptedSearchAdmin(EncryptedModelAdmin):
    list_display = ["name", "email"]
    search_fields = ["^email", "remarks"]


@admin.register(Comment, site=site)
class CommentViaPathAdmin(EncryptedModelAdmin):
    list_display = ["id", "note__title", "note__body", "text"]


@admin.register(Note, site=files_site)
class FileNameNoteAdmin(EncryptedModelAdmin):
    fields = ["body", "attachment"]
    encrypted_upload_fields = ("attachment",)
    encrypted_file_name_fields = {"attachment": "title"}


@admin.register(Note, site=readonly_site)
class ReadonlyNoteAdmin(EncryptedModelAdmin):
    fieldsets = [(None, {"fields": ["title", ("body", "attachment")]})]
    readonly_fields = ["body", "attachment"]


urlpatterns = [
    path("misuse/", site.urls),
    path("files/", files_site.urls),
    path("readonly/", readonly_site.urls),
]
