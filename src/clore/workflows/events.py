"""Typed events that every workflow yields, and their stable JSON form.

One ``Event`` class serves all loops so that a consumer (the CLI renderer, ``--jsonl``,
``--on-event`` commands, webhooks) handles a single shape. ``kind`` says what happened;
``details`` holds the kind's extra fields (listed in ``DETAILS`` below, part of the schema).
A ``message`` writes amounts and durations by the output rules (``clore.market.units``:
``0.00005800 BTC/day``, ``expires in 12 min``); ``details`` has the exact figures.

JSON object (``Event.to_json()``), schema version 1, keys always present::

    {"v": 1, "source": "watch|monitor|spot|guard|hooks", "kind": "...",
     "at": 1700000000.0, "time": "2023-11-14T22:13:20Z", "message": "human text",
     "order_id": 12 | null, "server_id": 34 | null, "details": {...},
     "order": {my_orders record} | null, "server": {marketplace record} | null}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal

import msgspec

from clore._wire import Order, Server

# The loops' messages write amounts by the output rules (re-exported for them).
from clore.market.units import amount

__all__ = ["DETAILS", "SCHEMA_VERSION", "Event", "EventKind", "Source", "amount", "make_event"]

SCHEMA_VERSION: Final = 1

Source = Literal["watch", "monitor", "spot", "guard", "hooks"]

EventKind = Literal[
    # watch
    "match",
    "unmatch",
    "renting",
    "rented",
    "rent_skipped",
    "over_budget",
    "done",
    "history_alert",
    # monitor
    "tracking",
    "created",
    "ready",
    "outbid",
    "paused",
    "resumed",
    "price_changed",
    "expiring",
    "expired",
    "cancelled",
    "spend",
    "low_runway",
    # spot keeper
    "bid_raised",
    "bid_lowered",
    "lower_wait",
    "cap_exceeded",
    "lost",
    "recovering",
    "recovered",
    "recovery_failed",
    # guards
    "guard_cancelled",
    # every loop
    "error",
    "hook_failed",
    "hook_dropped",
]

#: The ``details`` keys of each kind (values are JSON scalars unless noted).
DETAILS: Final[Mapping[str, tuple[str, ...]]] = {
    "match": ("price", "currency"),
    "unmatch": ("reason",),
    "renting": ("price", "currency", "order_type", "planned_seconds", "cost", "dry_run"),
    "rented": ("price", "currency", "cost", "rentals", "committed"),
    "rent_skipped": ("reason", "error"),
    "over_budget": ("cost", "committed", "budget"),
    "done": ("reason", "rentals", "committed"),
    # a --when condition on the market and its history started to hold (once per episode);
    # value and threshold are per GPU-day in currency for price metrics; baseline STAT@WINDOW
    "history_alert": (
        "condition",
        "metric",
        "op",
        "value",
        "threshold",
        "baseline",
        "currency",
        "selection",
    ),
    "tracking": ("ready",),
    "created": (),
    "ready": ("ssh", "http_url"),
    "outbid": ("bid", "winning_bid"),
    "paused": ("reason",),
    "resumed": ("was",),
    "price_changed": ("old", "new", "currency"),
    "expiring": ("time_left", "lead"),
    "expired": ("spend", "currency"),
    "cancelled": ("spend", "currency", "time_left"),
    "spend": ("threshold", "spend", "currency"),
    "low_runway": ("currency", "balance", "burn_per_day", "runway_seconds", "threshold"),
    "bid_raised": ("old", "new", "winning_bid", "cap"),
    "bid_lowered": ("old", "new", "floor"),
    "lower_wait": ("wait", "target"),
    "cap_exceeded": ("winning_bid", "needed", "cap"),
    "lost": ("reason",),
    "recovering": ("reason", "price", "bid"),
    "recovered": ("old_order_id", "bid", "recoveries"),
    "recovery_failed": ("reason", "error"),
    # reconciled: the cancel's answer was lost and my_orders showed the order ended
    "guard_cancelled": ("reason", "limit", "value", "max", "reconciled"),
    "error": ("error", "type", "retry_in", "fatal"),
    "hook_failed": ("hook", "target", "error", "attempts", "event_kind"),
    # an event whose hooks were not run: the queue was full, or the loop ended first
    "hook_dropped": ("reason", "event_kind", "queued"),
}


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something a workflow saw or did: ``kind`` at unix time ``at``, about ``order``/``server``."""

    source: Source
    kind: EventKind
    at: float
    message: str
    order: Order | None = None
    server: Server | None = None
    order_id: int | None = None
    server_id: int | None = None
    details: dict[str, Any] = {}

    @property
    def time(self) -> str:
        """``at`` as an ISO 8601 UTC timestamp with milliseconds."""
        return _iso(self.at)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready object with the stable schema of this module's docstring."""
        return {
            "v": SCHEMA_VERSION,
            "source": self.source,
            "kind": self.kind,
            "at": round(self.at, 3),
            "time": self.time,
            "message": self.message,
            "order_id": self.order_id,
            "server_id": self.server_id,
            "details": msgspec.to_builtins(self.details),
            "order": None if self.order is None else msgspec.to_builtins(self.order),
            "server": None if self.server is None else msgspec.to_builtins(self.server),
        }

    def to_json_line(self) -> str:
        """``to_json()`` as one compact line (no trailing newline), for ``--jsonl``."""
        return msgspec.json.encode(self.to_json()).decode()


def make_event(
    source: Source,
    kind: EventKind,
    at: float,
    message: str,
    *,
    order: Order | None = None,
    server: Server | None = None,
    order_id: int | None = None,
    server_id: int | None = None,
    **details: Any,
) -> Event:
    """Build an Event, deriving ``order_id``/``server_id`` from the records when not given."""
    if order is not None:
        order_id = order.id if order_id is None else order_id
        server_id = order.si if server_id is None else server_id
    if server is not None and server_id is None:
        server_id = server.id
    return Event(
        source=source,
        kind=kind,
        at=at,
        message=message,
        order=order,
        server=server,
        order_id=order_id,
        server_id=server_id,
        details=details,
    )
