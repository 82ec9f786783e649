"""Budget guards: cancel orders that cross ``max_spend``/``max_time``, warn on short wallet runway.

A limit is enforced one poll ahead: an order is cancelled when its spend *would* cross
``max_spend`` (``spend + price × lookahead / 86400``) or its age would cross ``max_time``
before the next poll, so a limit is never overshot by a polling gap. Age and lookahead are
server seconds (``now - ct`` on the server's clock; a poll gap times its time scale).
Cancels send no ``issue`` (an issue reports a fault of the server; crossing a budget is not
one) and the reason is written to ``data_dir()/workflows/guard.log`` as a JSON line.

Limits given to ``clore rent``/``watch``/``spot keep`` are also registered in
``data_dir()/workflows/guards.json`` so that ``clore guard --all`` keeps enforcing them after
the loop that set them has exited.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator, Sequence

import msgspec

from clore._clock import Clock
from clore._errors import OrderError
from clore._wire import Order, RenterFees, Wallet
from clore.market.pricing import label
from clore.workflows._loop import (
    RETRYABLE,
    Schedule,
    as_event,
    error_event,
    poll_loop,
    renter_fees,
)
from clore.workflows._protocols import GuardClient, SupportsCancel
from clore.workflows._time import TimeBase
from clore.workflows.events import Event, Source, amount, make_event
from clore.workflows.plan import Limits, burn_per_day
from clore.workflows.state import StateFile, workflows_dir

__all__ = [
    "Breach",
    "RunwayWatch",
    "breach",
    "enforce",
    "forget_limits",
    "guard",
    "register_limits",
    "registered_limits",
]


# Relative tolerance: a spend that equals the limit up to float noise has reached it.
_EPS = 1e-9


class Breach(msgspec.Struct, frozen=True):
    """The limit an order crosses: ``limit`` (max_spend/max_time), projected value, maximum."""

    limit: str
    value: float
    max: float

    def describe(self, currency: str | None = None) -> str:
        """``max_spend: 0.0011 BTC by the next check, limit 0.001 BTC``-style reason."""
        if self.limit == "max_time":
            return f"max_time: {self.value:.0f} s by the next check, limit {self.max:.0f} s"
        unit = f" {label(currency)}" if currency else ""
        return (
            f"max_spend: {amount(self.value)}{unit} by the next check, "
            f"limit {amount(self.max)}{unit}"
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


def enforce(
    client: SupportsCancel,
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
    and age of an order and the ones it replaced).
    """
    crossed = breach(measured or order, now, limits, lookahead=lookahead)
    if crossed is None:
        return None
    when = now if at is None else at
    reason = crossed.describe(order.currency or None)
    client.cancel_order(order.id)
    _log({"at": when, "order_id": order.id, "reason": reason, "source": source})
    forget_limits(order.id)
    return make_event(
        source,
        "guard_cancelled",
        when,
        f"order {order.id} cancelled: {reason}",
        order=order,
        reason=reason,
        limit=crossed.limit,
        value=crossed.value,
        max=crossed.max,
    )


# --------------------------------------------------------------------------- registry


class _Registry(msgspec.Struct):
    orders: dict[str, Limits] = {}


def _registry() -> StateFile:
    return StateFile(workflows_dir() / "guards.json")


def register_limits(order_id: int, limits: Limits) -> None:
    """Remember ``limits`` for ``order_id`` so ``clore guard --all`` enforces them later."""
    if not limits:
        return
    file = _registry()
    with file.locked():
        reg = file.read(_Registry) or _Registry()
        reg.orders[str(order_id)] = limits
        file.write(reg)


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
                    f"{wallet.name} wallet runs out in {runway / 3600:.1f} h at the burn rate",
                    currency=wallet.name,
                    balance=float(wallet.balance),
                    burn_per_day=rate,
                    runway_seconds=runway,
                    threshold=self.threshold,
                )
            )
        return events


# --------------------------------------------------------------------------- the loop


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
    """
    wanted = None if order_ids is None else set(order_ids)
    server = TimeBase(client, clock)
    runway = None if runway_below is None else RunwayWatch(runway_below, "guard")
    fees: RenterFees | None = None

    def check(_schedule: Schedule) -> Generator[Event, None, bool]:
        nonlocal fees
        orders = client.my_orders()
        wallets = client.wallets() if runway is not None else []
        registered = registered_limits() if use_registered else {}
        live = [o for o in orders if not o.expired]
        for order in live:
            if wanted is not None and order.id not in wanted:
                continue
            applied = limits if limits else registered.get(order.id)
            if not applied:
                continue
            try:
                event = enforce(
                    client,
                    order,
                    applied,
                    server.now(),
                    lookahead=server.to_server(interval),
                    at=clock.time(),
                )
            except (OrderError, *RETRYABLE) as exc:
                yield error_event("guard", clock.time(), exc, interval)
                continue
            if event is not None:
                yield event
        if runway is not None:
            fees = fees or renter_fees(client)
            yield from runway.check(wallets, live, clock.time(), fees)
        return once or (wanted is not None and not ({o.id for o in live} & wanted))

    yield from poll_loop(clock, interval, "guard", check, wrap=as_event, until=until)
