"""``domain.numbers.parse_natural``: the one integer reader of the desk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.numbers import BIGINT_MAX, parse_natural


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("7", 7), ("0042", 42), (str(BIGINT_MAX), BIGINT_MAX)],
)
def test_ascii_digits_are_read(text, value):
    assert parse_natural(text) == value


@pytest.mark.parametrize(
    "text",
    [None, "", "²", "١٢", "\uff15", "+5", "-5", " 5", "5 ", "5_000", "5.0", "0x10",
     str(BIGINT_MAX + 1), "9" * 5000],
)  # fmt: skip
def test_anything_else_is_none(text):
    assert parse_natural(text) is None


@given(st.text(max_size=30))
def test_never_raises_and_agrees_with_a_regex(text):
    import re

    expected = int(text) if re.fullmatch(r"[0-9]{1,19}", text) else None
    if expected is not None and expected > BIGINT_MAX:
        expected = None
    assert parse_natural(text) == expected
