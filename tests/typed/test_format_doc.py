"""docs/FORMAT.md's "Plaintext encodings" examples are what the codecs
write and read: each example row is evaluated and checked, so the
document cannot drift from mcfields.plaintext."""

from __future__ import annotations

import ast
import datetime
import decimal
import math
import re
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from django.db import models
from django.test import override_settings

from mcfields.plaintext import codec_for

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"
NAMES = {
    "models": models, "Decimal": decimal.Decimal, "date": datetime.date,
    "time": datetime.time, "datetime": datetime.datetime, "UTC": datetime.UTC,
    "ZoneInfo": zoneinfo.ZoneInfo, "UUID": uuid.UUID, "float": float,
}


def example_rows() -> list[tuple[str, str, str, str]]:
    text = FORMAT_MD.read_text(encoding="utf-8")
    block = re.search(r"<!-- plaintext-examples -->\n(.*?)<!-- /plaintext-examples -->",
                      text, flags=re.S)
    assert block, "FORMAT.md lost its plaintext examples"
    rows = []
    for line in block.group(1).strip().splitlines()[2:]:  # after header and rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        rows.append(tuple(c.strip("`") for c in cells))
    return rows


ROWS = example_rows()


def test_every_encoding_has_an_example():
    # Every registered codec appears in at least one row.
    used = {codec_for(eval(row[0], NAMES)).name for row in ROWS}  # noqa: S307 - the doc's own text
    assert used == {"text", "bytes", "integer", "decimal", "float", "boolean", "date", "time",
                    "datetime", "uuid", "json"}


def same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(expected, float):
        return got == expected and math.copysign(1, got) == math.copysign(1, expected)
    if isinstance(expected, decimal.Decimal):
        return type(got) is decimal.Decimal and str(got) == str(expected)
    if isinstance(expected, datetime.datetime):
        return got == expected and got.utcoffset() == expected.utcoffset()
    return type(got) is type(expected) and got == expected


@override_settings(USE_TZ=True)
@pytest.mark.parametrize(("field_src", "value_src", "bytes_src", "read_src"), ROWS,
                         ids=[f"{r[0]}={r[1]}"[:60] for r in ROWS])
def test_doc_example_matches_the_codec(field_src, value_src, bytes_src, read_src):
    field = eval(field_src, NAMES)  # noqa: S307 - the doc's own text
    value = eval(value_src, NAMES)  # noqa: S307
    plaintext = ast.literal_eval(bytes_src)
    assert isinstance(plaintext, bytes)
    codec = codec_for(field)
    assert codec.to_bytes(field, value) == plaintext
    expected = eval(read_src, NAMES) if read_src else value  # noqa: S307
    assert same(codec.from_bytes(field, plaintext), expected)
