"""Keep a spot rental alive: rebid when outbid (within a cap), walk the bid down when alone.

Each poll reads ``my_orders`` and the server's ``spot_marketplace`` and applies
``clore.workflows.spot_bids.decide_bid``. Lowering obeys the API's ``max_step`` (10% of the
bid unless an ``exceeded_max_step`` answer says otherwise; the fraction is learned) and
the 600 s rule (a ``can_lower_every_600_seconds`` answer, from the API or the SDK's local
check, schedules the next attempt at ``time_to_lowering``). The rule is the server's: the
last lowering and ``time_to_lowering`` are server time, and waits are converted to the
loop's clock (``clore.workflows._time``).
Recovery, the state file and the restart logic are in ``clore.workflows.spot_recovery``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import msgspec

from clore._clock import Clock
from clore._errors import (
    ApplicationError,
    ExceededMaxStepError,
    OrderError,
    SpotPriceLoweringTooSoonError,
    TooLowPriceError,
)
from clore._facts import SPOT_LOWER_INTERVAL
from clore._wire import Order
from clore.market.pricing import label
from clore.market.units import duration
from clore.workflows._loop import UNCERTAIN, Schedule, as_event, error_event, poll_loop
from clore.workflows._protocols import KeeperClient
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import (
    Breach,
    GuardLease,
    breach,
    cancelled_event,
    drop_lease,
    ended_record,
    enforce,
    new_lease,
    register_limits,
    write_lease,
)
from clore.workflows.spot_bids import BidDecision, decide_bid
from clore.workflows.spot_recovery import KeeperBase, KeeperState, spec_of
from clore.workflows.state import new_owner, release_owner

__all__ = ["KeeperState", "SpotKeeper", "keep_spot"]


class SpotKeeper(KeeperBase):
    """The keeper loop; iterate ``run()`` for its events (see the module docstring)."""

    _cancel_breach: Breach | None = None  # the limit behind a cancel whose answer was lost
    _lease: GuardLease | None = None  # while run() runs with limits

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Keep the order until a limit, ``until``, or its loss without ``recover``; with
        limits, a guard lease says it enforces them (``clore.workflows.guard``)."""
        self._owner = new_owner()
        self._lease = None
        if self.limits:
            self._lease = new_lease(
                "spot",
                self.clock.time(),
                self.interval,
                order_ids=self._kept(),
                limits=self.limits,
                use_registered=False,
            )
            write_lease(self._lease)
        try:
            yield from poll_loop(
                self.clock, self.interval, "spot", self._step, wrap=as_event, until=self.until
            )
        finally:
            self._save()
            release_owner(self._owner)
            if self._lease is not None:
                drop_lease(self._lease)

    def _kept(self) -> list[int]:
        return [] if self.state.order_id is None else [self.state.order_id]

    def _step(self, schedule: Schedule) -> Generator[Event, None, bool]:
        outcome = yield from self._poll(schedule)
        self._save()
        if self._lease is not None:
            self._lease.order_ids = self._kept()
            self._lease.last_round_at = self.clock.time()
            write_lease(self._lease)
        return outcome == "stop"

    def _poll(self, schedule: Schedule) -> Generator[Event, None, str]:
        if self._unsettled():
            yield from self._adopt()
        if self.state.order_id is None:
            if self._unsettled():
                return "next"  # a recovery may have rented: settle it before bidding again
            # Lost earlier and not yet replaced: only recovery is left to do.
            if not self.recover:
                lost = self.state.lost_order_id
                yield make_event(
                    "spot",
                    "lost",
                    self.clock.time(),
                    f"order {lost} was lost before; not recovering",
                    order_id=lost,
                    reason="lost before",
                )
                return "stop"
            return (yield from self._recover("no order", exclude=None))
        orders = {o.id: o for o in self.client.my_orders()}
        order = orders.get(self.state.order_id)
        if order is None or order.expired:
            if self.state.cancelling == self.state.order_id:
                return (yield from self._cancel_settled())
            return (yield from self._lost())
        self._last = order
        if self.state.started_at is None:
            self.state.started_at = float(order.ct)
        if self.state.spec is None:
            self.state.spec = spec_of(order)
        elif self.state.spec.ports is None and order.forwarded_ports:
            # Taken before the order was provisioned: its ports are known now.
            self.state.spec = msgspec.structs.replace(self.state.spec, ports=order.forwarded_ports)
        if self.limits:
            if order.id not in self._registered:
                # So that `clore guard --all` keeps enforcing them once this loop has ended.
                register_limits(order.id, self.limits)
                self._registered.add(order.id)
            stopped = self._enforce(order)
            if stopped is not None:
                yield stopped
                return "stop"
        market = self.client.spot_marketplace(order.si)
        now = self.api_time.now()
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
                f"order {order.id}: bid raised {amount(float(order.price), order.currency)} -> "
                f"{_per_day(d.price, order)} ({d.reason}; winning "
                f"{amount(d.winning or 0, order.currency)}, "
                f"cap {amount(self.max_bid, order.currency)})",
                order=order,
                old=float(order.price),
                new=d.price,
                winning_bid=d.winning,
                cap=self.max_bid,
            )
        elif d.action == "lower" and d.price is not None:
            yield from self._lower(order, d, schedule)
        elif d.action == "wait" and d.wait is not None:
            wait = self.api_time.to_client(d.wait)  # d.wait is server seconds
            schedule.sooner(now + wait)
            if not self._waiting:
                self._waiting = True
                yield make_event(
                    "spot",
                    "lower_wait",
                    now,
                    f"order {order.id}: can lower towards {_per_day(d.floor, order)} "
                    f"in {duration(wait)}",
                    order=order,
                    wait=wait,
                    target=d.floor,
                )
        elif d.action == "cap_exceeded":
            if not self._capped:
                self._capped = True
                yield make_event(
                    "spot",
                    "cap_exceeded",
                    now,
                    _cap_message(order, d, self.max_bid),
                    order=order,
                    winning_bid=d.winning,
                    needed=d.price,
                    cap=self.max_bid,
                    reason=d.reason,
                )
            if self.recover:
                self._abandon(order)
                return (yield from self._recover("cap exceeded", exclude=order.si))
        return "next"

    def _lower(self, order: Order, d: BidDecision, schedule: Schedule) -> Iterator[Event]:
        assert d.price is not None
        now = self.clock.time()
        sent = self.api_time.now()  # the lowering happens no earlier than this
        try:
            self.client.set_spot_price(order.id, d.price)
        except SpotPriceLoweringTooSoonError as exc:
            left = exc.time_to_lowering or SPOT_LOWER_INTERVAL  # server seconds
            self.state.last_lower_at = self.api_time.now() - (SPOT_LOWER_INTERVAL - left)
            schedule.sooner(now + self.api_time.to_client(left))
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
        self.state.last_lower_at = sent
        yield make_event(
            "spot",
            "bid_lowered",
            self.clock.time(),
            f"order {order.id}: bid lowered {amount(float(order.price), order.currency)} -> "
            f"{_per_day(d.price, order)} (floor {amount(d.floor or 0, order.currency)})",
            order=order,
            old=float(order.price),
            new=d.price,
            floor=d.floor,
        )

    def _enforce(self, order: Order) -> Event | None:
        """Cancel the order when the spend or age of it and the orders it replaced would
        cross a limit by the next check (logged like every guard's cancel)."""
        assert self.state.started_at is not None
        total = msgspec.structs.replace(
            order,
            spend=self.state.spent_before + float(order.spend),
            ct=self.state.started_at,
        )
        now = self.api_time.now()
        lookahead = self.api_time.to_server(self.interval)
        try:
            event = enforce(self.client, order, self.limits, now, lookahead=lookahead,
                            source="spot", measured=total, at=self.clock.time())  # fmt: skip
        except UNCERTAIN:
            # The cancel may have happened: remember it (in the state file, so a restart
            # knows too), so the order's end is not taken for a loss to recover from.
            self._cancel_breach = breach(total, now, self.limits, lookahead=lookahead)
            self.state.cancelling = order.id
            self._save()
            raise
        if event is not None:
            self.state.order_id = None
            self.state.cancelling = None
        return event

    def _cancel_settled(self) -> Generator[Event, None, str]:
        """The order our guard cancelled (answer lost) shows ended: report the cancel."""
        assert self.state.order_id is not None and self.state.started_at is not None
        final = ended_record(self.client, self.state.order_id) or self._last
        self.state.order_id = None
        self.state.cancelling = None
        self._save()
        if final is None:
            return "stop"
        total = msgspec.structs.replace(
            final, spend=self.state.spent_before + float(final.spend), ct=self.state.started_at
        )
        lookahead = self.api_time.to_server(self.interval)
        # The limit it crossed when cancelled; after a restart, the one it crosses now.
        crossed = self._cancel_breach or breach(total, self.api_time.now(), self.limits,
                                                lookahead=lookahead)  # fmt: skip
        self._cancel_breach = None
        if crossed is not None:
            yield cancelled_event(final, crossed, self.clock.time(), source="spot", reconciled=True)
        return "stop"


def _cap_message(order: Order, d: BidDecision, cap: float) -> str:
    """What the cap cannot do: beat the winning bid, or reach the server's minimum (its
    host raised it above our bid; no other bid need be involved)."""
    needed = amount(d.price or 0, order.currency)
    if d.reason == "below minimum":
        return (
            f"order {order.id}: bid {amount(float(order.price), order.currency)} is under "
            f"the server's minimum {needed}, which is over the cap {_per_day(cap, order)}"
        )
    return (
        f"order {order.id}: outbid at {amount(d.winning or 0, order.currency)}; "
        f"winning needs {needed} > cap {_per_day(cap, order)}"
    )


def _per_day(value: float | None, order: Order) -> str:
    """``0.00012 BTC/day``: a bid with its currency and period."""
    return f"{amount(value, order.currency)} {label(order.currency)}/day"


def keep_spot(client: KeeperClient, clock: Clock, order_id: int, **options: Any) -> Iterator[Event]:
    """Run a ``SpotKeeper`` for ``order_id`` with ``options`` and yield its events."""
    return SpotKeeper(client, clock, order_id, **options).run()
