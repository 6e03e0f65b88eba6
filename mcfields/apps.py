from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _check_migrate_plan(plan: Any = None, **kwargs: Any) -> None:
    # pre_migrate is sent once per app with models, each with the whole plan.
    from .checks import check_migrate_plan

    check_migrate_plan(plan)


class MCFieldsConfig(AppConfig):
    name = "mcfields"
    verbose_name = "mcfields encrypted fields"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed
        from django.db.models.signals import pre_migrate

        from . import conf
        from .checks import check_binding_labels, check_settings_for_command

        # Settings checks (key problems are errors under `check`, warnings
        # under other commands: see mcfields.checks); field checks
        # (mcfields.E1xx) run through Field.check(), except E113, which
        # compares the labels of every model's columns.
        checks.register(check_settings_for_command)
        checks.register(check_binding_labels, checks.Tags.models)
        # migrate: a plan with EncryptColumn/DecryptColumn needs the keys;
        # refuse it before the first migration is applied.
        pre_migrate.connect(_check_migrate_plan, dispatch_uid="mcfields.check_migrate_plan")
        # conf connects this on import too; the dispatch_uid keeps it single.
        setting_changed.connect(conf.clear_cache, dispatch_uid="mcfields.conf.clear_cache")
        # The model hooks (from_db, insert binding) are installed by
        # mcfields.fields on class_prepared, as each model class is created:
        # ready() runs after the models are imported, too late for that.
        # Django REST Framework: ModelSerializer maps the encrypted fields to
        # mcfields' serializer fields as soon as both apps are installed.
        from django.apps import apps

        from . import fields  # noqa: F401

        if apps.is_installed("rest_framework"):
            from . import drf  # noqa: F401 - registers on import

        # The guest runtime (wasmtime: 15-25 ms and about 12 MiB with the
        # compiled guest) is not loaded here but by the first seal or open
        # of the process, which then costs about 20 ms (bench/README.md, P4:
        # <= 30 ms); a process that never touches an encrypted value never
        # pays for it.
