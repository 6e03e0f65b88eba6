"""Shared helpers: which fields are encrypted, markers for values that fail
to open, sizes of binary values."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import F, Model
from django.db.models.expressions import OrderBy
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from ..exceptions import DecryptionError
from ..saving import is_encrypted

logger = logging.getLogger("mcfields.admin")

MARKER_CLASS = "mcfields-undecryptable"


# --------------------------------------------------------------------------
# Field helpers


def is_encrypted_binary(field: Any) -> bool:
    from ..fields import EncryptedBinaryField

    return isinstance(field, EncryptedBinaryField)


def encrypted_fields(model: type[Model]) -> list[Any]:
    """The concrete encrypted fields of ``model``, in declaration order."""
    return [f for f in model._meta.concrete_fields if is_encrypted(f)]


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


def marker_text(exc: DecryptionError) -> str:
    """The marker's words: no plaintext, the key id when known."""
    key_id = getattr(exc, "key_id", None)
    return f"⚠ cannot decrypt (key id {key_id})" if key_id else "⚠ cannot decrypt"


def failing_fields(obj: Model | None, model: type[Model]) -> dict[str, DecryptionError]:
    """Encrypted fields of a saved ``obj`` whose value fails to open."""
    failed: dict[str, DecryptionError] = {}
    if obj is None or obj.pk is None or obj._state.adding:
        return failed
    for field in encrypted_fields(model):
        try:
            getattr(obj, field.attname)
        except DecryptionError as exc:
            failed[field.name] = exc
    return failed


def undecryptable_marker(exc: DecryptionError, *, explain: bool = False) -> str:
    """HTML for a value that failed to open: a visible marker, no 500.

    The tooltip carries the error message (model, field, pk, key id; never
    plaintext).  ``explain`` adds a sentence for the change form.
    """
    marker = format_html('<span class="{}" title="{}">{}</span>', MARKER_CLASS, str(exc),
                         marker_text(exc))
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
