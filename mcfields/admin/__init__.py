"""Django admin support for encrypted fields.

``EncryptedModelAdmin`` (or ``EncryptedAdminMixin`` in front of another
``ModelAdmin`` base) makes a model with encrypted fields safe to manage in
the admin:

* ``EncryptedTextField`` shows and edits as plaintext; typed fields use
  their base field's form field and admin widgets (``formfield_overrides``
  of the base field's class) and display as the plain field would.
* ``EncryptedBinaryField`` never puts bytes in the page: it shows the size
  (``2.1 KB``) and a download link, and, when the model field is
  ``editable=True``, a file input to upload a new value.
* ``list_display`` shows encrypted values (not sortable); ``ordering``,
  ``list_filter``, ``search_fields`` and sort links that reach an encrypted
  column are skipped at run time and reported by system checks
  (``mcfields.W2xx``/``mcfields.E2xx``); a search that had to skip
  encrypted fields says so in the page.
* A row whose value fails to open shows ``⚠ cannot decrypt (key id …)`` in
  that cell or form row, instead of a server error for the whole page.

See ``docs/ADMIN.md``.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

# The names below are imported on first use (PEP 562): the admin's
# autodiscover imports this package in every project that lists
# django.contrib.admin, also where no admin class uses it, and the admin
# modules cost about 20 ms of django.setup().
_LAZY = {
    "EncryptedModelAdminChecks": "checks",
    "MARKER_CLASS": "display",
    "undecryptable_marker": "display",
    "EncryptedFileField": "forms",
    "EncryptedFileInput": "forms",
    "EncryptedModelForm": "forms",
    "EncryptedAdminMixin": "options",
    "EncryptedFormfieldMixin": "options",
    "EncryptedModelAdmin": "options",
    "EncryptedStackedInline": "options",
    "EncryptedTabularInline": "options",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


@checks.register(checks.Tags.admin)
def check_admin_registrations(app_configs: Any = None, **kwargs: Any) -> list:
    """mcfields.W210: a model with encrypted fields under a plain ModelAdmin;
    mcfields.E211-E213: such an admin's search_fields, ordering or
    list_filter reaches an encrypted field (a server error at run time)."""
    from .checks import admin_registration_messages

    return admin_registration_messages(app_configs, **kwargs)


__all__ = [
    "MARKER_CLASS",
    "EncryptedAdminMixin",
    "EncryptedFileField",
    "EncryptedFileInput",
    "EncryptedFormfieldMixin",
    "EncryptedModelAdmin",
    "EncryptedModelAdminChecks",
    "EncryptedModelForm",
    "EncryptedStackedInline",
    "EncryptedTabularInline",
    "check_admin_registrations",
    "undecryptable_marker",
]
