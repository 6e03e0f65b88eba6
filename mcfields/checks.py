"""System checks.

``mcfields.E0xx``: settings (registered by ``MCFieldsConfig.ready``).
``mcfields.E1xx``: options of an encrypted field (run by ``Field.check``).

Options that need the database to compare values (unique, indexes,
ordering) cannot work on sealed values: every seal uses a fresh random
nonce, so equal plaintexts never give equal column values.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .crypto.keys import Key
from .exceptions import InvalidKeyError

KEYS = "MCFIELDS_KEYS"
MAX_SIZE = "MCFIELDS_MAX_VALUE_SIZE"
_HINT_GENERATE = "Generate a key with `python manage.py generate_key`."


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not hasattr(settings, KEYS):
        errors.append(
            checks.Error(
                f"{KEYS} is not set: encrypted fields have no key to seal with.",
                hint=f"{_HINT_GENERATE} Then set {KEYS} = ['<key>'].",
                id="mcfields.E001",
            )
        )
    else:
        errors.extend(_check_keys(getattr(settings, KEYS)))
    errors.extend(_check_max_size())
    return errors


def _check_keys(keys: Any) -> list[checks.CheckMessage]:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        return [
            checks.Error(
                f"{KEYS} must be a list of keys, not {type(keys).__name__}.",
                hint=f"Write {KEYS} = ['<key>'] (the first key seals, every key opens).",
                id="mcfields.E002",
            )
        ]
    if not keys:
        return [
            checks.Error(
                f"{KEYS} is empty: encrypted fields have no key to seal with.",
                hint=_HINT_GENERATE,
                id="mcfields.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    seen: dict[bytes, int] = {}
    for index, text in enumerate(keys):
        try:
            key = Key.from_string(text)
        except InvalidKeyError as exc:
            # The reason describes the shape (length, alphabet), never the key.
            errors.append(
                checks.Error(
                    f"{KEYS}[{index}] is not a valid key: {exc}.",
                    hint=f"Each key is 32 random bytes, base64 encoded. {_HINT_GENERATE}",
                    id="mcfields.E003",
                )
            )
            continue
        if key.key_id in seen:
            errors.append(
                checks.Error(
                    f"{KEYS}[{index}] duplicates {KEYS}[{seen[key.key_id]}] "
                    f"(key id {key.id_hex}).",
                    hint="List each key once.",
                    id="mcfields.E004",
                )
            )
        else:
            seen[key.key_id] = index
    return errors


def _check_max_size() -> list[checks.CheckMessage]:
    from ._guest import DEFAULT_MAX_TEXT_SIZE

    value = getattr(settings, MAX_SIZE, None)
    if value is None:
        return []
    valid = isinstance(value, int) and not isinstance(value, bool)
    if not valid or not 0 < value <= DEFAULT_MAX_TEXT_SIZE:
        return [
            checks.Error(
                f"{MAX_SIZE} must be an integer between 1 and {DEFAULT_MAX_TEXT_SIZE}.",
                id="mcfields.E005",
            )
        ]
    return []


def _names(items: Any) -> list[str]:
    """Field names in an index/constraint/ordering list ('-name' included)."""
    names = []
    for item in items or ():
        if isinstance(item, str):
            names.append(item.lstrip("-"))
        elif isinstance(item, (list, tuple)):
            names.extend(_names(item))
    return names


def check_field(field: Any) -> list[checks.CheckMessage]:
    """``mcfields.E1xx`` for one encrypted field."""
    errors: list[checks.CheckMessage] = []
    cls = type(field).__name__

    def error(msg: str, hint: str, id: str) -> None:
        errors.append(checks.Error(f"{cls} {msg}", hint=hint, obj=field, id=id))

    no_compare = "sealed values never compare equal, so the database cannot use them"
    if field.unique:
        error(f"cannot be unique: {no_compare}.", "Remove unique=True.", "mcfields.E101")
    if field.db_index:
        error(f"cannot be indexed: {no_compare}.", "Remove db_index=True.", "mcfields.E102")
    if field.primary_key:
        error(
            "cannot be a primary key: values are bound to the row's primary key.",
            "Use another field as the primary key.",
            "mcfields.E103",
        )
    if field.has_db_default():
        error(
            "cannot have a db_default: the database would store it unsealed.",
            "Use default= instead, which is sealed on save.",
            "mcfields.E104",
        )
    if field.context is not None and (not isinstance(field.context, str) or not field.context):
        error(
            "context must be a non-empty string.",
            "Pin the binding label with context='app_label.Model.field'.",
            "mcfields.E107",
        )
    model = getattr(field, "model", None)
    if model is None or model._meta.abstract:
        return errors
    meta = model._meta
    names = {field.name, field.attname}
    if names & set(_names(meta.ordering)):
        error(
            f"'{field.name}' cannot be used in {meta.object_name}.Meta.ordering: the "
            "database would order rows by ciphertext.",
            "Order by a plain field.",
            "mcfields.E105",
        )
    indexed = _names(meta.unique_together)
    for index in meta.indexes:
        indexed.extend(_names(getattr(index, "fields", ())))
    for constraint in meta.constraints:
        indexed.extend(_names(getattr(constraint, "fields", ())))
    if names & set(indexed):
        error(
            f"'{field.name}' cannot be part of an index, unique_together or constraint of "
            f"{meta.object_name}: {no_compare}.",
            "Remove it from Meta.indexes/constraints/unique_together.",
            "mcfields.E106",
        )
    pk = meta.pk
    if pk is not None and type(pk).__name__ == "CompositePrimaryKey":
        error(
            "is not supported on a model with a composite primary key: values are bound "
            "to a single primary key value.",
            "Give the model a single-column primary key.",
            "mcfields.E108",
        )
    return errors
