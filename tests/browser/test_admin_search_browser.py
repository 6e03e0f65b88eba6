"""The admin's exact search on a searchable field, in Debian's chromium:
typing a value into the change list's search box finds its row through the
blind index (tests/search covers the same view through Django's client)."""

from __future__ import annotations

from typing import Any

import pytest
from test_admin_browser import browser, page  # noqa: F401 - fixtures

from tests.databases import stored_value
from tests.search.searchapp.models import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def search(page: Any, base: str, term: str) -> list[str]:  # noqa: F811
    page.goto(f"{base}/admin/searchapp/person/")
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#changelist-search")
    return sorted(page.locator("#result_list tbody tr th").all_inner_texts()) if (
        page.locator("#result_list").count()) else []


def test_exact_search_box_finds_the_row(page: Any, live_server: Any) -> None:  # noqa: F811
    Person.objects.create(name="Ann", email="ann@example.com", national_id="AX-1")
    Person.objects.create(name="Bob", email="bob@example.com", national_id="BX-2")
    base = live_server.url
    assert search(page, base, "ANN@example.com") == ["Ann"]  # casefolded email
    assert search(page, base, "BX-2") == ["Bob"]
    assert search(page, base, "bx-2") == []  # the national id is case-sensitive
    assert search(page, base, "nobody@example.com") == []
    ann = Person.objects.get(email="ann@example.com")
    assert stored_value(Person, "email", ann.pk, "default").startswith("mcf1:")  # sealed
