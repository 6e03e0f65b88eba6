"""Lookups on encrypted fields: ``isnull`` and ``exact=None`` only.

Every stored value is sealed with a random nonce, so the database cannot
compare, search or order plaintexts; a lookup that looked like it worked
would silently match nothing (or match ciphertext).  Anything but a NULL
test is refused with a ``FieldError`` that names the field class and lookup.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db.models.lookups import Exact, IsNull

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


__all__ = ["ALLOWED", "EncryptedExact", "IsNull", "refusal"]
