"""The orders last listed, per API endpoint, kept on this machine for shell completion.

``clore orders`` remembers the orders it showed (``remember``); ``clore cancel <TAB>``,
``order <TAB>`` and ``ssh <TAB>`` complete from them (``recall``), so completion sends no
request. One file, ``recent-orders.json`` in the cache directory (mode 0600, replaced
atomically under a lock), holds one entry per endpoint (a base URL, or a label such as
``sandbox:embedded``): the same id on another API is another order. Each listing replaces
its endpoint's entry; the newest ``MAX_ENDPOINTS`` endpoints are kept, each with at most
``MAX_ORDERS`` orders. The file is a convenience: one that cannot be read holds no
orders, and is replaced by the next listing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import msgspec

from clore._files import locked, write_atomic
from clore._paths import cache_dir
from clore._wire import Order
from clore.market.models import canonical_model

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_ORDERS",
    "RECENT_FILE",
    "RecentOrder",
    "recall",
    "recent_path",
    "remember",
]

RECENT_FILE: Final = "recent-orders.json"
#: Orders kept per endpoint (a listing rarely shows more; completion offers them all).
MAX_ORDERS: Final = 200
#: Endpoints kept (the real API, a sandbox or two, a profile's other URL).
MAX_ENDPOINTS: Final = 8
_VERSION: Final = 1


class RecentOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One order as the last listing showed it: enough to describe it in a completion."""

    id: int
    server_id: int = 0
    gpu: str = ""
    spot: bool = False
    ended: bool = False

    def describe(self) -> str:
        """``server 18811, RTX 4090, spot, ended``: a completion's description."""
        parts = [f"server {self.server_id}"]
        if self.gpu:
            parts.append(self.gpu)
        if self.spot:
            parts.append("spot")
        if self.ended:
            parts.append("ended")
        return ", ".join(parts)


class _Entry(msgspec.Struct):
    endpoint: str
    listed_at: float = 0.0
    orders: list[RecentOrder] = []


class _File(msgspec.Struct):
    version: int = _VERSION
    entries: list[_Entry] = []


def recent_path() -> Path:
    """Where the recent orders live: ``cache_dir()/recent-orders.json``."""
    return cache_dir() / RECENT_FILE


def _read(path: Path) -> _File:
    try:
        return msgspec.json.decode(path.read_bytes(), type=_File)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return _File()


def _recent(order: Order) -> RecentOrder:
    model = order.specs.gpu_model
    gpu = canonical_model(model) or model if model else ""
    count = order.specs.gpu_count
    return RecentOrder(
        id=order.id,
        server_id=order.si,
        gpu=f"{count}× {gpu}" if gpu and count > 1 else gpu,
        spot=order.spot,
        ended=order.expired,
    )


def remember(endpoint: str, orders: Iterable[Order], *, now: float | None = None) -> None:
    """Keep ``orders`` (a listing, newest first or not) as ``endpoint``'s recent orders,
    replacing what the previous listing of that endpoint left. Raises ``OSError`` when the
    file cannot be written."""
    kept = [_recent(order) for order in orders][:MAX_ORDERS]
    entry = _Entry(endpoint=endpoint, listed_at=time.time() if now is None else now, orders=kept)
    path = recent_path()
    with locked(path.with_name(RECENT_FILE + ".lock")):
        current = _read(path)
        others = [e for e in current.entries if e.endpoint != endpoint]
        others.sort(key=lambda e: e.listed_at, reverse=True)
        document = _File(entries=[entry, *others[: MAX_ENDPOINTS - 1]])
        write_atomic(path, msgspec.json.encode(document))


def recall(endpoint: str) -> list[RecentOrder]:
    """The orders the last listing of ``endpoint`` showed, in its order; ``[]`` when there
    was none (or the file cannot be read)."""
    for entry in _read(recent_path()).entries:
        if entry.endpoint == endpoint:
            return list(entry.orders)
    return []
