"""Watch the marketplace for matching offers, and optionally rent them, exactly once each.

One ``marketplace`` call per poll (the SDK paces it). Offers that match ``match``, are
available, accept the currency and cost at most ``max_price`` per day are ranked by
``rank`` (default: cheapest first) and reported as they appear and disappear. With a
``RentSpec`` the best ones are rented in order, on-demand with ``required_price`` locked to
the price seen; a lost race (``server-already-rented``, ``price-changed``, offline, too low)
moves on to the next candidate. Never more than ``count`` rentals and never past ``budget``
(the rule is in ``clore.workflows.plan``).

Exactly-once across crashes, restarts and concurrent watchers comes from the state file's
ledger (``clore.workflows.state``): the intent is written under the file's lock before
``create_order``, and a restarted watcher reconciles unsettled intents with ``my_orders``
before it rents anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import msgspec

from clore._clock import Clock
from clore._errors import (
    APIError,
    ApplicationError,
    AuthenticationError,
    DatabaseError,
    InvalidInputError,
    NotEnoughBalanceError,
    OrderUnconfirmedError,
    ParameterError,
    TransportError,
    UnexpectedResponseError,
)
from clore._wire import Order, Server
from clore.market.pricing import label
from clore.workflows._loop import RETRYABLE, Backoff, Schedule, error_event
from clore.workflows._protocols import WatchClient
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import enforce, register_limits
from clore.workflows.plan import Limits, RentSpec, planned_cost, planned_seconds
from clore.workflows.state import (
    Rental,
    RentalStatus,
    StateFile,
    counted,
    new_owner,
    reconcile,
    release_owner,
)

__all__ = ["WatchState", "Watcher", "default_rank", "watch"]

Rank = Callable[[Sequence[Server]], list[Server]]

# create_order failures after which we know nothing was rented: try the next candidate.
# (ApplicationError covers server-already-rented, price-changed, server-offline, too low...)
_REFUSED = (ApplicationError,)
# Failures that leave the outcome open: keep the intent and let reconcile() decide.
_UNKNOWN = (OrderUnconfirmedError, TransportError, UnexpectedResponseError, DatabaseError)


class WatchState(msgspec.Struct):
    """The watcher's state file: its rentals (intents and results)."""

    version: int = 1
    rentals: list[Rental] = []


def default_rank(price: Callable[[Server], float | None]) -> Rank:
    """Cheapest first, then by server id (deterministic)."""

    def rank(servers: Sequence[Server]) -> list[Server]:
        return sorted(servers, key=lambda s: (price(s) or 0.0, s.id))

    return rank


class Watcher:
    """The watch loop; iterate ``run()`` for its events (see the module docstring)."""

    def __init__(
        self,
        client: WatchClient,
        clock: Clock,
        *,
        match: Callable[[Server], bool] | None = None,
        rank: Rank | None = None,
        max_price: float | None = None,
        rent: RentSpec | None = None,
        currency: str = "bitcoin",
        spot: bool = False,
        count: int = 1,
        budget: float | None = None,
        limits: Limits | None = None,
        until: float | None = None,
        interval: float = 10.0,
        dry_run: bool = False,
        state: StateFile | None = None,
        grace: float = 60.0,
    ) -> None:
        if count < 1:
            raise ParameterError("count", "must be at least 1")
        if interval <= 0:
            raise ParameterError("interval", "must be positive")
        self.client = client
        self.clock = clock
        self.match = match or (lambda _server: True)
        self.pricing = rent or RentSpec(
            image="", currency=currency, order_type="spot" if spot else "on-demand"
        )
        self.rank = rank or default_rank(self.pricing.price_of)
        self.max_price = max_price
        self.rent = rent
        self.count = count
        self.budget = budget
        self.limits = limits or Limits()
        self.until = until
        self.interval = interval
        self.dry_run = dry_run
        # A dry run rents nothing, so it neither reads nor writes the ledger.
        self.state = None if dry_run else state
        self.grace = grace
        self._memory = WatchState()  # used when there is no state file, and for dry runs
        self._seen: dict[int, Server] = {}
        self._owner = ""

    # ---- ledger ------------------------------------------------------------------------

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

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Poll until done (count reached, ``until``) yielding events; Ctrl-C leaves state saved."""
        self._owner = new_owner()
        schedule = Schedule(self.clock, self.interval)
        backoff = Backoff(self.interval)
        try:
            while True:
                schedule.wait(self.until)
                now = self.clock.time()
                if self.until is not None and now >= self.until:
                    yield self._done("until")
                    return
                schedule.started()
                try:
                    yield from self._settle()
                    if self._renting_open():
                        servers = self.client.marketplace()
                        yield from self._report(servers)
                        if self.rent is not None:
                            yield from self._rent_best(servers)
                    elif self._finished():
                        yield self._done(self._closed_reason())
                        return
                    if self._guarding():
                        yield from self._guard()
                except RETRYABLE as exc:
                    delay = backoff.failed(exc)
                    schedule.delay(delay)
                    yield error_event("watch", self.clock.time(), exc, delay)
                    continue
                backoff.succeeded()
                if self._finished():
                    yield self._done(self._closed_reason())
                    return
        finally:
            release_owner(self._owner)

    def _renting_open(self) -> bool:
        if self.rent is None:
            return True
        rentals = self._load().rentals
        if len(counted(rentals)) >= self.count:
            return False
        return not (self.budget is not None and self._committed(rentals) >= self.budget)

    def _finished(self) -> bool:
        """Renting is closed, every intent is settled and no order needs guarding."""
        if self.rent is None or self._renting_open() or self._guarding():
            return False
        return all(r.status in ("rented", "void") for r in self._load().rentals)

    def _closed_reason(self) -> str:
        return "count" if len(self.rentals()) >= self.count else "budget"

    def _done(self, reason: str) -> Event:
        rentals = self.rentals()
        return make_event(
            "watch",
            "done",
            self.clock.time(),
            f"watch finished ({reason}): {len(rentals)} rental(s)",
            reason=reason,
            rentals=len(rentals),
            committed=self._committed(rentals),
        )

    # ---- settling intents ----------------------------------------------------------------

    def _settle(self) -> Iterator[Event]:
        """Reconcile pending/unconfirmed intents with ``my_orders`` (only when there are some)."""
        unsettled = [r for r in self._load().rentals if r.status in ("pending", "unconfirmed")]
        if not unsettled:
            return
        orders = self.client.my_orders(include_completed=True)
        with self._locked():
            current = self._load()
            changed = reconcile(current.rentals, orders, self.clock.time(), grace=self.grace)
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

    # ---- matching --------------------------------------------------------------------------

    def candidates(self, servers: Sequence[Server]) -> list[Server]:
        """Available, matching servers within ``max_price``, best first."""
        chosen = []
        for server in servers:
            if server.rented or not self.match(server):
                continue
            price = self.pricing.price_of(server)
            if price is None or (self.max_price is not None and price > self.max_price):
                continue
            chosen.append(server)
        return self.rank(chosen)

    def _report(self, servers: Sequence[Server]) -> Iterator[Event]:
        now = self.clock.time()
        current = {s.id: s for s in self.candidates(servers)}
        listed = {s.id: s for s in servers}
        for sid, server in current.items():
            if sid not in self._seen:
                price = self.pricing.price_of(server)
                yield make_event(
                    "watch",
                    "match",
                    now,
                    f"server {sid} matches at {amount(price)} {label(self.pricing.currency)}/day",
                    server=server,
                    price=price,
                    currency=self.pricing.currency,
                )
        for sid, old in self._seen.items():
            if sid in current:
                continue
            new = listed.get(sid)
            reason = "gone" if new is None else "rented" if new.rented else "no longer matches"
            yield make_event(
                "watch",
                "unmatch",
                now,
                f"server {sid} {reason}",
                server=new or old,
                reason=reason,
            )
        self._seen = current

    # ---- renting ---------------------------------------------------------------------------

    def _rent_best(self, servers: Sequence[Server]) -> Generator[Event, None, None]:
        for server in self.candidates(servers):
            if not self._renting_open():
                return
            outcome = yield from self._try_rent(server)
            if outcome == "stop":
                return

    def _try_rent(self, server: Server) -> Generator[Event, None, str]:
        assert self.rent is not None
        price = self.pricing.price_of(server)
        if price is None:
            return "next"
        seconds = planned_seconds(server, max_time=self.limits.max_time)
        cost = planned_cost(price, seconds, max_spend=self.limits.max_spend)
        now = self.clock.time()
        with self._locked():
            current = self._load()
            active = counted(current.rentals)
            if len(active) >= self.count:
                return "stop"
            if any(r.server_id == server.id and r.status != "rented" for r in active):
                return "next"  # another watcher is renting it right now
            committed = self._committed(current.rentals)
            if self.budget is not None and (cost is None or committed + cost > self.budget):
                yield make_event(
                    "watch",
                    "over_budget",
                    now,
                    f"server {server.id} skipped: planned cost "
                    f"{'unknown' if cost is None else f'{amount(cost)}'} exceeds the budget left "
                    f"({amount(self.budget - committed)} {label(self.pricing.currency)})",
                    server=server,
                    cost=cost,
                    committed=committed,
                    budget=self.budget,
                )
                return "next"
            rental = Rental(
                server_id=server.id,
                price=price,
                currency=self.pricing.currency,
                cost=cost or 0.0,
                planned_seconds=seconds,
                intent_at=now,
                owner=self._owner,
                pid=os.getpid(),
                status="rented" if self.dry_run else "pending",
                note="dry run" if self.dry_run else "",
            )
            if self.dry_run:
                self._memory.rentals.append(rental)
            else:
                current.rentals.append(rental)
                self._save(current)
        yield make_event(
            "watch",
            "renting",
            now,
            f"{'would rent' if self.dry_run else 'renting'} server {server.id} at "
            f"{amount(price)} {label(self.pricing.currency)}/day",
            server=server,
            price=price,
            currency=self.pricing.currency,
            order_type=self.rent.order_type,
            planned_seconds=seconds,
            cost=cost,
            dry_run=self.dry_run,
        )
        if self.dry_run:
            return "next"
        try:
            order = self.rent.create(self.client, server.id, price)
        except (NotEnoughBalanceError, AuthenticationError, ParameterError, InvalidInputError):
            # The next candidate would fail the same way: end the watch with the error.
            self._finish(rental.id, "void", None, "refused")
            raise
        except _REFUSED as exc:
            self._finish(rental.id, "void", None, str(exc))
            yield make_event(
                "watch",
                "rent_skipped",
                self.clock.time(),
                f"server {server.id} not rented ({exc.error or exc}); trying the next",
                server=server,
                reason=exc.error or type(exc).__name__,
                error=str(exc),
            )
            return "next"
        except _UNKNOWN as exc:
            # The order may exist: keep counting it until reconcile() finds out.
            self._finish(rental.id, "unconfirmed", None, str(exc))
            yield error_event("watch", self.clock.time(), exc, self.interval)
            return "stop"
        except APIError as exc:  # rate limit, invalid input...: refused before renting
            self._finish(rental.id, "void", None, str(exc))
            yield error_event("watch", self.clock.time(), exc, self.interval)
            return "stop"
        rentals = self._finish(rental.id, "rented", order.id, "")
        rental.status, rental.order_id = "rented", order.id
        register_limits(order.id, self.limits)
        yield self._rented_event(rental, order, rentals)
        return "next"

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
            f"{amount(rental.price)} {label(rental.currency)}/day ({len(active)}/{self.count})",
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
        now = self.clock.time()
        for order_id in mine:
            order = running.get(order_id) if order_id is not None else None
            if order is None:
                self._mark_ended(order_id)
                continue
            event = enforce(
                self.client, order, self.limits, now, lookahead=self.interval, source="watch"
            )
            if event is not None:
                self._mark_ended(order_id)
                yield event

    def _mark_ended(self, order_id: int | None) -> None:
        with self._locked():
            current = self._load()
            for rental in current.rentals:
                if rental.order_id == order_id and rental.status == "rented":
                    rental.note = "ended"
            self._save(current)


def watch(client: WatchClient, clock: Clock, **options: Any) -> Iterator[Event]:
    """Run a ``Watcher`` with ``options`` (its keyword arguments) and yield its events."""
    return Watcher(client, clock, **options).run()
