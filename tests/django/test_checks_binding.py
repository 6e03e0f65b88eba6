"""System checks on what a value is bound to: the row's pk and the label.

mcfields.E109 (collated pk), E110 (label size), E111 (pk size), E112 (pk
type) run per field; E113 (one label, two columns) runs over all models.
Models are created inside ``isolate_apps`` so they never reach the project's
registry (nor its migrations).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core import checks
from django.db import connection, models
from django.test.utils import isolate_apps

from mcfields import EncryptedBinaryField, EncryptedTextField
from mcfields._guest.runtime import MAX_AD_SIZE
from mcfields.binding import canonical_pk
from mcfields.crypto import HEADER_SIZE, binding


def _ids(errors) -> list[str]:
    return [e.id for e in errors]


def _field_ids(model: type[models.Model], name: str) -> list[str]:
    return _ids(model._meta.get_field(name).check())


# -- E109: case-insensitive (collated) pks -----------------------------------------------


@isolate_apps("testproject.demo")
def test_collated_char_pk_is_an_error():
    class Account(models.Model):  # noqa: DJ008
        username = models.CharField(primary_key=True, max_length=30, db_collation="NOCASE")
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    errors = Account._meta.get_field("secret").check()
    assert _ids(errors) == ["mcfields.E109"]
    assert "demo.Account.username" in errors[0].msg and "'NOCASE'" in errors[0].msg
    assert "db_collation" in errors[0].hint


@isolate_apps("testproject.demo")
def test_collated_pk_of_a_concrete_parent_is_an_error():
    class Tenant(models.Model):  # noqa: DJ008
        code = models.CharField(primary_key=True, max_length=30, db_collation="NOCASE")
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    class Branch(Tenant):  # noqa: DJ008
        motto = EncryptedBinaryField(null=True)

        class Meta:
            app_label = "demo"

    class Office(Branch):  # noqa: DJ008
        keycode = EncryptedTextField()

        class Meta:
            app_label = "demo"

    # Each model's own encrypted column is refused: the child rows are found
    # through the parent's collated pk.
    assert _field_ids(Tenant, "secret") == ["mcfields.E109"]
    assert _field_ids(Branch, "motto") == ["mcfields.E109"]
    assert _field_ids(Office, "keycode") == ["mcfields.E109"]


@isolate_apps("testproject.demo")
def test_pk_without_collation_is_not_an_error():
    class Plain(models.Model):  # noqa: DJ008
        username = models.CharField(primary_key=True, max_length=30)
        nick = models.CharField(max_length=30, db_collation="NOCASE", unique=True)
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    assert _field_ids(Plain, "secret") == []


@pytest.mark.django_db
def test_why_a_collated_pk_loses_data():
    """What E109 prevents: the UPDATE finds 'alice' for pk 'ALICE' and stores
    a value bound to 'ALICE', which the row loaded as 'alice' cannot open."""
    from mcfields import DecryptionError

    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A nondeterministic ICU collation: case-insensitive equality.
            cursor.execute(
                "CREATE COLLATION mcf_ci (provider = icu, locale = 'und-u-ks-level2', "
                "deterministic = false)"
            )
            collation = "mcf_ci"
        elif connection.vendor == "sqlite":
            collation = "NOCASE"
        else:
            pytest.skip(f"no case-insensitive collation set up for {connection.vendor}")

    with isolate_apps("testproject.demo"):

        class CiAccount(models.Model):  # noqa: DJ008
            username = models.CharField(primary_key=True, max_length=30, db_collation=collation)
            secret = EncryptedTextField()

            class Meta:
                app_label = "demo"

        assert _field_ids(CiAccount, "secret") == ["mcfields.E109"]
        table = qn(CiAccount._meta.db_table)
        with connection.cursor() as cursor:  # rolled back with the test's transaction
            cursor.execute(
                f"CREATE TABLE {table} (username varchar(30) COLLATE {qn(collation)} "
                "PRIMARY KEY, secret text NOT NULL)"
            )
        CiAccount(username="alice", secret="first").save()
        CiAccount(username="ALICE", secret="second").save()
        assert CiAccount.objects.count() == 1
        row = CiAccount.objects.get()
        assert row.pk == "alice"
        with pytest.raises(DecryptionError):
            _ = row.secret


# -- E110 / E111: sizes of the label and the pk ----------------------------------------------


@isolate_apps("testproject.demo")
def test_overlong_context_is_an_error():
    from mcfields.checks import MAX_LABEL_SIZE

    class Labels(models.Model):  # noqa: DJ008
        at_cap = EncryptedTextField(context="x" * MAX_LABEL_SIZE)
        ascii_over = EncryptedTextField(context="x" * (MAX_LABEL_SIZE + 1))
        # Counted in UTF-8 bytes, not characters: 2 bytes each.
        multibyte_over = EncryptedTextField(context="é" * (MAX_LABEL_SIZE // 2 + 1))

        class Meta:
            app_label = "demo"

    assert _field_ids(Labels, "at_cap") == []
    assert _field_ids(Labels, "ascii_over") == ["mcfields.E110"]
    errors = Labels._meta.get_field("multibyte_over").check()
    assert _ids(errors) == ["mcfields.E110"]
    assert f"{MAX_LABEL_SIZE + 2} bytes" in errors[0].msg and "context=" in errors[0].hint


@isolate_apps("testproject.demo")
def test_overlong_derived_label_is_an_error():
    from mcfields.checks import MAX_LABEL_SIZE

    name = "f" * MAX_LABEL_SIZE  # "demo.Long." + name is over the cap
    meta = type("Meta", (), {"app_label": "demo"})
    Long = type("Long", (models.Model,), {  # noqa: N806
        "__module__": __name__, "Meta": meta, name: EncryptedTextField(),
    })
    assert _field_ids(Long, name) == ["mcfields.E110"]


@isolate_apps("testproject.demo")
def test_char_pk_too_long_for_the_associated_data_is_an_error():
    label = "demo.Wide.secret"
    # The longest pk whose worst-case UTF-8 fits beside this label.
    fits = (MAX_AD_SIZE - HEADER_SIZE - len(binding(label, ""))) // 4
    assert fits > 10_000  # the label cap leaves room for any sane pk

    class Wide(models.Model):  # noqa: DJ008
        key = models.CharField(primary_key=True, max_length=fits + 1)
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    class JustFits(models.Model):  # noqa: DJ008
        key = models.CharField(primary_key=True, max_length=fits)
        secret = EncryptedTextField(context=label)

        class Meta:
            app_label = "demo"

    errors = Wide._meta.get_field("secret").check()
    assert _ids(errors) == ["mcfields.E111"]
    assert str(MAX_AD_SIZE) in errors[0].msg and f"at most {fits}" in errors[0].hint
    assert _field_ids(JustFits, "secret") == []
    # The largest pk it allows really seals (the guest's own limit agrees).
    field = JustFits._meta.get_field("secret")
    assert field.open_for_pk(field.seal_for_pk("x", "😀" * fits), "😀" * fits) == "x"


@isolate_apps("testproject.demo")
def test_pk_size_counts_the_label():
    from mcfields.checks import MAX_LABEL_SIZE

    # A pk that fits beside a short label does not fit beside a long one.
    short = (MAX_AD_SIZE - HEADER_SIZE - len(binding("s", ""))) // 4
    long_label = "l" * MAX_LABEL_SIZE

    class Both(models.Model):  # noqa: DJ008
        key = models.SlugField(primary_key=True, max_length=short)
        small = EncryptedTextField(context="s")
        large = EncryptedTextField(context=long_label)

        class Meta:
            app_label = "demo"

    assert _field_ids(Both, "small") == []
    assert _field_ids(Both, "large") == ["mcfields.E111"]


# -- E112: pk types the binding cannot encode ---------------------------------------------------


UNSUPPORTED_PKS = [
    ("DecimalField", lambda: models.DecimalField(primary_key=True, max_digits=9, decimal_places=2)),
    ("DateField", lambda: models.DateField(primary_key=True)),
    ("DateTimeField", lambda: models.DateTimeField(primary_key=True)),
    ("FloatField", lambda: models.FloatField(primary_key=True)),
    ("BooleanField", lambda: models.BooleanField(primary_key=True)),
    ("DurationField", lambda: models.DurationField(primary_key=True)),
]


@pytest.mark.parametrize(("kind", "make"), UNSUPPORTED_PKS, ids=[k for k, _ in UNSUPPORTED_PKS])
def test_unsupported_pk_type_is_an_error(kind, make):
    with isolate_apps("testproject.demo"):

        class Odd(models.Model):  # noqa: DJ008
            key = make()
            secret = EncryptedTextField()

            class Meta:
                app_label = "demo"

        errors = Odd._meta.get_field("secret").check()
        assert _ids(errors) == ["mcfields.E112"]
        assert f"demo.Odd.key is a {kind}" in errors[0].msg
        assert "UUIDField" in errors[0].hint


@isolate_apps("testproject.demo")
def test_unsupported_pk_type_through_a_parent_link_is_an_error():
    class Ledger(models.Model):  # noqa: DJ008
        number = models.DecimalField(primary_key=True, max_digits=10, decimal_places=0)

        class Meta:
            app_label = "demo"

    class SecretLedger(Ledger):  # noqa: DJ008
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    class Sidecar(models.Model):  # noqa: DJ008
        ledger = models.OneToOneField(Ledger, models.CASCADE, primary_key=True)
        secret = EncryptedTextField()

        class Meta:
            app_label = "demo"

    for model in (SecretLedger, Sidecar):
        errors = model._meta.get_field("secret").check()
        assert _ids(errors) == ["mcfields.E112"]
        assert "demo.Ledger.number is a DecimalField" in errors[0].msg
    # What the check prevents: every save refuses the pk.
    with pytest.raises(TypeError, match="Decimal"):
        canonical_pk(SecretLedger, Decimal(1))


SUPPORTED_PKS = [
    ("AutoField", lambda: models.AutoField(primary_key=True), 7),
    ("SmallAutoField", lambda: models.SmallAutoField(primary_key=True), 7),
    ("PositiveIntegerField", lambda: models.PositiveIntegerField(primary_key=True), 7),
    ("CharField", lambda: models.CharField(primary_key=True, max_length=20), "k"),
    ("SlugField", lambda: models.SlugField(primary_key=True), "k"),
    ("EmailField", lambda: models.EmailField(primary_key=True), "a@b.example"),
    ("TextField", lambda: models.TextField(primary_key=True), "k"),
    ("UUIDField", lambda: models.UUIDField(primary_key=True), uuid.uuid4()),
]


@pytest.mark.parametrize(("kind", "make", "value"), SUPPORTED_PKS,
                         ids=[k for k, _, _ in SUPPORTED_PKS])
def test_supported_pk_types_pass_and_bind(kind, make, value):
    with isolate_apps("testproject.demo"):

        class Fine(models.Model):  # noqa: DJ008
            key = make()
            secret = EncryptedTextField()

            class Meta:
                app_label = "demo"

        class Child(Fine):  # noqa: DJ008
            more = EncryptedTextField()

            class Meta:
                app_label = "demo"

        assert _field_ids(Fine, "secret") == []
        assert _field_ids(Child, "more") == []
        # The check and the binding agree: what passes, binds.
        assert canonical_pk(Fine, value) == canonical_pk(Child, value)


# -- E113: one binding label on two columns ------------------------------------------------------


def _label_errors(isolated_apps, *labels: str) -> list[checks.CheckMessage]:
    """The models-tagged checks Django runs, over the given isolated apps,
    keeping mcfields.E113 (proves the check is registered, too)."""
    configs = [isolated_apps.get_app_config(label) for label in labels]
    found = checks.run_checks(app_configs=configs, tags=[checks.Tags.models])
    return [e for e in found if e.id == "mcfields.E113"]


def test_context_on_an_abstract_base_collides():
    with isolate_apps("testproject.demo") as isolated:

        class Base(models.Model):  # noqa: DJ008
            notes = EncryptedTextField(context="demo.shared.notes")

            class Meta:
                abstract = True
                app_label = "demo"

        class First(Base):  # noqa: DJ008
            class Meta:
                app_label = "demo"

        class Second(Base):  # noqa: DJ008
            class Meta:
                app_label = "demo"

        errors = _label_errors(isolated, "demo")
    assert len(errors) == 1
    msg, hint = errors[0].msg, errors[0].hint
    assert "demo.First.notes" in msg and "demo.Second.notes" in msg
    assert "'demo.shared.notes'" in msg and "context=" in hint


def test_rename_recipe_reusing_the_old_name_collides():
    with isolate_apps("testproject.demo") as isolated:

        class Patient(models.Model):  # noqa: DJ008
            # `notes` renamed to `history`, pinned to its old label; a new
            # field then takes the name `notes` and derives the same label.
            history = EncryptedTextField(context="demo.Patient.notes")
            notes = EncryptedTextField()

            class Meta:
                app_label = "demo"

        errors = _label_errors(isolated, "demo")
        assert len(errors) == 1
        assert "demo.Patient.notes" in errors[0].msg and "demo.Patient.history" in errors[0].msg

        class Fixed(models.Model):  # noqa: DJ008
            history = EncryptedTextField(context="demo.Fixed.notes")
            notes = EncryptedTextField(context="demo.Fixed.notes.v2")

            class Meta:
                app_label = "demo"

        assert _ids(_label_errors(isolated, "demo")) == ["mcfields.E113"]  # Patient only


def test_explicit_context_equal_to_another_models_label_collides():
    with isolate_apps("testproject.demo", "tests.rotation.rotapp") as isolated:

        class Card(models.Model):  # noqa: DJ008
            number = EncryptedTextField()

            class Meta:
                app_label = "demo"

        class Copy(models.Model):  # noqa: DJ008
            number = EncryptedBinaryField(context="demo.Card.number")

            class Meta:
                app_label = "rotapp"

        errors = _label_errors(isolated, "demo", "rotapp")
        # `manage.py check demo` considers only demo's models.
        assert _label_errors(isolated, "demo") == []
    assert len(errors) == 1
    assert errors[0].obj is Copy._meta.get_field("number")
    assert "rotapp.Copy.number and demo.Card.number" in errors[0].msg


def test_same_column_seen_through_other_models_is_no_collision():
    with isolate_apps("testproject.demo") as isolated:

        class Person(models.Model):  # noqa: DJ008
            ssn = EncryptedTextField(context="demo.person.ssn")
            bio = EncryptedTextField()

            class Meta:
                app_label = "demo"

        class Employee(Person):  # noqa: DJ008 - lists Person's fields as its own
            badge = EncryptedTextField()

            class Meta:
                app_label = "demo"

        class PersonProxy(Person):  # noqa: DJ008
            class Meta:
                app_label = "demo"
                proxy = True

        class PersonView(models.Model):  # noqa: DJ008 - the same table, unmanaged
            ssn = EncryptedTextField(context="demo.person.ssn")
            bio = EncryptedTextField(context="demo.Person.bio")

            class Meta:
                app_label = "demo"
                managed = False
                db_table = Person._meta.db_table

        assert _label_errors(isolated, "demo") == []
        for model in (Employee, PersonProxy, PersonView):
            assert model._meta.get_field("ssn").binding_label == "demo.person.ssn"


def test_project_models_have_distinct_labels():
    from mcfields.checks import check_binding_labels

    assert check_binding_labels() == []
    assert check_binding_labels(app_configs=[]) == []
