"""full_clean() runs the base field's validation on the plaintext: the same
errors as the plain field, none for values the plain field accepts."""

from __future__ import annotations

import decimal

import pytest
from django.core.exceptions import ValidationError

from tests.typed.typesapp.models import Generic, PlainTyped, Typed

pytestmark = pytest.mark.django_db

D = decimal.Decimal

REFUSED = [
    ("char", "x" * 21, "at most 20 characters"),
    ("email", "not-an-email", "valid email"),
    ("email", "a@" + "b" * 250 + ".org", "at most 254 characters"),
    ("url", "not a url", "valid URL"),
    ("url", "javascript:alert(1)", "valid URL"),
    ("amount", D("1234567.1"), "no more than 6 digits before the decimal point"),
    ("amount", D("123456789"), "no more than 8 digits in total"),
    ("amount", D("1.123"), "no more than 2 decimal places"),
    ("amount", "abc", "must be a decimal number"),
    ("positive", -1, "greater than or equal to 0"),
    ("integer", "twelve", "must be an integer"),
    ("day", "2026-02-30", "invalid date"),
    ("token", "nope", "is not a valid UUID"),
]


def _id(case: object) -> str:
    return repr(case)[:40]


@pytest.mark.parametrize(("name", "value", "message"), REFUSED, ids=_id)
def test_base_field_validation_runs_in_full_clean(name, value, message):
    with pytest.raises(ValidationError) as caught:
        Typed(**{name: value}).full_clean()
    errors = caught.value.message_dict
    assert list(errors) == [name]
    assert any(message in text for text in errors[name]), errors


@pytest.mark.parametrize(
    ("name", "value"),
    [("char", "x" * 20), ("email", "ada@example.org"), ("url", "https://example.org/a?b=c"),
     ("amount", D("999999.99")), ("positive", 0), ("integer", -5), ("data", {}),
     ("flag", False), ("char", ""), ("ratio", float("inf"))],
    ids=_id,
)
def test_valid_values_pass_full_clean(name, value):
    Typed(**{name: value}).full_clean()


@pytest.mark.parametrize(
    ("name", "value"),
    [("integer", 2**31), ("integer", -(2**31) - 1), ("big", 2**63), ("positive", 2**31),
     ("integer", 2**31 - 1)],
    ids=_id,
)
def test_integer_ranges_are_the_plain_fields_on_this_database(name, value):
    """The column holds text, but the value keeps the range of its type on
    the database in use (what the plain field's validators enforce)."""

    def errors(obj: object) -> list[str]:
        try:
            obj.full_clean()
        except ValidationError as exc:
            return exc.message_dict.get(name, [])
        return []

    expected = errors(PlainTyped(**{name: value}))
    assert errors(Typed(**{name: value})) == expected


def test_generic_base_fields_validate_too():
    with pytest.raises(ValidationError) as caught:
        Generic(slug="not a slug", small="x", price=D("12345.6"), status="zzz").full_clean()
    assert set(caught.value.message_dict) == {"slug", "small", "price", "status"}


def test_blank_and_null_follow_the_field_options():
    from datetime import date

    from tests.typed.typesapp.models import Required

    with pytest.raises(ValidationError) as caught:
        Required(day=None, amount=None).full_clean()
    # data's default {} is blank, and blank=False refuses it: so does the
    # plain JSONField(default=dict).
    assert set(caught.value.message_dict) == {"day", "amount", "data"}
    Required(day=date(2026, 1, 1), amount=D("1"), data={"a": 1}).full_clean()


def test_json_that_does_not_encode_fails_full_clean_like_the_plain_field():
    with pytest.raises(ValidationError) as plain:
        PlainTyped(data={"a": {1, 2}}).full_clean()
    with pytest.raises(ValidationError) as encrypted:
        Typed(data={"a": {1, 2}}).full_clean()
    assert encrypted.value.message_dict == plain.value.message_dict
