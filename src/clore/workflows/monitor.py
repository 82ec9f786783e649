"""Monitor your orders: poll ``my_orders`` and yield typed events when something changes.

Kinds (see ``clore.workflows.events.DETAILS`` for their fields): ``tracking`` (an order that
existed when the monitor started), ``created``, ``ready`` (provisioned: hosts and the
order's TCP ports are mapped, and the optional ``probe`` reaches SSH), ``outbid`` (a spot
offer stopped being the highest: another bid is), ``paused`` (the server went offline, or
a spot offer stopped running because the server is rented on demand: reason ``offline``
or ``on-demand``), ``resumed`` (``was`` ``offline``, ``outbid`` or ``on-demand``),
``price_changed``, ``expiring`` (less than ``expiring_within`` seconds left), ``expired``,
``cancelled`` (ended before its time: by you, a guard, an on-demand renter or the balance;
times left are on the server's clock, see ``clore.workflows._time``),
``spend`` (an order's spend crossed a threshold) and ``low_runway`` (a wallet lasts less
than ``runway_below`` seconds at the current burn rate). Poll failures yield ``error``
events and the monitor carries on with backoff.

Calls per poll: one ``my_orders``; one ``spot_marketplace`` per running spot order (to see
whether it wins); ``my_orders(include_completed=True)`` only when an order vanished, to
read its final record; ``wallets`` at most every ``runway_every`` seconds (and
``renter_fees`` once, for the burn rate).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from clore._clock import Clock
from clore._wire import Order, RenterFees
from clore.market.pricing import label
from clore.market.units import duration
from clore.workflows._loop import RETRYABLE, Schedule, poll_loop, renter_fees
from clore.workflows._protocols import MonitorClient
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, amount, make_event
from clore.workflows.guard import RunwayWatch

__all__ = ["OrderMonitor", "monitor", "tcp_probe"]

Probe = Callable[[str, int], bool]


def tcp_probe(host: str, port: int, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class _Track:
    """What the monitor last knew about one order."""

    order: Order
    ready: bool = False
    active: bool | None = None  # spot: is our offer the winning one (None: unknown)
    stopped_by: str = "outbid"  # spot: why the offer last stopped running (resumed's was)
    expiring_sent: bool = False
    crossed: set[float] = field(default_factory=set)


class OrderMonitor:
    """The monitor loop; iterate ``run()`` for events (see the module docstring)."""

    def __init__(
        self,
        client: MonitorClient,
        clock: Clock,
        *,
        interval: float = 30.0,
        expiring_within: float = 3600.0,
        spend_thresholds: Sequence[float] = (),
        runway_below: float | None = None,
        runway_every: float = 300.0,
        order_ids: Sequence[int] | None = None,
        probe: Probe | None = None,
        check_spot: bool = True,
        until: float | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.api_time = TimeBase(client, clock)
        self.interval = interval
        self.expiring_within = expiring_within
        self.thresholds = sorted(spend_thresholds)
        self.runway = None if runway_below is None else RunwayWatch(runway_below, "monitor")
        self.runway_every = runway_every
        self.wanted = None if order_ids is None else set(order_ids)
        self.probe = probe
        self.check_spot = check_spot
        self.until = until
        self._tracks: dict[int, _Track] = {}
        self._last_runway: float | None = None
        self._fees: RenterFees | None = None

    def run(self) -> Iterator[Event]:
        """Poll until ``until`` (or, with ``order_ids``, until all of them ended)."""
        for events in self.rounds():
            yield from events

    def rounds(self) -> Iterator[list[Event]]:
        """Like ``run``, one list per poll (empty when nothing changed), so a live view can
        redraw after every poll from ``orders`` and ``spot_active``."""
        first = True

        def poll(_schedule: Schedule) -> Generator[list[Event], None, bool]:
            nonlocal first
            events = self.poll(first=first)
            first = False
            yield events
            return self.wanted is not None and not (self.wanted & set(self._tracks))

        yield from poll_loop(
            self.clock, self.interval, "monitor", poll, wrap=lambda e: [e], until=self.until
        )

    @property
    def orders(self) -> list[Order]:
        """The latest record of every order the monitor tracks (running, wanted)."""
        return [track.order for track in self._tracks.values()]

    def spot_active(self, order_id: int) -> bool | None:
        """Whether a tracked spot order's bid won at the last poll (None: unknown)."""
        track = self._tracks.get(order_id)
        return None if track is None else track.active

    # ---- one poll --------------------------------------------------------------------------

    def poll(self, *, first: bool = False) -> list[Event]:
        """Read the orders once and return the events since the previous poll."""
        orders = [o for o in self.client.my_orders() if self._wanted(o) and not o.expired]
        now = self.clock.time()
        server_now = self.api_time.now()  # what the orders' ct and mrl are compared with
        events: list[Event] = []
        current = {o.id: o for o in orders}
        for order in orders:
            track = self._tracks.get(order.id)
            if track is None:
                track = self._tracks[order.id] = _Track(order)
                if first:
                    # Already running when we started: report its state, not a transition.
                    track.ready = self._is_ready(order)
                events.append(self._appeared(track, first, now))
            events.extend(self._changes(track, order, now, server_now))
            track.order = order
        vanished = [t for oid, t in self._tracks.items() if oid not in current]
        if vanished:
            events.extend(self._ended(vanished, now))
        if self.runway is not None and self._runway_due(now):
            self._last_runway = now
            self._fees = self._fees or renter_fees(self.client)
            events.extend(self.runway.check(self.client.wallets(), orders, now, self._fees))
        return events

    def _wanted(self, order: Order) -> bool:
        return self.wanted is None or order.id in self.wanted

    def _runway_due(self, now: float) -> bool:
        return self._last_runway is None or now - self._last_runway >= self.runway_every

    def _appeared(self, track: _Track, first: bool, now: float) -> Event:
        order = track.order
        if first:
            return make_event(
                "monitor",
                "tracking",
                now,
                f"tracking order {order.id} on server {order.si}",
                order=order,
                ready=track.ready,
            )
        return make_event(
            "monitor", "created", now, f"order {order.id} created on server {order.si}", order=order
        )

    def _is_ready(self, order: Order) -> bool:
        if not order.ready:
            return False
        endpoint = order.ssh_endpoint
        if self.probe is None or endpoint is None:
            return True
        return self.probe(*endpoint)

    def _changes(self, track: _Track, order: Order, now: float, server_now: float) -> list[Event]:
        events: list[Event] = []
        old = track.order
        if not track.ready and self._is_ready(order):
            track.ready = True
            events.append(
                make_event(
                    "monitor",
                    "ready",
                    now,
                    f"order {order.id} ready: {order.ssh_command() or order.http_url or 'up'}",
                    order=order,
                    ssh=order.ssh_command(),
                    http_url=order.http_url,
                )
            )
        if old.online and not order.online:
            events.append(
                make_event(
                    "monitor",
                    "paused",
                    now,
                    f"order {order.id}: server offline",
                    order=order,
                    reason="offline",
                )
            )
        elif not old.online and order.online:
            events.append(
                make_event(
                    "monitor",
                    "resumed",
                    now,
                    f"order {order.id}: server back online",
                    order=order,
                    was="offline",
                )
            )
        if order.spot and self.check_spot:
            events.extend(self._spot(track, order, now))
        if float(old.price) != float(order.price):
            events.append(
                make_event(
                    "monitor",
                    "price_changed",
                    now,
                    f"order {order.id}: price {amount(old.price, order.currency)} -> "
                    f"{amount(order.price, order.currency)} {label(order.currency)}/day",
                    order=order,
                    old=float(old.price),
                    new=float(order.price),
                    currency=order.currency,
                )
            )
        left = order.time_left(server_now).total_seconds()
        if not track.expiring_sent and float(order.mrl) > 0 and left <= self.expiring_within:
            track.expiring_sent = True
            events.append(
                make_event(
                    "monitor",
                    "expiring",
                    now,
                    f"order {order.id} expires in {duration(left)}",
                    order=order,
                    time_left=left,
                    lead=self.expiring_within,
                )
            )
        for threshold in self.thresholds:
            if threshold not in track.crossed and float(order.spend) >= threshold:
                track.crossed.add(threshold)
                events.append(
                    make_event(
                        "monitor",
                        "spend",
                        now,
                        f"order {order.id} spent {amount(order.spend, order.currency)} "
                        f"{label(order.currency)} (threshold {amount(threshold, order.currency)} "
                        f"{label(order.currency)})",
                        order=order,
                        threshold=threshold,
                        spend=float(order.spend),
                        currency=order.currency,
                    )
                )
        return events

    def _spot(self, track: _Track, order: Order, now: float) -> list[Event]:
        try:
            market = self.client.spot_marketplace(order.si)
        except RETRYABLE:
            return []  # unknown this time; the next poll asks again
        mine = next((o for o in market.offers if o.offer_id == order.id), None)
        active = bool(mine and mine.active)
        was, track.active = track.active, active
        winning = market.winning
        if was is not False and not active:
            # Also reported on the first sight of an order that is already outbid.
            if winning is None:
                # No offer runs at all: an on-demand renter holds the server, or it is
                # offline (which the order's own record reports, as ``paused``).
                track.stopped_by = "on-demand" if market.server.online else "offline"
                if track.stopped_by == "offline":
                    return []
                return [
                    make_event(
                        "monitor",
                        "paused",
                        now,
                        f"order {order.id} paused: the server is rented on demand; the bid "
                        "runs again when that rental ends",
                        order=order,
                        reason="on-demand",
                    )
                ]
            track.stopped_by = "outbid"
            return [
                make_event(
                    "monitor",
                    "outbid",
                    now,
                    f"order {order.id} outbid: {amount(float(order.price), order.currency)} < "
                    f"{amount(float(winning.bid), order.currency)} {label(order.currency)}/day",
                    order=order,
                    bid=float(order.price),
                    winning_bid=float(winning.bid),
                )
            ]
        if was is False and active:
            if track.stopped_by == "offline":
                return []  # the order's own record reports it back online
            message = {
                "outbid": f"order {order.id} is the highest bid again",
                "on-demand": f"order {order.id} runs again: the on-demand rental ended",
            }[track.stopped_by]
            return [
                make_event("monitor", "resumed", now, message, order=order, was=track.stopped_by)
            ]
        return []

    def _ended(self, tracks: list[_Track], now: float) -> list[Event]:
        final: dict[int, Order] = {}
        # On failure, report with what we last saw rather than lose the event.
        with contextlib.suppress(*RETRYABLE):
            final = {o.id: o for o in self.client.my_orders(include_completed=True)}
        events = []
        for track in tracks:
            order = final.get(track.order.id, track.order)
            del self._tracks[track.order.id]
            # Not time_left: that is zero for every ended order, however early it ended.
            left = max(0.0, order.ends_at - self.api_time.now())
            spend = float(order.spend)
            # Ended within a poll of its end (in server seconds): it ran its course.
            if float(order.mrl) > 0 and left <= self.api_time.to_server(self.interval):
                events.append(
                    make_event(
                        "monitor",
                        "expired",
                        now,
                        f"order {order.id} expired",
                        order=order,
                        spend=spend,
                        currency=order.currency,
                    )
                )
            else:
                events.append(
                    make_event(
                        "monitor",
                        "cancelled",
                        now,
                        f"order {order.id} ended {duration(left)} before its time",
                        order=order,
                        spend=spend,
                        currency=order.currency,
                        time_left=left,
                    )
                )
        return events


def monitor(client: MonitorClient, clock: Clock, **options: Any) -> Iterator[Event]:
    """Run an ``OrderMonitor`` with ``options`` (its keyword arguments) and yield its events."""
    return OrderMonitor(client, clock, **options).run()
