"""The watcher's ledger: its state file, settling intents, and guarding what it rented.

The ledger (``clore.workflows.state``) makes renting exactly-once across crashes, restarts
and concurrent watchers: an intent is written under the file's lock before
``create_order`` and the order id after it, and unsettled intents are reconciled with
``my_orders`` before anything else is rented. A watch with limits also enforces them on
the orders it rented, one poll ahead.

The ledger lives where the client's pacing lives (``clore.workflows.state.shared_state``):
with a fleet's Redis configured (``CLORE_PACING_URL``, a profile's ``pacing_url``) every
machine watching with the same intent shares one ledger there, so they rent once between
them; otherwise it is this machine's file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

import msgspec

from clore._clock import Clock
from clore._wire import Order
from clore.market.pricing import label
from clore.workflows._loop import UNCERTAIN
from clore.workflows._protocols import WatchClient
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import (
    Breach,
    breach,
    cancelled_event,
    ended_record,
    enforce,
    register_limits,
)
from clore.workflows.plan import Limits
from clore.workflows.state import (
    Rental,
    RentalStatus,
    StateFile,
    counted,
    reconcile,
    shared_state,
)

__all__ = ["WatchLedger", "WatchState"]


class WatchState(msgspec.Struct):
    """The watcher's state file: its rentals (intents and results)."""

    version: int = 1
    rentals: list[Rental] = []


class WatchLedger:
    """The state-file side of ``clore.workflows.Watcher`` (its attributes are set there)."""

    client: WatchClient
    clock: Clock
    api_time: TimeBase
    _state: StateFile | None
    count: int
    limits: Limits
    interval: float
    grace: float
    dry_run: bool
    _memory: WatchState
    _cancels_in_doubt: dict[int, tuple[Order, Breach]]  # order id -> (last seen, limit)

    @property
    def state(self) -> StateFile | None:
        """The ledger: the state file given, or its fleet form when the client paces in
        a fleet's Redis (set ``client`` first)."""
        return self._state

    @state.setter
    def state(self, value: StateFile | None) -> None:
        self._state = shared_state(value, getattr(self, "client", None))

    def _load(self) -> WatchState:
        if self.state is None:
            return self._memory
        return self.state.read(WatchState) or WatchState()

    def _save(self, value: WatchState) -> None:
        if self.state is not None:
            self.state.write(value)

    def _locked(self) -> AbstractContextManager[None]:
        # An in-memory watch has nobody to share its ledger with: nothing to lock.
        return self.state.locked() if self.state is not None else nullcontext()

    def rentals(self) -> list[Rental]:
        """The rentals this watch counts (pending, unconfirmed and rented)."""
        return counted(self._load().rentals)

    def _committed(self, rentals: list[Rental]) -> float:
        return sum(r.cost for r in counted(rentals))

    # ---- settling intents ----------------------------------------------------------------

    def _settle(self) -> Iterator[Event]:
        """Reconcile pending/unconfirmed intents with ``my_orders`` (only when there are some)."""
        unsettled = [r for r in self._load().rentals if r.status in ("pending", "unconfirmed")]
        if not unsettled:
            return
        orders = self.client.my_orders(include_completed=True)
        with self._locked():
            current = self._load()
            changed = reconcile(
                current.rentals,
                orders,
                self.clock.time(),
                grace=self.grace,
                in_flight=None if self.state is None else self.state.in_flight,
            )
            if changed:
                self._save(current)
        for rental in changed:
            if rental.status == "rented" and rental.order_id is not None:
                register_limits(rental.order_id, self.limits)
                order = next((o for o in orders if o.id == rental.order_id), None)
                yield self._rented_event(rental, order, current.rentals)
            else:
                yield make_event(
                    "watch",
                    "rent_skipped",
                    self.clock.time(),
                    f"intent on server {rental.server_id} settled: nothing was rented",
                    server_id=rental.server_id,
                    reason=rental.note,
                    error=None,
                )

    def _finish(
        self, rental_id: str, status: RentalStatus, order_id: int | None, note: str
    ) -> list[Rental]:
        with self._locked():
            current = self._load()
            for rental in current.rentals:
                if rental.id == rental_id:
                    rental.status = status
                    rental.order_id = order_id
                    rental.note = note
            self._save(current)
        return current.rentals

    def _rented_event(self, rental: Rental, order: Order | None, rentals: list[Rental]) -> Event:
        active = counted(rentals)
        return make_event(
            "watch",
            "rented",
            self.clock.time(),
            f"rented server {rental.server_id} as order {rental.order_id} at "
            f"{amount(rental.price, rental.currency)} {label(rental.currency)}/day "
            f"({len(active)}/{self.count})",
            order=order,
            order_id=rental.order_id,
            server_id=rental.server_id,
            price=rental.price,
            currency=rental.currency,
            cost=rental.cost,
            rentals=len(active),
            committed=self._committed(rentals),
        )

    # ---- guarding the watch's own orders ---------------------------------------------------

    def _guarding(self) -> bool:
        """True while limits apply to orders this watch rented that may still run."""
        if not self.limits or self.dry_run:
            return False
        return any(
            r.status == "rented" and r.order_id is not None and r.note != "ended"
            for r in self._load().rentals
        )

    def _guard(self) -> Iterator[Event]:
        mine = {r.order_id for r in self._load().rentals if r.status == "rented"}
        running = {o.id: o for o in self.client.my_orders() if not o.expired}
        now = self.api_time.now()
        lookahead = self.api_time.to_server(self.interval)
        for order_id in mine:
            order = running.get(order_id) if order_id is not None else None
            if order is None:
                yield from self._settle_cancel(order_id)
                self._mark_ended(order_id)
                continue
            try:
                event = enforce(self.client, order, self.limits, now, lookahead=lookahead,
                                source="watch", at=self.clock.time())  # fmt: skip
            except UNCERTAIN:
                # The cancel may have happened: when the order shows ended, it is reported
                # as this guard's cancel rather than forgotten as an order that just ended.
                crossed = breach(order, now, self.limits, lookahead=lookahead)
                if crossed is not None:
                    self._cancels_in_doubt[order.id] = (order, crossed)
                raise
            if event is not None:
                self._mark_ended(order_id)
                yield event

    def _settle_cancel(self, order_id: int | None) -> Iterator[Event]:
        doubt = self._cancels_in_doubt.pop(order_id, None) if order_id is not None else None
        if doubt is None or order_id is None:
            return
        last_seen, crossed = doubt
        final = ended_record(self.client, order_id) or last_seen
        yield cancelled_event(final, crossed, self.clock.time(), source="watch", reconciled=True)

    def _mark_ended(self, order_id: int | None) -> None:
        with self._locked():
            current = self._load()
            for rental in current.rentals:
                if rental.order_id == order_id and rental.status == "rented":
                    rental.note = "ended"
            self._save(current)
