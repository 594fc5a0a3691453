"""AudioHook durations: the brief's regex, both ways."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s2s.telephony.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0S", 0.0), ("PT12.48S", 12.48), ("PT.5S", 0.5), ("PT1.5S", 1.5), ("PT42.6S", 42.6)],
)
def test_parse_accepts_the_protocol_form(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "PT", "PTS", "P1S", "PT1M", "PT1.S", "PT-1S", "PT1e3S", "pt1s", "PT1S ", "1.5"]
)
def test_parse_rejects_anything_else_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="not an AudioHook duration") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (-0.0, "PT0S"),
        (1.5, "PT1.5S"),
        (2.0, "PT2S"),
        (12.48, "PT12.48S"),
        (0.0004, "PT0S"),
        (1e-9, "PT0S"),
        (1e9, "PT1000000000S"),
        (3.14159, "PT3.142S"),
    ],
)
def test_format_has_no_exponent_and_at_most_three_decimals(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_format_rejects_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite and not negative"):
        format_duration(bad)


def test_format_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="number of seconds"):
        format_duration(True)


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_round_trip_within_a_millisecond(seconds: float) -> None:
    assert abs(parse_duration(format_duration(seconds)) - seconds) <= 0.0005 + 1e-9 * seconds
