"""mcfields.E211-E213: a plain ModelAdmin whose search_fields, ordering or
list_filter reaches an encrypted field is a system check error, because at
run time it is a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.core.exceptions import FieldError

from mcfields.admin import EncryptedModelAdmin, check_admin_registrations
from testproject.demo.models import Comment, Note


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


@pytest.fixture
def plain_site() -> Iterator[admin.AdminSite]:
    site = admin.AdminSite(name="plain-check-test")
    yield site
    for model in list(site._registry):
        site.unregister(model)


def _ours(site: admin.AdminSite) -> list[Any]:
    return [m for m in check_admin_registrations() if f"'{site.name}'" in m.msg]


def test_search_fields_on_an_encrypted_field_is_an_error(plain_site):
    class NoteAdmin(admin.ModelAdmin):
        search_fields = ["title", "body"]

    plain_site.register(Note, NoteAdmin)
    messages = _ours(plain_site)
    assert ids(messages) == ["mcfields.W210", "mcfields.E211"]
    warning, error = messages
    assert "search" in warning.msg
    assert "NoteAdmin.search_fields[1] ('body')" in error.msg
    assert "demo.Note.body" in error.msg and "500" in error.msg
    assert "EncryptedModelAdmin" in error.hint and "remove 'body' from search_fields" in error.hint
    assert error.obj is NoteAdmin


def test_ordering_and_list_filter_and_paths_are_errors(plain_site):
    class CommentAdmin(admin.ModelAdmin):
        search_fields = ["^note__body"]
        ordering = ["-text", "id"]
        list_filter = ["note__title", ("remarks", admin.EmptyFieldListFilter)]

    plain_site.register(Comment, CommentAdmin)
    messages = _ours(plain_site)
    assert ids(messages) == ["mcfields.W210", "mcfields.E211", "mcfields.E212",
                             "mcfields.E213"]
    assert "demo.Note.body" in messages[1].msg
    assert "ordering[0] ('-text')" in messages[2].msg
    assert "list_filter[1] ('remarks')" in messages[3].msg


def test_plain_options_on_plain_fields_only_warn(plain_site):
    class NoteAdmin(admin.ModelAdmin):
        search_fields = ["title"]
        ordering = ["title"]
        list_filter = ["created"]

    plain_site.register(Note, NoteAdmin)
    assert ids(_ours(plain_site)) == ["mcfields.W210"]


def test_the_mixin_skips_them_so_no_error(plain_site):
    class NoteAdmin(EncryptedModelAdmin):
        search_fields = ["title", "body"]

    plain_site.register(Note, NoteAdmin)
    assert _ours(plain_site) == []


@pytest.fixture
def plain_urls() -> Iterator[None]:
    yield
    # The URLconf's site registers a plain admin on import; take it out again
    # so that other tests' checks do not see it.
    from tests.browser import admin_plain_urls

    for model in list(admin_plain_urls.site._registry):
        admin_plain_urls.site.unregister(model)


@pytest.mark.django_db
@pytest.mark.urls("tests.browser.admin_plain_urls")
def test_why_it_is_an_error_a_plain_admin_search_fails(client, plain_urls):
    Note.objects.create(title="t", body="b")
    # Without a search the page renders; a search reaches the encrypted
    # field and the field refuses the lookup (a 500 outside the test client).
    assert client.get("/plain/demo/note/").status_code == 200
    with pytest.raises(FieldError, match="demo.Note.body"):
        client.get("/plain/demo/note/", {"q": "b"})
