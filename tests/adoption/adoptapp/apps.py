from django.apps import AppConfig


class AdoptappConfig(AppConfig):
    name = "tests.adoption.adoptapp"
    label = "adoptapp"
    default_auto_field = "django.db.models.BigAutoField"
