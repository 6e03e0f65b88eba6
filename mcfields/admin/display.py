"""Shared helpers: which fields are encrypted, markers for values that fail
to open, sizes of binary values."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import F, Model
from django.db.models.expressions import OrderBy
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from ..crypto.envelope import OVERHEAD
from ..exceptions import DecryptionError
from ..saving import ForSave, is_encrypted
from ..sealed import Sealed
from ..storage import plaintext_size

logger = logging.getLogger("mcfields.admin")

MARKER_CLASS = "mcfields-undecryptable"


# --------------------------------------------------------------------------
# Field helpers


def is_encrypted_binary(field: Any) -> bool:
    """Whether an encrypted field's values are bytes (a file in the admin),
    whatever its storage: decided by its plaintext codec, not its class."""
    codec = getattr(field, "plaintext_codec", None)
    return codec is not None and codec.name == "bytes"


def encrypted_fields(model: type[Model]) -> list[Any]:
    """Every encrypted column of a row of ``model`` (parents' included), in
    the order of ``concrete_fields`` (the order the admin shows them in)."""
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
    """Encrypted fields of a saved ``obj`` whose value fails to open.

    Text values are opened (the page shows them anyway); binary values are
    only checked from their envelope (shape and key id), see ``stored_size``.
    """
    failed: dict[str, DecryptionError] = {}
    if obj is None or obj.pk is None or obj._state.adding:
        return failed
    for field in encrypted_fields(model):
        try:
            if is_encrypted_binary(field):
                # Only what shows without opening (see stored_size): a
                # binary value is never decrypted just to render a page.
                stored_size(obj, field)
            else:
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


class StoredSize:
    """A stored binary value known only by its plaintext size (never opened).

    The form's initial value for an ``EncryptedBinaryField`` on a change
    form: the widget shows the size, and an unchanged field is dropped from
    ``cleaned_data`` (``EncryptedModelForm.clean``), so this never reaches the
    instance.  Falsy for an empty value, as ``b""`` would be.
    """

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<StoredSize {self.size} bytes>"


def envelope_plaintext_size(field: Any, db_value: str | bytes | bytearray | memoryview) -> int:
    """The plaintext size of a stored envelope, in bytes, without opening it.

    An envelope is the plaintext plus a fixed ``OVERHEAD`` (docs/FORMAT.md).
    A binary column stores the envelope itself; a text column stores
    ``"mcf1:"`` + unpadded base64url, whose length gives the envelope's
    (every 4 characters carry 3 bytes), so nothing is decoded beyond the
    header.  For text the result counts UTF-8 bytes, not characters.
    Raises ``DecryptionError`` if the value is not shaped like an envelope
    (no key id, or shorter than the overhead).
    """
    if field.stored_key_id(db_value) is None:
        raise DecryptionError("stored value is not an mcfields envelope")
    size = plaintext_size(field.storage, db_value)
    if size is None:
        raise DecryptionError(f"stored value is not an envelope of at least {OVERHEAD} bytes")
    return size


def stored_size(obj: Model, field: Any) -> int | None:
    """Size of ``obj``'s value of an encrypted ``field``, without decrypting it.

    Showing a size must not cost a decryption of the whole value (a page of
    20 files of 8 MiB would decrypt 160 MiB).  A loaded value is measured
    from its envelope; a value assigned in memory from its own length.
    Raises ``DecryptionError`` (naming model, field, pk and key id) for what
    can be told without opening: not an envelope, or sealed under a key that
    is not configured.  A value altered or moved from another row is only
    found out when opened: its download then fails with a message.
    """
    from .. import conf

    attname = field.attname
    if attname in obj.__dict__:
        value = obj.__dict__[attname]
    else:
        # Deferred: read the stored envelope only; the descriptor would open it.
        value = (type(obj)._base_manager.using(obj._state.db).filter(pk=obj.pk)
                 .values_list(attname, flat=True).first())
    if value is None:
        return None
    if type(value) is ForSave:
        value = value.db
    elif type(value) is not Sealed:
        if isinstance(value, (bytes, bytearray, memoryview, str)):
            # Plaintext assigned but not saved yet.
            return len(value.encode("utf-8") if isinstance(value, str) else value)
        return len(field._to_bytes(getattr(obj, attname)))
    db_value = value.db_value if type(value) is Sealed else value
    try:
        size = envelope_plaintext_size(field, db_value)
        key_id = field.stored_key_id(db_value)
        if not conf.get_keyring().knows(key_id):
            raise DecryptionError("sealed under a key that is not configured",
                                  key_id=key_id.hex())
    except DecryptionError as exc:
        raise exc.with_context(model=obj._meta.label, field=field.name, pk=obj.pk) from None
    return size


def size_display(value: int | bytes | bytearray | memoryview | StoredSize) -> str:
    return filesizeformat(value if isinstance(value, int) else len(value))
