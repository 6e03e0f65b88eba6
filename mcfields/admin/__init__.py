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

from .checks import EncryptedModelAdminChecks, check_admin_registrations
from .display import MARKER_CLASS, undecryptable_marker
from .forms import EncryptedFileField, EncryptedFileInput, EncryptedModelForm
from .options import (
    EncryptedAdminMixin,
    EncryptedFormfieldMixin,
    EncryptedModelAdmin,
    EncryptedStackedInline,
    EncryptedTabularInline,
)

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
