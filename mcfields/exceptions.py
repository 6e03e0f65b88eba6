"""The exception hierarchy: one root, ``MCFieldsError``.

This module imports nothing from Django or wasmtime so that every layer can
raise these.  Messages never include key bytes or plaintext.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


class MCFieldsError(Exception):
    """Root of every error mcfields raises on purpose."""


class DecryptionError(MCFieldsError):
    """A stored value failed to open.

    The value was tampered with, moved to another row, column or table, is
    not an mcfields envelope, or was sealed under a key that is not
    configured.  The message names where the value came from (model, field,
    pk) when the Django layer knows it, and the key id, never the plaintext.
    """

    def __init__(
        self,
        reason: str,
        *,
        key_id: str | None = None,
        model: str | None = None,
        field: str | None = None,
        pk: object = None,
    ) -> None:
        self.reason = reason
        self.key_id = key_id
        self.model = model
        self.field = field
        self.pk = pk
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.model is not None:
            where.append(f"{self.model}.{self.field}" if self.field else self.model)
        if self.pk is not None:
            where.append(f"pk={self.pk!r}")
        if self.key_id is not None:
            where.append(f"key id {self.key_id}")
        prefix = f"cannot open value ({', '.join(where)})" if where else "cannot open value"
        return f"{prefix}: {self.reason}"

    def with_context(self, *, model: str, field: str, pk: object) -> DecryptionError:
        """Return a copy that also names the model, field and pk."""
        return type(self)(self.reason, key_id=self.key_id, model=model, field=field, pk=pk)


class InvalidKeyError(MCFieldsError, ValueError):
    """A key is malformed (not 32 bytes of base64) or keys collide."""


class ValueTooLargeError(MCFieldsError, ValueError):
    """A value exceeds the configured maximum size; nothing was sealed."""


class GuestError(MCFieldsError):
    """The WebAssembly guest trapped or wasmtime reported an error."""


def forget_locals_on_error(func: _F | None = None, *, below: bool = False) -> Any:
    """Clear ``func``'s local variables when an exception leaves it.

    Django's technical 500 page and ``AdminEmailHandler(include_html=True)``
    print the locals of every frame of a traceback (``sensitive_variables``
    is ignored when DEBUG is on).  Functions that hold plaintexts (the
    values being saved, an instance's ``__dict__``) are wrapped with this:
    the finished frame is cleared before the exception travels on, and the
    wrapper drops its own arguments.  ``below=True`` also clears every frame
    it called that the exception passed through (for a call into Django
    code that keeps the caller's keyword arguments, e.g. ``create()``).
    The exception itself is unchanged.
    """
    if func is None:
        return functools.partial(forget_locals_on_error, below=below)
    code = func.__code__

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            args = kwargs = ()  # type: ignore[assignment]
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code is not code:
                tb = tb.tb_next
            while tb is not None:
                tb.tb_frame.clear()
                tb = tb.tb_next if below else None
            raise

    return wrapper
