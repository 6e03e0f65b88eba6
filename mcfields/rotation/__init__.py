"""Key rotation: re-seal every encrypted value under the first configured key.

This is the service behind ``manage.py rotate_keys`` (the command only parses
options and renders progress): :class:`RotationPolicy` on the keyset walker
of :mod:`mcfields.walker`, which adoption (``EncryptColumn``) shares.  For
each model with encrypted fields it:

* walks the table in primary-key order with keyset pagination
  (``WHERE pk > last ORDER BY pk LIMIT batch``), never OFFSET;
* reads the raw column values (no descriptor, no ``Sealed``), so a value is
  never opened unless it must be re-sealed;
* skips values whose envelope header already names the first key;
* opens the others with whichever configured key their header names, seals
  the plaintext under the first key for the same (label, pk) binding, and
  opens the new envelope once more to verify it;
* writes with compare-and-swap, ``UPDATE t SET col = new WHERE pk = %s AND
  col = old``, one ``executemany`` per column and batch, inside one
  transaction per batch.  A row whose column changed since it was read is
  left alone (the application's write wins); it is re-read and tried again.

A value that fails to open (tampered, moved, unknown key, malformed) is
recorded with model, field, pk and key id and left exactly as it is.

Sharding (``shard=Shard(k, n)``) splits the rows of every table between *n*
independent processes, which may run on different machines: integer primary
keys go to shard ``pk mod n`` (``((pk % n) + n) % n`` in SQL, which cannot
overflow; filtered in SQL, so each process reads
only its own rows); any other primary key (UUID, text) goes to shard
``crc32(canonical pk text) % n`` (each process scans the pk column of the
whole table and reads the values of its own rows).  The assignment depends
only on the pk and *n*, so the shards cover every row exactly once.

Nothing here prints; progress is reported through a callback and the result
is a :class:`Report`.  No key bytes or plaintext ever leave this module.
"""

from __future__ import annotations

from ..binding import pk_text
from .report import Failure, FieldStats, Mode, Progress, Report, Shard
from .rotator import DEFAULT_BATCH_SIZE, RotationPolicy, Rotator
from .scope import Target, find_targets

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Failure",
    "FieldStats",
    "Mode",
    "Progress",
    "Report",
    "RotationPolicy",
    "Rotator",
    "Shard",
    "Target",
    "find_targets",
    "pk_text",
]
