from django.apps import AppConfig


class WriteAppConfig(AppConfig):
    name = "tests.writes.writeapp"
    label = "writeapp"
    default_auto_field = "django.db.models.BigAutoField"
