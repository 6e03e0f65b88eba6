"""Every use of Django internals, in one place.

mcfields prefers public hooks (field methods, descriptors, managers,
signals).  Where none exists, the private API it relies on is reached from
here and nowhere else; each entry says why no public hook serves, forwards
the arguments it does not use, and has a contract test
(``tests/django/test_django_contract.py``) that fails when a Django release
changes what it relies on.  Supported: Django 5.2, 6.0 and 6.1.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from typing import Any

import django
from django.db import models

__all__ = [
    "DJANGO_VERSION",
    "PlaceholderHooks",
    "SaveTableCall",
    "check_update_allowed",
    "database_errors",
    "dbapi_session",
    "driver_connection",
    "in_transaction",
    "install_model_hooks",
    "is_historical",
    "mark_for_write",
    "pk_value_on_save",
    "registered_admins",
    "updated_fields",
    "upsert_options",
]

DJANGO_VERSION: tuple[int, int] = django.VERSION[:2]


# -- model hooks -----------------------------------------------------------------------
#
# Model._save_table (private): the one method that runs once per table of a
# save, with the table's class, before the INSERT is built.  No signal or
# public method sees the moment between "pk unknown" and "INSERT": pre_save
# fires before, and the INSERT itself is a private call further down.

#: The parameters of ``Model._save_table`` mcfields reads, in Django's order.
SAVE_TABLE_PARAMETERS = ("raw", "cls", "force_insert", "force_update", "using",
                         "update_fields")
_POSITION = {name: index for index, name in enumerate(SAVE_TABLE_PARAMETERS)}
#: Django's defaults of the parameters that are not flags.
_NOT_FLAGS = ("cls", "using", "update_fields")


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    """Parameter ``name`` of a ``_save_table`` call, positional or keyword."""
    index = _POSITION[name]
    if index < len(args):
        return args[index]
    return kwargs.get(name, None if name in _NOT_FLAGS else False)


class SaveTableCall:
    """One call of ``Model._save_table``: the arguments as Django passed them
    (positionally today), read by name, forwarded unchanged but for what
    mcfields changes on purpose.

    The arguments mcfields reads are parsed once, into attributes: this
    runs once per table of every save."""

    __slots__ = ("original", "instance", "args", "kwargs",
                 "raw", "cls", "force_update", "using", "update_fields")

    def __init__(self, original: Callable[..., Any], instance: models.Model,
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.original = original
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        if len(args) >= _FIRST_UNREAD:
            # Django's own call: all positional.
            self.raw, self.cls, _, self.force_update, self.using, self.update_fields = (
                args[:_FIRST_UNREAD])
        else:
            self.raw = _argument(args, kwargs, "raw")
            self.cls = _argument(args, kwargs, "cls")
            self.force_update = _argument(args, kwargs, "force_update")
            self.using = _argument(args, kwargs, "using")
            self.update_fields = _argument(args, kwargs, "update_fields")

    def get(self, name: str) -> Any:
        return _argument(self.args, self.kwargs, name)

    def replace(self, **changes: Any) -> SaveTableCall:
        """The same call with some arguments changed."""
        args, kwargs = list(self.args), dict(self.kwargs)
        for name, value in changes.items():
            index = _POSITION[name]
            if index < len(args):
                args[index] = value
            else:
                kwargs[name] = value
        return SaveTableCall(self.original, self.instance, tuple(args), kwargs)

    def __call__(self, **changes: Any) -> Any:
        """Run Django's ``_save_table`` with these arguments (and ``changes``)."""
        call = self.replace(**changes) if changes else self
        return call.original(call.instance, *call.args, **call.kwargs)

    def insert(self) -> Any:
        """Run Django's ``_save_table`` with ``force_insert=True`` (a pk
        chosen before the INSERT: Django would otherwise try an UPDATE)."""
        if len(self.args) > _FORCE_INSERT:
            args = list(self.args)
            args[_FORCE_INSERT] = True
            return self.original(self.instance, *args, **self.kwargs)
        return self(force_insert=True)


_FIRST_UNREAD = len(SAVE_TABLE_PARAMETERS)
_FORCE_INSERT = _POSITION["force_insert"]
_RAW, _CLS, _UPDATE_FIELDS = _POSITION["raw"], _POSITION["cls"], _POSITION["update_fields"]


def install_model_hooks(
    model: type[models.Model],
    save_table: Callable[[SaveTableCall], Any],
    from_db: Callable[[models.Model], None],
    refresh_from_db: Callable[[Callable[[], Any]], Any],
    runs_unchanged: Callable[[models.Model, Any, Any, Any], bool] | None = None,
) -> None:
    """Hook a model class (once; subclasses inherit the hooks).

    * ``save_table(call)`` replaces ``_save_table`` and runs ``call()`` to
      do Django's work (``call.insert()``: with ``force_insert=True``).
      ``runs_unchanged(instance, raw, cls, update_fields)``, when given, is
      asked first for Django's own (positional) call: if it answers True,
      Django's method runs directly, without a ``SaveTableCall`` (the
      common case of every save of a row whose pk is known).
    * ``from_db(instance)`` runs after ``Model.from_db`` built an instance
      (public classmethod, but its signature grows: Django 6.1 added
      ``fetch_mode``; everything is forwarded).
    * ``refresh_from_db(run)`` wraps ``Model.refresh_from_db`` (public).
    """
    current = model.__dict__.get("_save_table") or model._save_table
    if not getattr(current, "_mcfields_wrapper", False):
        original_save_table = current

        def _save_table(self: models.Model, *args: Any, **kwargs: Any) -> Any:
            if (
                runs_unchanged is not None
                and len(args) >= _FIRST_UNREAD
                and runs_unchanged(self, args[_RAW], args[_CLS], args[_UPDATE_FIELDS])
            ):
                return original_save_table(self, *args, **kwargs)
            return save_table(SaveTableCall(original_save_table, self, args, kwargs))

        _save_table._mcfields_wrapper = True  # type: ignore[attr-defined]
        _save_table.__wrapped__ = original_save_table  # type: ignore[attr-defined]
        model._save_table = _save_table  # type: ignore[method-assign]

    original_from_db = model.from_db.__func__  # type: ignore[attr-defined]
    if not getattr(original_from_db, "_mcfields_wrapper", False):

        def _from_db(cls: Any, *args: Any, **kwargs: Any) -> Any:
            instance = original_from_db(cls, *args, **kwargs)
            from_db(instance)
            return instance

        _from_db._mcfields_wrapper = True  # type: ignore[attr-defined]
        _from_db.__wrapped__ = original_from_db  # type: ignore[attr-defined]
        model.from_db = classmethod(_from_db)  # type: ignore[method-assign,assignment]

    original_refresh = model.refresh_from_db
    if not getattr(original_refresh, "_mcfields_wrapper", False):

        def _refresh_from_db(self: models.Model, *args: Any, **kwargs: Any) -> Any:
            return refresh_from_db(lambda: original_refresh(self, *args, **kwargs))

        _refresh_from_db._mcfields_wrapper = True  # type: ignore[attr-defined]
        _refresh_from_db.__wrapped__ = original_refresh  # type: ignore[attr-defined]
        model.refresh_from_db = _refresh_from_db  # type: ignore[method-assign]


def pk_value_on_save(pk_field: models.Field, instance: models.Model) -> Any:
    """The pk Django gives a new row before its INSERT (a UUID default...).

    ``Field.get_pk_value_on_save`` is private; it is what ``_save_table``
    and ``bulk_create()`` call, so asking it gives the same answer.
    """
    return pk_field.get_pk_value_on_save(instance)


# -- querysets -----------------------------------------------------------------------


def mark_for_write(queryset: models.QuerySet) -> str:
    """The database a bulk write of ``queryset`` goes to, as Django's own
    ``update()``/``bulk_create()``/``bulk_update()`` choose it: they set the
    private ``_for_write`` before reading ``db``, so that the router's
    ``db_for_write`` (not ``db_for_read``) decides."""
    queryset._for_write = True
    return queryset.db


def check_update_allowed(queryset: models.QuerySet) -> None:
    """Raise what Django's own ``update()`` raises for this queryset
    (sliced, combined with union(), ``distinct(*fields)`` on 6.1...).

    Django's checks are inline in ``QuerySet.update()``; calling it with no
    values runs exactly this version's checks and writes nothing (an
    UPDATE without values compiles to no SQL), so they are never copied.
    """
    models.QuerySet.update(queryset._chain())


# -- insert queries --------------------------------------------------------------------


def upsert_options(compiler: Any) -> tuple[Any, Any] | None:
    """``(update_fields, unique_fields)`` of an INSERT ... ON CONFLICT DO
    UPDATE being compiled, else None.

    The INSERT query's ``on_conflict`` is private; the compiler hands it to
    the field's placeholder hook, the only field hook an INSERT calls with
    the query, before anything is written.
    """
    query = compiler.query
    if getattr(query, "on_conflict", None) is None:
        return None
    return query.update_fields, query.unique_fields


def updated_fields(compiler: Any) -> list[models.Field] | None:
    """The fields an UPDATE being compiled writes, or None for other
    statements (``UpdateQuery.values``: private; the placeholder hook is the
    only field hook an UPDATE calls with the query)."""
    from django.db.models.sql.subqueries import UpdateQuery

    query = compiler.query
    if not isinstance(query, UpdateQuery):
        return None
    return [field for field, _model, _value in query.values]


class PlaceholderHooks:
    """The field hook the SQL compilers call for each value they write.

    Django 6.1 renamed ``get_placeholder(value, compiler, connection)`` (a
    ``%s``-style string) to ``get_placeholder_sql`` (SQL and params) and
    deprecates a class that defines only the old name.  Both are defined;
    each runs ``check_placeholder`` and then the base field's own hook (so
    ``BinaryField``'s placeholder is kept).

    A field whose ``check_placeholder`` refuses nothing but expressions in
    an INSERT without ``ON CONFLICT`` (:attr:`insert_refuses_only_expressions`)
    skips the call for the other values of such an INSERT
    (``InsertQuery.on_conflict``, private: None): the hook runs for every
    value of every row inserted.
    """

    #: Whether ``check_placeholder`` refuses only expressions (values with
    #: ``as_sql``) in an INSERT without ``ON CONFLICT``.
    insert_refuses_only_expressions = False

    def check_placeholder(self, value: Any, compiler: Any) -> None:
        raise NotImplementedError

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        parent = self._checked_parent_hook(value, compiler, "get_placeholder")
        if parent is _BOUND:
            return super().get_placeholder(value, compiler, connection)  # type: ignore[misc]
        return parent(self, value, compiler, connection) if parent is not None else "%s"

    def get_placeholder_sql(self, value: Any, compiler: Any, connection: Any) -> Any:
        parent = self._checked_parent_hook(value, compiler, "get_placeholder_sql")
        if parent is _BOUND:
            return super().get_placeholder_sql(value, compiler, connection)  # type: ignore[misc]
        if parent is not None:
            return parent(self, value, compiler, connection)
        return "%s", (value,)

    def _checked_parent_hook(self, value: Any, compiler: Any, name: str) -> Any:
        """Run ``check_placeholder`` (unless it would refuse nothing, see
        :attr:`insert_refuses_only_expressions`); the base field's own
        hook ``name``: a function, None, or ``_BOUND``."""
        if not (self.insert_refuses_only_expressions
                and getattr(compiler.query, "on_conflict", _NOT_INSERT) is None
                and not hasattr(value, "as_sql")):
            self.check_placeholder(value, compiler)
        parent = _parent_hooks.get((type(self), name), _UNKNOWN)
        if parent is _UNKNOWN:
            parent = _parent_hook(type(self), name)
        return parent


# (class, hook name) -> the base field class's own hook, or None.  Looked up
# once per class: the compilers call the hook for every value they write.
_parent_hooks: dict[tuple[type, str], Any] = {}
#: ``on_conflict`` of a query that is not an INSERT (no such attribute).
_NOT_INSERT = object()
#: Not looked up yet (the hook itself is inlined: it runs for every value).
_UNKNOWN = object()
#: The parent's hook is not a plain function (a staticmethod...): bind it
#: through super() on each call.
_BOUND = object()


def _parent_hook(cls: type, name: str) -> Any:
    key = (cls, name)
    try:
        return _parent_hooks[key]
    except KeyError:
        pass
    # What getattr(super(), name) finds from PlaceholderHooks' place in the MRO.
    mro = cls.__mro__
    hook = None
    for klass in mro[mro.index(PlaceholderHooks) + 1:]:
        if name in klass.__dict__:
            hook = klass.__dict__[name]
            if not isinstance(hook, types.FunctionType):
                hook = _BOUND
            break
    _parent_hooks[key] = hook
    return hook


# -- database connections ---------------------------------------------------------------


def driver_connection(connection: Any) -> Any | None:
    """The DB-API connection itself when nothing observes queries (no
    ``execute_wrapper``, no query log), else None (use Django's cursor).

    Django's cursor wrapper costs more than a small statement itself (about
    14 µs against 2 µs on SQLite), and mcfields' binding statements run on
    every save.  ``execute_wrappers`` and ``queries_logged`` are how Django
    itself decides whether anything observes a query.
    """
    if connection.execute_wrappers or connection.queries_logged:
        return None
    if connection.connection is None:
        # ensure_connection() is async_unsafe-checked: about 3 µs per call.
        connection.ensure_connection()
    return connection.connection


def dbapi_session(connection: Any) -> Any:
    """The DB-API connection under Django's, opened if need be, whether or
    not anything observes queries: the identity of one database session
    (it changes when Django reconnects, maybe to another database)."""
    if connection.connection is None:
        connection.ensure_connection()
    return connection.connection


@contextlib.contextmanager
def database_errors(connection: Any) -> Iterator[None]:
    """Driver errors raised as Django's ``DatabaseError`` classes, as on a
    Django cursor (statements run on the driver's own connection)."""
    with connection.wrap_database_errors:
        yield


def in_transaction(connection: Any) -> bool:
    """Whether a statement now runs inside the caller's transaction:
    ``atomic()`` (``in_atomic_block``, no public accessor) or autocommit
    turned off by hand."""
    return bool(connection.in_atomic_block) or not connection.get_autocommit()


# -- migrations --------------------------------------------------------------------------


def is_historical(model: type[models.Model]) -> bool:
    """Whether ``model`` is a migration's historical model.

    ``ModelState.render()`` builds those classes with ``__module__ =
    "__fake__"`` (not a documented API; no public flag says so).  A
    searchable field does not add its blind-index column to them: the
    migration's own field list says whether the table has that column yet.
    """
    return model.__module__ == "__fake__"


# -- admin ------------------------------------------------------------------------------


def registered_admins(site: Any) -> list[tuple[type[models.Model], Any]]:
    """``(model, model_admin)`` pairs registered on an admin site (the
    private ``_registry``; ``get_model_admin()`` needs the model first)."""
    return list(site._registry.items())
