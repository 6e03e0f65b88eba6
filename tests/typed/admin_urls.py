"""URLconf with an admin site over the typed models (``@pytest.mark.urls``
in test_forms_admin.py); the plain twin uses Django's ModelAdmin."""

from django.contrib import admin
from django.urls import path

from mcfields.admin import EncryptedModelAdmin
from tests.typed.typesapp.models import Generic, PlainTyped, Required, Typed

site = admin.AdminSite(name="types")

TYPED_COLUMNS = ("label", "char", "integer", "amount", "ratio", "flag", "day", "moment", "clock",
                 "token", "data")


@admin.register(Typed, site=site)
class TypedAdmin(EncryptedModelAdmin):
    list_display = TYPED_COLUMNS


@admin.register(PlainTyped, site=site)
class PlainTypedAdmin(admin.ModelAdmin):
    list_display = ("id", *TYPED_COLUMNS[1:])


@admin.register(Required, site=site)
class RequiredAdmin(EncryptedModelAdmin):
    list_display = ("id", "flag", "day", "amount", "data", "count")


@admin.register(Generic, site=site)
class GenericAdmin(EncryptedModelAdmin):
    list_display = ("id", "day", "slug", "stamp", "count", "status")


urlpatterns = [path("types/", site.urls)]
