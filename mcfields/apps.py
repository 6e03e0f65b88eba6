from __future__ import annotations

from django.apps import AppConfig


class MCFieldsConfig(AppConfig):
    name = "mcfields"
    verbose_name = "mcfields encrypted fields"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed

        from . import conf
        from .checks import check_settings

        # Settings checks; field checks (mcfields.E1xx) run through Field.check().
        checks.register(check_settings)
        # conf connects this on import too; the dispatch_uid keeps it single.
        setting_changed.connect(conf.clear_cache, dispatch_uid="mcfields.conf.clear_cache")
        # The model hooks (post_init, insert binding) are installed by
        # mcfields.fields on class_prepared, as each model class is created:
        # ready() runs after the models are imported, too late for that.
        from . import fields  # noqa: F401
