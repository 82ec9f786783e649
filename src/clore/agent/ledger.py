"""The orders the agent created, remembered across runs, and what they count against
the caps: ``AgentLedger`` (``data_dir()/agent/orders.json``) and ``Usage``.

Each rental is recorded as an intent *before* ``create_order`` is sent (a
``clore.workflows.state.Rental``: ``pending``, then ``rented`` with the order id,
``unconfirmed`` when the SDK could not tell whether the order exists, ``void`` when
nothing was rented), with what it may cost at most: the price × its maximum time plus
the renter fee and the creation fee, in its currency and in USD at the rate of the
moment (``max_cost``, ``max_cost_usd``, ``usd_rate``). An unconfirmed intent is settled
against ``my_orders`` (``clore.workflows.state.reconcile``): an order on its server
created since becomes the agent's (and gets its maximum time registered), none within a
minute makes it void. Entries name their API (``endpoint``): the sandbox's orders are
not the real API's.

**What counts** (``usage``), over the last 24 hours (``DAY``, by when the agent created
the order): an order still running, or whose intent is not settled, counts its maximum
cost (or what it has cost already, if more); an ended order what it cost — its spend plus
the renter fee, plus the creation fee (counted whether or not the free first 10 minutes
waived it). ``live`` is the agent's orders still running plus unsettled intents: that is
what ``max_live_orders`` caps. Orders older than a week that have ended are dropped from
the file.

The file is JSON (``clore.workflows.StateFile``: atomic, 0600, changed under its lock).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from clore._paths import data_dir
from clore._wire import Order
from clore.workflows.state import Rental, StateFile, reconcile

__all__ = [
    "DAY",
    "ORDERS_FILE",
    "AgentLedger",
    "AgentOrder",
    "LedgerError",
    "Usage",
    "UsageLine",
    "new_intent",
]

ORDERS_FILE: Final = "orders.json"
#: The window of the daily cap, seconds.
DAY: Final = 86400.0
_KEEP: Final = 7 * DAY
_VERSION: Final = 1
#: Seconds an unconfirmed intent waits for its order to show in my_orders.
_GRACE: Final = 60.0


class LedgerError(ValueError):
    """The agent's orders file cannot be read (the message names the file only)."""


class AgentOrder(msgspec.Struct, kw_only=True):
    """One rental of the agent: the intent (``rental``) and what it may cost."""

    endpoint: str
    rental: Rental
    spot: bool = False
    ct: float | None = None
    max_seconds: float
    fee_percent: float = 0.0
    creation_fee: float = 0.0
    max_cost: float
    usd_rate: float | None = None
    max_cost_usd: float | None = None
    ended: bool = False
    spend: float = 0.0
    kind: str = "rent"

    @property
    def order_id(self) -> int | None:
        return self.rental.order_id

    @property
    def status(self) -> str:
        return self.rental.status

    def actual_cost(self) -> float:
        """What it has cost so far, in its currency (spend + renter fee + creation fee)."""
        return self.spend * (1.0 + self.fee_percent / 100.0) + self.creation_fee

    def counted_cost(self) -> float:
        """What it counts against the caps, in its currency (see the module docstring)."""
        if self.ended:
            return self.actual_cost()
        return max(self.max_cost, self.actual_cost())

    def counted_usd(self) -> float | None:
        return None if self.usd_rate is None else self.counted_cost() * self.usd_rate


class _Document(msgspec.Struct, kw_only=True):
    v: int = _VERSION
    orders: list[AgentOrder] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class UsageLine:
    """One order (or intent) of the agent in the window."""

    entry: AgentOrder
    counted: float
    counted_usd: float | None
    live: bool


@dataclass(frozen=True)
class Usage:
    """The agent's orders in the last 24 hours: what they count in USD, how many run."""

    used_usd: float
    live: int
    lines: list[UsageLine] = field(default_factory=list)
    #: Orders whose cost in USD is unknown (no rate when they were made).
    unpriced: int = 0


class AgentLedger:
    """The agent's orders on ``endpoint`` (the file at ``path``, default
    ``data_dir()/agent/orders.json``)."""

    def __init__(self, endpoint: str, path: Path | str | None = None) -> None:
        self.endpoint = endpoint
        self.file = StateFile(
            Path(path) if path is not None else data_dir() / "agent" / ORDERS_FILE
        )

    @property
    def path(self) -> Path:
        return self.file.path

    def _read(self) -> _Document:
        try:
            found = self.file.read(_Document)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise LedgerError(f"{self.path} is damaged; fix or remove it") from None
        return found or _Document()

    def entries(self) -> list[AgentOrder]:
        """Every entry of this endpoint, oldest first."""
        return [e for e in self._read().orders if e.endpoint == self.endpoint]

    def created(self, order_id: int) -> AgentOrder | None:
        """The entry of ``order_id`` when the agent created it (on this endpoint)."""
        return next((e for e in self.entries() if e.order_id == order_id), None)

    def record(self, entry: AgentOrder) -> None:
        """Add ``entry`` (an intent, written before ``create_order`` is sent)."""
        with self.file.locked():
            document = self._read()
            document.orders.append(entry)
            self.file.write(document)

    def update(self, entry: AgentOrder) -> None:
        """Replace the entry with ``entry``'s intent id."""
        with self.file.locked():
            document = self._read()
            document.orders = [
                entry if e.rental.id == entry.rental.id else e for e in document.orders
            ]
            self.file.write(document)

    def settle(self, orders: Iterable[Order], now: float) -> list[AgentOrder]:
        """Bring the entries up to date with ``my_orders(include_completed=True)``:
        unsettled intents reconciled, spend and end copied, old ended entries dropped.
        Returns the entries that became rented by reconciling (their order is the agent's
        now: the caller registers its maximum time)."""
        listed = list(orders)
        by_id = {o.id: o for o in listed}
        adopted: list[AgentOrder] = []
        with self.file.locked():
            document = self._read()
            before = msgspec.json.encode(document)
            mine = [e for e in document.orders if e.endpoint == self.endpoint]
            # Orders the agent already knows are not someone else's late commit.
            changed = reconcile([e.rental for e in mine], listed, now, grace=_GRACE)
            changed_ids = {r.id for r in changed}
            for entry in mine:
                if entry.rental.id in changed_ids and entry.rental.status == "rented":
                    adopted.append(entry)
                order = by_id.get(entry.order_id) if entry.order_id is not None else None
                if order is not None:
                    entry.ct = float(order.ct)
                    entry.spend = max(entry.spend, float(order.spend))
                    entry.ended = bool(order.expired)
                elif entry.status == "rented" and entry.order_id is not None:
                    # Not listed at all any more: long ended.
                    entry.ended = True
            document.orders = [
                e
                for e in document.orders
                if e.endpoint != self.endpoint
                or not (now - e.rental.intent_at > _KEEP and (e.ended or e.status == "void"))
            ]
            if msgspec.json.encode(document) != before:
                self.file.write(document)
        return adopted

    def usage(self, now: float, *, window: float = DAY) -> Usage:
        """What the entries created within ``window`` seconds of ``now`` count."""
        lines: list[UsageLine] = []
        used = 0.0
        live = 0
        unpriced = 0
        for entry in self.entries():
            if entry.status == "void":
                continue
            running = not entry.ended
            if running:
                live += 1
            if now - entry.rental.intent_at > window:
                continue
            usd = entry.counted_usd()
            if usd is None:
                unpriced += 1
            else:
                used += usd
            lines.append(UsageLine(entry, entry.counted_cost(), usd, running))
        return Usage(used_usd=used, live=live, lines=lines, unpriced=unpriced)


def new_intent(
    *,
    server_id: int,
    price: float,
    currency: str,
    cost: float,
    seconds: float,
    intent_at: float,
    intent_server_at: float | None,
    owner: str,
) -> Rental:
    """A ``pending`` rental intent of this process."""
    return Rental(
        server_id=server_id,
        price=price,
        currency=currency,
        cost=cost,
        planned_seconds=seconds,
        intent_at=intent_at,
        intent_server_at=intent_server_at,
        owner=owner,
        pid=os.getpid(),
    )
