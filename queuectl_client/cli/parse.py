"""Parsing of command-line values shared by several commands: durations and times."""

from __future__ import annotations

import re
import time

from protocol.times import parse_iso, to_iso

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '12h', '7d' or '2w' to seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 90s, 15m, 12h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_since(text: str) -> str:
    """A moment as an ISO 8601 time, or as a duration back from now ('1h'): ISO UTC."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        try:
            return to_iso(time.time() - seconds)
        except (OverflowError, OSError, ValueError):  # before year 1, or beyond time_t
            raise ValueError(f"{text!r} reaches back further than any date") from None
    try:
        return to_iso(parse_iso(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time nor a duration (like 90s, 15m, 12h, 7d)"
        ) from None
