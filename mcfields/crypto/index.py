"""Blind indexes: a keyed PRF of a value, per column, for equality search.

A searchable column keeps, next to each envelope, ``tag || digest`` where
(docs/FORMAT.md, "Blind index", gives every byte)::

    index_key  = BLAKE2b-256(key=settings key, msg="mcfields.v1.index-key")
    column_key = BLAKE2b-256(key=index_key, msg="mcfields.v1.index-column"
                             || u32le(len(column)) || column)
    tag        = BLAKE2b-32 (key=column_key, msg=0x00)
    digest     = BLAKE2b-128(key=column_key, msg=0x01 || plaintext)

``column`` names the column and the normalisation applied before hashing
(:func:`column_info`), so an index of one column never matches in another,
and changing the normalisation makes every old index visibly stale.  The
pk is not part of it: equal values in one column have equal indexes, which
is what makes them searchable (docs/SECURITY.md says what that leaks).

The tag identifies the (key, column, normalisation) that computed an index
without revealing anything about values: rotation finds stale indexes by
their tag alone, and a lookup asks for the indexes under every configured
key, so rows indexed under an old key are found until they are rotated.

The digest is not truncated below 128 bits: results must be exact, and the
database's uniqueness constraint must not reject distinct values, so a
collision must be as unlikely as a forged MAC.
"""

from __future__ import annotations

import struct

from .._guest import KEY_SIZE
from .keys import get_guest

__all__ = ["INDEX_DIGEST_SIZE", "INDEX_SIZE", "INDEX_TAG_SIZE", "INDEX_TEXT_SIZE",
           "ColumnIndex", "column_info"]

INDEX_TAG_SIZE = 4
INDEX_DIGEST_SIZE = 16
#: Bytes of an index: tag and digest.
INDEX_SIZE = INDEX_TAG_SIZE + INDEX_DIGEST_SIZE
#: Characters of its stored form (lowercase hex).
INDEX_TEXT_SIZE = 2 * INDEX_SIZE

_COLUMN_INFO = b"mcfields.v1.index-column"
_TAG_MESSAGE = b"\x00"
_DIGEST_PREFIX = b"\x01"
_U32 = struct.Struct("<I")


def column_info(label: str, normalizer: str) -> bytes:
    """The ``column`` input of the derivation: the binding label and the
    normaliser's name, each length-prefixed."""
    label_b = label.encode("utf-8")
    norm_b = normalizer.encode("utf-8")
    return b"".join((_U32.pack(len(label_b)), label_b, _U32.pack(len(norm_b)), norm_b))


class ColumnIndex:
    """The blind-index keys of one column under every configured key.

    Built from a keyring's keys (the first one computes the indexes that are
    written; every one computes the indexes a lookup asks for).  ``repr``
    shows the tags only.
    """

    __slots__ = ("_keys", "tags", "tag_texts")

    def __init__(self, index_keys: tuple[bytes, ...], column: bytes) -> None:
        guest = get_guest()
        keys = []
        for root in index_keys:
            keys.append(guest.blake2b(root, _COLUMN_INFO + column, KEY_SIZE))
        self._keys: tuple[bytes, ...] = tuple(keys)
        #: The tag of each key's indexes, first key first.
        self.tags: tuple[bytes, ...] = tuple(
            guest.blake2b(k, _TAG_MESSAGE, INDEX_TAG_SIZE) for k in self._keys
        )
        self.tag_texts: tuple[str, ...] = tuple(t.hex() for t in self.tags)

    def __repr__(self) -> str:
        return f"<ColumnIndex tags={list(self.tag_texts)}>"

    def index(self, plaintext: bytes) -> str:
        """The stored form of ``plaintext``'s index under the first key."""
        try:
            digest = get_guest().blake2b(self._keys[0], _DIGEST_PREFIX + plaintext,
                                         INDEX_DIGEST_SIZE)
            return self.tag_texts[0] + digest.hex()
        except BaseException:
            del plaintext  # error reports print every frame's locals
            raise

    def indexes(self, plaintext: bytes) -> list[str]:
        """``plaintext``'s index under every configured key, first key first."""
        try:
            guest = get_guest()
            message = _DIGEST_PREFIX + plaintext
            return [tag + guest.blake2b(key, message, INDEX_DIGEST_SIZE).hex()
                    for tag, key in zip(self.tag_texts, self._keys, strict=True)]
        except BaseException:
            del plaintext
            message = b""
            raise

    def is_current(self, stored: str | None) -> bool:
        """True when ``stored`` was computed under the first key for this
        column and normalisation (its tag matches)."""
        return (isinstance(stored, str) and len(stored) == INDEX_TEXT_SIZE
                and stored.startswith(self.tag_texts[0]))
