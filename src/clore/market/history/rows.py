"""The layout of the history tables' rows, and how a ``Server`` maps to and from them.

A change row is ``(server, snap, static, online, rented, od_btc, od_clore, od_usd,
sp_btc, sp_clore, sp_usd, rating, ratings, reliability)``: prices per day, on-demand then
spot, in ``CURRENCY_COLUMNS`` order; NULL where the server lists no price in a currency
(and everything after ``online`` NULL in an ``online = 0`` row). See ``store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from clore._wire import Net, Price, Rating, Server
from clore.market.models import canonical_model

if TYPE_CHECKING:
    from clore._wire import Specs

__all__ = [
    "CURRENCY_COLUMNS",
    "ROW_COLUMNS",
    "HistoryError",
    "NoHistoryError",
    "RecordResult",
    "Row",
    "Snapshot",
    "StaticInfo",
    "StoreInfo",
    "build_server",
    "column_price",
    "rate_table",
    "row_key",
    "same_terms",
]

#: The currencies of the price columns, in column order.
CURRENCY_COLUMNS: Final = ("bitcoin", "CLORE-Blockchain", "USD-Blockchain")

#: Column order of a change row as the store reads and writes it.
ROW_COLUMNS: Final = (
    "server, snap, static, online, rented, od_btc, od_clore, od_usd, "
    "sp_btc, sp_clore, sp_usd, rating, ratings, reliability"
)

# Indexes into a change row tuple.
SERVER, SNAP, STATIC, ONLINE, RENTED = 0, 1, 2, 3, 4
PRICES = slice(5, 11)
RATING, RATINGS, RELIABILITY = 11, 12, 13

Row = tuple[Any, ...]
Key = tuple[Any, ...]


class HistoryError(ValueError):
    """A history request that cannot be answered as asked (bad time, bad file, ...)."""


class NoHistoryError(HistoryError):
    """The store holds no snapshot for the requested time range."""


@dataclass(frozen=True)
class Snapshot:
    """One recorded listing: its id, time, size and the USD rates then (or None)."""

    id: int
    t: float
    listed: int
    rates: Mapping[str, float] | None


@dataclass(frozen=True)
class StaticInfo:
    """A ``statics`` row without its record: which server, GPU text, GPU count, owner."""

    id: int
    server: int
    gpu: str
    gpus: int
    owner: int | None

    @property
    def model(self) -> str:
        """The exact GPU model (``clore.market.models.canonical_model`` of ``gpu``)."""
        return canonical_model(self.gpu)

    @property
    def host(self) -> int:
        """The host a listing counts for: its owner, or the server itself when unknown."""
        return self.owner if self.owner is not None else -self.server


@dataclass(frozen=True)
class RecordResult:
    """What one ``record``: the snapshot id (None when skipped), its size and the rows."""

    snapshot: int | None
    at: float
    servers: int
    changed: int
    offline: int
    skipped: bool = False


@dataclass(frozen=True)
class StoreInfo:
    """The store's size and span, for ``--info``."""

    path: str
    size_bytes: int
    snapshots: int
    first: float | None
    last: float | None
    servers: int
    change_rows: int
    statics: int


def row_key(server: Server) -> Key:
    """The compared volatile part of a listing, in column order from ``online``."""
    # Written out rather than looped over CURRENCY_COLUMNS: this runs for every server of
    # every snapshot, and must cost less than decoding the listing did.
    on_demand = server.price.on_demand.get
    spot = server.price.spot.get
    rating = server.rating
    return (
        1,
        1 if server.rented else 0,
        on_demand("bitcoin"),
        on_demand("CLORE-Blockchain"),
        on_demand("USD-Blockchain"),
        spot("bitcoin"),
        spot("CLORE-Blockchain"),
        spot("USD-Blockchain"),
        rating.avg,
        rating.cnt,
        round(server.reliability, 2),
    )


def _hardware(specs: Specs) -> Specs:
    """Specs without the measured speeds, which hosts re-measure without changing the offer."""
    return msgspec.structs.replace(specs, net=Net(cc=specs.net.cc), disk_speed=0)


def same_terms(old: Server, new: Server) -> bool:
    # The full comparison runs in C; the slower one only when measurements may differ.
    if old.specs != new.specs and _hardware(old.specs) != _hardware(new.specs):
        return False
    return (
        old.owner == new.owner
        and old.mrl == new.mrl
        and old.allowed_coins == new.allowed_coins
        and old.cuda_version == new.cuda_version
    )


def build_server(row: Row, record: Server) -> Server:
    """The ``Server`` a change row describes: its terms from ``record``, the rest from the row."""
    values = row[PRICES]
    n = len(CURRENCY_COLUMNS)
    on_demand = {c: v for c, v in zip(CURRENCY_COLUMNS, values[:n], strict=True) if v is not None}
    spot = {c: v for c, v in zip(CURRENCY_COLUMNS, values[n:], strict=True) if v is not None}
    return msgspec.structs.replace(
        record,
        price=Price(on_demand=on_demand, spot=spot),
        rented=bool(row[RENTED]),
        rating=Rating(avg=row[RATING] or 0, cnt=row[RATINGS] or 0),
        reliability=row[RELIABILITY] or 0,
    )


_COLUMN: Final = {currency: i for i, currency in enumerate(CURRENCY_COLUMNS)}
_USD: Final = "USD-Blockchain"


def rate_table(rates: Mapping[str, float] | None) -> dict[str, float]:
    """USD per unit of each currency, as ``clore.market.convert`` reads ``rates``."""
    table = {_USD: 1.0}
    if rates:
        table.update({key: float(value) for key, value in rates.items() if value})
    return table


def column_price(row: Row, target: str, pay: str, table: Mapping[str, float]) -> float | None:
    """A row's on-demand price per day in ``target``: ``clore.market.server_price``'s rule
    (own price, else the payment currency's, else the others' converted at ``table``)
    read straight from the columns, as statistics over many rows need it fast."""
    own = _COLUMN.get(target)
    if own is not None:
        value = row[5 + own]
        if value is not None:
            return float(value)
    goal = table.get(target)
    if goal is None:
        return None
    for i in _ORDER.get(pay, _DEFAULT_ORDER):
        amount = row[5 + i]
        if amount is not None:
            source = table.get(CURRENCY_COLUMNS[i])
            if source is not None:
                return float(amount) * source / goal
    return None


_DEFAULT_ORDER: Final = tuple(range(len(CURRENCY_COLUMNS)))
#: Which columns ``column_price`` converts from, by payment currency: it first.
_ORDER: Final = {
    currency: (i, *(j for j in _DEFAULT_ORDER if j != i)) for currency, i in _COLUMN.items()
}
