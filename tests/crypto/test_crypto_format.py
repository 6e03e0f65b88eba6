"""docs/FORMAT.md beyond tests/crypto/test_format_doc.py: the example opener
with every settings-key spelling the format allows, and the byte layout and
text form exactly as the document states them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nacl.exceptions
import pytest

from mcfields.crypto import OVERHEAD, Keyring, binding, generate_key, to_text

FORMAT = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def load_example():
    text = FORMAT.read_text()
    section = text.split("## Opening a value with libsodium and hashlib only", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(FORMAT), "exec"), namespace)  # the doc's own code
    return namespace["open_mcfields"]


@pytest.fixture(scope="module")
def open_mcfields():
    return load_example()


@pytest.mark.parametrize("form", ["urlsafe", "standard", "standard-unpadded"])
@pytest.mark.parametrize("stored_as", ["bytes", "text"])
def test_example_opens_mcfields_values(open_mcfields, form: str, stored_as: str) -> None:
    for _ in range(5):
        key = base64.urlsafe_b64decode(generate_key())
        if form == "urlsafe":
            key_text = base64.urlsafe_b64encode(key).decode()
        elif form == "standard":
            key_text = base64.b64encode(key).decode()
        else:
            key_text = base64.b64encode(key).decode().rstrip("=")
        ring = Keyring.from_strings([key_text])
        for plaintext in (b"", b"x", "Grüße, 水".encode(), bytes(range(256)) * 5):
            envelope = ring.seal(plaintext, binding("demo.Patient.notes", "42"))
            stored = to_text(envelope) if stored_as == "text" else envelope
            assert open_mcfields(key_text, stored, "demo.Patient.notes", "42") == plaintext


def test_example_rejects_another_column(open_mcfields, key_text: str, ring: Keyring) -> None:
    envelope = ring.seal(b"secret", binding("demo.Patient.notes", "42"))
    with pytest.raises(nacl.exceptions.CryptoError):
        open_mcfields(key_text, envelope, "demo.Patient.other", "42")


def test_layout_table(ring: Keyring, reference) -> None:
    """offset 0 version, 1 key id (4), 5 nonce (24), 29 MAC (16), 45 ciphertext."""
    doc = FORMAT.read_text()
    for row in ("0       1     version      0x01", "1       4     key id",
                "5       24    nonce", "29      16    MAC", "45      n     ciphertext"):
        assert row in doc
    assert OVERHEAD == 45
    envelope = ring.seal(b"", binding("a", "b"))
    assert len(envelope) == 45 and envelope[0] == 0x01
    assert envelope[1:5] == ring.primary.key_id


def test_text_form_as_documented(ring: Keyring) -> None:
    envelope = ring.seal(b"abc", binding("a", "1"))
    text = to_text(envelope)
    body = text[len("mcf1:"):]
    assert text.startswith("mcf1:") and "=" not in body
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == envelope
    assert re.fullmatch(r"[A-Za-z0-9_-]*", body)
