"""Shared helpers: which fields are encrypted, markers for values that fail
to open, sizes of binary values."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OrderBy
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from ..exceptions import DecryptionError

logger = logging.getLogger("mcfields.admin")

MARKER_CLASS = "mcfields-undecryptable"



# --------------------------------------------------------------------------
# Field helpers


def _encrypted_classes() -> tuple[type, ...]:
    from ..fields import EncryptedBinaryField, EncryptedTextField

    return (EncryptedTextField, EncryptedBinaryField)


def is_encrypted(field: Any) -> bool:
    """True for an mcfields encrypted model field."""
    return isinstance(field, _encrypted_classes())


def is_encrypted_binary(field: Any) -> bool:
    from ..fields import EncryptedBinaryField

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
