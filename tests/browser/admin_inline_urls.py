"""URLconf with an admin site whose Note admin has an encrypted inline
(``@pytest.mark.urls`` in test_admin_inlines.py)."""

from django.contrib import admin
from django.urls import path

from mcfields.admin import EncryptedModelAdmin, EncryptedTabularInline
from testproject.demo.models import Comment, Note

site = admin.AdminSite(name="inlines")


class CommentInline(EncryptedTabularInline):
    model = Comment
    fields = ["text", "remarks"]
    extra = 0


@admin.register(Note, site=site)
class NoteWithCommentsAdmin(EncryptedModelAdmin):
    fields = ["title", "body"]
    inlines = [CommentInline]


urlpatterns = [path("inlines/", site.urls)]
