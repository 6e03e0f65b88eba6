"""End to end: the demo admin in Debian's chromium, driven by Playwright.

Logs in, adds a note with an encrypted body and an uploaded file, finds it
in the change list, edits it, and checks with SQL that only ciphertext is
stored; then shows that a row whose values were moved from another row
renders a per-row marker instead of a server error.

Screenshots of the change form go to a temporary folder; their paths are
printed to the terminal (and recorded as the ``screenshot`` property).

Needs ``/usr/bin/chromium`` (Debian's ``chromium`` package; never
``playwright install``).  Without it the tests skip, unless
``MCFIELDS_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes them fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_helpers import move_values, raw_values, tables_containing

from testproject.demo.models import Note

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
NOTES = "The vault code is 4417; tell nobody."
NOTES_EDITED = "The vault code changed to 9021."
FILE_BODY = b"%PDF-1.4\n" + b"encrypted-attachment-payload " * 80 + b"\x00\xff\n"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = (
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) "
            "to run the admin browser test"
        )
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is not None:
        if os.environ.get("MCFIELDS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MCFIELDS_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)

    # Playwright's sync API keeps an asyncio loop running in this thread; the
    # test's own ORM calls are plain synchronous code, so allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcfields-admin-screens")


@pytest.fixture
def page(browser: Any, live_server: Any, django_user_model: Any) -> Iterator[Any]:
    django_user_model.objects.create_superuser("root", "root@example.invalid", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "Log in" not in page.title()
    yield page
    context.close()
    assert errors == [], f"server errors during the test: {errors}"


def save_screenshot(page: Any, path: Path, request: Any, capsys: Any, label: str) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    request.node.user_properties.append((f"screenshot-{label}", str(path)))
    with capsys.disabled():
        print(f"\n[mcfields] screenshot of the {label}: {path}")


def test_create_list_edit_and_only_ciphertext_stored(
    page: Any, live_server: Any, shots: Path, request: Any, capsys: Any
) -> None:
    base = live_server.url
    # Add a document: plaintext notes and a file upload.
    page.goto(f"{base}/admin/demo/note/add/")
    page.fill("#id_title", "Vault procedures")
    page.fill("#id_body", NOTES)
    page.set_input_files(
        "#id_attachment",
        files=[{"name": "procedures.pdf", "mimeType": "application/pdf", "buffer": FILE_BODY}],
    )
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    assert "was added successfully" in page.inner_text(".messagelist")

    # The change list shows the plaintext notes and the file's size.
    row = page.locator("#result_list tbody tr", has_text="Vault procedures")
    assert row.count() == 1
    assert row.locator("td.field-body").inner_text() == NOTES
    size = row.locator("td.field-attachment").inner_text()
    assert re.fullmatch(r"2\.\d\sKB download", size), size
    assert "encrypted-attachment-payload" not in page.content()

    doc = Note.objects.get(title="Vault procedures")
    stored_notes, stored_file = raw_values(Note, doc.pk, "body", "attachment")
    assert stored_notes and NOTES not in stored_notes
    assert stored_file and b"encrypted-attachment-payload" not in stored_file

    # Open it: the text area holds the plaintext, the file shows its size.
    row.locator("th.field-title a").click()
    page.wait_for_selector("#id_body")
    assert page.input_value("#id_body") == NOTES
    assert re.fullmatch(r"2\.\d\sKB", page.inner_text(".field-attachment .mcfields-size"))
    assert "encrypted-attachment-payload" not in page.content()
    save_screenshot(page, shots / "change-form.png", request, capsys, "change form")

    # The download link returns the original bytes (same session cookies).
    href = page.get_attribute(".field-attachment a.mcfields-download", "href")
    download = page.request.get(base + href)
    assert download.status == 200 and download.body() == FILE_BODY
    assert download.headers["content-disposition"] == (
        f'attachment; filename="note-{doc.pk}-attachment.bin"'
    )

    # Edit the notes.
    page.fill("#id_body", NOTES_EDITED)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    assert "was changed successfully" in page.inner_text(".messagelist")
    assert page.input_value("#id_body") == NOTES_EDITED

    # In the database: ciphertext only, new envelope, file untouched.
    new_notes, new_file = raw_values(Note, doc.pk, "body", "attachment")
    assert new_notes != stored_notes and NOTES_EDITED not in new_notes
    assert new_file == stored_file
    for secret in (NOTES, NOTES_EDITED, "vault code", b"encrypted-attachment-payload"):
        assert tables_containing(secret) == set(), f"plaintext {secret!r} found in the database"
    fresh = Note.objects.get(pk=doc.pk)
    assert (fresh.body, fresh.attachment) == (NOTES_EDITED, FILE_BODY)


def test_row_that_fails_to_open_shows_marker(
    page: Any, live_server: Any, shots: Path, request: Any, capsys: Any
) -> None:
    base = live_server.url
    good = Note.objects.create(title="Healthy", body="healthy notes", attachment=b"ok")
    bad = Note.objects.create(title="Tampered", body="will not open", attachment=b"x" * 10)
    move_values(Note, good.pk, bad.pk, "body", "attachment")

    response = page.goto(f"{base}/admin/demo/note/")
    assert response.status == 200
    bad_row = page.locator("#result_list tbody tr", has_text="Tampered")
    good_row = page.locator("#result_list tbody tr", has_text="Healthy")
    assert bad_row.locator("td.field-body").inner_text().startswith("⚠ cannot decrypt (key id ")
    # Binary values are shown by their size without being opened (a moved one
    # is found out by its download); only the header's key id is checked.
    assert bad_row.locator("td.field-attachment").inner_text().startswith("2\xa0bytes")
    assert good_row.locator("td.field-body").inner_text() == "healthy notes"
    save_screenshot(page, shots / "changelist-undecryptable.png", request, capsys,
                    "change list with a row that fails to open")

    response = page.goto(f"{base}/admin/demo/note/{bad.pk}/change/")
    assert response.status == 200
    marker = page.locator(".field-body .mcfields-undecryptable")
    assert marker.inner_text().startswith("⚠ cannot decrypt (key id ")
    assert page.locator("#id_body").count() == 0
    assert page.locator("#id_title").input_value() == "Tampered"
    save_screenshot(page, shots / "change-form-undecryptable.png", request, capsys,
                    "change form of a row that fails to open")
