"""Django admin support for encrypted fields.

``EncryptedModelAdmin`` (or ``EncryptedAdminMixin`` in front of another
``ModelAdmin`` base) makes a model with encrypted fields safe to manage in
the admin:

* ``EncryptedTextField`` shows and edits as plaintext.
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

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import BaseModelAdmin
from django.contrib.admin.utils import flatten_fieldsets, label_for_field, quote, unquote
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.contrib.admin.widgets import AdminTextareaWidget
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import F, Model
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OrderBy
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.text import Truncator, capfirst

from .exceptions import DecryptionError

logger = logging.getLogger("mcfields.admin")

__all__ = [
    "EncryptedAdminMixin",
    "EncryptedFileField",
    "EncryptedFileInput",
    "EncryptedModelAdmin",
    "EncryptedModelAdminChecks",
    "EncryptedModelForm",
    "undecryptable_marker",
]

MARKER_CLASS = "mcfields-undecryptable"


# --------------------------------------------------------------------------
# Field helpers


def _encrypted_classes() -> tuple[type, ...]:
    from .fields import EncryptedBinaryField, EncryptedTextField

    return (EncryptedTextField, EncryptedBinaryField)


def is_encrypted(field: Any) -> bool:
    """True for an mcfields encrypted model field."""
    return isinstance(field, _encrypted_classes())


def is_encrypted_binary(field: Any) -> bool:
    from .fields import EncryptedBinaryField

    return isinstance(field, EncryptedBinaryField)


def encrypted_fields(model: type[Model]) -> list[Any]:
    """The concrete encrypted fields of ``model``, in declaration order."""
    return [f for f in model._meta.concrete_fields if is_encrypted(f)]


def resolve_encrypted_path(model: type[Model], path: str) -> Any | None:
    """The encrypted field that ``path`` reaches, or None.

    ``path`` is a field name or a ``__`` path as used by ``search_fields``,
    ``ordering``, ``list_filter`` and ``admin_order_field``, optionally with
    the prefixes those accept (``-``, ``^``, ``=``, ``@``) and a trailing
    lookup (``secret__icontains``).  Names that do not resolve are left to
    Django's own checks.
    """
    if not isinstance(path, str) or not path or path == "?":
        return None
    path = path.lstrip("-^=@")
    opts = model._meta
    for part in path.split(LOOKUP_SEP):
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if is_encrypted(field):
            return field
        related = getattr(field, "related_model", None)
        if field.is_relation and related is not None:
            opts = related._meta
        else:
            return None
    return None


def _ordering_path(item: Any) -> str | None:
    """The field path an ordering entry refers to, if it names one."""
    if isinstance(item, str):
        return item
    if isinstance(item, OrderBy):
        item = item.expression
    if isinstance(item, F):
        return item.name
    return None


def _label(field: Any) -> str:
    return f"{field.model._meta.label}.{field.name}"


# --------------------------------------------------------------------------
# Rendering


FAILURE_HELP = (
    "The stored value was altered, copied from another row or column, or sealed "
    "under a key that is not in MCFIELDS_KEYS. Saving this form leaves it as stored."
)


def undecryptable_marker(exc: DecryptionError, *, explain: bool = False) -> str:
    """HTML for a value that failed to open: a visible marker, no 500.

    The tooltip carries the error message (model, field, pk, key id; never
    plaintext).  ``explain`` adds a sentence for the change form.
    """
    key_id = getattr(exc, "key_id", None)
    text = f"⚠ cannot decrypt (key id {key_id})" if key_id else "⚠ cannot decrypt"
    marker = format_html('<span class="{}" title="{}">{}</span>', MARKER_CLASS, str(exc), text)
    if explain:
        return format_html('{}<span class="mcfields-undecryptable-help">{}</span>',
                           marker, FAILURE_HELP)
    return marker


def _log_failure(obj: Model, field_name: str, exc: DecryptionError) -> None:
    # DecryptionError messages name model, field, pk and key id; never plaintext.
    logger.warning(
        "admin: %s.%s pk=%r cannot be opened: %s",
        obj._meta.label,
        field_name,
        obj.pk,
        getattr(exc, "reason", exc),
    )


def size_display(value: bytes | bytearray | memoryview) -> str:
    return filesizeformat(len(value))


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
        return isinstance(value, (bytes, bytearray, memoryview))

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
    from . import conf

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
        super().__init__(*args, **kwargs)
        if self.instance.pk is None or self.instance._state.adding:
            return
        for name in self.mcfields_upload_fields:
            if name in self.fields:
                self.initial.setdefault(name, getattr(self.instance, name))
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


# --------------------------------------------------------------------------
# Change list


class EncryptedChangeList(ChangeList):
    """Never orders by an encrypted column (sort links, ``admin_order_field``,
    ``ordering``, ``Meta.ordering``): it would sort by ciphertext."""

    def get_ordering_field(self, field_name: Any) -> Any:
        order_field = super().get_ordering_field(field_name)
        if resolve_encrypted_path(self.model, _ordering_path(order_field) or ""):
            return None
        return order_field

    def get_ordering(self, request: Any, queryset: Any) -> list:
        ordering = super().get_ordering(request, queryset)
        return [o for o in ordering if not resolve_encrypted_path(self.model, _ordering_path(o))]


# --------------------------------------------------------------------------
# Checks (run through ModelAdmin.check(), i.e. ``manage.py check``)


class EncryptedModelAdminChecks(admin.checks.ModelAdminChecks):
    def check(self, admin_obj: Any, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(admin_obj, **kwargs)
        model = admin_obj.model
        where = admin_obj.__class__.__qualname__

        def msg(cls: type, id_: str, text: str, hint: str) -> checks.CheckMessage:
            return cls(text, hint=hint, obj=admin_obj.__class__, id=id_)

        for i, item in enumerate(admin_obj.search_fields or ()):
            field = resolve_encrypted_path(model, item)
            if field is not None:
                errors.append(
                    msg(
                        checks.Warning,
                        "mcfields.W201",
                        f"{where}.search_fields[{i}] ({item!r}) reaches encrypted field "
                        f"{_label(field)}; the database holds only ciphertext, so it "
                        "cannot be searched. The admin skips it.",
                        "Remove it from search_fields, or search a plain column.",
                    )
                )
        for i, item in enumerate(admin_obj.ordering or ()):
            field = resolve_encrypted_path(model, _ordering_path(item))
            if field is not None:
                errors.append(
                    msg(
                        checks.Warning,
                        "mcfields.W202",
                        f"{where}.ordering[{i}] ({item!r}) orders by encrypted field "
                        f"{_label(field)}; ciphertext order is meaningless. The admin "
                        "skips it.",
                        "Order by a plain column instead.",
                    )
                )
        for i, item in enumerate(admin_obj.list_filter or ()):
            name = item[0] if isinstance(item, (list, tuple)) and item else item
            field = resolve_encrypted_path(model, name) if isinstance(name, str) else None
            if field is not None:
                errors.append(
                    msg(
                        checks.Warning,
                        "mcfields.W203",
                        f"{where}.list_filter[{i}] ({name!r}) filters on encrypted field "
                        f"{_label(field)}; encrypted fields support no lookups except "
                        "isnull. The admin skips it.",
                        "Remove it, or use a SimpleListFilter on a plain column.",
                    )
                )
        for item in admin_obj.list_display or ():
            source = _display_source(admin_obj, item)
            order = getattr(source, "admin_order_field", None)
            field = resolve_encrypted_path(model, _ordering_path(order))
            if field is not None:
                errors.append(
                    msg(
                        checks.Warning,
                        "mcfields.W204",
                        f"{where}.list_display item {_item_name(item)!r} sets "
                        f"admin_order_field={order!r}, an encrypted field "
                        f"({_label(field)}); the column is shown unsortable.",
                        "Drop admin_order_field or point it at a plain column.",
                    )
                )
        for i, item in enumerate(admin_obj.list_editable or ()):
            field = resolve_encrypted_path(model, item)
            if field is not None:
                errors.append(
                    msg(
                        checks.Error,
                        "mcfields.E205",
                        f"{where}.list_editable[{i}] ({item!r}) is encrypted field "
                        f"{_label(field)}; edit encrypted values on the change form.",
                        "Remove it from list_editable (it may stay in list_display).",
                    )
                )
        for target, sources in (admin_obj.prepopulated_fields or {}).items():
            for source in sources:
                field = resolve_encrypted_path(model, source)
                if field is not None:
                    errors.append(
                        msg(
                            checks.Warning,
                            "mcfields.W206",
                            f"{where}.prepopulated_fields[{target!r}] copies encrypted "
                            f"field {_label(field)} into plain field {target!r}: the "
                            "plaintext would be stored unencrypted.",
                            "Prepopulate from a plain column.",
                        )
                    )
        return errors


def _item_name(item: Any) -> str:
    return item if isinstance(item, str) else getattr(item, "__name__", repr(item))


def _display_source(model_admin: Any, item: Any) -> Any:
    """What Django would call for a non-field ``list_display`` entry."""
    if callable(item):
        return item
    if not isinstance(item, str):
        return None
    if item != "__str__" and hasattr(model_admin, item):
        return getattr(model_admin, item)
    attr = getattr(model_admin.model, item, None)
    if isinstance(attr, property):
        return attr.fget
    return attr


@checks.register(checks.Tags.admin)
def check_admin_registrations(app_configs: Any = None, **kwargs: Any) -> list:
    """mcfields.W210: a model with encrypted fields under a plain ModelAdmin."""
    from django.contrib.admin.sites import all_sites

    found = []
    for site in all_sites:
        for model, model_admin in site._registry.items():
            if app_configs is not None and model._meta.app_config not in app_configs:
                continue
            if isinstance(model_admin, EncryptedAdminMixin) or not encrypted_fields(model):
                continue
            found.append(
                checks.Warning(
                    f"{model._meta.label} has encrypted fields but is registered on admin "
                    f"site {site.name!r} with {type(model_admin).__qualname__}, which does "
                    "not use mcfields.admin.EncryptedAdminMixin: binary values show as "
                    "bytes, and a row that fails to open raises a server error.",
                    hint="Register it with mcfields.admin.EncryptedModelAdmin.",
                    obj=type(model_admin),
                    id="mcfields.W210",
                )
            )
    return found


# --------------------------------------------------------------------------
# The admin


class EncryptedAdminMixin(BaseModelAdmin):
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
        """
        try:
            value = getattr(obj, field.attname)
        except DecryptionError as exc:
            _log_failure(obj, field.name, exc)
            return undecryptable_marker(exc, explain=not cell)
        if value is None:
            return None
        if is_encrypted_binary(field):
            size = size_display(value)
            url = self._download_url(obj, field.name) if link else None
            if url:
                return format_html('{} <a href="{}" class="mcfields-download">download</a>',
                                   size, url)
            return size
        if cell and self.encrypted_list_truncate:
            return Truncator(value).chars(self.encrypted_list_truncate)
        return value

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
        failed: dict[str, DecryptionError] = {}
        if obj is None or obj.pk is None:
            return failed
        for field in encrypted_fields(self.model):
            try:
                getattr(obj, field.attname)
            except DecryptionError as exc:
                failed[field.name] = exc
        return failed

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
        if is_encrypted(db_field) and "widget" not in kwargs:
            override = next(
                (self.formfield_overrides[k] for k in type(db_field).__mro__
                 if k in self.formfield_overrides),
                None,
            )
            if override is None:
                kwargs["widget"] = AdminTextareaWidget
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
            if resolve_encrypted_path(self.model, s)
        ]

    def get_search_fields(self, request: Any) -> list:
        return [
            s for s in (super().get_search_fields(request) or ())
            if not resolve_encrypted_path(self.model, s)
        ]

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
