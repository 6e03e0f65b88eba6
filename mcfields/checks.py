"""System checks.

``mcfields.E0xx``: settings (registered by ``MCFieldsConfig.ready``).  Key
problems (E001-E004) are errors under ``manage.py check`` (mcfields' own
``check`` command marks that run as strict) and warnings (W001-W004) under
every other command: ``makemigrations``, ``collectstatic`` or ``migrate``
read and write no encrypted value, so a build pipeline needs no production
secret.  Whatever seals or opens a value still fails with the same message
(``conf.get_keyring`` raises ImproperlyConfigured), and ``migrate`` refuses,
before applying anything, a plan with mcfields' column operations
(``check_migrate_plan``).
``mcfields.E1xx``: options of an encrypted field (run by ``Field.check``),
and E113, the binding labels of all models together (registered by
``MCFieldsConfig.ready``).

Options that need the database to compare values (unique, indexes,
ordering) cannot work on sealed values: every seal uses a fresh random
nonce, so equal plaintexts never give equal column values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured

from ._guest import MAX_AD_SIZE
from .binding import pk_value_type
from .conf import KEYS_SETTING, get_keyring, settings_problems
from .crypto import HEADER_SIZE, binding
from .saving import is_encrypted

#: Longest binding label (``context=`` or the derived one), in UTF-8 bytes
#: (mcfields.E110).  A label names a column; 1 KiB is far beyond any real
#: name and leaves almost all of the guest's associated-data limit
#: (MAX_AD_SIZE, 64 KiB) to the primary key.
MAX_LABEL_SIZE = 1024
#: Associated data besides the label and pk bytes: the envelope header
#: (version byte + key id) and binding()'s two length prefixes.
_AD_OVERHEAD = HEADER_SIZE + len(binding("", ""))
#: Worst case UTF-8 bytes per character of a CharField pk (max_length counts
#: characters).
_UTF8_MAX_BYTES = 4



def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``mcfields.E0xx``: the settings reader's own validation, as checks."""
    return [
        checks.Error(p.message, hint=p.hint or None, id=p.id) for p in settings_problems()
    ]


# Set while mcfields' ``check`` command runs (see strict_key_checks).
_STRICT: ContextVar[bool] = ContextVar("mcfields_strict_key_checks", default=False)
#: The problems that only matter to commands that seal or open values.
KEY_PROBLEMS = frozenset({"mcfields.E001", "mcfields.E002", "mcfields.E003", "mcfields.E004"})


@contextmanager
def strict_key_checks() -> Iterator[None]:
    """Report key problems as errors inside the block (``manage.py check``)."""
    token = _STRICT.set(True)
    try:
        yield
    finally:
        _STRICT.reset(token)


def check_settings_for_command(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The settings check registered with Django (see the module docstring).

    Every problem is an error under ``manage.py check``.  Under other
    commands a key problem is a warning (``mcfields.W001``-``W004``, same
    message): Django's system checks run before ``makemigrations``,
    ``migrate`` or ``collectstatic``, which never touch an encrypted value,
    and an error there would make a CI job or an image build need the
    production keys.  ``MCFIELDS_MAX_VALUE_SIZE`` (E005) stays an error: it
    is no secret.
    """
    errors = check_settings(app_configs, **kwargs)
    if _STRICT.get():
        return errors
    relaxed: list[checks.CheckMessage] = []
    for error in errors:
        if error.id not in KEY_PROBLEMS:
            relaxed.append(error)
            continue
        relaxed.append(checks.Warning(
            f"{error.msg} Commands that read or write encrypted values will fail; "
            "`manage.py check` reports this as an error.",
            hint=error.hint, id=error.id.replace(".E", ".W", 1),
        ))
    return relaxed


def check_migrate_plan(plan: Iterable[tuple[Any, bool]] | None) -> None:
    """Refuse a ``migrate`` plan with mcfields' column operations when the keys
    are missing or bad, before anything is applied.

    ``EncryptColumn``/``DecryptColumn`` seal or open every row; without this
    the plan would fail halfway, after the migrations before it.  Plans
    without them run without keys.  (A ``RunPython`` that saves encrypted
    values cannot be seen here: it fails on its first seal with the same
    message.)
    """
    from .operations import DecryptColumn, EncryptColumn

    needing = [
        f"{migration.app_label}.{migration.name}"
        for migration, _backwards in plan or ()
        if any(isinstance(op, (EncryptColumn, DecryptColumn)) for op in migration.operations)
    ]
    if not needing:
        return
    try:
        get_keyring()
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            f"Migration {', '.join(needing)} seals or opens encrypted values "
            f"(mcfields EncryptColumn/DecryptColumn) and needs {KEYS_SETTING}; nothing "
            f"was migrated. {exc}"
        ) from None


def _names(items: Any) -> list[str]:
    """Field names in an index/constraint/ordering list ('-name' included)."""
    names = []
    for item in items or ():
        if isinstance(item, str):
            names.append(item.lstrip("-"))
        elif isinstance(item, (list, tuple)):
            names.extend(_names(item))
    return names


def _follow(pk: Any) -> list[Any]:
    """``pk`` and the fields it refers to, down to the one holding the values.

    A multi-table child's pk is a OneToOneField to its parent (and a pk may be
    a OneToOneField/ForeignKey of its own): its values, type and collation are
    those of ``target_field``.  Stops at a relation that does not resolve yet
    (Django reports that itself, fields.E300).
    """
    chain_ = [pk]
    while pk.is_relation and len(chain_) < 32:  # 32: a guard against a cycle
        try:
            pk = pk.target_field
        except (AttributeError, FieldDoesNotExist, ValueError):
            break
        if pk is None:
            break
        chain_.append(pk)
    return chain_


def _pk_name(pk: Any) -> str:
    return f"{pk.model._meta.label}.{pk.name}"


def _unbindable(pk: Any) -> bool:
    """Whether saving would refuse ``pk``'s values (binding.PK_TYPES is the
    one list of pk types whose values bind)."""
    return pk_value_type(pk) is None


def _check_row_binding(field: Any, model: Any, error: Any) -> None:
    """E109-E112: what the row's pk and the label mean for the binding."""
    meta = model._meta
    pk_chain = _follow(meta.pk)
    # E109: a row found by a collated pk may be another spelling of the pk the
    # value is bound to.  Parents are checked too: a child row is saved into
    # each parent table by that parent's pk.
    collated = chain(pk_chain, *(_follow(p._meta.pk) for p in meta.get_parent_list()))
    for pk in collated:
        collation = getattr(pk, "db_collation", None)
        if collation:
            error(
                f"is bound to the primary key {_pk_name(pk)}, which has "
                f"db_collation={collation!r}. If that collation compares case- or "
                "accent-insensitively, saving a row whose pk differs only in case (pk='ALICE' "
                "for a row stored as 'alice') overwrites that row with values bound to "
                "'ALICE', which then never open: silent data loss.",
                f"Remove db_collation from {_pk_name(pk)}: use an AutoField or UUIDField "
                "primary key and keep the collated value in a separate unique field.",
                "mcfields.E109",
            )
            break
    if field.context is not None and not isinstance(field.context, str):
        return  # E107 said so; there is no label to measure
    label: str = field.binding_label
    label_size = len(label.encode("utf-8"))
    if label_size > MAX_LABEL_SIZE:
        error(
            f"has a binding label of {label_size} bytes (UTF-8), over the limit of "
            f"{MAX_LABEL_SIZE} bytes.",
            "Pin a shorter label with context='app_label.Model.field'.",
            "mcfields.E110",
        )
    target = pk_chain[-1]
    if _unbindable(target):
        error(
            f"cannot be bound to its row: the primary key {_pk_name(target)} is a "
            f"{type(target).__name__} ({target.get_internal_type()}), and mcfields binds values "
            "only to integer, string and UUID primary keys (binding.PK_TYPES). Every "
            "save() would raise TypeError.",
            f"Give {meta.object_name} an integer (AutoField, BigAutoField), CharField or "
            "UUIDField primary key.",
            "mcfields.E112",
        )
        return
    max_length = getattr(target, "max_length", None)
    if isinstance(max_length, int) and pk_value_type(target) is str:
        ad_size = _AD_OVERHEAD + label_size + _UTF8_MAX_BYTES * max_length
        if ad_size > MAX_AD_SIZE:
            fits = max(0, (MAX_AD_SIZE - _AD_OVERHEAD - label_size) // _UTF8_MAX_BYTES)
            error(
                f"is bound to the primary key {_pk_name(target)} (max_length={max_length}): "
                f"with up to {_UTF8_MAX_BYTES} UTF-8 bytes per character and the "
                f"{label_size}-byte binding label, the associated data can reach "
                f"{ad_size} bytes, over the limit of {MAX_AD_SIZE} bytes; saving a row "
                "with a long pk would fail.",
                f"Lower max_length of {_pk_name(target)} to at most {fits}.",
                "mcfields.E111",
            )


def _check_base_field(field: Any) -> list[checks.CheckMessage]:
    """``mcfields.E114``/``E115``: what ``EncryptedField(base_field)`` can encrypt."""
    base = getattr(field, "base_field", None)
    if base is None:
        return []
    kind = type(base).__name__
    found: list[checks.CheckMessage] = []
    if base.is_relation or not base.concrete or getattr(base, "_mcfields_encrypted", False):
        found.append(checks.Error(
            f"{type(field).__name__} cannot encrypt a {kind}: the base field must be a "
            "concrete, non-relational field that is not encrypted itself.",
            hint="Encrypt a plain field type (CharField, IntegerField, DateField, JSONField...).",
            obj=field, id="mcfields.E115",
        ))
    elif field.plaintext_codec is None:
        found.append(checks.Error(
            f"{type(field).__name__} cannot encrypt a {kind}: no plaintext encoding is "
            "registered for it.",
            hint="Use a supported base field, or register an encoding with "
                 "mcfields.plaintext.register(<field class>, <codec>).",
            obj=field, id="mcfields.E114",
        ))
    elif base.primary_key or base.unique or base.has_db_default():
        # (db_index is not refused here: SlugField sets it by default, and
        # the base field's own column is never created.)
        found.append(checks.Error(
            f"the base field of {type(field).__name__} sets primary_key, unique or "
            "db_default, which an encrypted column cannot honour.",
            hint="Give the base field only its type's options (max_length, decimal_places...).",
            obj=field, id="mcfields.E115",
        ))
    return found


def _check_search_options(field: Any) -> list[checks.CheckMessage]:
    """``mcfields.E116``/``E117``: ``searchable`` and ``normalize``."""
    from .search import NORMALIZERS, SEARCHABLE_CODECS

    errors = []
    cls = type(field).__name__
    codec = getattr(field.plaintext_codec, "name", None)
    if field.searchable and codec not in SEARCHABLE_CODECS:
        errors.append(checks.Error(
            f"{cls} cannot be searchable: {type(field.base_field).__name__} values have no "
            "single spelling to index (equal values could get different blind indexes).",
            hint="Searchable fields: text, char, email, URL, integer, decimal, date, "
                 "datetime, time, UUID and boolean types.",
            obj=field, id="mcfields.E116",
        ))
    if field.normalize is not None:
        problem = None
        if not field.searchable:
            problem = "normalize only applies to a searchable field"
        elif field.normalize not in NORMALIZERS:
            problem = (f"unknown normalize={field.normalize!r} (known: "
                       f"{', '.join(sorted(NORMALIZERS))})")
        elif codec != "text":
            problem = "normalize applies to text fields only"
        if problem is not None:
            errors.append(checks.Error(
                f"{cls}: {problem}.",
                hint="Use searchable=True with a normaliser registered with "
                     "mcfields.search.register_normalizer(), or remove normalize=.",
                obj=field, id="mcfields.E117",
            ))
    return errors


def check_field(field: Any) -> list[checks.CheckMessage]:
    """``mcfields.E1xx`` for one encrypted field."""
    errors: list[checks.CheckMessage] = []
    cls = type(field).__name__

    def error(msg: str, hint: str, id: str) -> None:
        errors.append(checks.Error(f"{cls} {msg}", hint=hint, obj=field, id=id))

    no_compare = "sealed values never compare equal, so the database cannot use them"
    if field.unique or (field.search_unique and not field.searchable):
        error(f"cannot be unique unless it is searchable: {no_compare}.",
              "Add searchable=True (uniqueness through the blind index), or remove unique=True.",
              "mcfields.E101")
    errors.extend(_check_search_options(field))
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
    errors.extend(_check_base_field(field))
    model = getattr(field, "model", None)
    if model is None or model._meta.abstract:
        # Concrete children check their own copy of the field (and its label).
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
    elif pk is not None:
        _check_row_binding(field, model, error)
    return errors


def _field_name(field: Any) -> str:
    return f"{field.model._meta.label}.{field.name}"


def check_binding_labels(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``mcfields.E113``: no two encrypted columns share a binding label.

    The label is all that tells columns apart in the associated data, so a
    ciphertext copied between two columns with one label (and rows with the
    same pk) opens.  A column is a (db_table, column) pair: a multi-table
    child lists its parents' fields (the same field objects), a proxy lists
    its concrete model's, and an unmanaged model over the same table with the
    same label reads the same column, which is no collision.  With
    ``app_configs`` (``manage.py check app``) only those apps' models count.
    """
    if app_configs is None:
        models = apps.get_models()
    else:
        models = chain.from_iterable(config.get_models() for config in app_configs)
    # label -> {(db_table, column): first field seen for it}, in model order.
    columns: dict[str, dict[tuple[str, str], Any]] = {}
    for model in models:
        for field in model._meta.concrete_fields:
            if not is_encrypted(field) or not isinstance(field.context, str | None):
                continue  # not ours, or E107
            column = (field.model._meta.db_table, field.column)
            columns.setdefault(field.binding_label, {}).setdefault(column, field)
    errors: list[checks.CheckMessage] = []
    for label, by_column in columns.items():
        first, *others = by_column.values()
        for other in others:
            errors.append(
                checks.Error(
                    f"{_field_name(other)} and {_field_name(first)} have the same binding "
                    f"label {label!r}: a value copied from one column to the other (in a row "
                    "with the same pk) would open.",
                    hint=(
                        "Give one of them a distinct context= (e.g. "
                        f"context='{label}.2'), the one that holds no data yet: values "
                        "already stored open only under the label they were sealed with."
                    ),
                    obj=other,
                    id="mcfields.E113",
                )
            )
    return errors
