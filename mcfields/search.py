"""Searchable encrypted fields: the blind-index column and its lookups.

``EncryptedEmailField(searchable=True)`` keeps, in a companion column that
mcfields adds to the model (``<name>_bidx``, a :class:`BlindIndexField`,
indexed, ``unique`` when the field is), a keyed PRF of the value: its
*blind index* (:mod:`mcfields.crypto.index`).  The index is computed inside
the guest from the same plaintext bytes that are sealed
(:mod:`mcfields.plaintext`), after an optional normalisation
(``normalize="casefold"``); the row's pk is not part of it.

* ``exact``/``in`` compute the index of the value asked for under every
  configured key and compare the companion column with them, so rows
  indexed under an old key are found until ``rotate_keys`` re-indexes
  them.  ``isnull`` tests the encrypted column itself.
* The companion is written by its own ``pre_save`` in every INSERT and
  UPDATE that writes the encrypted column; the write paths that bypass
  ``pre_save`` (raw saves, ``EncryptedManager.update()``/``bulk_update()``,
  the keyset walker of rotation and adoption) call :func:`index_of`.

What a blind index leaks, and when not to use one: docs/SECURITY.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import EmptyResultSet, FieldError, ValidationError
from django.db import models
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup

from . import conf
from .crypto import INDEX_TEXT_SIZE, ColumnIndex, column_info
from .saving import ForSave
from .sealed import Sealed

__all__ = [
    "CASE_INSENSITIVE", "INDEX_SUFFIX", "NORMALIZERS", "SEARCHABLE_CODECS", "BlindExact",
    "BlindIndexField", "SearchExact", "SearchIExact", "SearchIn", "column_index", "index_of",
    "indexes_of", "register_normalizer",
]

#: The companion column of field ``name`` is ``name + INDEX_SUFFIX``.
INDEX_SUFFIX = "_bidx"

#: Plaintext encodings (mcfields.plaintext) with one spelling per value, so
#: that equal values have equal indexes.  Not floats (0.0 and -0.0 are
#: equal), JSON (key order, spacing) or bytes.
SEARCHABLE_CODECS = frozenset(
    {"text", "integer", "decimal", "date", "datetime", "time", "uuid", "boolean"}
)

#: Normalisations applied to text before it is indexed (and to the text
#: looked up): the stored value is not changed.  The name is part of the
#: index key derivation, so changing it makes every index stale.
NORMALIZERS: dict[str, Callable[[str], str]] = {
    "casefold": str.casefold,
    "lower": str.lower,
    "strip-casefold": lambda text: text.strip().casefold(),
}


#: Normalisers under which ``exact`` is a case-insensitive match, so that
#: ``iexact`` (what the admin's ``search_fields = ["=email"]`` asks for) can
#: be answered by the blind index.
CASE_INSENSITIVE: set[str] = {"casefold", "lower", "strip-casefold"}


def register_normalizer(name: str, normalize: Callable[[str], str], *,
                        case_insensitive: bool = False) -> None:
    """Make ``normalize=name`` available to searchable text fields.

    The function must be deterministic across processes and releases: an
    index written by one version must be found by the next.
    ``case_insensitive=True`` says that it maps every case variant of a text
    to one value, so that ``iexact`` lookups may use the index.
    """
    if not name or not isinstance(name, str):
        raise ValueError("a normaliser needs a non-empty name")
    NORMALIZERS[name] = normalize
    if case_insensitive:
        CASE_INSENSITIVE.add(name)
    else:
        CASE_INSENSITIVE.discard(name)


# -- computing indexes -------------------------------------------------------------------


def column_index(field: Any) -> ColumnIndex:
    """The blind-index keys of ``field``'s column (cached by the keyring)."""
    return conf.get_keyring().column_index(
        column_info(field.binding_label, field.normalize or "")
    )


def _index_bytes(field: Any, value: Any) -> bytes:
    """The bytes that are indexed for ``value``: the plaintext encoding of
    the (normalised) value."""
    if field.normalize:
        value = NORMALIZERS[field.normalize](str(field.base_field.to_python(value)))
    return field._to_bytes(value)


def index_of(field: Any, value: Any) -> str | None:
    """The stored index of ``value`` (None for None) under the first key."""
    if value is None:
        return None
    try:
        return column_index(field).index(_index_bytes(field, value))
    except BaseException:
        value = None  # error reports print every frame's locals
        raise


def indexes_of(field: Any, value: Any) -> list[str]:
    """The indexes a lookup of ``value`` matches: one per configured key."""
    try:
        return column_index(field).indexes(_index_bytes(field, value))
    except BaseException:
        value = None
        raise


def index_for_instance(field: Any, instance: models.Model, stored: Any) -> Any:
    """The index to write for ``instance``'s current value of ``field``.

    ``stored`` is the index the instance holds (loaded with the row, or
    written by the last save).  A loaded value that was not replaced keeps
    it when it is current; an index under an old key, or a missing one, is
    recomputed (opening the value, which saving re-seals anyway).
    """
    data = instance.__dict__
    if field.attname not in data:
        return stored  # deferred: the column is not written either
    value = data[field.attname]
    if value is None:
        return None
    try:
        if type(value) is Sealed:
            loaded_here = (value.field is field and value.is_bound
                           and value.row_pk == getattr(instance, field.pk_attname))
            if (not value.is_open and loaded_here
                    and column_index(field).is_current(stored)):
                return stored  # this row's untouched value: nothing to open
            return index_of(field, value.read(field, instance))
        if type(value) is not ForSave and not hasattr(value, "resolve_expression"):
            return index_of(field, value)
        return stored
    except BaseException:
        value = data = None  # not in the frames of an error report
        raise


# -- the companion column ----------------------------------------------------------------


class BlindIndexField(models.CharField):
    """The blind index of the searchable encrypted field ``of``.

    Added by the encrypted field itself; not editable, not serialised
    (``dumpdata`` writes the plaintext of the encrypted field, and loading it
    computes the index under the keys of the database it is loaded into).
    """

    description = "Blind index of a searchable encrypted field"

    def __init__(self, *args: Any, of: str, **kwargs: Any) -> None:
        self.of = of
        kwargs["max_length"] = INDEX_TEXT_SIZE
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("serialize", False)
        if not kwargs.get("unique"):
            kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _, args, kwargs = super().deconstruct()
        for option, default in (("max_length", INDEX_TEXT_SIZE), ("null", True), ("blank", True),
                                ("editable", False), ("serialize", False),
                                ("db_index", not self.unique)):
            if kwargs.get(option, default) == default:
                kwargs.pop(option, None)
        kwargs["of"] = self.of
        return name, "mcfields.fields.BlindIndexField", args, kwargs

    def db_type(self, connection: Any) -> str | None:
        # Fixed-length: every index is 40 characters.  On PostgreSQL this
        # also spares the varchar_pattern_ops ("..._like") index Django adds
        # next to an indexed varchar: a blind index is compared for
        # equality only.
        if connection.vendor == "postgresql":
            return f"char({INDEX_TEXT_SIZE})"
        return super().db_type(connection)

    @property
    def owner(self) -> Any:
        return self.model._meta.get_field(self.of)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        owner = self.owner
        stored = model_instance.__dict__.get(self.attname)
        if not getattr(owner, "searchable", False):
            return stored
        value = index_for_instance(owner, model_instance, stored)
        model_instance.__dict__[self.attname] = value
        return value


# -- lookups -----------------------------------------------------------------------------


class _SearchLookup(Lookup):
    """A lookup answered by the companion column of a searchable field."""

    prepare_rhs = False
    can_use_none_as_rhs = False

    def get_prep_lookup(self) -> Any:
        field = self.lhs.output_field
        if hasattr(self.rhs, "resolve_expression"):
            raise FieldError(
                f"{field.model._meta.label}.{field.name} is encrypted: '{self.lookup_name}' "
                "takes plain values, not an SQL expression or subquery (the database holds "
                "no plaintext to compare with)."
            )
        return self.rhs

    def _indexes(self) -> list[str]:
        raise NotImplementedError

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        field = self.lhs.output_field
        index_field = field.index_field
        if not isinstance(self.lhs, Col) or index_field is None:
            raise FieldError(
                f"{field.model._meta.label}.{field.name}: '{self.lookup_name}' works on the "
                "field itself (or across a relation), not on an expression."
            )
        indexes = self._indexes()
        if not indexes:
            raise EmptyResultSet
        value_sql, value_params = compiler.compile(self.lhs)
        column, params = compiler.compile(Col(self.lhs.alias, index_field))
        marks = ", ".join(["%s"] * len(indexes))
        # IS NOT NULL on both columns: a row whose index is missing (not
        # back-filled yet) is "not equal" rather than unknown, so exclude()
        # keeps it; and a NULL value never matches, whatever index a write
        # that bypassed mcfields left next to it.
        return (f"({value_sql} IS NOT NULL AND {column} IS NOT NULL AND {column} IN ({marks}))",
                [*value_params, *params, *params, *indexes])


class SearchExact(_SearchLookup):
    lookup_name = "exact"

    def _indexes(self) -> list[str]:
        return indexes_of(self.lhs.output_field, self.rhs)


class SearchIExact(SearchExact):
    """``iexact``: answered by the index only when the field's normaliser
    folds case (``normalize="casefold"``); refused otherwise, since the
    index of one spelling does not find the others."""

    lookup_name = "iexact"

    def get_prep_lookup(self) -> Any:
        field = self.lhs.output_field
        if field.normalize not in CASE_INSENSITIVE:
            raise FieldError(
                f"{field.model._meta.label}.{field.name}: 'iexact' needs a case-folding "
                "normaliser (normalize=\"casefold\"); this field's blind index finds "
                "exact values only. Use 'exact'."
            )
        return super().get_prep_lookup()


class BlindExact(SearchExact):
    """``exact`` for free-text search terms (the admin's ``=field`` search):
    a term that is not a value of the field's type (``"abc"`` for a date)
    matches nothing instead of raising."""

    lookup_name = "blind_exact"

    def _indexes(self) -> list[str]:
        try:
            return super()._indexes()
        except (TypeError, ValueError, ValidationError, ArithmeticError):
            return []


class SearchIn(_SearchLookup):
    lookup_name = "in"

    def get_prep_lookup(self) -> Any:
        rhs = super().get_prep_lookup()
        if isinstance(rhs, (str, bytes)) or not isinstance(rhs, Iterable):
            raise TypeError(f"'in' needs an iterable of values, not {type(rhs).__name__}")
        # None never matches in SQL's IN (as in Django's own lookup).
        return [value for value in rhs if value is not None]

    def _indexes(self) -> list[str]:
        field = self.lhs.output_field
        found: dict[str, None] = {}
        for value in self.rhs:
            found.update(dict.fromkeys(indexes_of(field, value)))
        return list(found)
