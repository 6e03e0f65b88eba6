"""Saving: how sealed values reach the database, bound to their row.

* ``ForSave`` carries a column value that mcfields itself produced for one
  row.  ``pre_save`` returns one, and the field's ``get_db_prep_value``
  accepts nothing else (except None), so a value that was not sealed for its
  row (``QuerySet.update(field="x")``, ``bulk_update``, a migration default)
  can never be written by accident.

* Database-assigned pks (AutoField/BigAutoField): on SQLite the next pk is
  read first, on PostgreSQL it is taken from the column's sequence, and the
  row is inserted with it in one statement (:mod:`mcfields.preallocate`).
  Elsewhere (or for a pk column without a sequence) the pk is unknown while
  the INSERT is built.  For models with encrypted fields, ``_save_table`` is
  wrapped: inside one transaction it INSERTs a placeholder (``""``/``b""``),
  reads the new pk, and writes the sealed values with one prepared
  ``UPDATE ... WHERE pk = %s`` through the cursor.  A failure in between
  rolls both back, so no row is ever committed with a placeholder.

* Raw saves (``loaddata``): Django reads the values with ``getattr`` instead
  of ``pre_save``; the wrapper puts ``ForSave`` values sealed for the
  fixture's pk in the instance for the duration of the save.

* ``from_db``: a loaded instance records on each ``Sealed`` the pk the row
  had, so ``obj.pk = None; obj.save()`` still opens the value with its
  original binding and seals it for the new row.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import DatabaseError, connections, models, transaction

from . import preallocate
from .compat import (
    SaveTableCall,
    database_errors,
    driver_connection,
    in_transaction,
    install_model_hooks,
    pk_value_on_save,
)
from .descriptors import copying, refresh_sources
from .exceptions import forget_locals_on_error
from .sealed import Sealed

__all__ = [
    "ForSave", "insert_and_bind", "install", "is_pending", "own_transaction", "row_columns",
    "seal_batches", "searchable_columns", "table_columns",
    "pending",
    "table_pks", "take_write_lock", "write_sealed",
]


class ForSave:
    """A column value sealed by mcfields for one row, on its way to the database."""

    __slots__ = ("db",)

    def __init__(self, db: str | bytes) -> None:
        self.db = db

    def __repr__(self) -> str:
        return f"<mcfields sealed value, {len(self.db)} stored bytes>"


# ids of the instances whose INSERT runs before their pk is known: their
# fields get a placeholder, and the binding UPDATE follows.
_PENDING: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "mcfields_pending", default=frozenset()
)


def is_pending(instance: Any) -> bool:
    return id(instance) in _PENDING.get()


class pending:  # noqa: N801 - used like a function, as a context manager
    """Mark instances as inserted-before-bound for the duration of a block."""

    def __init__(self, instances: Iterable[Any]) -> None:
        self._ids = frozenset(id(obj) for obj in instances)
        self._token: contextvars.Token[frozenset[int]] | None = None

    def __enter__(self) -> None:
        self._token = _PENDING.set(_PENDING.get() | self._ids)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _PENDING.reset(self._token)


def is_encrypted(field: Any) -> bool:
    return getattr(field, "_mcfields_encrypted", False) is True


#: Class attribute caching table_columns() in the class's own __dict__ (not
#: inherited): read on every save, and it goes away with the class (migrations
#: create and drop historical model classes by the hundred).
_TABLE_COLUMNS = "_mcfields_table_columns"


def table_columns(model: type[models.Model]) -> tuple[Any, ...]:
    """The encrypted columns of ``model``'s own table (not its parents')."""
    fields = model.__dict__.get(_TABLE_COLUMNS)
    if fields is None:
        fields = tuple(f for f in model._meta.local_concrete_fields if is_encrypted(f))
        setattr(model, _TABLE_COLUMNS, fields)
    return fields  # type: ignore[no-any-return]


_SEARCHABLE_COLUMNS = "_mcfields_searchable_columns"


def searchable_columns(model: type[models.Model]) -> tuple[Any, ...]:
    """The encrypted columns of ``model``'s own table that keep a blind index
    (cached as :func:`table_columns` is)."""
    fields = model.__dict__.get(_SEARCHABLE_COLUMNS)
    if fields is None:
        fields = tuple(f for f in table_columns(model) if f.index_field is not None)
        setattr(model, _SEARCHABLE_COLUMNS, fields)
    return fields  # type: ignore[no-any-return]


def row_columns(model: type[models.Model]) -> list[Any]:
    """Every encrypted column of a row of ``model``: its own table's and
    its parents' (multi-table inheritance), in declaration order.

    Reads ``local_fields`` rather than ``concrete_fields``: this also runs
    on ``class_prepared``, before Django has finished caching field lists.
    """
    base = model._meta.concrete_model or model
    chain = [base, *base._meta.get_parent_list()]
    return [f for m in chain for f in m._meta.local_fields if f.concrete and is_encrypted(f)]


# -- writing sealed values by pk -----------------------------------------------

class _Plan:
    """A cached ``UPDATE table SET col = %s, ... WHERE pk = %s`` for one connection."""

    __slots__ = ("sql", "native_sql", "pk_field", "fast", "sqlite")

    def __init__(self, connection: Any, model: type[models.Model], columns: tuple[str, ...]):
        qn = connection.ops.quote_name
        meta = model._meta
        sets = ", ".join(f"{qn(c)} = %s" for c in columns)
        self.sql = f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s"
        self.pk_field = meta.pk
        # Django's cursor wrapper costs more than the UPDATE itself on
        # SQLite (~14 us against ~2 us).  The driver's own cursor is used
        # when nothing observes queries (no execute_wrapper, no query log),
        # for the drivers whose parameter style is known.
        if connection.vendor == "sqlite":
            self.native_sql: str | None = self.sql.replace("%s", "?")
        elif connection.vendor in ("postgresql", "mysql"):
            self.native_sql = self.sql
        else:
            self.native_sql = None
        self.fast = self.native_sql is not None
        self.sqlite = connection.vendor == "sqlite"


_plans: weakref.WeakKeyDictionary[type, dict[tuple[str, tuple[str, ...]], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _plan(connection: Any, model: type[models.Model], columns: tuple[str, ...]) -> _Plan:
    try:
        by_key = _plans[model]
    except KeyError:
        by_key = _plans[model] = {}
    key = (connection.alias, columns)
    plan = by_key.get(key)
    if plan is None:
        plan = by_key[key] = _Plan(connection, model, columns)
    return plan


def _execute(connection: Any, plan: _Plan, params: list[list[Any]]) -> int:
    """Run ``plan`` once per parameter list; the number of rows matched."""
    driver = driver_connection(connection) if plan.fast else None
    if driver is not None:
        with database_errors(connection):
            if len(params) == 1 and plan.sqlite:
                # sqlite3's Connection.execute: no Python-level cursor object.
                return int(driver.execute(plan.native_sql, params[0]).rowcount)
            cursor = driver.cursor()
            try:
                if len(params) == 1:
                    cursor.execute(plan.native_sql, params[0])
                else:
                    cursor.executemany(plan.native_sql, params)
                return int(cursor.rowcount)
            finally:
                cursor.close()
    with connection.cursor() as cursor:
        if len(params) == 1:
            cursor.execute(plan.sql, params[0])
        else:
            cursor.executemany(plan.sql, params)
        return int(cursor.rowcount)


Row = tuple[Mapping[type, Any], Sequence["ForSave | None"]]


def table_pks(instance: Any, fields: Sequence[Any]) -> dict[type, Any]:
    """The pk of each table that holds one of ``fields``, read from ``instance``.

    A multi-table child's row is one row per table, and each table has its
    own pk value: usually all equal, but a child may declare its own
    ``primary_key`` next to an explicit parent link.  Each field is bound
    to, and written by, the pk of the table that declares it.
    """
    return {f.model: getattr(instance, f.pk_attname) for f in fields}


def write_sealed(using: str, fields: Sequence[Any], rows: Sequence[Row]) -> int:
    """Write sealed values with prepared ``UPDATE ... WHERE pk = %s`` statements.

    ``rows`` holds ``(pks, values)``: ``pks`` maps each table (model) to
    that table's pk value for the row (see :func:`table_pks`), ``values``
    has one value per field in ``fields``.  Each table gets one statement,
    run with ``executemany``.  Every statement must match exactly one row
    per entry: anything else (a row deleted meanwhile, a write sent to
    another database) raises ``DatabaseError``, so the caller's transaction
    rolls back instead of leaving a value unwritten.  Returns the number of
    rows written.
    """
    if not rows or not fields:
        return 0
    connection = connections[using]
    by_table: dict[type, list[int]] = {}
    for index, field in enumerate(fields):
        by_table.setdefault(field.model, []).append(index)
    for model, indexes in by_table.items():
        plan = _plan(connection, model, tuple(fields[i].column for i in indexes))
        pk_prep = plan.pk_field.get_db_prep_value
        params = [
            [fields[i].get_db_prep_value(values[i], connection) for i in indexes]
            + [pk_prep(pks[model], connection)]
            for pks, values in rows
        ]
        matched = _execute(connection, plan, params)
        if matched != len(params):
            raise DatabaseError(
                f"{model._meta.label}: writing sealed values matched {matched} rows instead "
                f"of {len(params)} (database {using!r}); nothing was written"
            )
    return len(rows)


def own_transaction(using: str) -> Any:
    """A transaction that undoes exactly mcfields' own statements on failure.

    Outside any transaction: a transaction of our own.  Inside the caller's
    transaction (``atomic()`` or ``set_autocommit(False)``): a savepoint, so
    that a failure between an INSERT and its binding write rolls back the
    INSERT itself.  Marking the caller's block for rollback is not enough:
    with autocommit off there is no block, and a later ``commit()`` would
    commit the placeholder row.
    """
    return transaction.atomic(using=using, savepoint=in_transaction(connections[using]))


def take_write_lock(using: str, model: type[models.Model]) -> None:
    """On SQLite, take the database write lock before reading what to write.

    A transaction that reads first and writes later cannot wait for the
    lock (SQLite answers "database is locked" at once to avoid a deadlock),
    whereas one that starts with a write waits for the busy timeout like
    Django's own ``update()``.  A write that changes nothing takes the lock.
    """
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    qn = connection.ops.quote_name
    pk = qn(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(model._meta.db_table)} SET {pk} = {pk} WHERE 0 = 1")


# -- the _save_table wrapper ----------------------------------------------------------


def _runs_unchanged(instance: Any, raw: bool, cls: type[models.Model] | None,
                    update_fields: Any) -> bool:
    """Whether Django's ``_save_table`` runs unchanged for this table (the
    hook asks before it builds a ``SaveTableCall``): a table without
    encrypted columns, or a row whose pk is known (``pre_save`` then seals
    directly), unless a searchable field's blind index must be added to
    ``update_fields``.  Not for a raw save."""
    if raw or cls is None:
        return False
    if not table_columns(cls):
        return True
    if update_fields and searchable_columns(cls):
        return False
    return getattr(instance, cls._meta.pk.attname) is not None


def _save_table(call: SaveTableCall) -> Any:
    """``Model._save_table`` for a model with encrypted fields (see the module
    docstring).  The common cases first, decided from the call's arguments
    with nothing else built: what :func:`_runs_unchanged` allows runs
    Django's method unchanged (the hook asked already when Django passed
    its arguments positionally); a new row with a database-assigned pk gets
    it pre-allocated (SQLite, PostgreSQL).  Everything else (raw saves, a
    blind index left out of ``update_fields``, insert and bind) is
    :func:`_save_table_general`."""
    instance, cls, update_fields = call.instance, call.cls, call.update_fields
    if _runs_unchanged(instance, call.raw, cls, update_fields):
        return call()
    if call.raw or cls is None or update_fields or call.force_update:
        return _save_table_general(call)
    meta = cls._meta
    if pk_value_on_save(meta.pk, instance) is not None:
        return _save_table_general(call)  # a pk default to apply first
    connection = connections[call.using]
    if preallocate.applies(connection, meta):
        result = preallocate.insert(call, meta, connection)
        if result is not preallocate.FALLBACK:
            return result
    return _save_table_general(call, preallocated=False)


_MISSING = object()


@forget_locals_on_error
def _save_table_general(call: SaveTableCall, preallocated: bool = True) -> Any:
    """:func:`_save_table` for raw saves, ``update_fields``, a pk default
    not applied yet, and rows inserted then bound (``preallocated=False``:
    pre-allocation does not apply or gave up)."""
    cls = call.cls
    fields = table_columns(cls) if cls is not None else ()
    if not fields:
        return call()
    self = call.instance
    raw = call.raw
    meta = cls._meta
    indexed = searchable_columns(cls)
    if indexed:
        call = _with_indexes(call, indexed)
    pk_attname = meta.pk.attname
    pk = getattr(self, pk_attname)
    if pk is None:
        # What Django's _save_table does first (UUID default...): done
        # here so we know whether the pk is known before the INSERT.
        pk = pk_value_on_save(meta.pk, self)
        if pk is not None:
            setattr(self, pk_attname, pk)
    if pk is not None and not raw:
        return call()  # pre_save seals directly
    using = call.using
    update_fields = call.update_fields
    if preallocated and pk is None and not raw and not call.force_update and not update_fields:
        connection = connections[using]
        if preallocate.applies(connection, meta):
            result = preallocate.insert(call, meta, connection)
            if result is not preallocate.FALLBACK:
                return result
    if update_fields:
        named = set(update_fields)
        fields = tuple(f for f in fields if f.name in named or f.attname in named)
    data = self.__dict__
    values = {f.attname: data.get(f.attname, _MISSING) for f in fields}
    if raw:
        # Django reads raw values with getattr(): hand it sealed ones, and
        # the blind indexes of their plaintexts (loaddata: the fixture holds
        # no index, and one made under other keys would not be found).
        from .search import index_for_instance

        for f in indexed:
            if f.attname in data:
                data[f.index_field.attname] = index_for_instance(
                    f, self, data.get(f.index_field.attname))
        for f in fields:
            value = values[f.attname]
            if value is _MISSING or value is None:
                continue
            data[f.attname] = f.placeholder if pk is None else f.to_save(value, pk)
    try:
        if pk is not None:
            return call()
        try:
            with own_transaction(using):
                updated = bool(insert_and_bind(call, using, meta, fields, [self], [values]))
        except BaseException:
            # The row was rolled back: the instance must not keep its pk.
            setattr(self, pk_attname, None)
            raise
        return updated
    finally:
        if raw:
            for attname, value in values.items():
                if value is not _MISSING:
                    data[attname] = value


def _with_indexes(call: SaveTableCall, indexed: Sequence[Any]) -> SaveTableCall:
    """``save(update_fields=[...])`` naming a searchable field also writes
    its blind index, which Django would otherwise leave out."""
    update_fields = call.update_fields
    if not update_fields:
        return call
    named = set(update_fields)
    extra = {f.index_field.name for f in indexed
             if (f.name in named or f.attname in named) and f.index_field.name not in named}
    if not extra:
        return call
    return call.replace(update_fields=frozenset(named | extra))


@forget_locals_on_error
def insert_and_bind(
    insert: Callable[[], Any], using: str, meta: Any, fields: Sequence[Any],
    instances: Sequence[models.Model], values: Sequence[dict[str, Any]],
) -> Any:
    """Rows whose pk the database assigns: the one path of ``save()`` and
    ``EncryptedManager.bulk_create()``.

    ``insert()`` runs the INSERT(s) with a placeholder in each encrypted
    column of ``instances``; then each value (``values``: one dict by
    attname per instance, taken before the INSERT) is sealed for its row's
    new pk and written with one checked statement per table.  The caller
    runs this inside :func:`own_transaction`, so a failure leaves no row.
    """
    with pending(instances):
        result = insert()
    attname = meta.pk.attname
    pks = [getattr(instance, attname) for instance in instances]
    if None in pks:
        raise DatabaseError(
            f"{meta.label}: the database returned no primary key, so mcfields cannot "
            "bind the encrypted values to the new row"
        )
    # Many rows (bulk_create): plain values sealed in batches, many per
    # guest call; pre_save-like handling for the rest below.
    batched = seal_batches(fields, pks, values) if len(instances) > 1 else {}
    rows = []
    for i, (instance, row_values, pk) in enumerate(zip(instances, values, pks, strict=True)):
        sealed: list[ForSave | None] = []
        for f in fields:
            value = row_values.get(f.attname)
            if value is None or value is _MISSING:
                sealed.append(None)
                continue
            column = batched.get(f)
            for_save = None if column is None else column[i]
            if for_save is None:
                for_save = f.to_save(value, pk)
            if type(value) is not Sealed:
                # Remember the envelope so a later save does not seal again.
                f.remember(instance, for_save, pk, value)
            sealed.append(for_save)
        rows.append(({meta.model: pk}, sealed))
    write_sealed(using, fields, rows)
    return result


@forget_locals_on_error
def seal_batches(fields: Sequence[Any], pks: Sequence[Any],
                 values: Sequence[Mapping[str, Any]]) -> dict[Any, list[ForSave | None]]:
    """The plain values of ``values`` (one mapping by attname per row, e.g.
    an instance's ``__dict__``) sealed for their rows' ``pks``, field by
    field, through ``Storage.seal_many``: for each field that has any, a
    list with one entry per row, None where the value was left out.
    Values that are not plain (None, a loaded ``Sealed``, a mutable value,
    an expression) are left out, for ``to_save``/``pre_save``."""
    from .conf import get_keyring
    from .plaintext import IMMUTABLE

    ring = get_keyring()
    found: dict[Any, list[ForSave | None]] = {}
    for f in fields:
        attname = f.attname
        plain, plain_pks = [], []
        at: list[int] | None = None  # row of each value, while some are left out
        for i, (row_values, pk) in enumerate(zip(values, pks, strict=True)):
            value = row_values.get(attname)
            if value is None or type(value) not in IMMUTABLE:
                # None, _MISSING, a Sealed, a mutable value: to_save
                if at is None:
                    at = list(range(i))
                continue
            plain.append(value)
            plain_pks.append(pk)
            if at is not None:
                at.append(i)
        if not plain:
            continue
        plaintexts = f.plaintexts_for_seal(plain)
        del plain
        ads = list(map(f.associated_data, plain_pks))
        sealed = map(ForSave, f.storage.seal_many(ring, plaintexts, ads))
        del plaintexts
        if at is None:
            found[f] = list(sealed)
        else:
            column: list[ForSave | None] = [None] * len(pks)
            for i, for_save in zip(at, sealed, strict=True):
                column[i] = for_save
            found[f] = column
    return found


# -- model hooks ----------------------------------------------------------------

#: Class attribute holding, for the class itself (not inherited: looked up
#: in the class's own __dict__), the (attname, pk attname) of each
#: encrypted column its rows load.  An attribute rather than a weak mapping:
#: from_db runs for every loaded row.
_LOAD_SPEC = "_mcfields_load_spec"


def _bind_loaded(instance: models.Model) -> None:
    """After ``Model.from_db``: record on each loaded Sealed the pk its row had.

    Every row read from the database comes through ``from_db`` (querysets,
    select_related, refresh_from_db, raw()); hooking it rather than the
    ``post_init`` signal keeps the cost off instances built in Python.
    """
    sources = refresh_sources()
    if sources is not None:
        sources.add(id(instance))
    data = instance.__dict__
    for attname, pk_attname in type(instance).__dict__.get(_LOAD_SPEC, ()):
        value = data.get(attname)
        if type(value) is Sealed:
            value.bind(data.get(pk_attname))


def _refresh(run: Any) -> Any:
    """``Model.refresh_from_db`` that moves envelopes without opening them.

    Django copies each field with ``setattr(self, f, getattr(fresh, f))``;
    inside this wrapper that ``getattr`` hands over the loaded ``Sealed``
    (bound to the row's pk by ``from_db``), so nothing is decrypted until
    the attribute is read, and a value that fails to open does not make the
    whole refresh fail.
    """
    with copying():
        return run()


def install(model: type[models.Model], fields: Sequence[Any]) -> None:
    """Hook a concrete (or proxy) model whose rows hold encrypted fields.

    ``fields``: every encrypted column of the model, its parents' included.
    Hooks inherited from a parent (multi-table children, proxies) already
    serve the subclass: they look up what to do by the class at hand.
    """
    setattr(model, _LOAD_SPEC, tuple((f.attname, f.pk_attname) for f in fields))
    install_model_hooks(model, save_table=_save_table, from_db=_bind_loaded,
                        refresh_from_db=_refresh, runs_unchanged=_runs_unchanged)
