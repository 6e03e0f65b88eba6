"""Lookups on encrypted fields: ``isnull`` and ``exact=None`` only.

Every stored value is sealed with a random nonce, so the database cannot
compare, search or order plaintexts; a lookup that looked like it worked
would silently match nothing (or match ciphertext).  Anything but a NULL
test is refused with a ``FieldError`` that names the field class and lookup.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db.models.constants import LOOKUP_SEP
from django.db.models.lookups import Exact, IsNull

from .saving import is_encrypted

ALLOWED = ("isnull", "exact")


def refusal(field: Any, lookup_name: str, kind: str = "lookup") -> FieldError:
    where = f" ({field.model._meta.label}.{field.name})" if hasattr(field, "model") else ""
    if getattr(field, "searchable", False):
        supported = ("Searchable fields support 'exact', 'in' and 'isnull' (through the "
                     "blind index) only.")
    else:
        supported = ("Only 'isnull' and 'exact=None' are supported; searchable=True adds "
                     "'exact' and 'in' on the field types with one spelling per value.")
    return FieldError(
        f"Unsupported {kind} '{lookup_name}' for {type(field).__name__}{where}: encrypted "
        f"values are sealed with a random nonce, so the database cannot compare them. "
        f"{supported}"
    )


class EncryptedExact(Exact):
    """``exact`` that accepts only None (Django turns that into IS NULL)."""

    def get_prep_lookup(self) -> Any:
        if self.rhs is not None:
            raise refusal(self.lhs.output_field, "exact")
        return super().get_prep_lookup()


def resolve_encrypted_path(model: Any, path: Any) -> Any | None:
    """The first encrypted field on a ``__`` path from ``model``, or None.

    ``path`` is a field name or a ``__`` path as used by ``order_by()``,
    ``search_fields``, ``ordering``, ``list_filter`` and
    ``admin_order_field``, optionally with
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


def exact_search_path(model: Any, name: Any) -> str | None:
    """For an admin ``search_fields`` entry ``"=path"`` that ends at a
    searchable encrypted field, the lookup that searches it through the
    blind index (``"path__blind_exact"``); else None."""
    if not isinstance(name, str) or not name.startswith("="):
        return None
    field = resolve_encrypted_path(model, name)
    if field is None or not getattr(field, "searchable", False):
        return None
    parts = name[1:].split(LOOKUP_SEP)
    if parts[-1] == "exact":
        parts = parts[:-1]
    if parts[-1] != field.name:
        return None  # a lookup or transform after the field
    return LOOKUP_SEP.join([*parts, "blind_exact"])


__all__ = ["ALLOWED", "EncryptedExact", "IsNull", "exact_search_path", "refusal",
           "resolve_encrypted_path"]
