"""Form pieces for encrypted fields, for any ModelForm (the admin builds on them).

* :class:`EncryptedFileField` (widget :class:`EncryptedFileInput`): the form
  field of ``EncryptedBinaryField(editable=True)``: a file upload, capped at
  ``MCFIELDS_MAX_VALUE_SIZE``, with Django's FileField semantics ("Clear"
  stores ``None``/``b""``, no upload keeps the current value).  The page
  shows the current value's size, never its bytes.
* :class:`EncryptedModelForm`: a ModelForm base that builds on a row whose
  values fail to open (each such field is shown disabled with a marker and
  kept exactly as stored on save) and does not re-seal values the user did
  not change.  A plain ModelForm reads every value while it is built and
  raises :class:`~mcfields.DecryptionError` on such a row.

See docs/FORMS.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Model
from django.template.defaultfilters import filesizeformat

from .exceptions import DecryptionError
from .saving import is_encrypted

__all__ = ["EncryptedFileField", "EncryptedFileInput", "EncryptedModelForm"]

_BYTES = (bytes, bytearray, memoryview)


class EncryptedFileInput(forms.ClearableFileInput):
    """File input that shows the current value's size (never its bytes)."""

    template_name = "mcfields/widgets/encrypted_file_input.html"
    initial_text = "Currently"
    input_text = "Replace"
    clear_checkbox_label = "Clear"
    download_url: str | None = None

    def is_initial(self, value: Any) -> bool:
        from .admin.display import StoredSize

        return isinstance(value, (*_BYTES, StoredSize))

    def format_value(self, value: Any) -> Any:
        # Never hand the bytes to the template.
        return None

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        is_initial = self.is_initial(value)
        context["widget"]["is_initial"] = is_initial
        context["widget"]["value"] = None
        context["widget"]["size_display"] = _size_display(value) if is_initial else ""
        context["widget"]["download_url"] = self.download_url if is_initial else None
        return context


class EncryptedFileField(forms.FileField):
    """Upload a file into an ``EncryptedBinaryField``.

    ``clean()`` returns the uploaded file's bytes, the unchanged initial
    value, or, when "Clear" is ticked, ``None`` (nullable field) or ``b""``.
    ``max_size`` defaults to ``MCFIELDS_MAX_VALUE_SIZE``, read when the form
    is validated; a larger file is a form error, not a server error.
    """

    widget = EncryptedFileInput
    default_error_messages = {
        "too_large": "The file is %(size)s; the limit is %(limit)s.",
    }

    def __init__(self, *, null: bool = False, max_size: int | None = None, **kwargs: Any):
        self.null = null
        self.max_size = max_size
        kwargs.setdefault("allow_empty_file", True)
        # FileField's max_length is about the file *name*; nothing to do here.
        kwargs.pop("max_length", None)
        super().__init__(**kwargs)

    def _limit(self) -> int:
        if self.max_size is not None:
            return self.max_size
        from . import conf

        return conf.max_value_size()

    def to_python(self, data: Any) -> Any:
        upload = super().to_python(data)
        if upload is None:
            return None
        limit = self._limit()
        # The upload is read into memory (a value is sealed whole): check the
        # size Django reports before reading.
        if upload.size > limit:
            raise ValidationError(
                self.error_messages["too_large"],
                code="too_large",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        return b"".join(upload.chunks())

    def clean(self, data: Any, initial: Any = None) -> Any:
        value = super().clean(data, initial)
        if value is False:
            return None if self.null else b""
        if value is None and isinstance(initial, _BYTES):
            # No upload and an empty current value (b"" is falsy, so
            # FileField.clean() did not hand it back): keep it.
            return bytes(initial)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value


def _size_display(value: Any) -> str:
    from .admin.display import size_display

    return size_display(value)


def undecryptable_fields(instance: Model | None, model: Any) -> dict[str, DecryptionError]:
    """Encrypted fields of a saved ``instance`` whose value fails to open
    (each logged once on the ``mcfields.admin`` logger: model, field, pk,
    key id, never plaintext)."""
    from .admin.display import _log_failure, failing_fields

    broken = failing_fields(instance, model)
    for name, exc in broken.items():
        _log_failure(instance, name, exc)
    return broken


def undecryptable_form_field(exc: DecryptionError, label: Any) -> forms.Field:
    """A disabled field that shows the marker in place of the value.

    The help text says what happened and that saving keeps the stored value;
    the tooltip carries the error (model, field, pk, key id).
    """
    from .admin.display import FAILURE_HELP, MARKER_CLASS, marker_text

    widget = forms.TextInput(attrs={"class": MARKER_CLASS, "title": str(exc)})
    return forms.CharField(label=label, required=False, disabled=True,
                           initial=marker_text(exc), widget=widget, help_text=FAILURE_HELP)


def _binary_sizes(instance: Model | None, model: Any,
                  broken: dict[str, DecryptionError]) -> dict[str, Any]:
    """Initial values for the binary fields of a change form: their sizes,
    read from the stored envelopes (nothing is opened)."""
    if instance is None or instance.pk is None or instance._state.adding:
        return {}
    from .admin.display import StoredSize, is_encrypted_binary, stored_size

    sizes: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if is_encrypted(field) and is_encrypted_binary(field) and field.name not in broken:
            size = stored_size(instance, field)
            sizes[field.name] = None if size is None else StoredSize(size)
    return sizes


class EncryptedModelForm(forms.ModelForm):
    """ModelForm base for models with encrypted fields.

    * On a row whose value fails to open, the form is built without reading
      that value; the field shows ``⚠ cannot decrypt (key id …)``, disabled,
      and ``save()`` leaves its column out of the UPDATE, so the stored
      envelope stays exactly as it is (restoring the key recovers it).
    * On a change form, encrypted fields the user did not change are left
      out of ``cleaned_data``: the instance keeps its loaded value and no
      large value is re-sealed for nothing.
    * ``mcfields_download_url(instance, field_name)``, if set, gives each
      file widget a download link.
    """

    mcfields_download_url: Callable[[Model, str], str | None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        instance = kwargs.get("instance")
        model = type(self)._meta.model
        broken = undecryptable_fields(instance, model)
        sizes = _binary_sizes(instance, model, broken)
        if broken:
            # Build this form without reading those values (model_to_dict
            # would raise) and never write them back (construct_instance
            # honours exclude).
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
        self.mcfields_undecryptable = broken
        for name, exc in broken.items():
            if name in self.fields:
                self.fields[name] = undecryptable_form_field(exc, self.fields[name].label)
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

    def save(self, commit: bool = True) -> Any:
        broken = getattr(self, "mcfields_undecryptable", {})
        if not commit or not broken or self.errors:
            return super().save(commit=commit)
        # Like the admin: the failing columns stay out of the UPDATE, so
        # their stored envelopes are not even rewritten.
        instance = super().save(commit=False)
        names = [f.name for f in instance._meta.concrete_fields
                 if not f.primary_key and f.name not in broken]
        instance.save(update_fields=names)
        self._save_m2m()
        return instance
