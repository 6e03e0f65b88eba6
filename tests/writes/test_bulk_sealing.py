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


@pytest.mark.parametrize("path", ["preallocated", "insert-then-bind"])
def test_plain_loaded_mutable_and_null_values_in_one_bulk_create(
    path: str, monkeypatch: pytest.MonkeyPatch, calls: dict[str, int],
) -> None:
    """Values left to pre_save (a loaded Sealed, a dict, None) between
    batched ones: every row still gets its own value, bound to its pk."""
    import mcfields.preallocate

    if path == "insert-then-bind":
        monkeypatch.setattr(mcfields.preallocate, "ENABLED", False)
    source = AutoItem.objects.create(secret="loaded", doc={"k": "loaded"})
    loaded = AutoItem.objects.get(pk=source.pk)
    assert type(loaded.__dict__["secret"]) is Sealed
    secrets = [loaded.__dict__["secret"], "a", None, "b", loaded.__dict__["secret"], "c"]
    docs = [{"k": i} if i % 2 else None for i in range(6)]
    objs = [AutoItem(name=str(i), secret=s, doc=d)
            for i, (s, d) in enumerate(zip(secrets, docs, strict=True))]
    calls.clear()
    AutoItem.objects.bulk_create(objs)
    assert calls.get("seal_many_text") == 1  # "a", "b", "c" in one call
    expected = ["loaded", "a", None, "b", "loaded", "c"]
    for obj, secret, doc in zip(objs, expected, docs, strict=True):
        fresh = AutoItem.objects.get(pk=obj.pk)
        assert fresh.secret == secret and fresh.doc == doc
        assert obj.secret == secret and obj.doc == doc


@pytest.mark.parametrize("model", [UuidItem, AutoItem])
def test_a_bad_value_in_a_batch_is_refused_as_by_save(model: type) -> None:
    """The batch converts every value at once; a value too large or of the
    wrong type is still refused with the error save() gives, naming the
    field, and nothing is written."""
    from django.test import override_settings

    from mcfields.exceptions import ValueTooLargeError

    extra = {"code": "c{}"} if model is UuidItem else {}

    def objs(bad: Any) -> list[Any]:
        rows = [model(secret=f"s{i}", **{k: v.format(i) for k, v in extra.items()})
                for i in range(5)]
        rows[3].secret = bad
        return rows

    with override_settings(MCFIELDS_MAX_VALUE_SIZE=64):
        with pytest.raises(ValueTooLargeError, match="secret: value of 65 bytes"):
            model.objects.bulk_create(objs("x" * 65))
    with pytest.raises(TypeError, match="secret holds text, not bytes"):
        model.objects.bulk_create(objs(b"bytes"))
    assert model.objects.count() == 0
