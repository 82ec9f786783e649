"""Budget guards: cancel orders that cross ``max_spend``/``max_time``, warn on short wallet runway.

A limit is enforced one poll ahead: an order is cancelled when its spend *would* cross
``max_spend`` (``spend + price × lookahead / 86400``) or its age would cross ``max_time``
before the next poll, so a limit is never overshot by a polling gap. Age and lookahead are
server seconds (``now - ct`` on the server's clock; a poll gap times its time scale).
Cancels send no ``issue`` (an issue reports a fault of the server; crossing a budget is not
one) and the reason is written to ``data_dir()/workflows/guard.log`` as a JSON line.

A cancel whose answer is lost (a timeout, a dropped connection, a 5xx) may have happened:
it is settled with ``my_orders(include_completed=True)``, as ``create_order`` settles its
own. An order shown ended is reported ``guard_cancelled`` with ``reconciled`` true, logged
and its limits forgotten; one still running is cancelled again at the next round; when
``my_orders`` cannot be read either, the next round settles it (an order that has left
the running list by then counts as cancelled).

Limits given to ``clore rent``/``watch``/``spot keep`` are also registered in
``data_dir()/workflows/guards.json`` so that ``clore guard --all`` keeps enforcing them after
the loop that set them has exited. Registering limits for an order that has some merges
them (a limit given replaces the one of its kind, the other is kept); ``replace=True``
drops the old ones.

A running guard leaves a sign of life: a lease file in ``data_dir()/workflows/guard-leases/``
(one per running loop, mode 0600, removed when the loop ends) naming its process (PID,
host, boot, start time: ``clore._holder``), its orders (or every order), its own limits (or
the registered ones), its interval, and the loop-clock time of its last completed round.
A guard is *enforcing now* when its process is not certainly gone and its last round
ended at most twice its interval plus ``LEASE_SLACK`` ago: a guard that cannot read
``my_orders`` (no network) stops counting after two missed rounds. The spot keeper with
limits leaves one too (``source`` "spot"). ``enforcing`` answers it for an order; the file
of a process certainly gone is removed by whoever reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final, Protocol

import msgspec

from clore._clock import Clock
from clore._errors import OrderError
from clore._holder import Holder, is_gone, this_process
from clore._wire import Order, RenterFees, Wallet
from clore.market.pricing import label
from clore.market.units import duration
from clore.workflows._loop import (
    RETRYABLE,
    UNCERTAIN,
    Schedule,
    as_event,
    error_event,
    poll_loop,
    renter_fees,
)
from clore.workflows._protocols import GuardClient, SupportsCancel, SupportsMyOrders
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, Source, amount, make_event
from clore.workflows.plan import Limits, burn_per_day
from clore.workflows.state import StateFile, workflows_dir

__all__ = [
    "LEASE_SLACK",
    "Breach",
    "CancelClient",
    "Guard",
    "GuardLease",
    "RunwayWatch",
    "breach",
    "drop_lease",
    "enforce",
    "enforcing",
    "forget_limits",
    "guard",
    "guard_leases",
    "merge_limits",
    "new_lease",
    "register_limits",
    "registered_limits",
    "write_lease",
]


# Relative tolerance: a spend that equals the limit up to float noise has reached it.
_EPS = 1e-9


class Breach(msgspec.Struct, frozen=True):
    """The limit an order crosses: ``limit`` (max_spend/max_time), projected value, maximum."""

    limit: str
    value: float
    max: float

    def describe(self, currency: str | None = None) -> str:
        """``max_spend: 0.001100 BTC by the next check, limit 0.001000 BTC``-style reason
        (``max_time: 8 h by the next check, limit 8 h``)."""
        if self.limit == "max_time":
            return f"max_time: {duration(self.value)} by the next check, limit {duration(self.max)}"
        unit = f" {label(currency)}" if currency else ""
        return (
            f"max_spend: {amount(self.value, currency)}{unit} by the next check, "
            f"limit {amount(self.max, currency)}{unit}"
        )


def breach(order: Order, now: float, limits: Limits, *, lookahead: float = 0.0) -> Breach | None:
    """The limit ``order`` crosses by ``now + lookahead`` (server time and seconds), or None."""
    if limits.max_time is not None:
        age = now - float(order.ct) + lookahead
        if age >= limits.max_time - _EPS * limits.max_time:
            return Breach("max_time", age, limits.max_time)
    if limits.max_spend is not None:
        spend = float(order.spend) + float(order.price) * lookahead / 86400.0
        if spend >= limits.max_spend - _EPS * limits.max_spend:
            return Breach("max_spend", spend, limits.max_spend)
    return None


def _log(record: dict[str, object]) -> None:
    path = workflows_dir() / "guard.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


class CancelClient(SupportsCancel, SupportsMyOrders, Protocol):
    """What ``enforce`` calls: ``cancel_order``, and ``my_orders`` to settle a lost answer."""


def ended_record(client: SupportsMyOrders, order_id: int) -> Order | None:
    """The order's final record when ``my_orders`` shows it ended; None when it still runs,
    is not listed, or the list cannot be read now."""
    try:
        orders = client.my_orders(include_completed=True)
    except RETRYABLE:
        return None
    found = next((o for o in orders if o.id == order_id), None)
    return found if found is not None and found.expired else None


def cancelled_event(
    order: Order,
    crossed: Breach,
    at: float,
    *,
    source: Source = "guard",
    reconciled: bool = False,
) -> Event:
    """Log a guard's cancel of ``order``, forget its limits, and return ``guard_cancelled``."""
    reason = crossed.describe(order.currency or None)
    _log(
        {
            "at": at,
            "order_id": order.id,
            "reason": reason,
            "source": source,
            "reconciled": reconciled,
        }
    )
    forget_limits(order.id)
    note = " (its answer was lost; my_orders shows the order ended)" if reconciled else ""
    return make_event(
        source,
        "guard_cancelled",
        at,
        f"order {order.id} cancelled: {reason}{note}",
        order=order,
        reason=reason,
        limit=crossed.limit,
        value=crossed.value,
        max=crossed.max,
        reconciled=reconciled,
    )


def enforce(
    client: CancelClient,
    order: Order,
    limits: Limits,
    now: float,
    *,
    lookahead: float = 0.0,
    source: Source = "guard",
    measured: Order | None = None,
    at: float | None = None,
) -> Event | None:
    """Cancel ``order`` if it crosses ``limits`` (see the module docstring); the event, or None.

    ``now`` is the server's time and ``lookahead`` server seconds; ``at`` is the loop's
    time for the log and the event (default ``now``). ``measured`` is the record the
    limits are checked on, when not ``order`` itself (the spot keeper counts the spend
    and age of an order and the ones it replaced). A cancel that fails with its outcome
    unknown (``UNCERTAIN``) is settled with ``my_orders`` at once; if that does not show
    the order ended, the cancel's error is raised.
    """
    crossed = breach(measured or order, now, limits, lookahead=lookahead)
    if crossed is None:
        return None
    when = now if at is None else at
    try:
        client.cancel_order(order.id)
    except UNCERTAIN:
        final = ended_record(client, order.id)
        if final is None:
            raise
        return cancelled_event(final, crossed, when, source=source, reconciled=True)
    return cancelled_event(order, crossed, when, source=source)


# --------------------------------------------------------------------------- registry


class _Registry(msgspec.Struct):
    orders: dict[str, Limits] = {}


def _registry() -> StateFile:
    return StateFile(workflows_dir() / "guards.json")


def merge_limits(old: Limits | None, new: Limits) -> Limits:
    """``new`` over ``old``: each limit ``new`` sets replaces ``old``'s, the others stay."""
    if old is None:
        return new
    return Limits(
        max_spend=new.max_spend if new.max_spend is not None else old.max_spend,
        max_time=new.max_time if new.max_time is not None else old.max_time,
    )


def register_limits(order_id: int, limits: Limits, *, replace: bool = False) -> Limits:
    """Remember ``limits`` for ``order_id`` so ``clore guard --all`` enforces them later,
    merged with the ones already registered for it (``merge_limits``) unless ``replace``;
    the limits now registered."""
    if not limits:
        return registered_limits().get(order_id) or limits
    file = _registry()
    with file.locked():
        reg = file.read(_Registry) or _Registry()
        key = str(order_id)
        stored = limits if replace else merge_limits(reg.orders.get(key), limits)
        reg.orders[key] = stored
        file.write(reg)
    return stored


def forget_limits(order_id: int) -> None:
    """Drop the registered limits of ``order_id`` (it was cancelled or ended)."""
    file = _registry()
    if not file.exists():
        return
    with file.locked():
        reg = file.read(_Registry) or _Registry()
        if reg.orders.pop(str(order_id), None) is not None:
            file.write(reg)


def registered_limits() -> dict[int, Limits]:
    """All registered limits by order id."""
    reg = _registry().read(_Registry) or _Registry()
    return {int(key): value for key, value in reg.orders.items()}


# --------------------------------------------------------------------------- leases

#: A live guard's last round ended at most twice its interval and this many seconds ago.
LEASE_SLACK: Final = 60.0


class GuardLease(msgspec.Struct, kw_only=True):
    """A running guard's sign of life (see the module docstring). Times are the loop's
    clock; ``order_ids`` None is every order; ``limits`` None applies the registered ones."""

    token: str
    pid: int
    process: dict[str, object]
    source: str = "guard"
    started_at: float
    last_round_at: float | None = None
    interval: float
    order_ids: list[int] | None = None
    limits: Limits | None = None
    use_registered: bool = True

    def gone(self) -> bool:
        """True when its process certainly no longer runs."""
        holder = Holder.from_json(self.process)
        return holder is not None and is_gone(holder)

    def fresh(self, now: float) -> bool:
        """True when its last round ended recently enough (twice the interval + slack)."""
        if self.last_round_at is None:
            return False
        return now - self.last_round_at <= 2 * self.interval + LEASE_SLACK

    def live(self, now: float) -> bool:
        """Enforcing now: its process runs (as far as can be told) and its rounds are recent."""
        return self.fresh(now) and not self.gone()

    def applies(self, order_id: int, registered: Limits | None) -> Limits | None:
        """The limits this guard enforces on ``order_id`` (None: it does not guard it)."""
        if self.order_ids is not None and order_id not in self.order_ids:
            return None
        if self.limits:
            return self.limits
        return registered if self.use_registered and registered else None


def _leases_dir() -> Path:
    return workflows_dir() / "guard-leases"


def new_lease(
    source: str,
    started_at: float,
    interval: float,
    *,
    order_ids: Sequence[int] | None = None,
    limits: Limits | None = None,
    use_registered: bool = True,
) -> GuardLease:
    """A lease of this process (not written yet: ``write_lease``)."""
    return GuardLease(
        token=uuid.uuid4().hex[:12],
        pid=os.getpid(),
        process=dict(this_process().to_json()),
        source=source,
        started_at=started_at,
        interval=interval,
        order_ids=None if order_ids is None else sorted(order_ids),
        limits=limits if limits else None,
        use_registered=use_registered,
    )


def write_lease(lease: GuardLease) -> None:
    """Write (replace) ``lease``'s file; a file that cannot be written does not stop the
    guard (it still enforces, only unseen)."""
    with contextlib.suppress(OSError):
        StateFile(_leases_dir() / f"{lease.token}.json").write(lease)


def drop_lease(lease: GuardLease) -> None:
    """Remove ``lease``'s file (its loop ends)."""
    with contextlib.suppress(OSError):
        (_leases_dir() / f"{lease.token}.json").unlink()


def guard_leases() -> list[GuardLease]:
    """Every lease file's lease, oldest first; the file of a process certainly gone (or
    one that is not a lease) is removed."""
    found: list[GuardLease] = []
    try:
        paths = sorted(_leases_dir().glob("*.json"))
    except OSError:
        return found
    for path in paths:
        try:
            lease = StateFile(path).read(GuardLease)
        except (OSError, ValueError):
            lease = None
        if lease is None or lease.gone():
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(lease)
    found.sort(key=lambda lease: lease.started_at)
    return found


def enforcing(
    order_id: int, now: float, registered: Limits | None = None
) -> list[tuple[GuardLease, Limits]]:
    """The guards enforcing limits on ``order_id`` right now (``now``: the loop clock),
    each with the limits it applies; ``registered`` is the order's registered limits."""
    found = []
    for lease in guard_leases():
        applied = lease.applies(order_id, registered)
        if applied and lease.live(now):
            found.append((lease, applied))
    return found


# --------------------------------------------------------------------------- runway


class RunwayWatch:
    """Warn once when a wallet's runway (balance / burn rate) drops under ``threshold`` seconds.

    Burn rate per currency is the sum of per-day prices of the running orders paid in it,
    plus the renter fee when ``fees`` are known (spot orders count at their bid, whether or
    not they currently win: the upper bound). The warning re-arms when the runway recovers
    above the threshold.
    """

    def __init__(self, threshold: float, source: Source) -> None:
        self.threshold = threshold
        self.source = source
        self._low: set[str] = set()

    def check(
        self,
        wallets: Iterable[Wallet],
        orders: Iterable[Order],
        now: float,
        fees: RenterFees | None = None,
    ) -> list[Event]:
        burn: dict[str, float] = {}
        for order in orders:
            if not order.expired:
                burn[order.currency] = burn.get(order.currency, 0.0) + burn_per_day(order, fees)
        events: list[Event] = []
        for wallet in wallets:
            rate = burn.get(wallet.name, 0.0)
            if wallet.balance is None or rate <= 0:
                self._low.discard(wallet.name)
                continue
            runway = float(wallet.balance) / rate * 86400.0
            if runway >= self.threshold:
                self._low.discard(wallet.name)
                continue
            if wallet.name in self._low:
                continue
            self._low.add(wallet.name)
            events.append(
                make_event(
                    self.source,
                    "low_runway",
                    now,
                    f"{wallet.name} wallet runs out in {duration(runway)} at the burn rate",
                    currency=wallet.name,
                    balance=float(wallet.balance),
                    burn_per_day=rate,
                    runway_seconds=runway,
                    threshold=self.threshold,
                )
            )
        return events


# --------------------------------------------------------------------------- the loop


class Guard:
    """The guard loop; iterate ``run()`` for events (see ``guard`` for the options).

    After the loop, ``unsettled`` lists the orders whose cancel failed and that were still
    running (or may be: the cancel got no answer) when it ended: they keep billing.
    """

    def __init__(
        self,
        client: GuardClient,
        clock: Clock,
        *,
        order_ids: Sequence[int] | None = None,
        limits: Limits | None = None,
        use_registered: bool = True,
        interval: float = 60.0,
        runway_below: float | None = None,
        until: float | None = None,
        once: bool = False,
    ) -> None:
        self.client = client
        self.clock = clock
        self.wanted = None if order_ids is None else set(order_ids)
        self.limits = limits
        self.use_registered = use_registered
        self.interval = interval
        self.until = until
        self.once = once
        self.server = TimeBase(client, clock)
        self.runway = None if runway_below is None else RunwayWatch(runway_below, "guard")
        self._fees: RenterFees | None = None
        # Cancels that failed: the order was running when last seen (refused), or the
        # outcome is unknown (``_uncertain``, with the limit crossed, for the report).
        self._refused: dict[int, Order] = {}
        self._uncertain: dict[int, tuple[Order, Breach]] = {}
        self.lease: GuardLease | None = None  # written while ``run`` runs

    @property
    def unsettled(self) -> list[int]:
        """Ids of the orders a failed cancel left running (or possibly running)."""
        return sorted({*self._refused, *self._uncertain})

    @property
    def uncertain(self) -> list[int]:
        """Ids among ``unsettled`` whose cancel got no answer: they may have ended."""
        return sorted(self._uncertain)

    def run(self) -> Iterator[Event]:
        """Poll until every listed order is gone, ``until``, or one pass with ``once``;
        while it runs, its lease says so (the module docstring)."""
        self.lease = new_lease(
            "guard",
            self.clock.time(),
            self.interval,
            order_ids=None if self.wanted is None else sorted(self.wanted),
            limits=self.limits,
            use_registered=self.use_registered,
        )
        write_lease(self.lease)
        try:
            yield from poll_loop(
                self.clock, self.interval, "guard", self._check, wrap=as_event, until=self.until
            )
        finally:
            drop_lease(self.lease)

    def _check(self, _schedule: Schedule) -> Generator[Event, None, bool]:
        orders = self.client.my_orders()
        wallets = self.client.wallets() if self.runway is not None else []
        registered = registered_limits() if self.use_registered else {}
        live = [o for o in orders if not o.expired]
        running = {o.id for o in live}
        for order_id in [oid for oid in self._uncertain if oid not in running]:
            yield self._settle(order_id)
        for order_id in [oid for oid in self._refused if oid not in running]:
            del self._refused[order_id]  # it ended after all
        for order in live:
            if self.wanted is not None and order.id not in self.wanted:
                continue
            applied = self.limits if self.limits else registered.get(order.id)
            if not applied:
                continue
            yield from self._enforce(order, applied)
        if self.runway is not None:
            self._fees = self._fees or renter_fees(self.client)
            yield from self.runway.check(wallets, live, self.clock.time(), self._fees)
        if self.lease is not None:
            self.lease.last_round_at = self.clock.time()
            write_lease(self.lease)
        return self.once or (self.wanted is not None and not (running & self.wanted))

    def _enforce(self, order: Order, applied: Limits) -> Iterator[Event]:
        now, lookahead = self.server.now(), self.server.to_server(self.interval)
        try:
            event = enforce(
                self.client, order, applied, now, lookahead=lookahead, at=self.clock.time()
            )
        except (OrderError, *RETRYABLE) as exc:
            crossed = breach(order, now, applied, lookahead=lookahead)
            if isinstance(exc, UNCERTAIN) and crossed is not None:
                self._uncertain[order.id] = (order, crossed)
                consequence = "the order may still be running"
            else:
                self._refused[order.id] = order
                consequence = "the order is still running"
            yield error_event(
                "guard",
                self.clock.time(),
                exc,
                None if self.once else self.interval,
                order=order,
                context=f"cancel of order {order.id} failed: ",
                consequence=consequence,
            )
            return
        self._refused.pop(order.id, None)
        self._uncertain.pop(order.id, None)
        if event is not None:
            yield event

    def _settle(self, order_id: int) -> Event:
        # The order left the running list after a cancel whose answer was lost: that
        # cancel (or the order's end) took effect. Report it with its final record.
        order, crossed = self._uncertain.pop(order_id)
        final = ended_record(self.client, order_id) or order
        return cancelled_event(final, crossed, self.clock.time(), reconciled=True)


def guard(
    client: GuardClient,
    clock: Clock,
    *,
    order_ids: Sequence[int] | None = None,
    limits: Limits | None = None,
    use_registered: bool = True,
    interval: float = 60.0,
    runway_below: float | None = None,
    until: float | None = None,
    once: bool = False,
) -> Iterator[Event]:
    """Poll ``my_orders`` and cancel the orders that cross their limits; yield what happened.

    ``order_ids`` None guards every running order. Explicit ``limits`` apply to every guarded
    order; otherwise (and with ``use_registered``) each order's registered limits apply.
    Ends when every listed order is gone, at ``until``, or after one pass with ``once``.
    A failed cancel is an ``error`` event about the order, retried at the next round
    (with ``once``, a fatal one: ``Guard.unsettled`` names what is left running).
    """
    return Guard(
        client,
        clock,
        order_ids=order_ids,
        limits=limits,
        use_registered=use_registered,
        interval=interval,
        runway_below=runway_below,
        until=until,
        once=once,
    ).run()
