"""`make demo`: idempotent, one row in every demo model, and the rows read
well in the admin (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from testproject import demo_script
from testproject.demo.models import Comment, Contact, Note, SignedNote

pytestmark = pytest.mark.django_db

MODELS = (Note, SignedNote, Contact, Comment)


def run_demo() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert demo_script.main() == 0
    return out.getvalue()


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in MODELS}


def test_demo_fills_every_model_and_a_rerun_adds_nothing():
    first = run_demo()
    after_first = counts()
    assert all(n >= 1 for n in after_first.values()), after_first
    second = run_demo()
    assert counts() == after_first
    assert "UNEXPECTED" not in first + second
    assert "1 contact," in second and "1 contacts" not in second


def test_demo_rows_have_every_value():
    run_demo()
    signed = SignedNote.objects.get()
    assert signed.signer and signed.signature and signed.attachment
    contact = Contact.objects.get()
    assert contact.photo and contact.email and contact.remarks
    comment = Comment.objects.get()
    assert comment.text and comment.note_id == Note.objects.get(title="Visit 2026-11-24").pk


@pytest.fixture
def admin_client(client: Any) -> Any:
    user = get_user_model().objects.create_superuser("root", "r@example.invalid", "pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_demo_rows_read_well_in_the_admin(admin_client, model):
    run_demo()
    obj = model.objects.first()
    opts = model._meta
    changelist = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
    change = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/")
    for response in (changelist, change):
        assert response.status_code == 200
        html = response.content.decode()
        assert "cannot decrypt" not in html
        # A value shown as the Python repr of None or of bytes reads badly.
        assert ">None<" not in html and "b&#x27;" not in html

