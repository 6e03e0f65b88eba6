"""System checks for admin classes that name encrypted fields."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core import checks

from ..compat import registered_admins
from ..lookups import exact_search_path, resolve_encrypted_path
from ..search import CASE_INSENSITIVE
from .display import (
    _label,
    _ordering_path,
    encrypted_fields,
)

# --------------------------------------------------------------------------
# Checks (run through ModelAdmin.check(), i.e. ``manage.py check``)


class EncryptedModelAdminChecks(admin.checks.ModelAdminChecks):
    def check(self, admin_obj: Any, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(admin_obj, **kwargs)
        where = admin_obj.__class__.__qualname__
        for level, id_, item, name, field, text, hint in _misuses(admin_obj):
            errors.append(level(
                text.format(where=where, item=item, name=name, field=_label(field)),
                hint=hint, obj=admin_obj.__class__, id=id_,
            ))
        return errors


# (level, id, message, hint) for each option that can reach an encrypted field.
_RULES: dict[str, tuple[type, str, str, str]] = {
    "search_fields": (
        checks.Warning, "mcfields.W201",
        "{where}.search_fields[{item}] ({name!r}) reaches encrypted field {field}; the "
        "database holds only ciphertext, so it cannot be searched. The admin skips it.",
        "Remove it from search_fields, or search a plain column.",
    ),
    "ordering": (
        checks.Warning, "mcfields.W202",
        "{where}.ordering[{item}] ({name!r}) orders by encrypted field {field}; "
        "ciphertext order is meaningless. The admin skips it.",
        "Order by a plain column instead.",
    ),
    "list_filter": (
        checks.Warning, "mcfields.W203",
        "{where}.list_filter[{item}] ({name!r}) filters on encrypted field {field}; "
        "encrypted fields support no lookups except isnull. The admin skips it.",
        "Remove it, or use a SimpleListFilter on a plain column.",
    ),
    "list_display": (
        checks.Warning, "mcfields.W204",
        "{where}.list_display item {item!r} sets admin_order_field={name!r}, an "
        "encrypted field ({field}); the column is shown unsortable.",
        "Drop admin_order_field or point it at a plain column.",
    ),
    "list_editable": (
        checks.Error, "mcfields.E205",
        "{where}.list_editable[{item}] ({name!r}) is encrypted field {field}; edit "
        "encrypted values on the change form.",
        "Remove it from list_editable (it may stay in list_display).",
    ),
    "prepopulated_fields": (
        checks.Warning, "mcfields.W206",
        "{where}.prepopulated_fields[{item!r}] copies encrypted field {field} into plain "
        "field {item!r}: the plaintext would be stored unencrypted.",
        "Prepopulate from a plain column.",
    ),
}


def _candidates(admin_obj: Any) -> Any:
    """(option, item shown in the message, name it reaches) for each entry."""
    for i, name in enumerate(admin_obj.search_fields or ()):
        yield "search_fields", i, name, name
    for i, item in enumerate(admin_obj.ordering or ()):
        yield "ordering", i, item, _ordering_path(item)
    for i, item in enumerate(admin_obj.list_filter or ()):
        name = item[0] if isinstance(item, (list, tuple)) and item else item
        if isinstance(name, str):
            yield "list_filter", i, name, name
    for item in admin_obj.list_display or ():
        order = getattr(_display_source(admin_obj, item), "admin_order_field", None)
        yield "list_display", _item_name(item), order, _ordering_path(order)
    for i, name in enumerate(admin_obj.list_editable or ()):
        yield "list_editable", i, name, name
    for target, sources in (admin_obj.prepopulated_fields or {}).items():
        for source in sources:
            yield "prepopulated_fields", target, source, source


def _misuses(admin_obj: Any) -> Any:
    model = admin_obj.model
    for option, item, shown, path in _candidates(admin_obj):
        if option == "search_fields" and exact_search_path(model, path):
            continue  # "=field" on a searchable field: exact search by blind index
        field = resolve_encrypted_path(model, path)
        if field is not None:
            level, id_, text, hint = _RULES[option]
            yield level, id_, item, shown, field, text, hint


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


# What a plain ModelAdmin (no EncryptedAdminMixin) does with an option that
# reaches an encrypted field: it hands it to the database, and the field
# refuses the lookup or the ordering (FieldError), so the change list answers
# with a server error.  (option, id, what fails)
_PLAIN_RULES: dict[str, tuple[str, str]] = {
    "search_fields": ("mcfields.E211", "every search on the change list"),
    "ordering": ("mcfields.E212", "every change-list page"),
    "list_filter": ("mcfields.E213", "every change-list page"),
}


def _plain_admin_errors(site: Any, model: Any, model_admin: Any) -> list[checks.CheckMessage]:
    """mcfields.E211-E213: options of a plain ModelAdmin that would be a 500."""
    errors: list[checks.CheckMessage] = []
    where = type(model_admin).__qualname__
    for option, item, shown, path in _candidates(model_admin):
        if option not in _PLAIN_RULES:
            continue
        field = resolve_encrypted_path(model, path)
        if field is None:
            continue
        if (option == "search_fields" and exact_search_path(model, path)
                and field.normalize in CASE_INSENSITIVE):
            continue  # Django's "=" search is iexact, which the index answers
        id_, fails = _PLAIN_RULES[option]
        errors.append(checks.Error(
            f"{where}.{option}[{item}] ({shown!r}) reaches encrypted field {_label(field)}, "
            f"and {where} (admin site {site.name!r}) does not use "
            "mcfields.admin.EncryptedAdminMixin: the database holds only ciphertext and "
            f"refuses it, so {fails} would be a server error (500).",
            hint=(
                f"Register {model._meta.label} with mcfields.admin.EncryptedModelAdmin (or put "
                "EncryptedAdminMixin first in the bases), which leaves the encrypted field "
                f"out, or remove {shown!r} from {option}."
            ),
            obj=type(model_admin),
            id=id_,
        ))
    return errors


def admin_registration_messages(app_configs: Any = None, **kwargs: Any) -> list:
    """mcfields.W210: a model with encrypted fields under a plain ModelAdmin;
    mcfields.E211-E213: such an admin's search_fields, ordering or list_filter
    reaches an encrypted field (a server error at run time)."""
    from django.contrib.admin.sites import all_sites

    from .options import EncryptedAdminMixin  # the options import this module

    found = []
    for site in all_sites:
        for model, model_admin in registered_admins(site):
            if app_configs is not None and model._meta.app_config not in app_configs:
                continue
            if isinstance(model_admin, EncryptedAdminMixin) or not encrypted_fields(model):
                continue
            found.append(
                checks.Warning(
                    f"{model._meta.label} has encrypted fields but is registered on admin "
                    f"site {site.name!r} with {type(model_admin).__qualname__}, which does "
                    "not use mcfields.admin.EncryptedAdminMixin: binary values show as "
                    "bytes, a search, sort or filter on an encrypted field is a server "
                    "error, and so is a row that fails to open.",
                    hint="Register it with mcfields.admin.EncryptedModelAdmin.",
                    obj=type(model_admin),
                    id="mcfields.W210",
                )
            )
            found.extend(_plain_admin_errors(site, model, model_admin))
    return found
