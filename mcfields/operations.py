"""Migration operations that seal a plaintext column in place, and back.

Put :class:`EncryptColumn` right after the ``AlterField`` that turns a plain
field into its encrypted twin (``TextField`` into ``EncryptedTextField``,
``BinaryField`` into ``EncryptedBinaryField``, ``IntegerField`` into
``EncryptedIntegerField``, ``JSONField`` into ``EncryptedJSONField``...)::

    operations = [
        migrations.AlterField("patient", "notes", mcfields.fields.EncryptedTextField()),
        mcfields.operations.EncryptColumn("patient", "notes"),
    ]

The ``AlterField`` has by then turned a typed column into a text column
holding the database's text form of each value ("42", "2026-12-02", JSON
text); ``EncryptColumn`` reads it as the base field would and seals it.
Reversing the migration opens every value again before the ``AlterField``
is reversed, writing it in the base field's database form, which the
reversed ``AlterField`` casts back: ``migrate app <previous>`` restores the
plaintext column, value for value.
:class:`DecryptColumn` is the same operation the other way round, for
leaving mcfields (put it *before* the ``AlterField`` back to a plain field).

A value that is a well-formed envelope but does not open for its row (for
instance one sealed under a key that is not in ``MCFIELDS_KEYS``) stops the
operation before it writes anything; see :mod:`mcfields.adoption`.

For tables too large for one transaction, set ``atomic = False`` on the
migration: each batch then commits on its own and a rerun of ``migrate``
(the migration is not recorded until every row is done) finishes the job
without sealing anything twice (see :mod:`mcfields.adoption`).
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation

from .adoption import DEFAULT_BATCH_SIZE, SEAL, UNSEAL, convert_column

__all__ = ["DecryptColumn", "EncryptColumn"]


class _ColumnOperation(Operation):
    direction = SEAL
    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, name: str, batch_size: int = DEFAULT_BATCH_SIZE, *,
                 unknown_key_ids_are_plaintext: bool = False) -> None:
        self.model_name = model_name
        self.name = name
        self.batch_size = batch_size
        #: Escape hatch for binary plaintext that may start with byte 0x01:
        #: treat envelope-shaped values under a key id that is not configured
        #: as plaintext instead of stopping (see mcfields.adoption).
        self.unknown_key_ids_are_plaintext = unknown_key_ids_are_plaintext

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if self.batch_size != DEFAULT_BATCH_SIZE:
            kwargs["batch_size"] = self.batch_size
        if self.unknown_key_ids_are_plaintext:
            kwargs["unknown_key_ids_are_plaintext"] = True
        return self.__class__.__qualname__, [self.model_name, self.name], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        # Data only: the model state does not change.
        pass

    def _run(self, direction: str, app_label: str, schema_editor: Any, state: Any) -> None:
        from .saving import is_encrypted

        model = state.apps.get_model(app_label, self.model_name)
        alias = schema_editor.connection.alias
        if not self.allow_migrate_model(alias, model):
            return
        fld = model._meta.get_field(self.name)
        if not is_encrypted(fld):
            raise ValueError(
                f"{type(self).__name__}({self.model_name!r}, {self.name!r}): "
                f"{model._meta.label}.{self.name} is a {type(fld).__name__} at this point "
                "of the migration; it must be an encrypted field (put EncryptColumn after "
                "the AlterField, DecryptColumn before it)"
            )
        convert_column(model, fld, direction=direction, using=alias, batch_size=self.batch_size,
                       unknown_key_ids_are_plaintext=self.unknown_key_ids_are_plaintext)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any,
                          to_state: Any) -> None:
        self._run(self.direction, app_label, schema_editor, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any,
                           to_state: Any) -> None:
        reverse = UNSEAL if self.direction == SEAL else SEAL
        self._run(reverse, app_label, schema_editor, from_state)

    @property
    def migration_name_fragment(self) -> str:
        verb = "encrypt" if self.direction == SEAL else "decrypt"
        return f"{verb}_{self.model_name.lower()}_{self.name.lower()}"


class EncryptColumn(_ColumnOperation):
    """Seal every plaintext value of an encrypted field, bound to its row."""

    direction = SEAL

    def describe(self) -> str:
        return f"Seal the existing values of {self.model_name}.{self.name} in place"


class DecryptColumn(_ColumnOperation):
    """Open every sealed value of an encrypted field back to plaintext."""

    direction = UNSEAL

    def describe(self) -> str:
        return f"Open the sealed values of {self.model_name}.{self.name} back to plaintext"
