from django.apps import AppConfig


class TypesAppConfig(AppConfig):
    name = "tests.types.typesapp"
    label = "typesapp"
    default_auto_field = "django.db.models.BigAutoField"
