"""AudioHook durations: ISO-8601 in seconds only (``PT0S``, ``PT12.48S``, ``PT.5S``).

The protocol writes every duration (``position``, ``rtt``, ``start``, ``discarded``,
``retryAfter``, ``discardTo``) as ``^PT(\\d*\\.)?\\d+S$``: no minutes or hours, no sign, no
exponent. :func:`parse_duration` accepts exactly that form; :func:`format_duration` writes it
with at most 3 decimals and no trailing zeros.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_DURATION = re.compile(r"^PT(\d*\.)?\d+S$")


def parse_duration(value: str) -> float:
    """Seconds of an AudioHook duration; ValueError naming ``value`` when it is not one."""
    if not isinstance(value, str) or _DURATION.fullmatch(value) is None:
        raise ValueError(f"not an AudioHook duration (PT<seconds>S): {value!r}")
    return float(value[2:-1])


def format_duration(seconds: float) -> str:
    """``seconds`` (finite, ≥ 0) as ``PT<s>S``, rounded to milliseconds: 1.5 → ``PT1.5S``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"a duration must be a number of seconds, not {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and not negative, not {seconds!r}")
    # abs(): -0.0 passes the check above but would print a sign.
    text = f"{abs(seconds):.3f}".rstrip("0").rstrip(".")
    return f"PT{text}S"
