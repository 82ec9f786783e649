"""Durations (``5m``, ``24h``, ``7d``) and moments (ISO 8601, unix seconds, ``3h`` ago)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Final

from clore.market.history.rows import HistoryError

__all__ = ["format_duration", "format_time", "parse_duration", "parse_time"]

_UNITS: Final = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_DURATION_RE: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``5m``, ``24h``, ``7d``, ``2w``; ``HistoryError`` otherwise."""
    match = _DURATION_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise HistoryError(f"bad duration {text!r}: use a number with s, m, h, d or w (5m, 7d)")
    seconds = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(seconds):
        raise HistoryError(f"bad duration {text!r}")
    return seconds


def parse_time(text: str, now: float) -> float:
    """A moment: ``now``, a duration ago (``3h``, ``7d``), unix seconds or ISO 8601 (UTC
    unless the text names a zone)."""
    raw = text.strip()
    if raw.lower() == "now":
        return now
    try:
        number: float | None = float(raw)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number) and number > 1e8:
        return number  # unix seconds; a smaller bare number is seconds ago
    try:
        return now - parse_duration(raw)
    except HistoryError:
        pass
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise HistoryError(
            f"bad time {text!r}: use an ISO date (2024-05-01T12:00), unix seconds, "
            "or a duration ago (3h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_time(t: float) -> str:
    """``2024-05-01 12:00Z`` (UTC, minutes)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def format_duration(seconds: float) -> str:
    """``5m``, ``1h``, ``7d`` (the largest unit that divides it), else seconds."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
