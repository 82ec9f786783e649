"""The spot keeper's state, and what it does when its order is lost: recovery.

A lost order is told apart in the ``lost`` event's ``reason``: ``expired`` (it ran its
course), ``lost to an on-demand renter`` (it ended early and the marketplace shows the
server rented on demand), ``outbid`` (it ended early while another spot offer runs there:
a host that ends outbid offers) or ``ended`` (cancelled elsewhere, the balance, ...).

Recovery (``recover=True``), SkyPilot style: when the order is lost (expired, cancelled,
gone) or the cap cannot beat the winning bid, the keeper cancels what is left of the old
offer and bids on the next cheapest matching server: available servers accepting the
currency whose spot minimum is within the cap, cheapest spot minimum first; for each
(up to ``probe_limit``) it reads the spot market and bids just above the active offer
(or the minimum) if that is within the cap. Recovery always rents **spot** at a bid within
``max_bid`` - never on-demand, which would silently change what the cap means. It reuses
the same image, ports, env and options (kept in the keeper's state, because ``my_orders``
does not return env), and records the intent in the state file's ledger first, so a
restarted keeper adopts the new order instead of renting again. A bid whose outcome is in
doubt (the SDK's OrderUnconfirmedError, "the order may exist", or no answer) ends the
round: nothing is bid on another server until ``my_orders`` shows whether it was placed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator
from typing import Literal

import msgspec

from clore._clock import Clock
from clore._errors import (
    APIError,
    ApplicationError,
    InvalidInputError,
    OrderError,
    ParameterError,
    ServerNotFoundError,
)
from clore._explain import Explained
from clore._wire import Order, Server
from clore.market.pricing import label
from clore.market.units import duration
from clore.workflows._loop import RETRYABLE, error_event
from clore.workflows._protocols import KeeperClient
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, amount, make_event
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.spot_bids import entry_bid
from clore.workflows.state import Rental, StateFile, reconcile

__all__ = ["KeeperBase", "KeeperState", "same_gpu", "spec_of"]

#: What became of one recovery bid (``KeeperBase._rent``).
RentOutcome = Literal["rented", "refused", "in doubt"]


class KeeperState(msgspec.Struct, kw_only=True):
    """What a keeper must remember across restarts."""

    version: int = 1
    origin_order_id: int
    order_id: int | None
    spec: RentSpec | None = None
    started_at: float | None = None  # server time (the first order's ct)
    spent_before: float = 0.0
    last_lower_at: float | None = None  # server time
    step_fraction: float = 0.1
    recoveries: int = 0
    rentals: list[Rental] = []
    # The order this keeper's own guard cancelled when the answer was lost: once it shows
    # ended it is reported as guard_cancelled, never treated as lost to the market.
    cancelling: int | None = None
    # The order lost last (or abandoned at the cap): what a later recovery matches on,
    # also when it runs in another process than the one that saw the loss.
    lost_order_id: int | None = None


def same_gpu(order: Order) -> Callable[[Server], bool] | None:
    """Default recovery match: the lost order's GPU model, at least as many GPUs."""
    model, count = order.specs.gpu_model, order.specs.gpu_count
    if not model:
        return None
    return lambda s: s.gpu_model == model and s.gpu_count >= count


class KeeperBase:
    """Construction, state file and recovery of ``clore.workflows.SpotKeeper``."""

    def __init__(
        self,
        client: KeeperClient,
        clock: Clock,
        order_id: int,
        *,
        max_bid: float,
        step: float | None = None,
        interval: float = 30.0,
        recover: bool = False,
        rent: RentSpec | None = None,
        match: Callable[[Server], bool] | None = None,
        limits: Limits | None = None,
        until: float | None = None,
        state: StateFile | None = None,
        max_recoveries: int = 10,
        probe_limit: int = 5,
    ) -> None:
        if max_bid <= 0:
            raise ParameterError("max_bid", "must be positive")
        self.client = client
        self.clock = clock
        self.api_time = TimeBase(client, clock)
        self.max_bid = max_bid
        self.step = step
        self.interval = interval
        self.recover = recover
        self.match = match
        self.limits = limits or Limits()
        self.until = until
        self.file = state
        self.max_recoveries = max_recoveries
        self.probe_limit = probe_limit
        loaded = state.read(KeeperState) if state is not None else None
        self.state = loaded or KeeperState(origin_order_id=order_id, order_id=order_id, spec=rent)
        if rent is not None:
            kept = self.state.spec
            if rent.ports is None and kept is not None and kept.ports:
                # An ended order lists no ports; the state kept them while it ran.
                rent = msgspec.structs.replace(rent, ports=kept.ports)
            self.state.spec = rent
        self._owner = ""
        self._capped = False
        self._waiting = False
        self._last: Order | None = None
        self._registered: set[int] = set()

    def _unsettled(self) -> bool:
        return any(r.status in ("pending", "unconfirmed") for r in self.state.rentals)

    def _save(self) -> None:
        if self.file is not None:
            with self.file.locked():
                self.file.write(self.state)

    # ---- loss and recovery -----------------------------------------------------------------

    def _lost(self) -> Generator[Event, None, str]:
        lost_id = self.state.order_id
        final = {o.id: o for o in self.client.my_orders(include_completed=True)}
        order = final.get(lost_id) if lost_id is not None else None
        order = order or self._last
        self._last = order  # its GPU is what recovery looks for
        if order is not None:
            self.state.spent_before += float(order.spend)
        self.state.lost_order_id = lost_id
        # Not Order.time_left: that is zero for any order that has ended, cancelled or not.
        # Ended more than a poll (in server seconds) before its end: it did not run out.
        gap = self.api_time.to_server(self.interval)
        ended_early = order is None or order.ends_at - self.api_time.now() > gap
        reason, listing = self._why_ended(order) if ended_early else ("expired", None)
        self.state.order_id = None
        self._save()
        yield make_event(
            "spot",
            "lost",
            self.clock.time(),
            f"order {lost_id} {reason}" + ("" if self.recover else "; not recovering"),
            order=order,
            order_id=lost_id,
            reason=reason,
        )
        if not self.recover:
            return "stop"
        return (yield from self._recover(f"order {reason}", exclude=None, listing=listing))

    def _why_ended(self, order: Order | None) -> tuple[str, list[Server] | None]:
        """Why ``order`` ended before its time (see the module docstring), and the
        marketplace listing read to tell (for the recovery to reuse)."""
        if order is None:
            return "ended", None
        try:
            listing = list(self.client.marketplace())
        except RETRYABLE:
            return "ended", None
        server = next((s for s in listing if s.id == order.si), None)
        if server is not None and server.rented:
            return "lost to an on-demand renter", listing
        try:
            market = self.client.spot_marketplace(order.si)
        except (*RETRYABLE, ServerNotFoundError):
            return "ended", listing
        if any(o.active and o.offer_id != order.id for o in market.offers):
            return "outbid", listing
        return "ended", listing

    def _abandon(self, order: Order) -> None:
        """Cancel an outbid offer we are replacing, so it cannot resume beside the new one."""
        # Already gone is fine: nothing left to abandon.
        with contextlib.suppress(ApplicationError, OrderError):
            self.client.cancel_order(order.id)
        self.state.spent_before += float(order.spend)
        self.state.lost_order_id = order.id
        self.state.order_id = None
        self._save()

    def _lost_order(self) -> Order | None:
        """The order lost last, as ``my_orders`` shows it: a keeper started after the loss
        (a plain keep saw it, this one recovers) has not seen it itself."""
        wanted = self.state.lost_order_id or self.state.origin_order_id
        try:
            orders = self.client.my_orders(include_completed=True)
        except RETRYABLE:
            return None
        return next((o for o in orders if o.id == wanted), None)

    def _recover(
        self, reason: str, *, exclude: int | None, listing: list[Server] | None = None
    ) -> Generator[Event, None, str]:
        now = self.clock.time()
        spec = self.state.spec
        if self._last is None and self.match is None:
            self._last = self._lost_order()
        match = self.match or (same_gpu(self._last) if self._last is not None else None)
        if self.state.recoveries >= self.max_recoveries or spec is None or match is None:
            why = (
                "too many recoveries"
                if self.state.recoveries >= self.max_recoveries
                else "nothing to re-rent (no image or no server match rule)"
            )
            yield make_event(
                "spot", "recovery_failed", now, f"cannot recover: {why}", reason=why, error=None
            )
            return "stop"
        candidates = [
            s
            for s in (listing if listing is not None else self.client.marketplace())
            if not s.rented
            and s.id != exclude
            and match(s)
            and (_spot_min(s, spec.currency) or float("inf")) <= self.max_bid
        ]
        candidates.sort(key=lambda s: (_spot_min(s, spec.currency) or 0.0, s.id))
        for server in candidates[: self.probe_limit]:
            market = self.client.spot_marketplace(server.id)
            bid = min(entry_bid(market, spec.currency, step=self.step), self.max_bid)
            if bid < float(market.server.min_pricing.get(spec.currency, 0.0)):
                continue
            active = [o.bid for o in market.offers if o.active]
            if active and bid <= max(float(b) for b in active):
                continue
            yield make_event(
                "spot",
                "recovering",
                self.clock.time(),
                f"{reason}: bidding {amount(bid, spec.currency)} {label(spec.currency)}/day on "
                f"server {server.id}",
                server=server,
                reason=reason,
                price=_spot_min(server, spec.currency),
                bid=bid,
            )
            outcome, order = yield from self._rent(server, bid, spec)
            if outcome == "in doubt":
                # The bid may have been placed: bid nowhere else until my_orders says
                # (the next poll's _adopt settles the intent).
                return "next"
            if order is not None:
                old = self._last.id if self._last is not None else None
                self.state.recoveries += 1
                self.state.order_id = order.id
                self.state.last_lower_at = None
                self._last = order
                self._save()
                yield make_event(
                    "spot",
                    "recovered",
                    self.clock.time(),
                    f"recovered as order {order.id} on server {server.id} at "
                    f"{amount(bid, spec.currency)} "
                    f"{label(spec.currency)}/day",
                    order=order,
                    old_order_id=old,
                    bid=bid,
                    recoveries=self.state.recoveries,
                )
                return "next"
        yield make_event(
            "spot",
            "recovery_failed",
            self.clock.time(),
            f"{reason}: no matching server can be won within "
            f"{amount(self.max_bid, spec.currency)} "
            f"{label(spec.currency)}/day; retrying",
            reason="no server within the cap",
            error=None,
        )
        return "next"

    def _rent(
        self, server: Server, bid: float, spec: RentSpec
    ) -> Generator[Event, None, tuple[RentOutcome, Order | None]]:
        """Bid on ``server``: ("rented", order); ("refused", None) when nothing was placed,
        so the next server may be tried; ("in doubt", None) when the bid may exist."""
        rental = Rental(
            server_id=server.id,
            price=bid,
            currency=spec.currency,
            intent_at=self.clock.time(),
            intent_server_at=self.api_time.now(),
            owner=self._owner,
            pid=os.getpid(),
        )
        self.state.rentals.append(rental)
        self._save()
        try:
            order = msgspec.structs.replace(spec, order_type="spot").create(
                self.client, server.id, bid
            )
        except Explained:
            # Explain mode: create_order was not sent, so nothing was placed.
            rental.status, rental.note = "void", "explained: not sent"
            self._save()
            raise
        except (ApplicationError, InvalidInputError) as exc:
            # A definite refusal: the SDK raises one only when no attempt may have acted.
            rental.status, rental.note = "void", str(exc)
            yield error_event("spot", self.clock.time(), exc, 0.0)
            return "refused", None
        except (APIError, OrderError, *RETRYABLE) as exc:
            # OrderUnconfirmedError ("may exist"), no answer, a 5xx, code 1, or a refusal
            # of the key (429): counted as placed until my_orders settles it.
            rental.status, rental.note = "unconfirmed", str(exc)
            yield self._in_doubt_event(server, exc)
            return "in doubt", None
        rental.status, rental.order_id = "rented", order.id
        return "rented", order

    def _in_doubt_event(self, server: Server, exc: Exception) -> Event:
        """The ``error`` event of a recovery bid in doubt: it may exist; what happens now."""
        return make_event(
            "spot",
            "error",
            self.clock.time(),
            f"recovery bid on server {server.id} may have been placed ({type(exc).__name__}: "
            f"{exc}); bidding nowhere else until my_orders shows whether it was (next check "
            f"in {duration(self.interval)})",
            server=server,
            error=str(exc),
            type=type(exc).__name__,
            retry_in=self.interval,
            fatal=False,
        )

    def _adopt(self) -> Iterator[Event]:
        """After a restart: an intent whose order exists becomes the kept order."""
        orders = self.client.my_orders(include_completed=True)
        for rental in reconcile(self.state.rentals, orders, self.clock.time()):
            if rental.status == "rented" and rental.order_id is not None:
                self.state.order_id = rental.order_id
                self.state.recoveries += 1
                order = next((o for o in orders if o.id == rental.order_id), None)
                yield make_event(
                    "spot",
                    "recovered",
                    self.clock.time(),
                    f"adopted order {rental.order_id} from an interrupted recovery",
                    order=order,
                    order_id=rental.order_id,
                    old_order_id=None,
                    bid=rental.price,
                    recoveries=self.state.recoveries,
                )
        self._save()


def _spot_min(server: Server, currency: str) -> float | None:
    if not server.accepts(currency):
        return None
    return server.price_per_day(currency, spot=True)


def spec_of(order: Order) -> RentSpec:
    """The spot ``RentSpec`` of an order as ``my_orders`` shows it (image, ports; ports
    None before the order is provisioned)."""
    ports = order.forwarded_ports or None
    return RentSpec(image=order.image, order_type="spot", currency=order.currency, ports=ports)
