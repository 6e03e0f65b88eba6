"""The encrypted model fields.

:class:`EncryptedField` encrypts any concrete Django field type, composed
like ``ArrayField(base_field)``: the base field gives the Python type, its
``to_python``, validators and form field; the encrypted field seals the
value, bound to its column (the binding label) and its row (the pk) as
associated data, and stores the envelope in a text column (``mcf1:...``,
the default) or a binary one (``storage="binary"``, see
:mod:`mcfields.storage`).  The bytes sealed for each type are given by
:mod:`mcfields.plaintext`.  The named fields (``EncryptedCharField``,
``EncryptedIntegerField``...) are thin definitions over it.

* Saving (``pre_save``): the value on the instance is sealed for the
  instance's pk and handed to the query; the instance keeps its plaintext.
  See :mod:`mcfields.saving` for database-assigned pks and raw saves.
* Loading (``from_db_value``): the column value becomes a
  :class:`~mcfields.sealed.Sealed`; nothing is decrypted until the attribute
  is read (:mod:`mcfields.descriptors`).
* Querying: ``isnull`` and ``exact=None`` only (:mod:`mcfields.lookups`),
  unless the field is ``searchable=True``: then ``exact``, ``in`` and
  ``unique=True`` through a blind index in a companion column
  (:mod:`mcfields.search`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db import models
from django.db.models.expressions import Case
from django.db.models.signals import class_prepared
from django.utils.functional import cached_property

from . import conf
from . import plaintext as codecs
from . import storage as _storage
from .binding import binder, canonical_pk
from .compat import PlaceholderHooks, is_historical, updated_fields, upsert_options
from .descriptors import EncryptedDescriptor
from .exceptions import DecryptionError, ValueTooLargeError
from .lookups import EncryptedExact, IsNull, refusal
from .saving import ForSave, install, is_encrypted, is_pending, row_columns
from .sealed import Sealed
from .search import (
    INDEX_SUFFIX,
    BlindExact,
    BlindIndexField,
    SearchExact,
    SearchIExact,
    SearchIn,
)

__all__ = [
    "BlindIndexField", "EncryptedBigIntegerField", "EncryptedBinaryField", "EncryptedBooleanField",
    "EncryptedCharField", "EncryptedDateField", "EncryptedDateTimeField",
    "EncryptedDecimalField", "EncryptedEmailField", "EncryptedField", "EncryptedFloatField",
    "EncryptedIntegerField", "EncryptedJSONField", "EncryptedPositiveIntegerField",
    "EncryptedTextField", "EncryptedTimeField", "EncryptedURLField", "EncryptedUUIDField",
    "refuse_upsert",
]

_USE_MANAGER = (
    "Use mcfields.EncryptedManager (objects = EncryptedManager()) for QuerySet.update(), "
    "bulk_update() and bulk_create(), or assign the value and call save()."
)
# Options of Field that describe the column's value as a whole; the base
# field mirrors them so that its form field and to_python agree.
_MIRRORED = ("null", "blank", "default", "verbose_name", "help_text", "choices")


class EncryptedField(PlaceholderHooks, models.Field):
    """Encrypts a value of ``base_field``'s type, bound to its row.

    ``EncryptedField(models.DateField())`` stores a sealed date: the value
    goes through the base field's ``to_python`` and validators, forms use
    the base field's form field, and the column holds only the envelope.
    Options: ``context=`` pins the binding label; ``storage=`` is
    ``"text"`` (default) or ``"binary"``.  The named fields set
    :attr:`base_class` and :attr:`base_options` instead of taking a
    ``base_field`` argument.
    """

    _mcfields_encrypted = True
    descriptor_class = EncryptedDescriptor
    #: Named fields: the base field's class, built from ``base_options``.
    base_class: type[models.Field] | None = None
    #: Named fields: the constructor options that belong to the base field.
    base_options: tuple[str, ...] = ()
    default_storage = "text"
    #: The lookups an encrypted column answers (a subclass may add some);
    #: every other lookup or transform is refused with a FieldError.
    encrypted_lookups: dict[str, type] = {"isnull": IsNull, "exact": EncryptedExact}
    #: The lookups of a ``searchable=True`` field (mcfields.search).
    searchable_lookups: dict[str, type] = {
        "isnull": IsNull, "exact": SearchExact, "in": SearchIn, "iexact": SearchIExact,
        "blind_exact": BlindExact,
    }

    def __init__(self, base_field: models.Field | None = None, *,
                 context: str | None = None, storage: str | None = None,
                 searchable: bool = False, normalize: str | None = None,
                 **kwargs: Any) -> None:
        if base_field is None:
            if self.base_class is None:
                raise TypeError("EncryptedField() needs a base field, e.g. "
                                "EncryptedField(models.DateField())")
            base_field = self.base_class(
                **{name: kwargs.pop(name) for name in self.base_options if name in kwargs}
            )
        elif self.base_class is not None:
            raise TypeError(f"{type(self).__name__} builds its own base field; pass its "
                            f"options ({', '.join(self.base_options) or 'none'}) instead")
        self.base_field = base_field
        self.context = context
        self.storage_name = storage
        self.storage = _storage.storage_named(storage or self.default_storage)
        self.plaintext_codec = codecs.codec_for(base_field)
        self.empty_strings_allowed = base_field.empty_strings_allowed
        self.empty_values = list(base_field.empty_values)
        self.searchable = searchable
        self.normalize = normalize
        # unique=True is the blind index's (a UNIQUE constraint on the
        # companion column); the envelope column itself is never unique.
        self.search_unique = bool(kwargs.pop("unique", False))
        super().__init__(**kwargs)
        self._mirror()

    def _mirror(self) -> None:
        for option in _MIRRORED:
            setattr(self.base_field, option, getattr(self, option))

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"{self.base_field.description} sealed with XChaCha20-Poly1305"

    @property
    def placeholder(self) -> ForSave:
        """The value an INSERT carries before a database-assigned pk is known."""
        return ForSave(self.storage.placeholder)

    def set_attributes_from_name(self, name: str) -> None:
        super().set_attributes_from_name(name)
        self.base_field.set_attributes_from_name(name)
        self._mirror()

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kw: Any
    ) -> None:
        # A field copied from an abstract base must not keep the base's label.
        for cached in ("_label", "_index_field", "_bind", "pk_attname"):
            self.__dict__.pop(cached, None)
        super().contribute_to_class(cls, name, *args, **kw)
        self.base_field.model = cls
        if self.searchable and not cls._meta.abstract and not is_historical(cls):
            # The blind index column.  A migration's historical model gets it
            # from the migration's own field list (AddField), not from here:
            # before that AddField the table has no such column.
            companion = BlindIndexField(of=name, unique=self.search_unique,
                                        db_column=self._index_db_column())
            cls.add_to_class(self.index_name, companion)
            self.__dict__["_index_field"] = companion

    @property
    def index_name(self) -> str:
        """Name of the blind-index field of a searchable field."""
        return self.name + INDEX_SUFFIX

    def _index_db_column(self) -> str | None:
        return None if self.db_column is None else self.db_column + INDEX_SUFFIX

    @property
    def index_field(self) -> BlindIndexField | None:
        """The companion blind-index field (None unless searchable, and in a
        migration's model before the migration that adds it)."""
        if not self.searchable:
            return None
        found = self.__dict__.get("_index_field")
        if found is None:
            try:
                found = self.model._meta.get_field(self.index_name)
            except FieldDoesNotExist:
                return None
            if not isinstance(found, BlindIndexField):
                return None
            self.__dict__["_index_field"] = found
        return found

    def get_internal_type(self) -> str:
        # The column holds the envelope: a text or binary column, whatever
        # the base field's own column type would be.
        return self.storage.internal_type

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.base_class is None:
            kwargs["base_field"] = self.base_field.clone()
        else:
            for option in self.base_options:
                value = getattr(self.base_field, option, None)
                if value is not None:
                    kwargs[option] = value
        if self.context is not None:
            kwargs["context"] = self.context
        if self.storage_name is not None:
            kwargs["storage"] = self.storage_name
        if self.searchable:
            kwargs["searchable"] = True
        if self.normalize is not None:
            kwargs["normalize"] = self.normalize
        if self.search_unique:
            kwargs["unique"] = True
        return name, path, args, kwargs

    # -- the base field's value semantics ------------------------------------------

    def to_python(self, value: Any) -> Any:
        if value is None or type(value) is Sealed:
            return value
        return self.base_field.to_python(value)

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        if value not in self.empty_values:
            # The base field's own checks (JSONField: the value is JSON).
            self.base_field.validate(value, model_instance)
            if self.search_unique and model_instance is not None:
                self._validate_unique(value, model_instance)

    def _validate_unique(self, value: Any, instance: Any) -> None:
        """``unique=True`` for ``full_clean()`` and model forms: Django's own
        unique check skips this field (its column is not unique; the blind
        index is), so the same query runs here, through the ``exact``
        lookup, which also finds rows indexed under an old key."""
        if self.index_field is None:
            return
        model = self.model
        # As Django's own unique check: the default manager, routed for reads.
        found = model._default_manager.filter(**{self.name: value})
        if not instance._state.adding and instance.pk is not None:
            found = found.exclude(pk=instance.pk)
        if found.exists():
            raise instance.unique_error_message(model, (self.name,))

    def run_validators(self, value: Any) -> None:
        super().run_validators(value)
        if value not in self.empty_values:
            # max_length, email/URL syntax, decimal digits, integer range...
            self.base_field.run_validators(value)

    def formfield(self, **kwargs: Any) -> Any:
        return self.base_field.formfield(**kwargs)

    def value_to_string(self, obj: models.Model) -> Any:
        # dumpdata: the plaintext, as the base field would serialize it.
        return self.base_field.value_to_string(obj)

    # -- binding -------------------------------------------------------------------

    @property
    def binding_label(self) -> str:
        """``context`` if given, else ``"<app_label>.<ModelName>.<field_name>"``."""
        label = self.__dict__.get("_label")
        if label is None:
            if self.context is not None:
                label = self.context
            else:
                meta = self.model._meta
                label = f"{meta.app_label}.{meta.object_name}.{self.name}"
            self.__dict__["_label"] = label
        return label

    # Both cached in the field's __dict__ on first use (every save and read
    # uses them), and dropped by contribute_to_class for a copied field.

    @cached_property
    def pk_attname(self) -> str:
        """Attribute holding the pk of the table this column lives in."""
        return self.model._meta.pk.attname  # type: ignore[no-any-return]

    @cached_property
    def _bind(self) -> Callable[[Any], bytes]:
        """``associated_data`` as one call (mcfields.binding.binder)."""
        return binder(self.binding_label, self.model)

    def associated_data(self, pk: Any) -> bytes:
        """The associated data of this column's value in row ``pk``: the
        binding label and the canonical pk text (mcfields.binding)."""
        return self._bind(pk)

    # -- sealing and opening (also the contract for rotation and admin) ------------

    def seal_for_pk(self, value: Any, pk: Any) -> Any:
        """The column value for ``value`` in the row whose pk is ``pk``."""
        if value is None:
            return None
        try:
            # (plaintext_for_seal inlined: this runs on every save.)  The
            # storage form seals in one guest call (text: base64url too).
            plaintext = self._to_bytes(value)
            if len(plaintext) > conf.max_value_size():
                plaintext = self.plaintext_for_seal(value)  # raises ValueTooLargeError
            return self.storage.seal(conf.get_keyring(), plaintext, self._bind(pk))
        except BaseException:
            # Django's error reports print every frame's locals (with DEBUG
            # on, sensitive_variables is ignored): not the plaintext.
            value = plaintext = None
            raise

    def plaintext_for_seal(self, value: Any) -> bytes:
        """The bytes sealed for ``value``: its plaintext encoding, within
        ``MCFIELDS_MAX_VALUE_SIZE``."""
        try:
            plaintext = self._to_bytes(value)
            limit = conf.max_value_size()
            if len(plaintext) > limit:
                raise ValueTooLargeError(
                    f"{self.model._meta.label}.{self.name}: value of {len(plaintext)} bytes "
                    f"exceeds the maximum of {limit} bytes (MCFIELDS_MAX_VALUE_SIZE)"
                )
            return plaintext
        except BaseException:
            value = plaintext = None  # error reports print every frame's locals
            raise

    def plaintexts_for_seal(self, values: Sequence[Any]) -> list[bytes]:
        """:meth:`plaintext_for_seal` of each of ``values`` (plain values:
        ``bulk_create``), the codec and the size limit looked up once."""
        try:
            codec, base_field = self.plaintext_codec, self.base_field
            if codec is None:
                raise TypeError(self._no_codec())
            limit = conf.max_value_size()
            to_bytes = codec.to_bytes
            try:
                plaintexts = [to_bytes(base_field, value) for value in values]
            except (TypeError, ValueError, ArithmeticError, ValidationError):
                plaintexts = None  # the value-by-value path words the error
            if plaintexts is None or any(len(p) > limit for p in plaintexts):
                plaintexts = [self.plaintext_for_seal(value) for value in values]
            return plaintexts
        except BaseException:
            values = plaintexts = None  # error reports print every frame's locals
            raise

    def open_for_pk(self, value: Any, pk: Any) -> Any:
        """The plaintext of a column value (or ``Sealed``) read from row ``pk``."""
        if value is None:
            return None
        try:
            ad = self._bind(pk)
            if isinstance(value, Sealed) and (
                value.field is None or value.field.storage is not self.storage
            ):
                # A bare Sealed, or one read through a column of the other
                # stored form: its own form decides (Sealed.envelope).
                plaintext = conf.get_keyring().open(value.envelope, ad)
            else:
                stored = value.db_value if isinstance(value, Sealed) else value
                plaintext = self.storage.open(conf.get_keyring(), stored, ad)
            return self._from_bytes(plaintext)
        except DecryptionError as exc:
            # A value that opened but does not convert (_from_bytes) must
            # not stay in this frame for an error report to print.
            plaintext = None
            raise exc.with_context(
                model=self.model._meta.label, field=self.name, pk=pk
            ) from None
        except BaseException:
            plaintext = None
            raise

    def to_save(self, value: Any, pk: Any) -> ForSave:
        """The sealed column value of the current value ``value`` for row ``pk``.

        A loaded ``Sealed`` that still belongs to this column and row, and
        whose plaintext was not changed in place, is written back as it is
        (not re-encrypted).  One under a key other than the first, or read
        from another row or column, is re-sealed for this row under the
        first key (``Keyring.reseal``: saving rotates, a copied row is bound
        to its new pk) without its plaintext passing through here.
        """
        try:
            kind = type(value)
            if kind is ForSave:
                return value
            if kind in codecs.IMMUTABLE:  # str, bytes, int...: no expression
                return ForSave(self.seal_for_pk(value, pk))
            if kind is Sealed:
                if not value.is_bound:
                    # Not loaded with an instance (taken from values()): it can
                    # only stay if it really is this row's value of this column.
                    self._claim(value, pk)
                if value.changed_in_place():
                    value = value.peek()
                else:
                    return self._write_back(value, pk)
            elif hasattr(value, "resolve_expression"):
                raise self._refuse_expression(value, assigned=True)
            return ForSave(self.seal_for_pk(value, pk))
        except BaseException:
            # Error reports print every frame's locals: not the plaintext.
            value = None
            raise

    def _write_back(self, sealed: Sealed, pk: Any) -> ForSave:
        loaded_pk = sealed.row_pk
        unchanged = self._same_column(sealed.field) and self._same_pk(loaded_pk, pk)
        if unchanged and not self._stale(sealed):
            return ForSave(sealed.db_value)
        if sealed.is_open:
            return ForSave(self.seal_for_pk(sealed.peek(), pk))
        source = sealed.field if sealed.field is not None else self
        try:
            envelope = conf.get_keyring().reseal(
                sealed.envelope, source.associated_data(loaded_pk), self.associated_data(pk)
            )
        except DecryptionError as exc:
            if unchanged:
                # Re-sealing under the first key is opportunistic: a value
                # that does not open is written back as it was (rotate_keys
                # reports it), not a reason to fail save().
                return ForSave(sealed.db_value)
            raise exc.with_context(
                model=source.model._meta.label, field=source.name, pk=loaded_pk
            ) from None
        return ForSave(self._from_envelope(envelope))

    def _claim(self, sealed: Sealed, pk: Any) -> None:
        try:
            if pk is not None:
                sealed.claim(pk, self)
                return
        except DecryptionError:
            pass
        raise TypeError(
            f"{self.model._meta.label}.{self.name}: this Sealed value (from values()) "
            "does not belong to this row, and a Sealed does not know which row it came "
            "from. Open it with sealed.open(pk) and assign the plaintext instead."
        )

    def remember(self, instance: Any, for_save: ForSave, pk: Any, plaintext: Any) -> None:
        """Keep the envelope just written, behind the same plaintext object
        (``NOTHING`` when it was re-sealed without being opened).

        A plaintext that can change in place (a bytearray, a dict) is kept
        with a digest of its bytes: the next save writes it again only if
        it changed, as Django's own fields write the current content.
        """
        instance.__dict__[self.attname] = Sealed.written(for_save.db, self, pk, plaintext)

    def _same_column(self, other: Any) -> bool:
        """``other`` writes the same column with the same binding (a field of a
        migration's historical model, a deep-copied field...)."""
        return other is self or (
            type(other) is type(self) and other.binding_label == self.binding_label
        )

    def _same_pk(self, loaded: Any, current: Any) -> bool:
        if loaded == current:
            return True
        try:
            return canonical_pk(self.model, loaded) == canonical_pk(self.model, current)
        except Exception:  # noqa: BLE001 - a pk that does not convert counts as changed
            return False

    def _stale(self, sealed: Sealed) -> bool:
        """True when the envelope is under a configured key other than the first."""
        key_id = self.stored_key_id(sealed.db_value)
        if key_id is None:
            return False  # not an envelope: leave it as it is
        ring = conf.get_keyring()
        return key_id != ring.primary.key_id and ring.knows(key_id)

    # -- pre_save / db conversion --------------------------------------------------

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        try:
            data = model_instance.__dict__
            try:
                value = data[self.attname]
            except KeyError:
                value = getattr(model_instance, self.attname)
            if value is None or type(value) is ForSave:
                return value
            pk = getattr(model_instance, self.pk_attname)
            if pk is None:
                if hasattr(value, "resolve_expression"):
                    raise self._refuse_expression(value, assigned=True)
                if is_pending(model_instance):
                    return self.placeholder
                raise FieldError(
                    f"{self.model._meta.label}.{self.name} is encrypted and bound to the "
                    "row's primary key, which the database assigns only on INSERT. "
                    "QuerySet.bulk_create() cannot bind such rows: use mcfields.EncryptedManager "
                    "(objects = EncryptedManager()), whose bulk_create() binds each row, or set "
                    "the primary keys before bulk_create(), or save() each instance."
                )
            if type(value) in codecs.IMMUTABLE:
                # The common case (a str, int... assigned): to_save() and
                # remember() without their calls; this runs on every save.
                db = self.seal_for_pk(value, pk)
                data[self.attname] = Sealed.written(db, self, pk, value)
                return ForSave(db)
            for_save = self.to_save(value, pk)
            if type(value) is not Sealed:
                self.remember(model_instance, for_save, pk, value)
            elif value.db_value is not for_save.db:
                # Re-sealed (pk changed, rotated, changed in place): remember
                # the new envelope.
                self.remember(model_instance, for_save, pk, value.peek())
            return for_save
        except BaseException:
            # Error reports print every frame's locals: neither this value
            # nor the instance's __dict__ (every other plaintext) may stay.
            data = value = model_instance = None
            raise

    def get_prep_value(self, value: Any) -> Any:
        # The parents' to_python() would call str() on a Sealed/ForSave.
        return value

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if type(value) is ForSave:
            return self._db_param(value.db, connection)
        # Anything else would reach the database unsealed or unbound:
        # QuerySet.update(field=F(...)/"x"), bulk_update()'s CASE, Value(...).
        if hasattr(value, "as_sql"):
            raise self._refuse_expression(value)
        raise FieldError(
            f"{self.model._meta.label}.{self.name} is encrypted: a value must be sealed "
            f"for its row before it is written, and this {type(value).__name__} was not. "
            f"QuerySet.update() and bulk_update() on a plain manager cannot bind a value "
            f"to each row. {_USE_MANAGER} (In a migration, a column default for existing "
            "rows cannot be sealed either: add the field with null=True, fill it by "
            "saving each row, then make it non-null.)"
        )

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if type(value) is ForSave:  # get_db_prep_value's common case: every save
            return self._db_param(value.db, connection)
        return self.get_db_prep_value(value, connection)

    def _refuse_expression(self, value: Any, assigned: bool = False) -> FieldError:
        """The error for an SQL expression that would reach the column.

        ``assigned``: the expression sits on the instance (``obj.f = expr;
        obj.save()``), so the bulk_update() explanation would mislead.
        """
        if not assigned and _is_case(value):
            return FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: QuerySet.bulk_update() "
                f"on a plain manager cannot seal each value for its row. {_USE_MANAGER}"
            )
        return FieldError(
            f"{self.model._meta.label}.{self.name} is encrypted: an SQL expression "
            f"({type(value).__name__}) cannot be written to it, because the database "
            "would store its result without sealing it for the row. Assign plain values "
            "and save(), or use mcfields.EncryptedManager's update() with a plain value."
        )

    #: In an INSERT without ON CONFLICT, check_placeholder() refuses only
    #: an expression (no upsert, no UPDATE to check): the hook skips it for
    #: the sealed parameters of every row.
    insert_refuses_only_expressions = True

    def check_placeholder(self, value: Any, compiler: Any) -> None:
        """Run by the compilers for every value they write (PlaceholderHooks).

        The INSERT compiler asks every field of every row, with the query at
        hand: the one hook that sees a plain manager's
        ``bulk_create(update_conflicts=True)`` before anything is written.
        The UPDATE compiler asks for every value, expressions included: a
        second guard behind ``get_db_prep_save()``.
        """
        upsert = upsert_options(compiler)
        if upsert is not None:
            refuse_upsert(self.model, *upsert)
        index_field = self.index_field if self.searchable else None
        if index_field is not None:
            written = updated_fields(compiler)
            if written is not None and index_field not in written:
                # A plain manager's update(field=None): the blind index
                # would be left behind, and still hold the value's place
                # under unique=True.
                raise FieldError(
                    f"{self.model._meta.label}.{self.name} is searchable: an UPDATE must "
                    f"write its blind index ({index_field.name}) too. {_USE_MANAGER}"
                )
        if type(value) is not ForSave and hasattr(value, "as_sql"):
            raise self._refuse_expression(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        if value is None:
            return None
        return Sealed(value, self)

    # -- lookups ----------------------------------------------------------------------

    def get_lookup(self, lookup_name: str) -> Any:
        # Only the lookups registered in encrypted_lookups: Django's own
        # (registered on Field) would compare ciphertext.
        lookups = self.searchable_lookups if self.searchable else self.encrypted_lookups
        lookup = lookups.get(lookup_name)
        if lookup is None:
            raise refusal(self, lookup_name)
        return lookup

    def get_transform(self, lookup_name: str) -> Any:
        raise refusal(self, lookup_name, "transform or lookup")

    # -- checks -------------------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)  # type: ignore[misc]
        errors.extend(self._check_encrypted_options())
        return errors

    def _check_encrypted_options(self) -> list[checks.CheckMessage]:
        from .checks import check_field

        return check_field(self)

    # -- type and storage ------------------------------------------------------------

    def _to_bytes(self, value: Any) -> bytes:
        """The plaintext bytes of ``value`` (mcfields.plaintext)."""
        codec = self.plaintext_codec
        if codec is None:
            raise TypeError(self._no_codec())
        try:
            return codec.to_bytes(self.base_field, value)
        except (TypeError, ValueError, ArithmeticError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                reason = exc.messages[0]
            elif isinstance(exc, ArithmeticError):  # decimal.InvalidOperation
                reason = "holds a number that does not fit the field's digits"
            else:
                reason = str(exc)
            del value, exc  # not in the error report's locals
            raise TypeError(f"{self.model._meta.label}.{self.name} {reason}") from None

    def _from_bytes(self, data: bytes) -> Any:
        codec = self.plaintext_codec
        if codec is None:
            raise DecryptionError(self._no_codec())
        try:
            return codec.from_bytes(self.base_field, data)
        except (ValueError, TypeError):  # UnicodeDecodeError is a ValueError
            del data
            raise DecryptionError(
                f"the opened value is not a valid {codec.name} encoding"
            ) from None

    def _no_codec(self) -> str:
        return (f"{type(self).__name__} cannot encrypt a {type(self.base_field).__name__}: "
                "no plaintext encoding is registered for it (mcfields.plaintext.register)")

    def _from_envelope(self, envelope: bytes) -> Any:
        return self.storage.encode(envelope)

    def _to_envelope(self, db_value: Any) -> bytes:
        return self.storage.decode(db_value)

    def _db_param(self, db_value: Any, connection: Any) -> Any:
        return self.storage.db_param(db_value, connection)

    def stored_key_id(self, db_value: Any) -> bytes | None:
        """The key id in a stored value's header, decoding only the header
        (None when it is not an envelope header); rotation and saving use it
        to skip values already under the first key without decoding them."""
        head = self.storage.header(db_value)
        return None if head is None else head[1:]


# -- the named fields: one short definition each ---------------------------------------


class EncryptedTextField(EncryptedField):
    """A ``str``, stored as an ASCII envelope (``mcf1:...``) in a text column."""

    base_class = models.TextField
    base_options = ("max_length",)


class EncryptedBinaryField(EncryptedField):
    """``bytes``, stored as the raw envelope in a binary column.

    Like Django's ``BinaryField`` it is not editable in forms by default;
    with ``editable=True`` its form field is a file upload.
    """

    base_class = models.BinaryField
    base_options = ("max_length",)
    default_storage = "binary"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        # editable=False is this field's default, as it is BinaryField's.
        if kwargs.get("editable") is False:
            del kwargs["editable"]
        else:
            kwargs["editable"] = True
        return name, path, args, kwargs

    def formfield(self, **kwargs: Any) -> Any:
        """A file upload (``mcfields.forms.EncryptedFileField``) for any
        ModelForm, used when the field is ``editable=True``.

        Django's BinaryField would give a text input holding the bytes' repr
        (and raise binascii.Error on input that is not base64).  The size cap
        is ``MCFIELDS_MAX_VALUE_SIZE``, read when the form is validated.
        """
        from .forms import EncryptedFileField

        return models.Field.formfield(self, **{"form_class": EncryptedFileField,
                                               "null": self.null, **kwargs})


class EncryptedCharField(EncryptedField):
    base_class = models.CharField
    base_options = ("max_length",)


class EncryptedEmailField(EncryptedField):
    base_class = models.EmailField
    base_options = ("max_length",)


class EncryptedURLField(EncryptedField):
    base_class = models.URLField
    base_options = ("max_length",)


class EncryptedIntegerField(EncryptedField):
    base_class = models.IntegerField


class EncryptedBigIntegerField(EncryptedField):
    base_class = models.BigIntegerField


class EncryptedPositiveIntegerField(EncryptedField):
    base_class = models.PositiveIntegerField


class EncryptedDecimalField(EncryptedField):
    base_class = models.DecimalField
    base_options = ("max_digits", "decimal_places")


class EncryptedFloatField(EncryptedField):
    base_class = models.FloatField


class EncryptedBooleanField(EncryptedField):
    base_class = models.BooleanField


class EncryptedDateField(EncryptedField):
    base_class = models.DateField


class EncryptedDateTimeField(EncryptedField):
    base_class = models.DateTimeField


class EncryptedTimeField(EncryptedField):
    base_class = models.TimeField


class EncryptedUUIDField(EncryptedField):
    base_class = models.UUIDField


class EncryptedJSONField(EncryptedField):
    base_class = models.JSONField
    base_options = ("encoder", "decoder")


def refuse_upsert(model: type[models.Model], update_fields: Any, unique_fields: Any) -> None:
    """Refuse ``bulk_create(update_conflicts=True)`` that would copy a value
    sealed for the new row into a conflicting row with another pk.

    Only a conflict on the primary key itself keeps the binding: the
    existing row then has the very pk the value was sealed for.  Fields may
    be names or Field objects (the queryset's arguments, or the insert
    query's resolved ones).
    """
    if not update_fields:
        return
    meta = model._meta
    updated = {getattr(f, "name", f) for f in update_fields} | {
        getattr(f, "attname", f) for f in update_fields
    }
    encrypted = [f for f in meta.concrete_fields if is_encrypted(f)
                 and (f.name in updated or f.attname in updated)]
    if not encrypted:
        return
    unique = {getattr(f, "name", f) for f in unique_fields or ()}
    if unique and unique <= {"pk", meta.pk.name, meta.pk.attname}:
        return
    raise ValueError(
        f"{meta.label}.{encrypted[0].name} is encrypted: bulk_create(update_conflicts=True) "
        "cannot update it unless unique_fields is the primary key, because the conflicting "
        "row has another pk and the value was sealed for this one. Use unique_fields=['pk'], "
        "or update the existing rows with save() or EncryptedManager.update()."
    )


def _is_case(value: Any) -> bool:
    """bulk_update()'s CASE WHEN (wrapped in a Cast on PostgreSQL)."""
    if isinstance(value, Case):
        return True
    sources = value.get_source_expressions() if hasattr(value, "get_source_expressions") else []
    return len(sources) == 1 and isinstance(sources[0], Case)


def _on_class_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if sender._meta.abstract:
        return
    fields = row_columns(sender)
    if fields:
        install(sender, fields)


# Connected on import: models using the fields import this module before
# their classes are created, long before AppConfig.ready() runs.
class_prepared.connect(_on_class_prepared, dispatch_uid="mcfields.fields.class_prepared")
