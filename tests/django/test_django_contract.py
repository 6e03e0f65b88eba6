"""What mcfields assumes about Django, one test per assumption.

Every private Django API mcfields uses is reached through
``mcfields.compat``; these tests fail when a Django release changes what
that module relies on, before any user finds out.  They run on every cell
of the test matrix (Django 5.2, 6.0 and 6.1).
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection, models, transaction
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.test.utils import CaptureQueriesContext

from mcfields import compat
from mcfields.crypto import Keyring
from testproject.demo.models import Note
from tests.writes.writeapp.models import AutoItem, UuidItem

pytestmark = pytest.mark.django_db


# -- model hooks -------------------------------------------------------------------------


def test_save_table_parameters_are_the_ones_mcfields_reads() -> None:
    params = list(inspect.signature(models.Model._save_table).parameters)
    assert params[1 : 1 + len(compat.SAVE_TABLE_PARAMETERS)] == list(
        compat.SAVE_TABLE_PARAMETERS
    )


def test_save_table_call_forwards_every_argument() -> None:
    seen: list[tuple[Any, ...]] = []

    def original(instance: Any, *args: Any, **kwargs: Any) -> str:
        seen.append((instance, args, kwargs))
        return "result"

    instance = object()
    call = compat.SaveTableCall(original, instance, (False, Note, False, False, "db", None),
                                {"future_argument": 7})  # type: ignore[arg-type]
    assert call.get("using") == "db" and call.get("cls") is Note
    assert call() == "result"
    assert call(force_insert=True) == "result"
    assert seen == [
        (instance, (False, Note, False, False, "db", None), {"future_argument": 7}),
        (instance, (False, Note, True, False, "db", None), {"future_argument": 7}),
    ]
    keyword = compat.SaveTableCall(original, instance, (), {"using": "x"})  # type: ignore[arg-type]
    keyword(force_insert=True)
    assert seen[-1][2] == {"using": "x", "force_insert": True}
    assert keyword.get("raw") is False and keyword.get("update_fields") is None
    replaced = call.replace(update_fields=frozenset({"a"}))
    assert replaced.get("update_fields") == frozenset({"a"}) and replaced.get("cls") is Note
    replaced()
    assert seen[-1] == (instance, (False, Note, False, False, "db", frozenset({"a"})),
                        {"future_argument": 7})
    assert call.get("update_fields") is None  # the original is unchanged
    # The arguments mcfields reads are parsed once, positional or keyword.
    assert (call.raw, call.cls, call.force_update, call.using, call.update_fields) == (
        False, Note, False, "db", None)
    assert (keyword.raw, keyword.cls, keyword.using) == (False, None, "x")
    # insert(): force_insert=True, every other argument forwarded.
    assert call.insert() == "result"
    assert seen[-1] == (instance, (False, Note, True, False, "db", None), {"future_argument": 7})
    keyword.insert()
    assert seen[-1][2] == {"using": "x", "force_insert": True}


def test_historical_models_are_told_apart() -> None:
    from django.apps import apps
    from django.db.migrations.state import ProjectState

    from tests.search.searchapp.models import Person

    state = ProjectState.from_apps(apps)
    historical = state.apps.get_model("searchapp", "Person")
    assert compat.is_historical(historical)
    assert not compat.is_historical(Person)
    # A historical model gets the blind-index column from its field list
    # (one of each), not a second one from the searchable field.
    names = [f.name for f in historical._meta.local_fields]
    assert names.count("email_bidx") == 1
    assert historical._meta.get_field("email").index_field is historical._meta.get_field(
        "email_bidx")


def _hookable(forwarded: list[tuple[Any, ...]]) -> type:
    """A stand-in for a model class: its ``_save_table`` records the
    arguments it gets, as Django's would receive them."""

    class Base:
        def _save_table(self, *args: Any, **kwargs: Any) -> str:
            forwarded.append((args, kwargs))
            return "django"

        @classmethod
        def from_db(cls, *args: Any, **kwargs: Any) -> Any:
            return None

        def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
            return None

    class Hooked(Base):
        pass

    return Hooked


def test_save_table_hook_reads_the_arguments_as_django_passes_them_and_forwards_all(
) -> None:
    """``install_model_hooks(save_table=...)``: the wrapper hands the hook a
    ``SaveTableCall`` whose ``raw``, ``cls``, ``using``, ``update_fields``
    and ``force_update`` are read from Django's real call (positional today,
    keywords tolerated); ``call()`` runs Django's method with every argument
    unchanged."""
    asked: list[tuple[Any, ...]] = []
    forwarded: list[tuple[Any, ...]] = []

    Hooked = _hookable(forwarded)

    def hook(call: compat.SaveTableCall) -> Any:
        asked.append((call.instance, call.cls, call.raw, call.using, call.update_fields,
                      call.force_update))
        return call()

    compat.install_model_hooks(Hooked, save_table=hook,
                               from_db=lambda instance: None,
                               refresh_from_db=lambda run: run())
    obj = Hooked()
    assert obj._save_table(False, Note, False, True, "db", None, later=1) == "django"
    assert obj._save_table(raw=True, cls=Note, using="x") == "django"
    assert obj._save_table(False, Note, update_fields={"a"}) == "django"
    assert asked == [(obj, Note, False, "db", None, True), (obj, Note, True, "x", None, False),
                     (obj, Note, False, None, {"a"}, False)]
    assert forwarded == [((False, Note, False, True, "db", None), {"later": 1}),
                         ((), {"raw": True, "cls": Note, "using": "x"}),
                         ((False, Note), {"update_fields": {"a"}})]
    # Django itself calls _save_table positionally, with raw and cls first.
    params = list(inspect.signature(models.Model._save_table).parameters)
    assert params[1:3] == ["raw", "cls"]
    assert "update_fields" in params


def test_hooks_wrap_django_and_keep_its_methods_reachable() -> None:
    assert AutoItem._save_table._mcfields_wrapper
    assert AutoItem._save_table.__wrapped__ is models.Model._save_table
    assert AutoItem.from_db.__func__.__wrapped__ is models.Model.from_db.__func__
    assert AutoItem.refresh_from_db.__wrapped__ is models.Model.refresh_from_db


def test_from_db_forwards_arguments_it_does_not_know() -> None:
    item = AutoItem.objects.create(secret="s")
    signature = inspect.signature(models.Model.from_db)
    extra = {name: p.default for name, p in signature.parameters.items()
             if p.kind is p.KEYWORD_ONLY}
    loaded = AutoItem.from_db("default", ["id", "name", "secret", "blob"],
                              [item.pk, "", AutoItem.objects.values_list("secret", flat=True)
                               .get(), None], **extra)
    assert loaded.secret == "s"


@pytest.mark.skipif(compat.DJANGO_VERSION < (6, 1), reason="fetch modes are Django 6.1+")
def test_fetch_mode_is_honoured() -> None:
    from django.db.models import FETCH_PEERS

    AutoItem.objects.create(secret="s")
    item = AutoItem.objects.fetch_mode(FETCH_PEERS).get()
    assert item._state.fetch_mode is FETCH_PEERS


@pytest.mark.skipif(compat.DJANGO_VERSION < (6, 1), reason="fetch modes are Django 6.1+")
def test_deferred_encrypted_fields_under_fetch_peers() -> None:
    from django.db.models import FETCH_PEERS

    for i in range(3):
        AutoItem.objects.create(name=f"n{i}", secret=f"secret {i}")
    items = list(AutoItem.objects.fetch_mode(FETCH_PEERS).defer("secret").order_by("name"))
    with CaptureQueriesContext(connection) as ctx:
        assert items[0].secret == "secret 0"
    assert len(ctx.captured_queries) == 1  # one query loaded every peer
    with CaptureQueriesContext(connection) as ctx:
        assert [i.secret for i in items] == ["secret 0", "secret 1", "secret 2"]
    assert ctx.captured_queries == []


def test_pre_save_called_twice_seals_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django 6.0+ calls pre_save() in _save_table and again in the INSERT
    compiler: the second call must hand back the same envelope."""
    sealed: list[int] = []
    for name in ("seal", "seal_text"):  # text columns seal through seal_text
        real = getattr(Keyring, name)
        monkeypatch.setattr(Keyring, name,
                            lambda self, *a, _real=real: sealed.append(1) or _real(self, *a))
    item = UuidItem(code="twice", secret="s", blob=b"b")
    field = UuidItem._meta.get_field("secret")
    first = field.pre_save(item, True)
    assert field.pre_save(item, True).db == first.db
    assert len(sealed) == 1
    item.save()
    assert len(sealed) == 2  # the blob; the secret was already sealed
    assert UuidItem.objects.get(pk=item.pk).secret == "s"


def test_pk_value_on_save() -> None:
    assert isinstance(compat.pk_value_on_save(UuidItem._meta.pk, UuidItem()), uuid.UUID)
    assert compat.pk_value_on_save(AutoItem._meta.pk, AutoItem()) is None


# -- querysets ---------------------------------------------------------------------------


def test_mark_for_write_chooses_the_write_database() -> None:
    qs = AutoItem.objects.all()
    assert compat.mark_for_write(qs) == "default"
    assert qs._for_write is True


def _error_of(action: Any) -> tuple[type[BaseException], str] | None:
    try:
        with transaction.atomic():
            action()
    except Exception as exc:  # noqa: BLE001 - compared below
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("case", ["sliced", "union", "distinct fields"])
def test_update_preconditions_match_djangos(case: str) -> None:
    if case == "distinct fields" and not connection.features.can_distinct_on_fields:
        pytest.skip("DISTINCT ON is PostgreSQL's")
    AutoItem.objects.create(name="a", secret="s")

    def shape(qs: models.QuerySet) -> models.QuerySet:
        if case == "sliced":
            return qs.all()[:1]
        if case == "union":
            return qs.all().union(qs.all())
        return qs.order_by("name").distinct("name")

    django_error = _error_of(lambda: shape(AutoItem.plain).update(name="b"))
    ours = _error_of(lambda: shape(AutoItem.objects).update(secret="t"))
    if case == "distinct fields" and compat.DJANGO_VERSION < (6, 1):
        # Django before 6.1 has no such check: update() runs, and so does ours.
        assert django_error is None and ours is None
        return
    assert django_error is not None
    assert ours == django_error


def test_update_preconditions_write_nothing() -> None:
    AutoItem.objects.create(name="a", secret="s")
    with CaptureQueriesContext(connection) as ctx:
        compat.check_update_allowed(AutoItem.objects.filter(tags__isnull=True))
    assert ctx.captured_queries == []


# -- insert queries -------------------------------------------------------------------------


def test_upsert_options_read_the_insert_query() -> None:
    code = UuidItem._meta.get_field("code")
    secret = UuidItem._meta.get_field("secret")
    query = InsertQuery(UuidItem, on_conflict=OnConflict.UPDATE, update_fields=[secret],
                        unique_fields=[code])
    assert compat.upsert_options(query.get_compiler("default")) == ([secret], [code])
    plain = InsertQuery(UuidItem)
    assert compat.upsert_options(plain.get_compiler("default")) is None


def test_updated_fields_read_the_update_query() -> None:
    from django.db.models.sql import UpdateQuery

    secret = AutoItem._meta.get_field("secret")
    name = AutoItem._meta.get_field("name")
    query = UpdateQuery(AutoItem)
    query.add_update_fields([(name, None, "x"), (secret, None, None)])
    assert compat.updated_fields(query.get_compiler("default")) == [name, secret]
    assert compat.updated_fields(InsertQuery(AutoItem).get_compiler("default")) is None


def test_only_insert_queries_have_on_conflict() -> None:
    """PlaceholderHooks skips check_placeholder for a sealed parameter when
    ``compiler.query.on_conflict`` is None: only an INSERT without ON
    CONFLICT has that; an UPDATE (or any other query) has no such attribute,
    and an upsert has a value."""
    from django.db.models.sql import UpdateQuery

    assert InsertQuery(UuidItem).on_conflict is None
    assert InsertQuery(UuidItem, on_conflict=OnConflict.UPDATE).on_conflict is not None
    assert not hasattr(UpdateQuery(AutoItem), "on_conflict")
    assert not hasattr(AutoItem.objects.all().query, "on_conflict")


def test_placeholder_hook_skips_the_check_only_for_a_plain_insert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check_placeholder is skipped for the values of an INSERT without ON
    CONFLICT (text and binary parameters, whatever the driver's Binary
    type), and still runs for an upsert and an UPDATE."""
    from mcfields.fields import EncryptedField

    checked: list[Any] = []
    real = EncryptedField.check_placeholder
    monkeypatch.setattr(EncryptedField, "check_placeholder",
                        lambda self, value, compiler: checked.append(compiler.query)
                        or real(self, value, compiler))
    item = UuidItem.objects.create(code="plain", secret="s", blob=b"b")
    assert checked == []
    # A plain manager (EncryptedManager refuses before any SQL is built);
    # the savepoint keeps the test's transaction usable.
    with pytest.raises(ValueError, match="update_conflicts"), transaction.atomic():
        UuidItem.plain.bulk_create([UuidItem(code="plain", secret="t")],
                                   update_conflicts=True, update_fields=["secret"],
                                   unique_fields=["code"])
    assert checked and getattr(checked[0], "on_conflict", None) is not None
    checked.clear()
    item.secret = "u"
    item.save()
    assert checked and not hasattr(checked[0], "on_conflict")  # the UPDATE


def test_runs_unchanged_is_asked_with_djangos_positional_arguments() -> None:
    """``install_model_hooks(runs_unchanged=...)``: for Django's own call
    (positional), the predicate gets raw, cls and update_fields; True runs
    Django's method directly with every argument, False hands a
    SaveTableCall to the hook; a call with keywords goes to the hook."""
    asked: list[tuple[Any, ...]] = []
    hooked: list[Any] = []
    forwarded: list[tuple[Any, ...]] = []

    Hooked = _hookable(forwarded)

    def unchanged(instance: Any, raw: Any, cls: Any, update_fields: Any) -> bool:
        asked.append((instance, raw, cls, update_fields))
        return update_fields is None

    def hook(call: compat.SaveTableCall) -> Any:
        hooked.append(call.update_fields)
        return call()

    compat.install_model_hooks(Hooked, save_table=hook, from_db=lambda instance: None,
                               refresh_from_db=lambda run: run(), runs_unchanged=unchanged)
    obj = Hooked()
    assert obj._save_table(False, Note, False, True, "db", None, later=1) == "django"
    assert obj._save_table(True, Note, False, False, "db", {"a"}) == "django"
    assert obj._save_table(raw=False, cls=Note, using="x") == "django"
    assert asked == [(obj, False, Note, None), (obj, True, Note, {"a"})]
    assert hooked == [{"a"}, None]
    assert forwarded == [((False, Note, False, True, "db", None), {"later": 1}),
                         ((True, Note, False, False, "db", {"a"}), {}),
                         ((), {"raw": False, "cls": Note, "using": "x"})]
    # Django's own call passes every parameter mcfields reads positionally.
    params = list(inspect.signature(models.Model._save_table).parameters)
    assert params[1 : 1 + len(compat.SAVE_TABLE_PARAMETERS)] == list(
        compat.SAVE_TABLE_PARAMETERS)


class _Compiler:
    query = object()


@pytest.mark.parametrize("name", ["blob", "secret"])
def test_placeholders_are_the_base_fields(name: str) -> None:
    """EncryptedBinaryField keeps BinaryField's placeholder (and the text
    field TextField's), through whichever hook this Django calls."""
    field = AutoItem._meta.get_field(name)
    base = models.BinaryField() if name == "blob" else models.TextField()
    value = b"x" if name == "blob" else "x"
    for hook in ("get_placeholder", "get_placeholder_sql"):
        django_hook = getattr(base, hook, None)
        if django_hook is None:
            continue
        assert getattr(field, hook)(value, _Compiler(), connection) == django_hook(
            value, _Compiler(), connection)
    # The hook this Django's INSERT compiler looks up is one mcfields defines
    # (6.1 renamed it; defining only the old name would be deprecated).
    from django.db.models.sql.compiler import SQLInsertCompiler

    source = inspect.getsource(SQLInsertCompiler.assemble_as_sql)
    hook = "get_placeholder_sql" if "get_placeholder_sql" in source else "get_placeholder"
    assert hook in vars(compat.PlaceholderHooks)


# -- connections and admin ----------------------------------------------------------------


def test_driver_connection_steps_aside_for_observers() -> None:
    assert compat.driver_connection(connection) is connection.connection

    def observe(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        assert compat.driver_connection(connection) is None
    with CaptureQueriesContext(connection):
        assert compat.driver_connection(connection) is None


@pytest.mark.django_db(transaction=True)
def test_dbapi_session_is_the_session_and_changes_on_reconnect() -> None:
    from django.db import connections

    conn = connections["default"]
    session = compat.dbapi_session(conn)
    assert session is conn.connection and session is not None
    with CaptureQueriesContext(conn):  # observed or not: the same session
        assert compat.dbapi_session(conn) is session
    conn.close()
    if conn.connection is None:  # (an in-memory SQLite database stays open)
        reopened = compat.dbapi_session(conn)
        assert reopened is not None and reopened is not session


@pytest.mark.django_db(transaction=True)
def test_in_transaction() -> None:
    assert compat.in_transaction(connection) is False
    with transaction.atomic():
        assert compat.in_transaction(connection) is True
    transaction.set_autocommit(False)
    try:
        assert compat.in_transaction(connection) is True
    finally:
        transaction.set_autocommit(True)


def test_database_errors_are_djangos() -> None:
    from django.db import DatabaseError

    driver = compat.driver_connection(connection)
    with pytest.raises(DatabaseError), compat.database_errors(connection):
        cursor = driver.cursor()
        try:
            cursor.execute("SELECT * FROM mcfields_no_such_table")
        finally:
            cursor.close()


def test_registered_admins() -> None:
    registered = dict(compat.registered_admins(admin.site))
    assert Note in registered and isinstance(registered[Note], admin.ModelAdmin)


def test_every_encrypted_field_implements_the_field_contract() -> None:
    from django.apps import apps

    from mcfields.contract import EncryptedColumn
    from mcfields.saving import is_encrypted

    fields = [f for m in apps.get_models() for f in m._meta.concrete_fields if is_encrypted(f)]
    assert fields
    for field in fields:
        assert isinstance(field, EncryptedColumn), field
