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

import contextvars
from typing import Any

from django.db.models.query_utils import DeferredAttribute

from .plaintext import IMMUTABLE
from .sealed import Sealed

__all__ = ["EncryptedDescriptor", "copying", "refresh_sources"]

# ids of the instances that refresh_from_db() loaded and is copying values
# from: reading their encrypted attributes yields the Sealed itself, so
# refreshing moves envelopes and opens nothing (a value that fails to open
# or a large value costs nothing until the attribute is read).
_SOURCES: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "mcfields_refresh_sources", default=None
)


class copying:  # noqa: N801 - used like a function, as a context manager
    """Mark the instances loaded inside the block as refresh sources."""

    def __enter__(self) -> None:
        self._token = _SOURCES.set(set())

    def __exit__(self, *exc: object) -> None:
        _SOURCES.reset(self._token)


#: The ids of the instances being loaded by ``refresh_from_db()`` (None
#: outside it): ``Model.from_db`` adds every instance it builds.  The
#: contextvar's own getter, without a function around it: it runs for
#: every loaded row.
refresh_sources = _SOURCES.get


class EncryptedDescriptor(DeferredAttribute):
    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        try:
            value = instance.__dict__[self.field.attname]
        except KeyError:
            # Deferred: DeferredAttribute loads it with refresh_from_db().
            value = super().__get__(instance, cls)
        if type(value) is Sealed:
            sources = _SOURCES.get()
            if sources is not None and id(instance) in sources:
                return value  # refresh_from_db() copying the envelope
            # First read: open it (once).  Not bound by from_db (assigned by
            # hand): this row's pk.  A Sealed read from another column opens
            # with that column's label.
            return value.read(self.field, instance)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        data = instance.__dict__
        attname = self.field.attname
        # (Every instance built, loaded or not, comes through here: a
        # loaded Sealed, None or a mutable value is stored at once.)
        if type(value) in IMMUTABLE and value is not None:
            current = data.get(attname)
            if (
                type(current) is Sealed
                and type(current.peek()) is type(value)
                and current.peek() == value
            ):
                # Same plaintext as the loaded value (a form re-posting an
                # unchanged field): keep the envelope, nothing changed.  Not
                # for a dict or list: the caller keeps changing the object it
                # assigned, and the instance must hold that very object.
                return
        data[attname] = value
