from django.apps import AppConfig


class RotappConfig(AppConfig):
    name = "tests.rotation.rotapp"
    label = "rotapp"
    default_auto_field = "django.db.models.BigAutoField"
