"""``Sealed``: a stored envelope that has not been opened.

``from_db_value`` wraps every non-NULL column value in one, so loading a row
decrypts nothing; ``values()``/``values_list()`` hand them out as they are,
since without the row's pk there is nothing to open them with.  ``str()`` and
``repr()`` show where the value comes from and its key id, never plaintext.

The field's descriptor also keeps one in ``instance.__dict__`` for a loaded
value: it remembers the pk the row had when loaded (``_pk``) and, once
opened, the plaintext (``_plain``), so the value is opened at most once and
an untouched value is written back as it was.  Neither is part of the
public surface, and pickling drops the plaintext.
"""

from __future__ import annotations

from typing import Any

from .crypto import from_text, key_id_of

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

    __slots__ = ("db_value", "field", "_envelope", "_pk", "_plain", "__weakref__")

    def __init__(self, db_value: str | bytes | bytearray | memoryview, field: Any = None) -> None:
        if isinstance(db_value, (memoryview, bytearray)):
            # PostgreSQL hands bytea out as memoryview; keep an immutable copy.
            db_value = bytes(db_value)
        self.db_value: str | bytes = db_value
        self.field = field
        self._envelope: bytes | None = None
        self._pk: Any = UNBOUND
        self._plain: Any = NOTHING

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
                envelope = field._to_envelope(value)
            else:
                envelope = from_text(value) if isinstance(value, str) else bytes(value)
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
        return self.field.open_for_pk(self, pk)

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
        # recognise its untouched values as belonging to this column.
        return _copy(self)

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
    return new


def cached(db_value: str | bytes, field: Any, pk: Any, plaintext: Any) -> Sealed:
    """A Sealed that already knows its row and plaintext (after a save)."""
    sealed = Sealed(db_value, field)
    sealed._pk = pk
    sealed._plain = plaintext
    return sealed
