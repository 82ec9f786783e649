"""Keep a spot rental alive: rebid when outbid (within a cap), walk the bid down when alone.

Each poll reads ``my_orders`` and the server's ``spot_marketplace`` and applies
``clore.workflows.spot_bids.decide_bid``. Lowering obeys the API's ``max_step`` (10% of the
bid unless an ``exceeded_max_step`` answer says otherwise; the fraction is learned) and
the 600 s rule (a ``can_lower_every_600_seconds`` answer, from the API or the SDK's local
check, schedules the next attempt at ``time_to_lowering``).

Recovery (``recover=True``), SkyPilot style: when the order is lost (expired, cancelled,
gone) or the cap cannot beat the winning bid, the keeper cancels what is left of the old
offer and bids on the next cheapest matching server: available servers accepting the
currency whose spot minimum is within the cap, cheapest spot minimum first; for each
(up to ``probe_limit``) it reads the spot market and bids just above the active offer
(or the minimum) if that is within the cap. Recovery always rents **spot** at a bid within
``max_bid`` - never on-demand, which would silently change what the cap means. It reuses
the same image, ports, env and options (kept in the keeper's state, because ``my_orders``
does not return env), and records the intent in the state file's ledger first, so a
restarted keeper adopts the new order instead of renting again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import msgspec

from clore._clock import Clock
from clore._errors import (
    APIError,
    ApplicationError,
    ExceededMaxStepError,
    InvalidInputError,
    OrderError,
    ParameterError,
    SpotPriceLoweringTooSoonError,
    TooLowPriceError,
)
from clore._wire import Order, Server
from clore.market.pricing import label
from clore.workflows._loop import RETRYABLE, Backoff, Schedule, error_event
from clore.workflows._protocols import KeeperClient
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import breach, forget_limits
from clore.workflows.plan import Limits, RentSpec
from clore.workflows.spot_bids import BidDecision, decide_bid, entry_bid
from clore.workflows.state import (
    Rental,
    StateFile,
    new_owner,
    reconcile,
    release_owner,
)

__all__ = ["KeeperState", "SpotKeeper", "keep_spot"]


class KeeperState(msgspec.Struct, kw_only=True):
    """What a keeper must remember across restarts."""

    version: int = 1
    origin_order_id: int
    order_id: int | None
    spec: RentSpec | None = None
    started_at: float | None = None
    spent_before: float = 0.0
    last_lower_at: float | None = None
    step_fraction: float = 0.1
    recoveries: int = 0
    rentals: list[Rental] = []


def same_gpu(order: Order) -> Callable[[Server], bool] | None:
    """Default recovery match: the lost order's GPU model, at least as many GPUs."""
    model, count = order.specs.gpu_model, order.specs.gpu_count
    if not model:
        return None
    return lambda s: s.gpu_model == model and s.gpu_count >= count


class SpotKeeper:
    """The keeper loop; iterate ``run()`` for its events (see the module docstring)."""

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
            self.state.spec = rent
        self._owner = ""
        self._capped = False
        self._waiting = False
        self._last: Order | None = None

    def _unsettled(self) -> bool:
        return any(r.status in ("pending", "unconfirmed") for r in self.state.rentals)

    def _save(self) -> None:
        if self.file is not None:
            with self.file.locked():
                self.file.write(self.state)

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Keep the order until a limit, ``until``, or its loss without ``recover``."""
        self._owner = new_owner()
        schedule = Schedule(self.clock, self.interval)
        backoff = Backoff(self.interval)
        try:
            while True:
                schedule.wait(self.until)
                if self.until is not None and self.clock.time() >= self.until:
                    return
                schedule.started()
                try:
                    outcome = yield from self._poll(schedule)
                except RETRYABLE as exc:
                    delay = backoff.failed(exc)
                    schedule.delay(delay)
                    yield error_event("spot", self.clock.time(), exc, delay)
                    continue
                backoff.succeeded()
                self._save()
                if outcome == "stop":
                    return
        finally:
            self._save()
            release_owner(self._owner)

    def _poll(self, schedule: Schedule) -> Generator[Event, None, str]:
        if self._unsettled():
            yield from self._adopt()
        if self.state.order_id is None:
            if self._unsettled():
                return "next"  # a recovery may have rented: settle it before bidding again
            # Lost earlier and not yet replaced: only recovery is left to do.
            return (yield from self._recover("no order", exclude=None))
        orders = {o.id: o for o in self.client.my_orders()}
        order = orders.get(self.state.order_id)
        if order is None or order.expired:
            return (yield from self._lost())
        self._last = order
        if self.state.started_at is None:
            self.state.started_at = float(order.ct)
        if self.state.spec is None:
            self.state.spec = _spec_of(order)
        if self.limits:
            stopped = self._enforce(order)
            if stopped is not None:
                yield stopped
                return "stop"
        market = self.client.spot_marketplace(order.si)
        now = self.clock.time()
        decision = decide_bid(
            market,
            order.id,
            float(order.price),
            order.currency,
            max_bid=self.max_bid,
            now=now,
            step=self.step,
            step_fraction=self.state.step_fraction,
            last_lower_at=self.state.last_lower_at,
        )
        return (yield from self._act(order, decision, schedule))

    # ---- acting on a decision ----------------------------------------------------------------

    def _act(self, order: Order, d: BidDecision, schedule: Schedule) -> Generator[Event, None, str]:
        now = self.clock.time()
        if d.action != "cap_exceeded":
            self._capped = False
        if d.action != "wait":
            self._waiting = False
        if d.action == "raise" and d.price is not None:
            try:
                self.client.set_spot_price(order.id, d.price)
            except (ApplicationError, OrderError) as exc:
                yield error_event("spot", now, exc, self.interval)
                return "next"
            yield make_event(
                "spot",
                "bid_raised",
                self.clock.time(),
                f"order {order.id}: bid raised {amount(float(order.price))} -> {amount(d.price)} "
                f"({d.reason}; winning {amount(d.winning or 0)}, cap {amount(self.max_bid)})",
                order=order,
                old=float(order.price),
                new=d.price,
                winning_bid=d.winning,
                cap=self.max_bid,
            )
        elif d.action == "lower" and d.price is not None:
            yield from self._lower(order, d, schedule)
        elif d.action == "wait" and d.wait is not None:
            schedule.sooner(now + d.wait)
            if not self._waiting:
                self._waiting = True
                yield make_event(
                    "spot",
                    "lower_wait",
                    now,
                    f"order {order.id}: can lower towards {amount(d.floor)} in {d.wait:.0f} s",
                    order=order,
                    wait=d.wait,
                    target=d.floor,
                )
        elif d.action == "cap_exceeded":
            if not self._capped:
                self._capped = True
                yield make_event(
                    "spot",
                    "cap_exceeded",
                    now,
                    f"order {order.id}: outbid at {amount(d.winning or 0)}; winning needs "
                    f"{amount(d.price or 0)} > cap {amount(self.max_bid)}",
                    order=order,
                    winning_bid=d.winning,
                    needed=d.price,
                    cap=self.max_bid,
                )
            if self.recover:
                self._abandon(order)
                return (yield from self._recover("cap exceeded", exclude=order.si))
        return "next"

    def _lower(self, order: Order, d: BidDecision, schedule: Schedule) -> Iterator[Event]:
        assert d.price is not None
        now = self.clock.time()
        try:
            self.client.set_spot_price(order.id, d.price)
        except SpotPriceLoweringTooSoonError as exc:
            left = exc.time_to_lowering or 600.0
            self.state.last_lower_at = now - (600.0 - left)
            schedule.sooner(now + left)
            return
        except ExceededMaxStepError as exc:
            # The API's step differs from ours: learn it as a fraction and use it next time.
            if exc.max_step is not None and float(order.price) > 0:
                self.state.step_fraction = exc.max_step / float(order.price) * 0.999
            schedule.sooner(now)
            yield error_event("spot", now, exc, 0.0)
            return
        except TooLowPriceError as exc:
            yield error_event("spot", now, exc, self.interval)
            return
        self.state.last_lower_at = self.clock.time()
        yield make_event(
            "spot",
            "bid_lowered",
            self.clock.time(),
            f"order {order.id}: bid lowered {amount(float(order.price))} -> {amount(d.price)} "
            f"(floor {amount(d.floor or 0)})",
            order=order,
            old=float(order.price),
            new=d.price,
            floor=d.floor,
        )

    def _enforce(self, order: Order) -> Event | None:
        assert self.state.started_at is not None
        total = msgspec.structs.replace(
            order,
            spend=self.state.spent_before + float(order.spend),
            ct=self.state.started_at,
        )
        crossed = breach(total, self.clock.time(), self.limits, lookahead=self.interval)
        if crossed is None:
            return None
        self.client.cancel_order(order.id)
        forget_limits(order.id)
        self.state.order_id = None
        reason = crossed.describe()
        return make_event(
            "spot",
            "guard_cancelled",
            self.clock.time(),
            f"order {order.id} cancelled: {reason}",
            order=order,
            reason=reason,
            limit=crossed.limit,
            value=crossed.value,
            max=crossed.max,
        )

    # ---- loss and recovery -----------------------------------------------------------------

    def _lost(self) -> Generator[Event, None, str]:
        lost_id = self.state.order_id
        final = {o.id: o for o in self.client.my_orders(include_completed=True)}
        order = final.get(lost_id) if lost_id is not None else None
        order = order or self._last
        self._last = order  # its GPU is what recovery looks for
        if order is not None:
            self.state.spent_before += float(order.spend)
        left = 0.0 if order is None else order.time_left(self.clock.time()).total_seconds()
        reason = "expired" if order is not None and left <= self.interval else "ended"
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
        return (yield from self._recover(f"order {reason}", exclude=None))

    def _abandon(self, order: Order) -> None:
        """Cancel an outbid offer we are replacing, so it cannot resume beside the new one."""
        # Already gone is fine: nothing left to abandon.
        with contextlib.suppress(ApplicationError, OrderError):
            self.client.cancel_order(order.id)
        self.state.spent_before += float(order.spend)
        self.state.order_id = None
        self._save()

    def _recover(self, reason: str, *, exclude: int | None) -> Generator[Event, None, str]:
        now = self.clock.time()
        spec = self.state.spec
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
            for s in self.client.marketplace()
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
                f"{reason}: bidding {amount(bid)} {label(spec.currency)}/day on server {server.id}",
                server=server,
                reason=reason,
                price=_spot_min(server, spec.currency),
                bid=bid,
            )
            order = yield from self._rent(server, bid, spec)
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
                    f"recovered as order {order.id} on server {server.id} at {amount(bid)}",
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
            f"{reason}: no matching server can be won within {amount(self.max_bid)}; retrying",
            reason="no server within the cap",
            error=None,
        )
        return "next"

    def _rent(
        self, server: Server, bid: float, spec: RentSpec
    ) -> Generator[Event, None, Order | None]:
        rental = Rental(
            server_id=server.id,
            price=bid,
            currency=spec.currency,
            intent_at=self.clock.time(),
            owner=self._owner,
            pid=os.getpid(),
        )
        self.state.rentals.append(rental)
        self._save()
        try:
            order = msgspec.structs.replace(spec, order_type="spot").create(
                self.client, server.id, bid
            )
        except (ApplicationError, InvalidInputError) as exc:
            rental.status, rental.note = "void", str(exc)
            yield error_event("spot", self.clock.time(), exc, 0.0)
            return None
        except APIError as exc:
            rental.status, rental.note = "unconfirmed", str(exc)
            yield error_event("spot", self.clock.time(), exc, self.interval)
            return None
        except (OrderError, *RETRYABLE) as exc:
            rental.status, rental.note = "unconfirmed", str(exc)
            yield error_event("spot", self.clock.time(), exc, self.interval)
            return None
        rental.status, rental.order_id = "rented", order.id
        return order

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


def _spec_of(order: Order) -> RentSpec:
    ports = order.ports if isinstance(order.ports, dict) else None
    return RentSpec(image=order.image, order_type="spot", currency=order.currency, ports=ports)


def keep_spot(client: KeeperClient, clock: Clock, order_id: int, **options: Any) -> Iterator[Event]:
    """Run a ``SpotKeeper`` for ``order_id`` with ``options`` and yield its events."""
    return SpotKeeper(client, clock, order_id, **options).run()
