"""Watch the marketplace for matching offers, and optionally rent them, exactly once each.

One ``marketplace`` call per poll (the SDK paces it). Offers that match ``match``, are
available, accept the currency and cost at most ``max_price`` per day are ranked by
``rank`` (default: cheapest first) and reported as they appear and disappear. With a
``RentSpec`` the best ones are rented in order, on-demand with ``required_price`` locked to
the price seen; a lost race (``server-already-rented``, ``price-changed``, offline, too low)
moves on to the next candidate. Never more than ``count`` rentals and never past ``budget``
(the rule is in ``clore.workflows.plan``).

Exactly-once across crashes, restarts and concurrent watchers comes from the state file's
ledger (``clore.workflows.watch_ledger``): the intent is written under the file's lock
before ``create_order``, and a restarted watcher reconciles unsettled intents with
``my_orders`` before it rents anything.

With a ``HistoryWatch`` (``clore.workflows.history_watch``) each listing fetched is also
checked against conditions on the market and its history (``history_alert`` events, once
per episode) and fed to the history store: no request is spent twice. The episodes are
kept in the same state file (``WatchFile.episodes``), so a restarted watch does not report
an episode again. ``report=False`` leaves out the ``match``/``unmatch`` events (a watch
that only alerts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

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
from clore._explain import Explained
from clore._redis import ServerClaimedError
from clore._wire import Server
from clore.market.pricing import label
from clore.market.units import duration
from clore.workflows._loop import Schedule, as_event, error_event, poll_loop
from clore.workflows._protocols import WatchClient
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import register_limits
from clore.workflows.plan import Limits, RentSpec, planned_cost, planned_seconds
from clore.workflows.state import Rental, StateFile, counted, new_owner, release_owner
from clore.workflows.watch_ledger import WatchLedger, WatchState

if TYPE_CHECKING:
    from clore.workflows.history_watch import HistoryWatch

__all__ = ["WatchFile", "WatchState", "Watcher", "default_rank", "watch"]

Rank = Callable[[Sequence[Server]], list[Server]]

# create_order failures after which we know nothing was rented: try the next candidate.
# (ApplicationError covers server-already-rented, price-changed, server-offline, too low...)
# A server another create_order of the fleet kept claimed past the wait: nothing was sent.
_REFUSED = (ApplicationError, ServerClaimedError)
# Failures that leave the outcome open: keep the intent and let reconcile() decide.
_UNKNOWN = (OrderUnconfirmedError, TransportError, UnexpectedResponseError, DatabaseError)


def _why(exc: Exception) -> str:
    return getattr(exc, "error", None) or str(exc)


class WatchFile(WatchState):
    """The watcher's state file: the ledger's rentals, and the episodes of its alert
    conditions (condition -> holding at the last check)."""

    episodes: dict[str, bool] = msgspec.field(default_factory=dict)


def default_rank(price: Callable[[Server], float | None]) -> Rank:
    """Cheapest first, then by server id (deterministic)."""

    def rank(servers: Sequence[Server]) -> list[Server]:
        return sorted(servers, key=lambda s: (price(s) or 0.0, s.id))

    return rank


class Watcher(WatchLedger):
    """The watch loop; iterate ``run()`` for its events (see the module docstring)."""

    _memory: WatchFile

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
        history: HistoryWatch | None = None,
        report: bool = True,
    ) -> None:
        if count < 1:
            raise ParameterError("count", "must be at least 1")
        if interval <= 0:
            raise ParameterError("interval", "must be positive")
        self.client = client
        self.clock = clock
        self.api_time = TimeBase(client, clock)
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
        self.history = history
        self.report = report
        self._memory = WatchFile()  # used when there is no state file, and for dry runs
        self._cancels_in_doubt = {}
        self._seen: dict[int, Server] = {}
        self._owner = ""
        self._episodes: dict[str, bool] = {}  # as last saved

    def _load(self) -> WatchFile:
        # The ledger's file, read with the episodes too, so that its writes keep them.
        if self.state is None:
            return self._memory
        return self.state.read(WatchFile) or WatchFile()

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Poll until done (count reached, ``until``) yielding events; Ctrl-C leaves state saved."""
        self._owner = new_owner()
        if self.history is not None:
            self._episodes = dict(self._load().episodes)
            self.history.restore(self._episodes)
        try:
            ended = yield from poll_loop(
                self.clock, self.interval, "watch", self._poll, wrap=as_event, until=self.until
            )
            if ended == "until":
                yield self._done("until")
        finally:
            release_owner(self._owner)

    def _poll(self, _schedule: Schedule) -> Generator[Event, None, bool]:
        yield from self._settle()
        if self._renting_open():
            servers = self.client.marketplace()
            if self.history is not None:
                yield from self._observe(servers)
            if self.report:
                yield from self._report(servers)
            if self.rent is not None:
                yield from self._rent_best(servers)
        if self._guarding():
            yield from self._guard()
        if self._finished():
            yield self._done(self._closed_reason())
            return True
        return False

    def _observe(self, servers: Sequence[Server]) -> Iterator[Event]:
        """The listing to the history and its alerts; the episodes saved when they moved."""
        assert self.history is not None
        yield from self.history.observe(servers, now=self.api_time.now(), at=self.clock.time())
        episodes = self.history.episodes
        if episodes == self._episodes:
            return
        with self._locked():
            current = self._load()
            current.episodes = episodes
            self._save(current)
        self._episodes = episodes

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
                    f"server {sid} matches at {amount(price, self.pricing.currency)} "
                    f"{label(self.pricing.currency)}/day",
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
                    f"{'unknown' if cost is None else amount(cost, self.pricing.currency)} "
                    f"exceeds the budget left "
                    f"({amount(self.budget - committed, self.pricing.currency)} "
                    f"{label(self.pricing.currency)})",
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
                intent_server_at=self.api_time.now(),
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
            f"{amount(price, self.pricing.currency)} {label(self.pricing.currency)}/day",
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
        except Explained:
            # Explain mode: create_order was not sent, so nothing was rented.
            self._finish(rental.id, "void", None, "explained: not sent")
            raise
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
                f"server {server.id} not rented ({_why(exc)}); trying the next",
                server=server,
                reason=getattr(exc, "error", None) or type(exc).__name__,
                error=str(exc),
            )
            return "next"
        except _UNKNOWN as exc:
            # The order may exist: keep counting it, and rent nothing else (on this server
            # or another) until reconcile() finds out from my_orders.
            self._finish(rental.id, "unconfirmed", None, str(exc))
            yield self._may_exist_event(server, exc)
            return "stop"
        except APIError as exc:
            # Rate limit, invalid input...: refused before renting. The SDK raises an API
            # error from create_order only when no attempt may have acted; after an attempt
            # in doubt it raises OrderUnconfirmedError (above), whatever followed.
            self._finish(rental.id, "void", None, str(exc))
            yield error_event("watch", self.clock.time(), exc, self.interval)
            return "stop"
        rentals = self._finish(rental.id, "rented", order.id, "")
        rental.status, rental.order_id = "rented", order.id
        register_limits(order.id, self.limits)
        yield self._rented_event(rental, order, rentals)
        return "next"

    def _may_exist_event(self, server: Server, exc: Exception) -> Event:
        """The ``error`` event of a rental in doubt: say that it may exist, and what now."""
        return make_event(
            "watch",
            "error",
            self.clock.time(),
            f"server {server.id} may have been rented ({type(exc).__name__}: {exc}); renting "
            f"nothing else until my_orders shows whether it was (next check in "
            f"{duration(self.interval)})",
            server=server,
            error=str(exc),
            type=type(exc).__name__,
            retry_in=self.interval,
            fatal=False,
        )


def watch(client: WatchClient, clock: Clock, **options: Any) -> Iterator[Event]:
    """Run a ``Watcher`` with ``options`` (its keyword arguments) and yield its events."""
    return Watcher(client, clock, **options).run()
