"""`make demo`: idempotent, one row in every demo model, and the rows read
well in the admin (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from testproject import demo_script
from testproject.demo.models import Comment, Contact, Note, Patient, SignedNote

pytestmark = pytest.mark.django_db

MODELS = (Note, SignedNote, Contact, Comment, Patient)


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


def test_demo_patient_has_typed_values_stored_sealed():
    import datetime
    import decimal

    from django.db import connection

    output = run_demo()
    patient = Patient.objects.get()
    assert patient.date_of_birth == datetime.date(1906, 12, 9)
    assert patient.balance == decimal.Decimal("-12.50") and str(patient.balance) == "-12.50"
    assert patient.consented is True and patient.record["allergies"] == ["penicillin"]
    assert patient.last_visit.tzinfo is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT date_of_birth, balance, record, consented FROM demo_patient")
        stored = cursor.fetchone()
    assert all(isinstance(v, str) and v.startswith("mcf1:") for v in stored)
    # The demo prints each typed column as stored next to what the app reads.
    for line in ("Patient.date_of_birth", "datetime.date(1906, 12, 9) (date)",
                 "Decimal('-12.50') (Decimal)", "True (bool)", "(dict)", "(datetime)"):
        assert line in output, line
    assert "1 patient" in output


def test_demo_patient_change_form_has_typed_widgets(admin_client):
    run_demo()
    patient = Patient.objects.get()
    html = admin_client.get(f"/admin/demo/patient/{patient.pk}/change/").content.decode()
    assert 'class="vDateField"' in html and 'value="1906-12-09"' in html
    assert 'name="last_visit_0"' in html and 'name="last_visit_1"' in html
    assert 'type="checkbox" name="consented"' in html and "checked" in html
    assert 'value="-12.50"' in html
    changelist = admin_client.get("/admin/demo/patient/").content.decode()
    assert 'alt="True"' in changelist and "-12.50" in changelist


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

