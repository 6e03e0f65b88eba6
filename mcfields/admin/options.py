"""``EncryptedAdminMixin`` and ``EncryptedModelAdmin``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import BaseModelAdmin
from django.contrib.admin.utils import (
    display_for_field,
    flatten_fieldsets,
    label_for_field,
    quote,
    unquote,
)
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Model
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.text import Truncator, capfirst

from ..exceptions import DecryptionError
from ..lookups import exact_search_path, resolve_encrypted_path
from ..saving import is_encrypted
from .changelist import EncryptedChangeList
from .checks import (
    EncryptedModelAdminChecks,
    _display_source,
    _item_name,
)
from .display import (
    _log_failure,
    _ordering_path,
    encrypted_fields,
    failing_fields,
    is_encrypted_binary,
    size_display,
    stored_size,
    undecryptable_marker,
)
from .forms import EncryptedFileField, EncryptedModelForm, _max_size

# --------------------------------------------------------------------------
# The admin


def base_field_override(admin_obj: BaseModelAdmin, db_field: Any) -> dict[str, Any] | None:
    """The ``formfield_overrides`` entry an encrypted ``db_field`` gets.

    Django picks an entry by the model field's class MRO, and an encrypted
    field is not a ``DateField`` (nor a ``TextField``...): its widgets would
    be the bare form field's.  An entry for the encrypted class itself wins
    (``{EncryptedDateField: {...}}`` is as explicit as it gets); otherwise
    the entry for the base field's class, so ``EncryptedDateField`` gets the
    calendar, ``EncryptedDateTimeField`` the split date/time widget,
    ``EncryptedTextField`` the text area, as their plain fields do.
    """
    from ..fields import EncryptedField

    overrides = admin_obj.formfield_overrides
    for klass in type(db_field).__mro__:
        if klass in overrides and issubclass(klass, EncryptedField):
            return overrides[klass]
    base = getattr(db_field, "base_field", None)
    if base is None:
        return None
    return next((overrides[k] for k in type(base).__mro__ if k in overrides), None)


class EncryptedFormfieldMixin(BaseModelAdmin):
    """Admin widgets of the base field for encrypted fields (model admins and
    inlines alike): see :func:`base_field_override`."""

    def formfield_for_dbfield(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if is_encrypted(db_field) and not db_field.choices:
            # Fields with choices take Django's own path (a select or
            # radio buttons, whatever the type).  Explicit kwargs win, as
            # they do over Django's own overrides.
            override = base_field_override(self, db_field)
            if override:
                kwargs = {**copy.deepcopy(override), **kwargs}
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class EncryptedAdminMixin(EncryptedFormfieldMixin, BaseModelAdmin):
    """Put in front of a ``ModelAdmin`` base for models with encrypted fields."""

    checks_class = EncryptedModelAdminChecks
    form = EncryptedModelForm

    class Media:
        css = {"all": ["mcfields/admin.css"]}

    #: Offer a download link for ``EncryptedBinaryField`` values.
    encrypted_download = True
    #: ``{"binary_field": "plain_char_field"}``: keep the uploaded file's name
    #: in a plain field and use it as the download's file name.
    encrypted_file_name_fields: dict[str, str] = {}
    #: Characters of encrypted text shown in a change-list cell.
    encrypted_list_truncate = 80
    #: Binary fields that get a file input even though the model field is not
    #: editable (``EncryptedBinaryField``'s default, like ``BinaryField``):
    #: the admin offers the upload, other ModelForms still leave them out.
    encrypted_upload_fields: tuple[str, ...] = ()

    # -- helpers -----------------------------------------------------------

    def _mcf_cache(self, kind: str) -> dict:
        cache = self.__dict__.setdefault("_mcf_callables", {})
        return cache.setdefault(kind, {})

    def _mcf_field(self, name: Any) -> Any | None:
        if not isinstance(name, str) or LOOKUP_SEP in name:
            return None
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        return field if is_encrypted(field) else None

    def _download_url(self, obj: Model, field_name: str) -> str | None:
        if not self.encrypted_download or obj.pk is None:
            return None
        opts = self.model._meta
        try:
            return reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_mcfields_download",
                args=(quote(obj.pk), field_name),
            )
        except NoReverseMatch:
            return None

    def _render(self, obj: Model, field: Any, *, cell: bool, link: bool = True) -> Any:
        """A display value for ``field`` on ``obj``; never raises DecryptionError.

        ``link``: offer the download link (only for this admin's own model).
        A binary value is shown by its size, read from the envelope without
        opening it; the download link opens it when (and if) it is clicked.
        """
        try:
            if is_encrypted_binary(field):
                size = stored_size(obj, field)
                if size is None:
                    return None
                url = self._download_url(obj, field.name) if link else None
                if url:
                    return format_html(
                        '{} <a href="{}" class="mcfields-download">download</a>',
                        size_display(size), url,
                    )
                return size_display(size)
            value = getattr(obj, field.attname)
        except DecryptionError as exc:
            _log_failure(obj, field.name, exc)
            return undecryptable_marker(exc, explain=not cell)
        return self._display_value(field, value, cell=cell)

    def _display_value(self, field: Any, value: Any, *, cell: bool) -> Any:
        """An opened value as the plain field's column and read-only row show it.

        Text (cut to ``encrypted_list_truncate`` in a cell) stays text; other
        types go through the admin's ``display_for_field`` with the base
        field, as a plain column of that type would: the yes/no/unknown icon
        for a boolean, localized dates and numbers, a Decimal with its
        places, JSON as JSON (not a Python repr), a choice's label.
        """
        base = field.base_field
        if value is None and not isinstance(base, models.BooleanField):
            return None
        if isinstance(value, str) and not getattr(base, "flatchoices", None):
            if cell and self.encrypted_list_truncate:
                return Truncator(value).chars(self.encrypted_list_truncate)
            return value
        return display_for_field(value, base, self.get_empty_value_display())

    def _field_display(self, field: Any, *, cell: bool) -> Callable[[Model], Any]:
        cache = self._mcf_cache("cell" if cell else "form")
        if field.name not in cache:

            def display(obj: Model) -> Any:
                return self._render(obj, field, cell=cell)

            display.__name__ = field.name
            display.__qualname__ = field.name
            display.short_description = capfirst(field.verbose_name)
            cache[field.name] = display
        return cache[field.name]

    def _path_display(self, path: str, field: Any) -> Callable[[Model], Any]:
        """A list_display callable for ``related__encrypted`` paths."""
        cache = self._mcf_cache("cell")
        if path not in cache:

            def display(obj: Model) -> Any:
                target = obj
                for part in path.split(LOOKUP_SEP)[:-1]:
                    target = getattr(target, part, None)
                    if target is None:
                        return None
                return self._render(target, field, cell=True, link=False)

            display.__name__ = path
            display.short_description = capfirst(field.verbose_name)
            cache[path] = display
        return cache[path]

    def _safe_display(self, item: Any) -> Any:
        """Wrap a non-field list_display entry so DecryptionError becomes a marker."""
        if item == "action_checkbox":
            return item
        cache = self._mcf_cache("cell")
        if item in cache:
            return cache[item]
        try:
            label = label_for_field(item, self.model, self)
        except AttributeError:
            return item  # Django's own checks report it
        source = _display_source(self, item)

        def call(obj: Model) -> Any:
            if callable(item):
                return item(obj)
            if item != "__str__" and hasattr(self, item):
                return getattr(self, item)(obj)
            if item == "__str__":
                return str(obj)
            value = getattr(obj, item)
            return value() if callable(value) else value

        def display(obj: Model) -> Any:
            try:
                return call(obj)
            except DecryptionError as exc:
                _log_failure(obj, getattr(exc, "field", None) or _item_name(item), exc)
                return undecryptable_marker(exc)

        for attr in ("boolean", "admin_order_field", "empty_value_display"):
            if hasattr(source, attr):
                setattr(display, attr, getattr(source, attr))
        display.short_description = label
        display.__name__ = _item_name(item)
        cache[item] = display
        return display

    def _map_list_item(self, item: Any) -> Any:
        field = self._mcf_field(item)
        if field is not None:
            return self._field_display(field, cell=True)
        if isinstance(item, str) and LOOKUP_SEP in item:
            field = resolve_encrypted_path(self.model, item)
            return self._path_display(item, field) if field is not None else item
        if isinstance(item, str):
            try:
                self.model._meta.get_field(item)
                return item  # a plain model field
            except FieldDoesNotExist:
                pass
        return self._safe_display(item)

    def undecryptable_fields(self, obj: Model | None) -> dict[str, DecryptionError]:
        """Encrypted fields of ``obj`` whose value fails to open."""
        return failing_fields(obj, self.model)

    def _form_displays(self, request: Any, obj: Model | None) -> dict[str, Callable]:
        """Encrypted fields the change form shows as read-only displays."""
        view_only = obj is not None and not self.has_change_permission(request, obj)
        failed = self.undecryptable_fields(obj)
        declared_ro = set(super().get_readonly_fields(request, obj))
        plan = {}
        for field in encrypted_fields(self.model):
            uploadable = field.editable or field.name in self.encrypted_upload_fields
            if (
                view_only
                or field.name in failed
                or field.name in declared_ro
                or (is_encrypted_binary(field) and not uploadable)
            ):
                plan[field.name] = self._field_display(field, cell=False)
        return plan

    def _upload_fields(self, request: Any, obj: Model | None) -> list[Any]:
        """Non-editable binary fields that get a file input on this form."""
        plan = self._form_displays(request, obj)
        found = []
        for name in self.encrypted_upload_fields:
            field = self._mcf_field(name)
            if (
                field is not None
                and is_encrypted_binary(field)
                and not field.editable
                and name not in plan
            ):
                found.append(field)
        return found

    # -- change form ---------------------------------------------------------

    def get_readonly_fields(self, request: Any, obj: Model | None = None) -> list:
        declared = list(super().get_readonly_fields(request, obj))
        plan = self._form_displays(request, obj)
        mapped = [plan.get(n, n) if isinstance(n, str) else n for n in declared]
        return mapped + [d for d in plan.values() if d not in mapped]

    def get_fieldsets(self, request: Any, obj: Model | None = None) -> list:
        plan = self._form_displays(request, obj)
        seen: set[int] = set()

        def map_names(names: Iterable[Any]) -> list:
            out = []
            for name in names:
                if isinstance(name, (list, tuple)):
                    inner = map_names(name)
                    if inner:
                        out.append(tuple(inner))
                    continue
                name = plan.get(name, name) if isinstance(name, str) else name
                if id(name) in seen:
                    continue
                seen.add(id(name))
                out.append(name)
            return out

        fieldsets = []
        for title, options in super().get_fieldsets(request, obj):
            options = dict(options)
            options["fields"] = map_names(options.get("fields", ()))
            fieldsets.append((title, options))
        return fieldsets

    def get_form(self, request: Any, obj: Model | None = None, change: bool = False, **kwargs):
        if "fields" in kwargs:
            fields = kwargs.pop("fields")
        else:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        uploads = self._upload_fields(request, obj)
        if uploads and "form" not in kwargs:
            # ModelForm refuses non-editable model fields in ``fields``:
            # declare them on the form instead (save_form assigns them).
            if fields is not None:
                uploads = [f for f in uploads if f.name in fields]
                names = {f.name for f in uploads}
                fields = [f for f in fields if f not in names]
            readonly = self.get_readonly_fields(request, obj)
            attrs: dict[str, Any] = dict.fromkeys(
                f for f in readonly if f in self.form.declared_fields
            )
            for field in uploads:
                attrs[field.name] = self.formfield_for_dbfield(field, request)
            attrs["mcfields_upload_fields"] = tuple(f.name for f in uploads)
            kwargs["form"] = type(self.form.__name__, (self.form,), attrs)
        form = super().get_form(request, obj, change=change, fields=fields, **kwargs)
        if self.encrypted_download and issubclass(form, EncryptedModelForm):
            form.mcfields_download_url = staticmethod(self._download_url)
        return form

    def formfield_for_dbfield(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if is_encrypted_binary(db_field):
            return EncryptedFileField(
                required=not db_field.blank,
                label=capfirst(db_field.verbose_name),
                help_text=db_field.help_text,
                null=db_field.null,
                max_size=_max_size(),
                **kwargs,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_form(self, request: Any, form: Any, change: bool) -> Any:
        obj = super().save_form(request, form, change)
        for name in getattr(form, "mcfields_upload_fields", ()):
            if name in form.changed_data and name in form.cleaned_data:
                setattr(obj, name, form.cleaned_data[name])
        for field_name, name_field in self.encrypted_file_name_fields.items():
            if field_name not in form.changed_data:
                continue
            upload = form.files.get(form.add_prefix(field_name))
            if upload is not None and getattr(upload, "name", None):
                setattr(obj, name_field, upload.name)
            elif form.cleaned_data.get(field_name) in (None, b""):
                setattr(obj, name_field, "")
        return obj

    def save_model(self, request: Any, obj: Model, form: Any, change: bool) -> None:
        failed = self.undecryptable_fields(obj) if change else {}
        if not failed:
            return super().save_model(request, obj, form, change)
        # Leave the columns that fail to open out of the UPDATE entirely: the
        # stored envelope stays exactly as it is (restoring the right key
        # later recovers it), and saving never tries to re-seal it.
        names = [
            f.name
            for f in obj._meta.concrete_fields
            if not f.primary_key and f.name not in failed
        ]
        obj.save(update_fields=names)

    # -- change list ---------------------------------------------------------

    def get_changelist(self, request: Any, **kwargs: Any) -> type[ChangeList]:
        return EncryptedChangeList

    def get_list_display(self, request: Any) -> list:
        return [self._map_list_item(i) for i in super().get_list_display(request)]

    def get_list_display_links(self, request: Any, list_display: Any) -> Any:
        links = super().get_list_display_links(request, list_display)
        if links is None:
            return None
        mapped = set(map(id, list_display))
        return [i if id(i) in mapped else self._map_list_item(i) for i in links]

    def get_sortable_by(self, request: Any) -> Any:
        sortable = super().get_sortable_by(request)
        if sortable is None:
            return None
        return [self._map_list_item(i) for i in sortable]

    def get_list_filter(self, request: Any) -> list:
        kept = []
        for item in super().get_list_filter(request):
            name = item[0] if isinstance(item, (list, tuple)) and item else item
            if isinstance(name, str) and resolve_encrypted_path(self.model, name):
                continue
            kept.append(item)
        return kept

    def get_ordering(self, request: Any) -> list:
        return [
            o
            for o in (super().get_ordering(request) or ())
            if not resolve_encrypted_path(self.model, _ordering_path(o))
        ]

    def skipped_search_fields(self, request: Any) -> list[str]:
        return [
            s for s in (super().get_search_fields(request) or ())
            if resolve_encrypted_path(self.model, s) and not exact_search_path(self.model, s)
        ]

    def get_search_fields(self, request: Any) -> list:
        # "=field" on a searchable field: an exact search through its blind
        # index ("field__blind_exact", where a term that is not a value of
        # the field's type matches nothing); other encrypted fields are left out.
        kept = []
        for s in super().get_search_fields(request) or ():
            exact = exact_search_path(self.model, s)
            if exact is not None:
                kept.append(exact)
            elif not resolve_encrypted_path(self.model, s):
                kept.append(s)
        return kept

    def changelist_view(self, request: Any, extra_context: Any = None) -> Any:
        if request.GET.get(SEARCH_VAR, "").strip():
            skipped = self.skipped_search_fields(request)
            if skipped:
                names = ", ".join(
                    str(resolve_encrypted_path(self.model, s).verbose_name) for s in skipped
                )
                if self.get_search_fields(request):
                    text = (f"Search did not look in encrypted fields ({names}): the "
                            "database holds only their ciphertext.")
                else:
                    text = (f"Search is not available: every search field is encrypted "
                            f"({names}) and the database holds only their ciphertext.")
                messages.warning(request, text)
        return super().changelist_view(request, extra_context)

    # -- download ------------------------------------------------------------

    def get_urls(self) -> list:
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_mcfields_download"
        extra = [
            path(
                "<path:object_id>/mcfields-download/<str:field_name>/",
                self.admin_site.admin_view(self.encrypted_download_view),
                name=name,
            )
        ]
        return extra + super().get_urls()

    def encrypted_download_view(self, request: Any, object_id: str, field_name: str) -> Any:
        field = self._mcf_field(field_name)
        if not self.encrypted_download or field is None or not is_encrypted_binary(field):
            raise Http404("No such encrypted file field.")
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        if not self.has_view_or_change_permission(request, obj):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        try:
            value = getattr(obj, field.attname)
        except DecryptionError as exc:
            _log_failure(obj, field.name, exc)
            messages.error(
                request,
                f"{capfirst(field.verbose_name)} cannot be downloaded: it cannot be "
                f"decrypted (key id {getattr(exc, 'key_id', None) or 'unknown'}).",
            )
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=(quote(obj.pk),),
                )
            )
        if value is None:
            raise Http404("No value.")
        filename = ""
        name_field = self.encrypted_file_name_fields.get(field.name)
        if name_field:
            filename = getattr(obj, name_field, "") or ""
        if not filename:
            filename = f"{self.model._meta.model_name}-{obj.pk}-{field.name}.bin"
        response = HttpResponse(bytes(value), content_type="application/octet-stream")
        response["Content-Disposition"] = content_disposition_header(True, filename)
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class EncryptedModelAdmin(EncryptedAdminMixin, admin.ModelAdmin):
    """``ModelAdmin`` for models with mcfields encrypted fields."""


class EncryptedTabularInline(EncryptedFormfieldMixin, admin.TabularInline):
    """A tabular inline whose rows edit encrypted text as plaintext, and show a
    marker for a value that fails to open instead of breaking the page."""

    form = EncryptedModelForm


class EncryptedStackedInline(EncryptedFormfieldMixin, admin.StackedInline):
    """The stacked counterpart of :class:`EncryptedTabularInline`."""

    form = EncryptedModelForm
