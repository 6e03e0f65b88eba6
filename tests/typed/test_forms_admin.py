"""Typed fields in ModelForms and in the admin: the base field's form field
and admin widgets (the plain twin's, field by field), values shown and
edited as the plain field's, through Django's test client."""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from mcfields.admin import EncryptedModelAdmin, EncryptedTabularInline
from mcfields.fields import EncryptedDateField
from mcfields.forms import EncryptedModelForm
from tests.typed.admin_urls import site
from tests.typed.conftest import raw
from tests.typed.typesapp.models import Generic, PlainTyped, Required, Typed

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.typed.admin_urls"),
    # Django 5.x's forms.URLField warns about its default scheme for any
    # URLField without assume_scheme (the plain model field's too); a
    # message filter, because the warning class is gone in Django 6.
    pytest.mark.filterwarnings("ignore:The default scheme will be changed"),
]

D = decimal.Decimal
TWIN_FIELDS = [f.name for f in PlainTyped._meta.concrete_fields if f.name != "id"]


def model_form(model: type, base: type = forms.ModelForm) -> type[forms.ModelForm]:
    return forms.modelform_factory(model, form=base, fields="__all__")


# -- ModelForm -------------------------------------------------------------------


@pytest.mark.parametrize("name", TWIN_FIELDS)
def test_model_form_uses_the_plain_fields_form_field(name):
    encrypted = model_form(Typed)().fields[name]
    plain = model_form(PlainTyped)().fields[name]
    assert type(encrypted) is type(plain)
    assert type(encrypted.widget) is type(plain.widget)
    assert encrypted.required == plain.required
    for option in ("max_length", "max_digits", "decimal_places", "min_value", "max_value"):
        assert getattr(encrypted, option, None) == getattr(plain, option, None), option


@pytest.mark.parametrize(
    ("model", "name", "form_class"),
    [
        (Typed, "day", forms.DateField),
        (Typed, "moment", forms.DateTimeField),
        (Typed, "clock", forms.TimeField),
        (Typed, "flag", forms.NullBooleanField),
        (Required, "flag", forms.BooleanField),
        (Typed, "data", forms.JSONField),
        (Typed, "amount", forms.DecimalField),
        (Typed, "ratio", forms.FloatField),
        (Typed, "positive", forms.IntegerField),
        (Typed, "token", forms.UUIDField),
        (Typed, "email", forms.EmailField),
        (Typed, "url", forms.URLField),
        (Typed, "text", forms.CharField),
        (Generic, "slug", forms.SlugField),
        (Generic, "status", forms.TypedChoiceField),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_model_form_field_classes(model, name, form_class):
    field = model_form(model)().fields[name]
    assert type(field) is form_class


def test_model_form_field_options_come_from_the_base_field():
    fields = model_form(Typed)().fields
    assert (fields["amount"].max_digits, fields["amount"].decimal_places) == (8, 2)
    assert fields["char"].max_length == 20 and fields["positive"].min_value == 0
    assert isinstance(fields["text"].widget, forms.Textarea)
    assert "binary" not in fields  # not editable by default, like BinaryField


def test_model_form_creates_typed_values():
    form = model_form(Typed)(data={
        "label": "f", "char": "c", "integer": "-3", "amount": "1.5", "ratio": "0.25",
        "flag": "false", "day": "2026-12-02", "moment": "2026-12-02 09:30", "clock": "09:30",
        "token": "0f8fad5b-d9cb-469f-a165-70867728950e", "data": '{"a": [1, null]}',
        "email": "a@example.org", "url": "https://example.org", "positive": "0", "big": "",
    })
    assert form.is_valid(), form.errors
    obj = Typed.objects.get(pk=form.save().pk)
    assert (obj.integer, obj.amount, obj.ratio, obj.flag, obj.day, obj.clock, obj.data,
            obj.positive, obj.big) == (-3, D("1.50"), 0.25, False, datetime.date(2026, 12, 2),
                                       datetime.time(9, 30), {"a": [1, None]}, 0, None)
    assert obj.token == uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert obj.moment.tzinfo is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [("amount", "1.234"), ("amount", "x"), ("day", "2026-02-30"), ("data", "{not json"),
     ("email", "nope"), ("positive", "-1"), ("char", "x" * 21), ("token", "nope"),
     ("integer", str(2**70))],
)
def test_model_form_refuses_bad_input_with_a_form_error(name, value):
    form = model_form(Typed)(data={name: value})
    assert not form.is_valid()
    assert name in form.errors
    assert not Typed.objects.exists()


def test_encrypted_model_form_keeps_untouched_values_and_writes_changed_ones():
    obj = Typed.objects.create(label="x", amount=D("1"), data={"a": 1}, flag=True,
                               day=datetime.date(2026, 1, 1))
    before = {n: raw(Typed, n, obj.pk) for n in ("amount", "data", "flag", "day")}
    form_class = forms.modelform_factory(
        Typed, form=EncryptedModelForm, fields=["label", "amount", "data", "flag", "day"])
    loaded = Typed.objects.get(pk=obj.pk)
    initial = form_class(instance=loaded).initial
    data = {"label": "x", "amount": str(initial["amount"]), "data": '{"a": 1}',
            "flag": "true", "day": "2026-01-02"}
    form = form_class(data=data, instance=loaded)
    assert form.is_valid(), form.errors
    form.save()
    for name in ("amount", "data", "flag"):
        assert raw(Typed, name, obj.pk) == before[name], name
    assert raw(Typed, "day", obj.pk) != before["day"]
    assert Typed.objects.get(pk=obj.pk).day == datetime.date(2026, 1, 2)


# -- admin widgets -----------------------------------------------------------------


def formfield(model_admin: Any, model: type, name: str, **kwargs: Any) -> Any:
    request = RequestFactory().get("/")
    return model_admin.formfield_for_dbfield(model._meta.get_field(name), request, **kwargs)


@pytest.mark.parametrize("name", TWIN_FIELDS)
def test_admin_uses_the_plain_fields_admin_widget(name):
    encrypted = formfield(site._registry[Typed], Typed, name)
    plain = formfield(site._registry[PlainTyped], PlainTyped, name)
    assert type(encrypted) is type(plain)
    assert type(encrypted.widget) is type(plain.widget)


@pytest.mark.parametrize(
    ("model", "name", "widget"),
    [
        (Typed, "day", widgets.AdminDateWidget),
        (Typed, "moment", widgets.AdminSplitDateTime),
        (Typed, "clock", widgets.AdminTimeWidget),
        (Typed, "text", widgets.AdminTextareaWidget),
        (Typed, "char", widgets.AdminTextInputWidget),
        (Typed, "email", widgets.AdminEmailInputWidget),
        (Typed, "url", widgets.AdminURLFieldWidget),
        (Typed, "integer", widgets.AdminIntegerFieldWidget),
        (Typed, "big", widgets.AdminBigIntegerFieldWidget),
        (Typed, "token", widgets.AdminUUIDInputWidget),
        (Required, "flag", forms.CheckboxInput),
        (Generic, "day", widgets.AdminDateWidget),
        (Generic, "stamp", widgets.AdminSplitDateTime),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_admin_widgets_of_the_base_field(model, name, widget):
    field = formfield(site._registry[model], model, name)
    assert type(field.widget) is widget
    if widget is widgets.AdminSplitDateTime:
        assert type(field) is forms.SplitDateTimeField


def test_an_override_for_the_encrypted_class_wins_over_the_base_fields():
    class Custom(EncryptedModelAdmin):
        formfield_overrides = {EncryptedDateField: {"widget": forms.TextInput(attrs={"x": "1"})}}

    field = formfield(Custom(Typed, admin.AdminSite()), Typed, "day")
    assert type(field.widget) is forms.TextInput and field.widget.attrs["x"] == "1"


def test_an_override_for_the_plain_class_applies_to_the_encrypted_field():
    class Custom(EncryptedModelAdmin):
        formfield_overrides = {datetime_date_field(): {"widget": forms.TextInput}}

    assert type(formfield(Custom(Typed, admin.AdminSite()), Typed, "day").widget) is (
        forms.TextInput)


def datetime_date_field() -> type:
    from django.db import models

    return models.DateField


def test_explicit_widget_wins_over_the_overrides():
    field = formfield(site._registry[Typed], Typed, "day", widget=forms.TextInput)
    assert type(field.widget) is forms.TextInput


def test_inlines_get_the_base_fields_admin_widgets():
    class TypedInline(EncryptedTabularInline):
        model = Typed

    inline = TypedInline(PlainTyped, admin.AdminSite())
    assert type(formfield(inline, Typed, "day").widget) is widgets.AdminDateWidget
    assert type(formfield(inline, Typed, "text").widget) is widgets.AdminTextareaWidget


# -- admin pages -----------------------------------------------------------------


@pytest.fixture
def client(client: Any, django_user_model: Any) -> Any:
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.invalid", "pw"))
    return client


def url(name: str, *args: Any) -> str:
    return reverse(f"types:{name}", args=args)


def cells(html: str, name: str) -> list[str]:
    return re.findall(rf'<t[dh] class="field-{re.escape(name)}[^"]*">(.*?)</t[dh]>', html, re.S)


@override_settings(LANGUAGE_CODE="en-us", USE_THOUSAND_SEPARATOR=False)
def test_changelist_shows_typed_values_as_the_plain_admin_does(client):
    values = {"char": "c", "integer": 1234, "amount": D("1.5"), "ratio": 0.5, "flag": False,
              "day": datetime.date(2026, 12, 2),
              "moment": datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC),
              "clock": datetime.time(9, 30), "token": uuid.UUID(int=1),
              "data": {"a": [1, None, "é"]}}
    Typed.objects.create(**values)
    PlainTyped.objects.create(**values)
    encrypted = client.get(url("typesapp_typed_changelist")).content.decode()
    plain = client.get(url("typesapp_plaintyped_changelist")).content.decode()
    for name in values:
        assert cells(encrypted, name) == cells(plain, name), name
    assert 'alt="False"' in cells(encrypted, "flag")[0]
    assert cells(encrypted, "amount") == ["1.50"]
    assert cells(encrypted, "data") == ["{&quot;a&quot;: [1, null, &quot;é&quot;]}"]


def test_changelist_shows_none_as_the_plain_admin_does(client):
    Typed.objects.create()
    PlainTyped.objects.create()
    encrypted = client.get(url("typesapp_typed_changelist")).content.decode()
    plain = client.get(url("typesapp_plaintyped_changelist")).content.decode()
    for name in ("flag", "day", "amount", "data", "integer"):
        assert cells(encrypted, name) == cells(plain, name), name


def test_change_form_shows_typed_widgets_with_their_values(client):
    obj = Typed.objects.create(day=datetime.date(2026, 12, 2), flag=True, amount=D("1.5"),
                               moment=datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC),
                               data={"a": 1})
    html = client.get(url("typesapp_typed_change", obj.pk)).content.decode()
    assert re.search(r'<input[^>]*name="day"[^>]*class="vDateField"|'
                     r'<input[^>]*class="vDateField"[^>]*name="day"', html)
    assert 'value="2026-12-02"' in html
    assert 'name="moment_0"' in html and 'name="moment_1"' in html
    assert 'value="1.50"' in html
    assert "&quot;a&quot;: 1" in html
    assert "Sealed" not in html and "mcf1:" not in html


def test_admin_add_and_change_round_trip(client):
    response = client.post(url("typesapp_required_add"), {
        "id": str(uuid.UUID(int=7)), "flag": "on", "day": "2026-12-02", "amount": "2.5",
        "data": '{"k": [true]}', "count": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    obj = Required.objects.get()
    assert (obj.flag, obj.day, obj.amount, obj.data, obj.count) == (
        True, datetime.date(2026, 12, 2), D("2.500"), {"k": [True]}, 0)
    # Unticking the checkbox stores False (sealed "0"), never NULL.
    response = client.post(url("typesapp_required_change", obj.pk), {
        "id": str(obj.pk), "day": "2026-12-02", "amount": "2.500", "data": '{"k": [true]}',
        "count": "0",
    })
    assert response.status_code == 302
    assert Required.objects.get().flag is False
    assert raw(Required, "flag", obj.pk) is not None


def test_admin_split_datetime_is_saved(client):
    response = client.post(url("typesapp_generic_add"), {
        "stamp_0": "2026-12-02", "stamp_1": "09:30:00", "day": "2026-01-01",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    obj = Generic.objects.get()
    # Entered in the current timezone, as for a plain DateTimeField.
    assert obj.stamp == timezone.make_aware(datetime.datetime(2026, 12, 2, 9, 30))
    assert obj.day == datetime.date(2026, 1, 1)


def test_admin_bad_typed_input_is_a_form_error(client):
    response = client.post(url("typesapp_required_add"), {
        "id": str(uuid.UUID(int=8)), "day": "2026-02-30", "amount": "x", "data": "{",
        "count": "1.5",
    })
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="errorlist') >= 4
    assert not Required.objects.exists()
