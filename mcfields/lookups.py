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
    return FieldError(
        f"Unsupported {kind} '{lookup_name}' for {type(field).__name__}{where}: encrypted "
        "values are sealed with a random nonce, so the database cannot compare them. "
        "Only 'isnull' and 'exact=None' are supported."
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


__all__ = ["ALLOWED", "EncryptedExact", "IsNull", "refusal", "resolve_encrypted_path"]
