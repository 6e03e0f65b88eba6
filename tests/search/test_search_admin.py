"""The admin's exact search ("=field") on searchable fields, and the checks
that still refuse or warn about every other search on encrypted fields."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from mcfields.admin import EncryptedModelAdmin, check_admin_registrations

from .searchapp.models import Person, Typed, Visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def names(client: Client, url: str, term: str) -> list[str]:
    response = client.get(url, {"q": term})
    assert response.status_code == 200
    return sorted(str(obj) for obj in response.context["cl"].result_list)


def test_exact_search_finds_rows_by_encrypted_value(staff: Client) -> None:
    Person.objects.create(name="ann", email="Ann@Example.com", national_id="A-1")
    Person.objects.create(name="bob", email="bob@example.com", national_id="B-2")
    url = "/admin/searchapp/person/"
    assert names(staff, url, "ann@example.com") == ["ann"]  # casefolded
    assert names(staff, url, "B-2") == ["bob"]
    assert names(staff, url, "b-2") == []  # national_id is case-sensitive
    assert names(staff, url, "bob") == ["bob"]  # the plain field, as before
    assert names(staff, url, "nobody@example.com") == []
    response = staff.get(url, {"q": "bob@example.com"})
    assert b"Search did not look in encrypted fields" not in response.content


def test_exact_search_across_a_relation_and_on_typed_fields(staff: Client) -> None:
    ann = Person.objects.create(name="ann", email="ann@example.com")
    Visit.objects.create(person=ann, code="V-9")
    assert len(staff.get("/admin/searchapp/visit/", {"q": "ANN@example.com"})
               .context["cl"].result_list) == 1
    Typed.objects.create(day=datetime.date(2026, 12, 2), number=5)
    url = "/admin/searchapp/typed/"
    for term, found in (("2026-12-02", 1), ("5", 1), ("abc", 0), ("6", 0)):
        response = staff.get(url, {"q": term})
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == found, term


@pytest.fixture
def plain_site() -> Iterator[admin.AdminSite]:
    site = admin.AdminSite(name="plain-search-test")
    yield site
    for model in list(site._registry):
        site.unregister(model)


def _ours(site: admin.AdminSite) -> list[Any]:
    return [m.id for m in check_admin_registrations() if f"'{site.name}'" in m.msg]


def test_plain_admin_exact_search_is_allowed_only_with_a_case_folding_index(plain_site):
    class CaseFolded(admin.ModelAdmin):
        search_fields = ["=email"]

    plain_site.register(Person, CaseFolded)
    assert _ours(plain_site) == ["mcfields.W210"]  # Django's iexact is answered
    plain_site.unregister(Person)

    class CaseSensitive(admin.ModelAdmin):
        search_fields = ["=national_id", "note"]

    plain_site.register(Person, CaseSensitive)
    assert _ours(plain_site) == ["mcfields.W210", "mcfields.E211", "mcfields.E211"]


def test_encrypted_admin_warns_about_non_exact_searches() -> None:
    class Mixed(EncryptedModelAdmin):
        search_fields = ["=email", "email", "^national_id", "=note"]

    found = [m.id for m in Mixed(Person, admin.site).check()]
    assert found == ["mcfields.W201", "mcfields.W201", "mcfields.W201"]
