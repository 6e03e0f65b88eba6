"""System checks.

``mcfields.E0xx``: settings (registered by ``MCFieldsConfig.ready``).
``mcfields.E1xx``: options of an encrypted field (run by ``Field.check``).

Options that need the database to compare values (unique, indexes,
ordering) cannot work on sealed values: every seal uses a fresh random
nonce, so equal plaintexts never give equal column values.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import settings_problems


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``mcfields.E0xx``: the settings reader's own validation, as checks."""
    return [
        checks.Error(p.message, hint=p.hint or None, id=p.id) for p in settings_problems()
    ]


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
