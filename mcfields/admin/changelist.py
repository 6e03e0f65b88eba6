"""A change list that never sorts by an encrypted column."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.main import ChangeList

from ..lookups import resolve_encrypted_path
from .display import (
    _ordering_path,
)

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
