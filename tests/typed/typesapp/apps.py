from django.apps import AppConfig


class TypesAppConfig(AppConfig):
    name = "tests.typed.typesapp"
    label = "typesapp"
    default_auto_field = "django.db.models.BigAutoField"
