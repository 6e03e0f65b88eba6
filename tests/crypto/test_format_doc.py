"""docs/FORMAT.md's example opener (libsodium + hashlib only) opens what
mcfields seals, so the document is checked, not just written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mcfields.crypto import Keyring, binding, generate_key, to_text

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def load_doc_opener():
    text = FORMAT_MD.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "FORMAT.md should hold exactly one python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(FORMAT_MD), "exec"), namespace)
    return namespace["open_mcfields"]


@pytest.mark.parametrize("plaintext", [b"", b"x", "héllo wörld".encode(), bytes(range(256)) * 9])
def test_doc_example_opens_binary_and_text(plaintext):
    opener = load_doc_opener()
    key = generate_key()
    ring = Keyring.from_strings([key])
    envelope = ring.seal(plaintext, binding("demo.Patient.notes", "42"))
    assert opener(key, envelope, "demo.Patient.notes", "42") == plaintext
    assert opener(key, to_text(envelope), "demo.Patient.notes", "42") == plaintext


def test_doc_example_refuses_other_row():
    opener = load_doc_opener()
    key = generate_key()
    envelope = Keyring.from_strings([key]).seal(b"secret", binding("demo.Patient.notes", "42"))
    import nacl.exceptions

    with pytest.raises(nacl.exceptions.CryptoError):
        opener(key, envelope, "demo.Patient.notes", "43")
