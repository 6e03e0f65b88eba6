"""The admin's form pieces: mcfields.forms' file field and form base, plus
the admin's upload fields (``encrypted_upload_fields``)."""

from __future__ import annotations

from typing import Any

from ..forms import (
    EncryptedFileField,
    EncryptedFileInput,
    undecryptable_fields,
    undecryptable_form_field,
)
from ..forms import EncryptedModelForm as _BaseEncryptedModelForm

__all__ = ["EncryptedFileField", "EncryptedFileInput", "EncryptedModelForm"]

# Kept for callers of the former private names.
_undecryptable = undecryptable_fields
_undecryptable_field = undecryptable_form_field


def _max_size() -> int | None:
    """The largest value the fields accept (``MCFIELDS_MAX_VALUE_SIZE``)."""
    from .. import conf

    try:
        return conf.max_value_size()
    except Exception:  # noqa: BLE001 - a bad setting is reported by the settings checks
        return None


class EncryptedModelForm(_BaseEncryptedModelForm):
    """ModelForm base for the admin: :class:`mcfields.forms.EncryptedModelForm`
    plus the initial values of the admin's upload fields."""

    #: Non-editable binary fields the admin declared as upload fields; the
    #: ModelForm machinery skips them, so the initial value comes from here
    #: and ``EncryptedAdminMixin.save_form`` assigns the new value.
    mcfields_upload_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None or self.instance._state.adding:
            return
        for name in self.mcfields_upload_fields:
            # Binary values already have their size (read from the envelope)
            # as initial value: reading the attribute would open them.
            if (name in self.fields and name not in self.mcfields_undecryptable
                    and name not in self.initial):
                self.initial[name] = getattr(self.instance, name)
