"""Before a column is fully sealed, a row that still holds plaintext is an
error on read, never returned as if it were data."""

from __future__ import annotations

import pytest
from django.db import connection

from mcfields import DecryptionError
from tests.adoption.adoptapp.models import Note

pytestmark = pytest.mark.django_db


def _put_raw(pk: int, text: str, blob: bytes | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO adoptapp_note (id, text, blob) VALUES (%s, %s, %s)",
                       [pk, text, blob])


@pytest.mark.parametrize("text", ["plain secret", "", "mcf1:not-an-envelope"])
def test_plaintext_text_raises_decryption_error(text):
    _put_raw(41, text, None)
    note = Note.objects.get(pk=41)
    with pytest.raises(DecryptionError) as info:
        note.text  # noqa: B018 - the read is the test
    message = str(info.value)
    assert "adoptapp.Note" in message and "41" in message
    if text:
        assert text not in message


def test_plaintext_binary_raises_decryption_error():
    _put_raw(42, "", b"\x01" + b"plain bytes that are long enough to parse" * 2)
    note = Note.objects.get(pk=42)
    with pytest.raises(DecryptionError) as info:
        note.blob  # noqa: B018
    assert "plain bytes" not in str(info.value)
