"""Text forms for the loops' command line: one progress line per event, and time options.

Pure and click-free, so ``clore orders --watch``, ``clore monitor`` and tests share them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Final

from clore.workflows.events import Event

__all__ = ["parse_duration", "parse_until", "render_event"]

#: Kinds that deserve attention in a terminal (the CLI may colour them).
ALERT_KINDS: Final = frozenset(
    {"outbid", "paused", "cancelled", "low_runway", "cap_exceeded", "lost", "error",
     "hook_failed", "hook_dropped", "recovery_failed", "guard_cancelled", "over_budget",
     "history_alert"}
)  # fmt: skip

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE: Final = re.compile(r"(\d*\.?\d+)\s*([smhdw]?)", re.IGNORECASE)


def render_event(event: Event, *, utc: bool = True) -> str:
    """``2024-05-01 12:00:03  rented          rented server 7 as order 12 …``."""
    moment = datetime.fromtimestamp(event.at, tz=timezone.utc if utc else None)
    return f"{moment:%Y-%m-%d %H:%M:%S}  {event.kind:<15} {event.message}"


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m``, ``.5h``;
    ValueError otherwise."""
    compact = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(compact):
        match = _DURATION_RE.match(compact, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 2h, 1d or 1h30m")
        total += float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 15m, 2h, 1d or 1h30m")
    return total


def parse_until(text: str, now: float) -> float:
    """Unix time from ``2024-05-01T18:00`` (local unless it has a zone), ``18:00`` (next
    occurrence, local), or a unix timestamp; ValueError otherwise."""
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value > 1e9:
            return value
        raise ValueError(f"bad time {text!r}: a unix timestamp, HH:MM or an ISO date-time")
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", raw)
    if clock:
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        base = datetime.fromtimestamp(now).astimezone()
        target = base.replace(hour=hour, minute=minute, second=second, microsecond=0)
        stamp = target.timestamp()
        return stamp if stamp > now else stamp + 86400.0
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad time {text!r}: a unix timestamp, HH:MM or an ISO date-time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.timestamp()
