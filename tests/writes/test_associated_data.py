"""``mcfields.binding.associated_data`` and the per-field ``binder`` (the
fast path every seal and open takes) give exactly
``crypto.binding(label, canonical_pk(model, pk))``."""

from __future__ import annotations

import enum
import uuid

import pytest

from mcfields.binding import associated_data, binder, canonical_pk
from mcfields.crypto import binding
from tests.writes.writeapp.models import AutoItem, UuidItem


class Number(enum.IntEnum):
    SEVEN = 7

    def __str__(self) -> str:
        return "not the number"


PK = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("model", "pk"),
    [
        (AutoItem, 7), (AutoItem, "7"), (AutoItem, Number.SEVEN), (AutoItem, 2**70),
        (UuidItem, PK), (UuidItem, str(PK)), (UuidItem, PK.hex), (None, "text pk"),
        (None, 7),
    ],
)
@pytest.mark.parametrize("label", ["writeapp.AutoItem.secret", "pinned", "é ü label", ""])
def test_associated_data_is_the_binding_of_the_canonical_pk(model, pk, label) -> None:
    expected = binding(label, canonical_pk(model, pk))
    assert associated_data(label, model, pk) == expected
    assert associated_data(label, model, pk) == expected  # the cached label half


@pytest.mark.parametrize(
    ("model", "pks"),
    [
        (AutoItem, [7, "7", Number.SEVEN, 2**70, 8]),
        (UuidItem, [PK, str(PK), PK.hex, uuid.uuid4()]),
        (None, ["text pk", 7]),
    ],
)
@pytest.mark.parametrize("label", ["writeapp.AutoItem.secret", "é ü label", ""])
def test_binder_is_associated_data_of_each(model, pks, label) -> None:
    """The per-field form every seal and open calls: the same bytes."""
    bind = binder(label, model)
    assert [bind(pk) for pk in pks] == [binding(label, canonical_pk(model, pk)) for pk in pks]
