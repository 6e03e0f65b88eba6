"""System checks for admin classes that name encrypted fields."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core import checks

from .display import (
    _label,
    _ordering_path,
    encrypted_fields,
    resolve_encrypted_path,
)

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
    from .options import EncryptedAdminMixin  # the options import this module

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
