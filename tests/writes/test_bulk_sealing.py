"""EncryptedManager.bulk_create() seals many values per guest call, and
leaves the instances as a save would (or as they were, when it fails)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError

from mcfields.crypto import Keyring
from mcfields.saving import ForSave
from mcfields.sealed import Sealed

from .writeapp.models import AutoItem, UuidItem

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("seal", "seal_text", "seal_many", "seal_many_text"):
        real = getattr(Keyring, name)

        def counting(self: Keyring, *args: Any, _real: Any = real, _name: str = name) -> Any:
            counts[_name] = counts.get(_name, 0) + 1
            return _real(self, *args)

        monkeypatch.setattr(Keyring, name, counting)
    return counts


@pytest.mark.parametrize("model", [UuidItem, AutoItem])
def test_one_batch_per_field_and_instances_hold_their_plaintext(
    model: type, calls: dict[str, int],
) -> None:
    extra = {"code": "c{}"} if model is UuidItem else {}
    objs = [model(secret=f"s{i}", blob=bytes([i]) * 3,
                  **{k: v.format(i) for k, v in extra.items()}) for i in range(50)]
    model.objects.bulk_create(objs)
    assert calls == {"seal_many_text": 1, "seal_many": 1}  # secret (text), blob (binary)
    for i, obj in enumerate(objs):
        assert obj.secret == f"s{i}" and obj.blob == bytes([i]) * 3
        assert type(obj.__dict__["secret"]) is Sealed  # the envelope just written
    calls.clear()
    objs[0].save()
    assert calls == {}  # nothing changed: nothing sealed again
    assert {o.secret for o in model.objects.all()} == {f"s{i}" for i in range(50)}


def test_failed_bulk_create_gives_the_instances_their_plaintext_back() -> None:
    UuidItem.objects.create(code="taken")
    objs = [UuidItem(code="free", secret="a", blob=b"x"),
            UuidItem(code="taken", secret="b", blob=b"y")]
    with pytest.raises(IntegrityError):
        UuidItem.objects.bulk_create(objs)
    for obj in objs:
        assert type(obj.__dict__["secret"]) is str
        assert type(obj.__dict__["blob"]) is bytes
        assert not isinstance(obj.__dict__["secret"], ForSave)
    assert [o.secret for o in objs] == ["a", "b"]
    assert UuidItem.objects.count() == 1
