"""System checks of the searchable options (mcfields.E101, E116, E117)."""

from __future__ import annotations

from django.db import models
from django.test.utils import isolate_apps

from mcfields import (
    EncryptedBinaryField,
    EncryptedCharField,
    EncryptedFloatField,
    EncryptedIntegerField,
    EncryptedJSONField,
)
from mcfields.search import CASE_INSENSITIVE, NORMALIZERS, register_normalizer


def _ids(model: type[models.Model], name: str) -> list[str]:
    return [e.id for e in model._meta.get_field(name).check()]


@isolate_apps("tests.search.searchapp")
def test_searchable_options_are_checked() -> None:
    class Options(models.Model):  # noqa: DJ008
        unique_only = EncryptedCharField(max_length=9, unique=True)
        unique_search = EncryptedCharField(max_length=9, unique=True, searchable=True)
        floats = EncryptedFloatField(searchable=True)
        blobs = EncryptedBinaryField(searchable=True)
        docs = EncryptedJSONField(searchable=True)
        folded_number = EncryptedIntegerField(searchable=True, normalize="casefold")
        unknown = EncryptedCharField(max_length=9, searchable=True, normalize="soundex")
        unsearchable = EncryptedCharField(max_length=9, normalize="casefold")
        fine = EncryptedCharField(max_length=9, searchable=True, normalize="strip-casefold")

        class Meta:
            app_label = "searchapp"

    assert _ids(Options, "unique_only") == ["mcfields.E101"]
    assert _ids(Options, "unique_search") == []
    assert _ids(Options, "floats") == ["mcfields.E116"]
    assert _ids(Options, "blobs") == ["mcfields.E116"]
    assert _ids(Options, "docs") == ["mcfields.E116"]
    assert _ids(Options, "folded_number") == ["mcfields.E117"]
    assert _ids(Options, "unknown") == ["mcfields.E117"]
    assert _ids(Options, "unsearchable") == ["mcfields.E117"]
    assert _ids(Options, "fine") == []
    # The column is not unique itself: the blind index is.
    field = Options._meta.get_field("unique_search")
    assert field.unique is False and field.index_field.unique is True
    assert Options._meta.get_field("fine").index_field.db_index is True


def test_register_normalizer() -> None:
    register_normalizer("test-upper", str.upper, case_insensitive=True)
    try:
        assert NORMALIZERS["test-upper"]("a") == "A"
        assert "test-upper" in CASE_INSENSITIVE
    finally:
        del NORMALIZERS["test-upper"]
        CASE_INSENSITIVE.discard("test-upper")
