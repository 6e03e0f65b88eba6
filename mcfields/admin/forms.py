"""Form pieces: the file input for encrypted binary fields and the form base
that leaves unchanged encrypted values alone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Model
from django.template.defaultfilters import filesizeformat

from ..exceptions import DecryptionError
from ..saving import is_encrypted
from .display import (
    MARKER_CLASS,
    StoredSize,
    _log_failure,
    failing_fields,
    is_encrypted_binary,
    marker_text,
    size_display,
    stored_size,
)

# --------------------------------------------------------------------------
# Form field and widget for EncryptedBinaryField


class EncryptedFileInput(forms.ClearableFileInput):
    """File input that shows the current value's size (never its bytes)."""

    template_name = "mcfields/widgets/encrypted_file_input.html"
    initial_text = "Currently"
    input_text = "Replace"
    clear_checkbox_label = "Clear"
    download_url: str | None = None

    def is_initial(self, value: Any) -> bool:
        return isinstance(value, (bytes, bytearray, memoryview, StoredSize))

    def format_value(self, value: Any) -> Any:
        # Never hand the bytes to the template.
        return None

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        is_initial = self.is_initial(value)
        context["widget"]["is_initial"] = is_initial
        context["widget"]["value"] = None
        context["widget"]["size_display"] = size_display(value) if is_initial else ""
        context["widget"]["download_url"] = self.download_url if is_initial else None
        return context


class EncryptedFileField(forms.FileField):
    """Upload a file into an ``EncryptedBinaryField``.

    ``clean()`` returns the uploaded file's bytes, the unchanged initial
    value, or, when "Clear" is ticked, ``None`` (nullable field) or ``b""``.
    """

    widget = EncryptedFileInput
    default_error_messages = {
        "too_large": "The file is %(size)s; the limit is %(limit)s.",
    }

    def __init__(self, *, null: bool = False, max_size: int | None = None, **kwargs: Any):
        self.null = null
        self.max_size = max_size
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(**kwargs)

    def to_python(self, data: Any) -> Any:
        upload = super().to_python(data)
        if upload is None:
            return None
        if self.max_size is not None and upload.size > self.max_size:
            raise ValidationError(
                self.error_messages["too_large"],
                code="too_large",
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(self.max_size),
                },
            )
        return b"".join(upload.chunks())

    def clean(self, data: Any, initial: Any = None) -> Any:
        value = super().clean(data, initial)
        if value is False:
            return None if self.null else b""
        return value


def _max_size() -> int | None:
    """The largest value the fields accept (``MCFIELDS_MAX_VALUE_SIZE``)."""
    from .. import conf

    try:
        return conf.max_value_size()
    except Exception:  # noqa: BLE001 - a bad setting is reported by the settings checks
        return None


class EncryptedModelForm(forms.ModelForm):
    """ModelForm base for the admin.

    On a change form it leaves encrypted fields the user did not change out
    of ``cleaned_data``, so the instance keeps its loaded value (no pointless
    re-seal of an unchanged, possibly large, value).  It also points each
    file widget at the admin's download URL.
    """

    mcfields_download_url: Callable[[Model, str], str | None] | None = None
    #: Non-editable binary fields the admin declared as upload fields; the
    #: ModelForm machinery skips them, so the initial value comes from here
    #: and ``EncryptedAdminMixin.save_form`` assigns the new value.
    mcfields_upload_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        instance = kwargs.get("instance")
        model = type(self)._meta.model
        broken = _undecryptable(instance, model)
        sizes = _binary_sizes(instance, model, broken)
        if broken:
            # Build this form without reading those values (model_to_dict
            # would raise) and never write them back (construct_instance
            # honours exclude): the stored envelopes stay as they are.  The
            # change form makes such fields read-only before the form is
            # built; inline rows need it per form, hence here.
            meta = copy.copy(type(self)._meta)
            meta.exclude = (*(meta.exclude or ()), *broken)
            self._meta = meta
        if sizes:
            # model_to_dict would open every binary value only for the widget
            # to print its size: leave them out while the initial data is
            # built (and only then: saving must still see the fields), and
            # give the widget their sizes, read from the envelopes.
            kept = self.__dict__.get("_meta")
            meta = copy.copy(kept or type(self)._meta)
            meta.exclude = (*(meta.exclude or ()), *sizes)
            self._meta = meta
            try:
                super().__init__(*args, **kwargs)
            finally:
                if kept is None:
                    del self._meta
                else:
                    self._meta = kept
            for name, size in sizes.items():
                self.initial.setdefault(name, size)
        else:
            super().__init__(*args, **kwargs)
        for name, exc in broken.items():
            if name in self.fields:
                self.fields[name] = _undecryptable_field(exc, self.fields[name].label)
        if self.instance.pk is None or self.instance._state.adding:
            return
        builder = type(self).mcfields_download_url
        if builder is None:
            return
        for name, field in self.fields.items():
            if isinstance(field, EncryptedFileField):
                field.widget.download_url = builder(self.instance, name)

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk is None or self.instance._state.adding:
            return cleaned
        changed = set(self.changed_data)
        for name in list(cleaned):
            try:
                model_field = self._meta.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if is_encrypted(model_field) and name not in changed:
                del cleaned[name]
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        # Model.clean_fields() would read (and so open) every encrypted value
        # left out of cleaned_data above: they are unchanged, nothing to
        # validate, and a binary value may be large or fail to open.
        exclude = set(super()._get_validation_exclusions())
        if self.instance.pk is not None and not self.instance._state.adding:
            for name in self.fields:
                try:
                    model_field = self._meta.model._meta.get_field(name)
                except FieldDoesNotExist:
                    continue
                if is_encrypted(model_field) and name not in self.cleaned_data:
                    exclude.add(name)
        return exclude


def _undecryptable(instance: Model | None, model: Any) -> dict[str, DecryptionError]:
    broken = failing_fields(instance, model)
    for name, exc in broken.items():
        _log_failure(instance, name, exc)
    return broken


def _binary_sizes(instance: Model | None, model: Any,
                  broken: dict[str, DecryptionError]) -> dict[str, StoredSize | None]:
    """Initial values for the binary fields of a change form: their sizes."""
    if instance is None or instance.pk is None or instance._state.adding:
        return {}
    sizes: dict[str, StoredSize | None] = {}
    for field in model._meta.concrete_fields:
        if is_encrypted(field) and is_encrypted_binary(field) and field.name not in broken:
            size = stored_size(instance, field)
            sizes[field.name] = None if size is None else StoredSize(size)
    return sizes


def _undecryptable_field(exc: DecryptionError, label: Any) -> forms.Field:
    """A disabled field that shows the marker in place of the value."""
    widget = forms.TextInput(attrs={"class": MARKER_CLASS, "title": str(exc)})
    return forms.CharField(label=label, required=False, disabled=True,
                           initial=marker_text(exc), widget=widget)
