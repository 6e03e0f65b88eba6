from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig


def _check_migrate_plan(plan: Any = None, **kwargs: Any) -> None:
    # pre_migrate is sent once per app with models, each with the whole plan.
    from .checks import check_migrate_plan

    check_migrate_plan(plan)


# The checks and the settings reader are imported when first used, not in
# ready(): django.setup() of a project with mcfields costs little more than
# without it (bench/README.md), and a process that never runs a check or
# touches an encrypted value never imports them.


def _settings_checks(app_configs: Any = None, **kwargs: Any) -> list:
    from .checks import check_settings_for_command

    return check_settings_for_command(app_configs, **kwargs)


def _binding_label_checks(app_configs: Any = None, **kwargs: Any) -> list:
    from .checks import check_binding_labels

    return check_binding_labels(app_configs, **kwargs)


def _clear_settings_cache(**kwargs: Any) -> None:
    conf = sys.modules.get("mcfields.conf")
    if conf is not None:  # nothing is cached before conf is imported
        conf.clear_cache(**kwargs)


class MCFieldsConfig(AppConfig):
    name = "mcfields"
    verbose_name = "mcfields encrypted fields"

    def ready(self) -> None:
        from django.apps import apps
        from django.core import checks
        from django.core.signals import setting_changed
        from django.db.models.signals import pre_migrate

        # Settings checks (key problems are errors under `check`, warnings
        # under other commands: see mcfields.checks); field checks
        # (mcfields.E1xx) run through Field.check(), except E113, which
        # compares the labels of every model's columns.
        checks.register(_settings_checks)
        checks.register(_binding_label_checks, checks.Tags.models)
        # migrate: a plan with EncryptColumn/DecryptColumn needs the keys;
        # refuse it before the first migration is applied.
        pre_migrate.connect(_check_migrate_plan, dispatch_uid="mcfields.check_migrate_plan")
        # conf also connects its own clear_cache on import (same dispatch_uid).
        setting_changed.connect(_clear_settings_cache, dispatch_uid="mcfields.conf.clear_cache")
        # The model hooks (from_db, insert binding) are installed by
        # mcfields.fields on class_prepared, as each model class is created
        # (models that use the fields import it).
        # Django REST Framework: ModelSerializer maps the encrypted fields to
        # mcfields' serializer fields as soon as both apps are installed.
        if apps.is_installed("rest_framework"):
            from . import drf  # noqa: F401 - registers on import

        # The guest runtime (wasmtime: 15-25 ms and about 12 MiB with the
        # compiled guest) is not loaded here but by the first seal or open
        # of the process, which then costs about 20 ms (bench/README.md, P4:
        # <= 30 ms); a process that never touches an encrypted value never
        # pays for it.
