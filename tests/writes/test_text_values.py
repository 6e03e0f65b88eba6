"""Text values seal as their UTF-8 and open from it (the fields' fast path
for str values of Text/Char/Email/URL base fields), with the codec's own
behaviour wherever that path does not apply."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models

from mcfields import EncryptedField, conf
from mcfields.exceptions import DecryptionError
from tests.writes.writeapp.models import AutoItem


class LowerCharField(models.CharField):
    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return value.lower() if isinstance(value, str) else value


def _field(base: models.Field) -> EncryptedField:
    field = EncryptedField(base, context="tests.text_values")
    field.set_attributes_from_name("note")
    field.model = AutoItem
    return field


def test_a_base_fields_own_to_python_still_applies() -> None:
    field = _field(LowerCharField(max_length=20))
    assert field.open_for_pk(field.seal_for_pk("MiXeD", 7), 7) == "mixed"


@pytest.mark.parametrize("base", [models.TextField(), models.CharField(max_length=20),
                                  models.EmailField(), models.URLField()])
def test_text_round_trips_as_utf8(base: models.Field) -> None:
    field = _field(base)
    stored = field.seal_for_pk("é ü 😀", 7)
    plaintext = conf.get_keyring().open_text(stored, field.associated_data(7))
    assert plaintext == "é ü 😀".encode()
    assert field.open_for_pk(stored, 7) == "é ü 😀"


def test_a_lone_surrogate_is_refused_with_the_fields_name() -> None:
    field = AutoItem._meta.get_field("secret")
    with pytest.raises(TypeError, match=r"writeapp\.AutoItem\.secret"):
        field.seal_for_pk("a\ud800b", 7)


def test_an_opened_value_that_is_not_utf8_does_not_open() -> None:
    field = AutoItem._meta.get_field("secret")
    stored = conf.get_keyring().seal_text(b"\xff\xfe", field.associated_data(7))
    with pytest.raises(DecryptionError, match="not a valid text encoding"):
        field.open_for_pk(stored, 7)
