"""Django's error reports never show a key or a plaintext (issue item 7).

Django's technical 500 page (DEBUG=True) and ``AdminEmailHandler`` with
``include_html=True`` (also with DEBUG=False) print the local variables of
every frame of the traceback; ``sensitive_variables`` is ignored when
DEBUG=True.  So no frame of mcfields may keep key bytes or plaintext when an
exception leaves it.  Each test makes a real seal or open fail through the
field layer, renders the report the way Django does (HTML and text, DEBUG on
and off, the e-mail variant) and searches it for the plaintext, the settings
key and the derived AEAD key in every form a value can be printed in.

The plaintext lives in a module global (``_plaintext()``) rather than in a
local of the code under test's callers here, so that the frames this test
itself adds to the traceback hold none of the secrets.
"""

from __future__ import annotations

import base64
import html
import secrets
import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.db import models
from django.test import RequestFactory, override_settings
from django.test.utils import isolate_apps
from django.views.debug import ExceptionReporter

from mcfields import EncryptedBinaryField, EncryptedTextField, conf
from mcfields._guest import get_guest
from mcfields.crypto import decode_key, to_text
from mcfields.exceptions import DecryptionError, GuestError, ValueTooLargeError
from tests.writes.writeapp.models import AutoItem, UuidItem

_MARKER = "mcfields-plaintext-marker-" + secrets.token_hex(12)
HUGE_PK = "p" * 70_000  # associated data over the guest's 64 KiB limit


def _plaintext() -> str:
    return _MARKER


def _plaintext_bytes() -> bytes:
    return _MARKER.encode()


def printed_forms(name: str, secret: bytes) -> dict[str, str]:
    """How a report can print ``secret`` or either half of it: bytes repr,
    hex, list of ints, standard and URL-safe base64."""
    forms: dict[str, str] = {}
    for part_name, part in (("", secret), (" first half", secret[:16]),
                            (" second half", secret[16:32])):
        forms.update({
            f"{name}{part_name} repr": repr(part)[2:-1],
            f"{name}{part_name} hex": part.hex(),
            f"{name}{part_name} HEX": part.hex().upper(),
            f"{name}{part_name} list": str(list(part))[1:-1],
        })
    # 15 bytes encode to 20 characters without padding: a prefix of the
    # encoding of the whole.
    forms[f"{name} base64"] = base64.b64encode(secret[:15]).decode()
    forms[f"{name} urlsafe base64"] = base64.urlsafe_b64encode(secret[:15]).decode()
    return forms


def secret_forms() -> dict[str, str]:
    settings_text = settings.MCFIELDS_KEYS[0]
    forms = {
        "plaintext": _MARKER,
        "settings key text": settings_text,
        "settings key text (first 20)": settings_text[:20],
    }
    forms.update(printed_forms("plaintext bytes", _plaintext_bytes()))
    forms.update(printed_forms("settings key", decode_key(settings_text)))
    forms.update(printed_forms("AEAD key", conf.get_keyring().primary._aead_key))
    return forms


def render_all(action: Callable[[], object], expected: type[BaseException]) -> dict[str, str]:
    """Run ``action``, which must raise ``expected``, and render Django's
    reports of the exception (HTML unescaped, so that escaped characters of
    a bytes repr match)."""
    request = RequestFactory().post("/notes/add/", {"title": "t"})
    try:
        action()
    except expected:
        exc_info = sys.exc_info()
    else:
        raise AssertionError(f"{expected.__name__} was not raised")
    reports: dict[str, str] = {}
    for debug in (True, False):
        with override_settings(DEBUG=debug):
            page = ExceptionReporter(request, *exc_info)
            email = ExceptionReporter(request, *exc_info, is_email=True)
            reports[f"html DEBUG={debug}"] = html.unescape(page.get_traceback_html())
            reports[f"text DEBUG={debug}"] = page.get_traceback_text()
            reports[f"email html DEBUG={debug}"] = html.unescape(email.get_traceback_html())
            reports[f"email text DEBUG={debug}"] = email.get_traceback_text()
    del exc_info
    return reports


def assert_no_secrets(reports: dict[str, str]) -> None:
    forms = secret_forms()
    found = sorted({f"{form} in {where}" for where, text in reports.items()
                    for form, printed in forms.items() if printed in text})
    assert not found, found[:10]


def assert_guest_memory_clean() -> None:
    """This thread's guest holds neither the AEAD key nor the plaintext."""
    memory = get_guest().memory_snapshot()
    aead_key = conf.get_keyring().primary._aead_key
    for secret in (aead_key, _plaintext_bytes()):
        assert not any(secret[i:i + 12] in memory for i in range(len(secret) - 11))


@pytest.fixture
def demo() -> Iterator[SimpleNamespace]:
    """Models that make the associated data too large: a string pk, and a
    70 KiB ``context=``.  No tables: the failures happen before any SQL."""
    with isolate_apps("testproject.demo"):

        class StringPkNote(models.Model):
            id = models.CharField(primary_key=True, max_length=100_000)
            body = EncryptedTextField()
            blob = EncryptedBinaryField(null=True)

            class Meta:
                app_label = "demo"

            def __str__(self) -> str:
                return "a note with a long pk"

        class LongContextNote(models.Model):
            body = EncryptedTextField(context="c" * 70_000)

            class Meta:
                app_label = "demo"

            def __str__(self) -> str:
                return "a note with a long context"

        yield SimpleNamespace(
            body=StringPkNote._meta.get_field("body"),
            blob=StringPkNote._meta.get_field("blob"),
            long_context=LongContextNote._meta.get_field("body"),
            StringPkNote=StringPkNote,
        )


def test_detector_finds_a_plaintext_in_a_frame() -> None:
    """Positive control: a local holding the plaintext (or a key) is shown by
    every report, DEBUG on or off, so the searches below can see a leak."""

    def leaky(value: str, key: bytes) -> None:
        raise ValueError("boom")

    aead_key = conf.get_keyring().primary._aead_key
    reports = render_all(lambda: leaky(_plaintext(), aead_key), ValueError)
    key_forms = printed_forms("AEAD key", aead_key).values()
    # The HTML reports print frame locals (the text ones print none).
    for where in ("html DEBUG=True", "html DEBUG=False", "email html DEBUG=True",
                  "email html DEBUG=False"):
        assert _MARKER in reports[where], where
        assert any(form in reports[where] for form in key_forms), where
    with pytest.raises(AssertionError):
        assert_no_secrets(reports)


# -- seal -------------------------------------------------------------------------


def test_seal_for_a_huge_string_pk(demo: SimpleNamespace) -> None:
    reports = render_all(lambda: demo.body.seal_for_pk(_plaintext(), HUGE_PK), ValueTooLargeError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_seal_of_bytes_for_a_huge_string_pk(demo: SimpleNamespace) -> None:
    reports = render_all(lambda: demo.blob.seal_for_pk(_plaintext_bytes(), HUGE_PK),
                         ValueTooLargeError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_seal_with_a_70_kib_context(demo: SimpleNamespace) -> None:
    reports = render_all(lambda: demo.long_context.seal_for_pk(_plaintext(), 1),
                         ValueTooLargeError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_seal_when_the_guest_traps(demo: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    """A GuestError from inside the guest call, after the key and the
    plaintext were copied into guest memory."""

    def trap(*args: int) -> int:
        raise GuestError("the guest trapped: injected")

    monkeypatch.setattr(get_guest(), "_seal_call", trap)
    monkeypatch.setattr(get_guest(), "_seal_text_call", trap)  # the text form's export
    reports = render_all(lambda: demo.body.seal_for_pk(_plaintext(), "7"), GuestError)
    assert_guest_memory_clean()
    monkeypatch.undo()
    assert_no_secrets(reports)


@pytest.mark.django_db
def test_model_save_with_a_huge_string_pk(demo: SimpleNamespace) -> None:
    reports = render_all(
        lambda: demo.StringPkNote(id=HUGE_PK, body=_plaintext()).save(), ValueTooLargeError
    )
    assert_no_secrets(reports)


# Every write path, failing while it seals (a value over the size cap):
# save() with each kind of pk, and the EncryptedManager bulk writes.
_WRITES: dict[str, Callable[[], object]] = {
    "create(), database-assigned pk": lambda: AutoItem.objects.create(secret=_plaintext()),
    "create(), uuid pk": lambda: UuidItem.objects.create(code="c", secret=_plaintext()),
    "save(), database-assigned pk": lambda: AutoItem(secret=_plaintext()).save(),
    "save(), uuid pk": lambda: UuidItem(code="c", secret=_plaintext()).save(),
    "update()": lambda: AutoItem.objects.update(secret=_plaintext()),
    "bulk_create()": lambda: AutoItem.objects.bulk_create([AutoItem(secret=_plaintext())]),
    "bulk_update()": lambda: AutoItem.objects.bulk_update(
        [_with_secret(AutoItem.objects.get())], ["secret"]),
}


def _with_secret(item: AutoItem) -> AutoItem:
    item.secret = _plaintext()
    return item


@pytest.mark.django_db
@pytest.mark.parametrize("write", sorted(_WRITES))
@pytest.mark.parametrize("general", [False, True], ids=["fast", "two-statement"])
def test_write_paths_over_the_size_cap(write: str, general: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcfields.preallocate.ENABLED", not general)
    AutoItem.objects.create(secret="short")
    with override_settings(MCFIELDS_MAX_VALUE_SIZE=8):
        reports = render_all(_WRITES[write], ValueTooLargeError)
    assert_no_secrets(reports)


# -- open -------------------------------------------------------------------------


def test_open_for_a_huge_string_pk(demo: SimpleNamespace) -> None:
    stored = demo.body.seal_for_pk(_plaintext(), "1")
    reports = render_all(lambda: demo.body.open_for_pk(stored, HUGE_PK), ValueTooLargeError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_open_of_a_value_that_is_not_text(demo: SimpleNamespace) -> None:
    """The value opens (right key, row and column) but is not UTF-8: the
    opened bytes must not stay in open_for_pk's frame."""
    envelope = conf.get_keyring().seal(b"\xff" + _plaintext_bytes(), demo.body.associated_data("1"))
    stored = to_text(envelope)
    reports = render_all(lambda: demo.body.open_for_pk(stored, "1"), DecryptionError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_open_under_another_row(demo: SimpleNamespace) -> None:
    stored = demo.body.seal_for_pk(_plaintext(), "1")
    reports = render_all(lambda: demo.body.open_for_pk(stored, "2"), DecryptionError)
    assert_no_secrets(reports)
    assert_guest_memory_clean()


def test_open_when_the_guest_traps(demo: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    stored = demo.body.seal_for_pk(_plaintext(), "1")

    def trap(*args: int) -> Any:
        raise GuestError("the guest trapped: injected")

    monkeypatch.setattr(get_guest(), "_open_call", trap)
    monkeypatch.setattr(get_guest(), "_open_text_call", trap)  # the text form's export
    reports = render_all(lambda: demo.body.open_for_pk(stored, "1"), GuestError)
    assert_guest_memory_clean()
    monkeypatch.undo()
    assert_no_secrets(reports)
