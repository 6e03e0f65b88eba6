"""The attribute descriptor of an encrypted field.

Django's ``DeferredAttribute`` is a non-data descriptor: once a value sits
in ``instance.__dict__`` Python never calls its ``__get__`` again, so it
could never open a ``Sealed`` lazily.  This one also defines ``__set__``,
which makes it a data descriptor that sees every read and every write.

``instance.__dict__[attname]`` holds either what the user assigned
(plaintext, None, an expression) or a :class:`~mcfields.sealed.Sealed` for a
loaded value.  Reading a ``Sealed`` opens it once, with the pk the row had
when it was loaded, and caches the plaintext inside it.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.db.models.query_utils import DeferredAttribute

from .sealed import NOTHING, UNBOUND, Sealed


class EncryptedDescriptor(DeferredAttribute):
    def __init__(self, field: Any) -> None:
        super().__init__(field)
        # The Sealed this descriptor opened last, weakly (no plaintext is
        # kept alive by it).  refresh_from_db() copies a field with
        # setattr(self, name, getattr(fresh, name)): recognising the very
        # object just opened lets the instance keep the loaded envelope
        # instead of treating the value as changed (and re-sealing it).
        self._last: weakref.ref[Sealed] | None = None

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        try:
            value = instance.__dict__[self.field.attname]
        except KeyError:
            # Deferred: DeferredAttribute loads it with refresh_from_db().
            value = super().__get__(instance, cls)
        if type(value) is Sealed:
            return self._open(instance, value)
        return value

    def _open(self, instance: Any, sealed: Sealed) -> Any:
        plaintext = sealed._plain
        if plaintext is NOTHING:
            pk = sealed._pk
            if pk is UNBOUND:
                # Not bound by from_db (assigned by hand): this row's pk.
                pk = sealed._pk = getattr(instance, self.field.pk_attname)
            # A Sealed read from another column opens with that column's label.
            source = sealed.field if sealed.field is not None else self.field
            plaintext = source.open_for_pk(sealed, pk)
            sealed._plain = plaintext
        self._last = weakref.ref(sealed)
        return plaintext

    def __set__(self, instance: Any, value: Any) -> None:
        data = instance.__dict__
        attname = self.field.attname
        if value is not None and type(value) is not Sealed:
            current = data.get(attname)
            if (
                type(current) is Sealed
                and current._plain is not NOTHING
                and type(current._plain) is type(value)
                and current._plain == value
            ):
                # Same plaintext as the loaded value (a form re-posting an
                # unchanged field): keep the envelope, nothing changed.
                return
            last = self._last() if self._last is not None else None
            if last is not None and last._plain is value and last.field is self.field:
                # The object this descriptor just opened: adopt its envelope.
                # Correct for any row: the Sealed knows its own pk, and a
                # save under another pk opens and re-seals it.
                value = last
        data[attname] = value
