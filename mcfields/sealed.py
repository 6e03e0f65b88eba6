"""``Sealed``: a stored envelope that has not been opened.

``from_db_value`` wraps every non-NULL column value in one, so loading a row
decrypts nothing; ``values()``/``values_list()`` hand them out as they are,
since without the row's pk there is nothing to open them with.  ``str()`` and
``repr()`` show where the value comes from and its key id, never plaintext.

The field's descriptor also keeps one in ``instance.__dict__`` for a loaded
value.  A Sealed owns its state and its transitions; nothing else assigns
it: :meth:`Sealed.bind` records the pk of the row it was read from (once),
:meth:`Sealed.reveal` opens it once with that pk and keeps the plaintext,
:meth:`Sealed.claim` binds a value from ``values()`` to the row it opens
for, and :meth:`Sealed.written` stands for a value just saved.  A plaintext
that can change in place (a dict, a bytearray) is remembered with a digest
of its bytes, so that saving notices ``obj.data["k"] = 1``.  Pickling drops
the plaintext.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from .crypto import key_id_of
from .plaintext import IMMUTABLE
from .storage import BINARY, TEXT

__all__ = ["Sealed"]


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<mcfields {self.name}>"

    def __reduce__(self) -> str:
        # Pickling (model instances in a cache) must keep the singletons.
        return self.name


#: ``Sealed._pk`` before the row's pk is known.
UNBOUND = _Marker("UNBOUND")
#: ``Sealed._plain`` before the value has been opened.
NOTHING = _Marker("NOTHING")


class Sealed:
    """An envelope as stored in an encrypted column.

    ``db_value`` is the column value (``str`` for ``EncryptedTextField``,
    ``bytes`` for ``EncryptedBinaryField``), ``envelope`` the raw envelope
    bytes, ``key_id`` the hex id of the key it was sealed under, ``field``
    the model field it was read through (or None).  ``open(pk)`` returns the
    plaintext, given the pk of the row it was read from.
    """

    __slots__ = ("db_value", "field", "_envelope", "_pk", "_plain", "_digest", "__weakref__")

    def __init__(self, db_value: str | bytes | bytearray | memoryview, field: Any = None) -> None:
        if isinstance(db_value, (memoryview, bytearray)):
            # PostgreSQL hands bytea out as memoryview; keep an immutable copy.
            db_value = bytes(db_value)
        self.db_value: str | bytes = db_value
        self.field = field
        self._envelope: bytes | None = None
        self._pk: Any = UNBOUND
        self._plain: Any = NOTHING
        self._digest: bytes | None = None

    # -- state and transitions ------------------------------------------------------

    @classmethod
    def written(cls, db_value: str | bytes, field: Any, pk: Any,
                plaintext: Any = NOTHING) -> Sealed:
        """The value just written to row ``pk`` (after a save): bound, and,
        when given, already holding its plaintext."""
        # Runs on every save: the slots are set directly (db_value is the
        # str or bytes mcfields just produced, no conversion needed).
        sealed = object.__new__(cls)
        sealed.db_value = db_value
        sealed.field = field
        sealed._envelope = None
        sealed._pk = pk
        sealed._digest = None
        if plaintext is NOTHING or type(plaintext) in IMMUTABLE:
            sealed._plain = plaintext
        else:
            sealed._plain = NOTHING
            sealed._keep(plaintext)
        return sealed

    @property
    def is_bound(self) -> bool:
        """Whether the pk of the row it was read from is known."""
        return self._pk is not UNBOUND

    @property
    def row_pk(self) -> Any:
        """The pk of the row it was read from (None while unbound)."""
        return None if self._pk is UNBOUND else self._pk

    @property
    def is_open(self) -> bool:
        return self._plain is not NOTHING

    def peek(self) -> Any:
        """The plaintext if it was opened already, else :data:`NOTHING`."""
        return self._plain

    def bind(self, pk: Any) -> None:
        """Record the pk of the row this value was read from (first one wins:
        the row it was loaded with, even after ``obj.pk`` changes)."""
        if self._pk is UNBOUND and pk is not None:
            self._pk = pk

    def reveal(self, field: Any = None) -> Any:
        """The plaintext, opened once with the pk of its row (through its own
        field, else ``field``); ``DecryptionError`` if it does not open."""
        plaintext = self._plain
        if plaintext is NOTHING:
            if self._pk is UNBOUND:
                raise TypeError("this Sealed value does not know its row; open it with "
                                "sealed.open(pk)")
            source = self.field if self.field is not None else field
            plaintext = self._keep(source.open_for_pk(self, self._pk))
        return plaintext

    def read(self, field: Any, instance: Any) -> Any:
        """The plaintext for ``instance.<field>`` (the descriptor's read):
        opened once, with the pk of the row it was loaded from or, if it was
        assigned by hand, the instance's pk (which binds it)."""
        plaintext = self._plain
        if plaintext is NOTHING:
            pk = self._pk
            if pk is UNBOUND:
                self.bind(getattr(instance, field.pk_attname))
                return self.reveal(field)
            # reveal() inlined: every first read of a loaded value.
            source = self.field if self.field is not None else field
            plaintext = self._keep(source.open_for_pk(self, pk))
        return plaintext

    def claim(self, pk: Any, field: Any = None) -> Any:
        """Open for row ``pk`` (a value from ``values()`` assigned to an
        instance); if it opens, it is bound to that row from now on."""
        source = self.field if self.field is not None else field
        plaintext = source.open_for_pk(self, pk)
        self._pk = pk
        return self._keep(plaintext)

    def changed_in_place(self) -> bool:
        """Whether an opened plaintext that can change in place (a dict, a
        bytearray) no longer encodes to the bytes it was sealed from."""
        if self._digest is None:
            return False
        return _digest(self.field, self._plain) != self._digest

    def _keep(self, plaintext: Any) -> Any:
        self._plain = plaintext
        if type(plaintext) not in IMMUTABLE and self.field is not None:
            self._digest = _digest(self.field, plaintext)
        return plaintext

    # -- the stored value -----------------------------------------------------------

    @property
    def envelope(self) -> bytes:
        """The raw envelope; ``DecryptionError`` if the column holds no envelope."""
        envelope = self._envelope
        if envelope is None:
            value, field = self.db_value, self.field
            if field is not None:
                # Only the column's own stored form: on SQLite a text column
                # can hold a BLOB (and a binary one text); the same envelope
                # in the other form is not a value this column wrote.
                envelope = field.storage.decode(value)
            else:
                # No field (a bare Sealed): the form its type says.
                envelope = (TEXT if isinstance(value, str) else BINARY).decode(value)
            self._envelope = envelope
        return envelope

    @property
    def key_id(self) -> str:
        """Hex id of the key this value was sealed under."""
        return key_id_of(self.envelope).hex()

    def open(self, pk: Any) -> Any:
        """The plaintext, for the row whose primary key is ``pk``.

        Raises ``DecryptionError`` if the value does not belong to that row
        and column, was altered, or was sealed under a key not configured.
        """
        if self.field is None:
            raise TypeError(
                "this Sealed value does not know its field; use field.open_for_pk(value, pk)"
            )
        return self.field.open_for_pk(self, pk)  # no state change: any row may be asked

    def _where(self) -> str:
        field = self.field
        if field is None:
            return "unknown field"
        try:
            return field.binding_label
        except AttributeError:
            return getattr(field, "name", None) or "unknown field"

    def __repr__(self) -> str:
        try:
            key = f"key {self.key_id}"
        except Exception:  # noqa: BLE001 - repr must not raise on a bad value
            key = "not an envelope"
        return f"<Sealed {self._where()}, {key}, {len(self.db_value)} stored bytes>"

    # str() is what templates and f-strings call: same as repr, no plaintext.
    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sealed):
            return NotImplemented
        return self.db_value == other.db_value

    def __hash__(self) -> int:
        return hash(self.db_value)

    def __copy__(self) -> Sealed:
        return _copy(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Sealed:
        # The field is shared, not copied: a deep-copied instance must still
        # recognise its untouched values as belonging to this column.  A
        # plaintext that can change in place is copied, as the plain field's
        # value would be.
        new = _copy(self)
        if type(new._plain) not in IMMUTABLE and new._plain is not NOTHING:
            new._plain = copy.deepcopy(new._plain, memo)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # The cached plaintext is left out: a pickled instance (e.g. in a
        # cache backend) carries ciphertext only, and opens again on access.
        return (_rebuild, (self.db_value, self.field, self._pk))


def _rebuild(db_value: str | bytes, field: Any, pk: Any) -> Sealed:
    sealed = Sealed(db_value, field)
    sealed._pk = pk
    return sealed


def _copy(sealed: Sealed) -> Sealed:
    new = Sealed(sealed.db_value, sealed.field)
    new._envelope = sealed._envelope
    new._pk = sealed._pk
    new._plain = sealed._plain
    new._digest = sealed._digest
    return new


def _digest(field: Any, plaintext: Any) -> bytes:
    # A digest, not a copy: the plaintext bytes are not kept twice.
    return hashlib.blake2b(field._to_bytes(plaintext), digest_size=16).digest()
