"""``manage.py check``: Django's command, with mcfields' key checks strict.

Installed apps' commands take precedence over Django's own, so with
``mcfields`` in ``INSTALLED_APPS`` this is the ``check`` that runs.  It is
Django's, except that problems with ``MCFIELDS_KEYS`` are errors here
(``mcfields.E001``-``E004``), where other commands report them as warnings
(see :mod:`mcfields.checks`).  ``check --deploy`` included.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.check import Command as DjangoCheckCommand

from ...checks import strict_key_checks


class Command(DjangoCheckCommand):
    help = (
        f"{DjangoCheckCommand.help} Problems with MCFIELDS_KEYS are errors here; other "
        "commands (makemigrations, migrate, collectstatic) only warn about them."
    )

    def handle(self, *app_labels: Any, **options: Any) -> Any:
        with strict_key_checks():
            return super().handle(*app_labels, **options)
