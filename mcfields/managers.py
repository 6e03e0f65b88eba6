"""``EncryptedManager`` / ``EncryptedQuerySet``: bulk writes that bind each row.

Django's ``update()``, ``bulk_update()`` and ``bulk_create()`` build one SQL
statement for many rows, so a value can only be sealed once, for no row in
particular.  Plain querysets therefore refuse to write encrypted fields that
way (see ``EncryptedFieldMixin.get_db_prep_value``).  This queryset seals
every value for its own row and writes them with one prepared
``UPDATE ... WHERE pk = %s`` run through ``executemany``, inside one
transaction with the rest of the operation:

* ``update(field=value)``: reads the matching pks (locking the rows where
  the database supports ``SELECT ... FOR UPDATE``), updates the plain
  fields with Django's ``update()`` and writes one sealed value per row.
* ``bulk_update(objs, fields)``: plain fields through Django, encrypted ones
  sealed per object (untouched loaded values are written back as they are).
* ``bulk_create(objs)``: objects whose pk the database assigns get it from
  the sequence first on PostgreSQL (one query for the batch) and are sealed
  for it in the INSERT; elsewhere they are inserted with a placeholder and
  bound right after, in the same transaction.

It also refuses ``order_by()`` on an encrypted field (it would order by
ciphertext).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import NotSupportedError, connections, models
from django.db.models.expressions import F, OrderBy

from . import preallocate
from .compat import check_update_allowed, mark_for_write, pk_value_on_save
from .exceptions import forget_locals_on_error
from .fields import refuse_upsert
from .lookups import resolve_encrypted_path
from .saving import (
    insert_and_bind,
    is_encrypted,
    own_transaction,
    seal_batches,
    table_pks,
    take_write_lock,
    write_sealed,
)
from .sealed import Sealed
from .search import index_of

__all__ = ["EncryptedManager", "EncryptedQuerySet"]

# Largest ``pk IN (...)`` list per statement (SQLite's historic limit is 999).
_IN_CHUNK = 900


def _plaintext(field: Any, value: Any) -> Any:
    """A value to seal per row: plaintext, not a Sealed we cannot place."""
    if type(value) is Sealed:
        if not value.is_bound and not value.is_open:
            raise TypeError(
                f"{field.model._meta.label}.{field.name}: a Sealed value from values() does "
                "not know its row; open it with .open(pk) and pass the plaintext"
            )
        return value.reveal(field)
    if hasattr(value, "resolve_expression"):
        field.to_save(value, None)  # raises the expression error
    return value


def _tables(fields: Sequence[Any]) -> list[type[models.Model]]:
    """The tables (models) holding ``fields``, each once, in order."""
    return list(dict.fromkeys(f.model for f in fields))


def _refuse_pk_change(model: type[models.Model], kwargs: dict[str, Any]) -> None:
    """``update()`` may not change a primary key or parent link of a row
    with encrypted columns: every value of the row is bound to its pk, so
    the row would keep values that no longer open (and a value written in
    the same call would go to the old pk)."""
    meta = model._meta
    chain = [meta.concrete_model or model, *meta.get_parent_list()]
    if not any(is_encrypted(f) for m in chain for f in m._meta.local_concrete_fields):
        return
    keys = {"pk"}
    for m in chain:
        keys |= {m._meta.pk.name, m._meta.pk.attname}
        for link in m._meta.parents.values():
            if link is not None:
                keys |= {link.name, link.attname}
    changed = sorted(keys & set(kwargs))
    if changed:
        raise FieldError(
            f"{meta.label}: update() cannot change the primary key ({', '.join(changed)}) of "
            "rows with encrypted fields: their values are bound to the primary key and would "
            "no longer open. Copy each row instead (obj.pk = None; obj.save()) and delete "
            "the old one."
        )


class presealed:  # noqa: N801 - used like a function, as a context manager
    """Seal the plaintext values of ``objs`` (whose pks are known) in
    batches before Django's ``bulk_create`` builds its INSERT.

    Each value is sealed for its row as ``pre_save`` would seal it (size cap,
    plaintext encoding, binding), but many per guest call; the instance holds
    the ``ForSave`` during the INSERT (``pre_save`` passes it through), and
    afterwards the written envelope behind its plaintext, as after a save.
    If the INSERT fails, the plaintexts are put back.  Values that are not
    plain (a loaded ``Sealed``, an expression) are left to ``pre_save``.
    """

    def __init__(self, fields: Sequence[Any], objs: Sequence[models.Model]) -> None:
        self.fields = fields
        self.objs = objs
        # (field, the rows' pks, their plaintexts, their ForSave or None)
        self.done: list[tuple[Any, list[Any], list[Any], list[Any]]] = []

    def __repr__(self) -> str:
        return f"<mcfields presealed, {len(self.done)} columns>"

    @forget_locals_on_error
    def __enter__(self) -> None:
        objs = self.objs
        pks = [obj.pk for obj in objs]  # bulk_create: one table, one pk per row
        data = [obj.__dict__ for obj in objs]
        done: list[tuple[Any, list[Any], list[Any], list[Any]]] = []
        indexes: list[tuple[str, list[Any], list[Any]]] = []
        for field, column in seal_batches(self.fields, pks, data).items():
            values = [row.get(field.attname) for row in data]
            if field.index_field is not None:
                # The companion's pre_save cannot see a ForSave's plaintext.
                indexes.append((field.index_field.attname, [
                    None if for_save is None else index_of(field, value)
                    for value, for_save in zip(values, column, strict=True)
                ], column))
            done.append((field, pks, values, column))
        # Everything computed: the instances change only now, all at once.
        for index_attname, found, column in indexes:
            for row, index, for_save in zip(data, found, column, strict=True):
                if for_save is not None:
                    row[index_attname] = index
        for field, _, _, column in done:
            attname = field.attname
            for row, for_save in zip(data, column, strict=True):
                if for_save is not None:
                    row[attname] = for_save
        self.done = done

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        objs = self.objs
        for field, pks, values, column in self.done:
            if exc_type is None:
                remember = field.remember
                for obj, pk, value, for_save in zip(objs, pks, values, column, strict=True):
                    if for_save is not None:
                        remember(obj, for_save, pk, value)
            else:
                attname = field.attname
                for obj, value, for_save in zip(objs, values, column, strict=True):
                    if for_save is not None:
                        obj.__dict__[attname] = value
        self.done = []


class EncryptedQuerySet(models.QuerySet):
    """A QuerySet whose bulk writes seal each encrypted value for its row."""

    def _encrypted(self, name: str) -> Any | None:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        return field if is_encrypted(field) else None

    # -- update() --------------------------------------------------------------------

    # below=True: comprehensions (their own frames before Python 3.12) hold
    # plaintexts too.
    @forget_locals_on_error(below=True)
    def update(self, **kwargs: Any) -> int:
        _refuse_pk_change(self.model, kwargs)
        sealed: dict[Any, Any] = {}
        plain: dict[str, Any] = {}
        for name, value in kwargs.items():
            field = self._encrypted(name)
            if field is None or value is None:
                plain[name] = value  # None is NULL: nothing to seal
            else:
                sealed[field] = _plaintext(field, value)
            if field is not None and field.index_field is not None:
                # The blind index does not depend on the row: one value for all.
                plain[field.index_field.name] = (
                    None if value is None else index_of(field, sealed[field]))
        if not sealed:
            return super().update(**plain)
        check_update_allowed(self)
        using = mark_for_write(self)
        connection = connections[using]
        fields = list(sealed)
        tables = _tables(fields)
        base = self.model._base_manager.using(using)
        with own_transaction(using):
            take_write_lock(using, self.model)
            # The rows the filter matches, read by pk only: the filter may
            # join nullable relations or group by an aggregate, where
            # SELECT ... FOR UPDATE is refused.
            pks = list(self.using(using).order_by().values_list("pk", flat=True).distinct())
            rows: list[tuple[dict[type, Any], list[Any]]] = []
            for start in range(0, len(pks), _IN_CHUNK):
                chunk = base.filter(pk__in=pks[start : start + _IN_CHUNK]).order_by()
                if connection.features.has_select_for_update:
                    # Hold the rows until their values are written; rows
                    # deleted meanwhile drop out here.
                    chunk = chunk.select_for_update()
                attnames = [m._meta.pk.attname for m in tables]
                for found in chunk.values_list("pk", *attnames):
                    table_pk = dict(zip(tables, found[1:], strict=True))
                    rows.append((table_pk, found[0]))
            locked = [pk for _, pk in rows]
            if plain:
                for start in range(0, len(locked), _IN_CHUNK):
                    base.filter(pk__in=locked[start : start + _IN_CHUNK]).update(**plain)
            write_sealed(
                using,
                fields,
                [
                    (table_pk, [f.to_save(v, table_pk[f.model]) for f, v in sealed.items()])
                    for table_pk, _ in rows
                ],
            )
        return len(rows)

    update.alters_data = True  # type: ignore[attr-defined]

    # -- bulk_update() ------------------------------------------------------------------

    @forget_locals_on_error(below=True)
    def bulk_update(
        self, objs: Iterable[models.Model], fields: Sequence[str], batch_size: int | None = None
    ) -> int:
        encrypted = [f for f in (self._encrypted(n) for n in fields) if f is not None]
        if not encrypted:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        if batch_size is not None and batch_size <= 0:
            raise ValueError("Batch size must be a positive integer.")
        objs = tuple(objs)
        if not objs:
            return 0
        rows = []
        for obj in objs:
            table_pk = table_pks(obj, encrypted)
            if obj.pk is None or None in table_pk.values():
                raise ValueError("All bulk_update() objects must have a primary key set.")
            rows.append((obj, table_pk))
        plain = [n for n in fields if self._encrypted(n) is None]
        for field in encrypted:
            index_field = field.index_field
            if index_field is not None:
                # Django's bulk_update() reads attributes, not pre_save().
                for obj, _ in rows:
                    index_field.pre_save(obj, False)
                plain.append(index_field.name)
        using = mark_for_write(self)
        with own_transaction(using):
            matched = (
                super().bulk_update(objs, plain, batch_size=batch_size) if plain else None
            )
            # pre_save seals changed values for each table's own pk and keeps
            # untouched ones.
            written = write_sealed(
                using,
                encrypted,
                [(table_pk, [f.pre_save(obj, False) for f in encrypted]) for obj, table_pk in rows],
            )
        return matched if matched is not None else written

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    # -- bulk_create() ----------------------------------------------------------------------

    @forget_locals_on_error(below=True)
    def bulk_create(
        self,
        objs: Iterable[models.Model],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Sequence[str] | None = None,
        unique_fields: Sequence[str] | None = None,
    ) -> list[models.Model]:
        meta = self.model._meta
        fields = [f for f in meta.concrete_fields if is_encrypted(f)]
        options = {
            "batch_size": batch_size,
            "ignore_conflicts": ignore_conflicts,
            "update_conflicts": update_conflicts,
            "update_fields": update_fields,
            "unique_fields": unique_fields,
        }
        if not fields:
            return super().bulk_create(objs, **options)
        objs = list(objs)
        if len({id(obj) for obj in objs}) != len(objs):
            # One instance can hold one pk: the rows inserted for its other
            # occurrences would never be bound.
            raise ValueError(
                f"{meta.label}: bulk_create() was given the same instance more than once; "
                "pass each object once."
            )
        if update_conflicts:
            refuse_upsert(self.model, update_fields, unique_fields)
        unbound = []
        for obj in objs:
            if obj.pk is None:
                pk = pk_value_on_save(meta.pk, obj)
                if pk is None:
                    unbound.append(obj)
                else:
                    obj.pk = pk
        if not unbound:
            # Every pk known: the values are sealed in batches (one guest
            # call for many), and pre_save passes them through.
            with presealed(fields, objs):
                return super().bulk_create(objs, **options)
        if ignore_conflicts or update_conflicts:
            raise ValueError(
                "bulk_create(ignore_conflicts/update_conflicts) cannot bind encrypted values "
                "to database-assigned primary keys: the database does not say which rows it "
                "inserted. Set the primary keys before bulk_create()."
            )
        using = mark_for_write(self)
        connection = connections[using]
        if preallocate.applies(connection, meta):
            # pks reserved first (PostgreSQL's sequence, SQLite's
            # sqlite_sequence), then one INSERT per batch that seals each
            # value for its row (no binding UPDATE).
            def insert() -> list[models.Model]:
                with presealed(fields, objs):  # the pks are reserved by now
                    return super(EncryptedQuerySet, self).bulk_create(objs, **options)

            created = preallocate.bulk_insert(insert, connection, meta, unbound)
            if created is not preallocate.FALLBACK:
                return created
        if not connection.features.can_return_rows_from_bulk_insert:
            raise NotSupportedError(
                "This database does not return the primary keys of bulk-inserted rows, so "
                "mcfields cannot bind their encrypted values; save() each instance instead."
            )
        values = [{f.attname: obj.__dict__.get(f.attname) for f in fields} for obj in unbound]
        try:
            with own_transaction(using):
                created = insert_and_bind(
                    lambda: super(EncryptedQuerySet, self).bulk_create(objs, **options),
                    using, meta, fields, unbound, values,
                )
        except BaseException:
            # Rolled back: the objects must not keep pks of rows that are gone.
            for obj in unbound:
                obj.pk = None
                obj._state.adding = True
            raise
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    # -- ordering ----------------------------------------------------------------------------

    def order_by(self, *field_names: Any) -> EncryptedQuerySet:
        for item in field_names:
            name = None
            if isinstance(item, str):
                name = item.lstrip("-")
            elif isinstance(item, OrderBy) and isinstance(item.expression, F):
                name = item.expression.name
            elif isinstance(item, F):
                name = item.name
            if name and resolve_encrypted_path(self.model, name) is not None:
                raise FieldError(
                    f"Cannot order by '{name}': it is an encrypted field, and the database "
                    "would order the rows by ciphertext. Order by a plain field, or sort "
                    "the opened values in Python."
                )
        return super().order_by(*field_names)


class EncryptedManager(models.Manager.from_queryset(EncryptedQuerySet)):  # type: ignore[misc]
    """Manager for models with encrypted fields: bulk writes bind each row.

    The write methods are spelled out rather than generated by
    ``from_queryset()``: Django's generated method keeps the call's
    arguments (plaintexts) in its frame, which error reports print; these
    forget them when the write fails.
    """

    @forget_locals_on_error
    def update(self, **kwargs: Any) -> int:
        return self.get_queryset().update(**kwargs)

    @forget_locals_on_error
    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        return self.get_queryset().bulk_update(*args, **kwargs)

    @forget_locals_on_error
    def bulk_create(self, *args: Any, **kwargs: Any) -> list[models.Model]:
        return self.get_queryset().bulk_create(*args, **kwargs)

    @forget_locals_on_error(below=True)
    def create(self, **kwargs: Any) -> models.Model:
        # below: Django's QuerySet.create() frame holds the keyword arguments.
        return self.get_queryset().create(**kwargs)
