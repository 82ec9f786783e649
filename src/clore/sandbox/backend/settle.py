"""Bringing the state up to a point in time: expiries, provisioning, empty wallets, market.

Time only moves in the clock; the state follows when someone looks. ``settle(now)``
replays, in order, every scheduled event up to ``now`` — an order reaching ``ct + mrl``,
a container finishing provisioning, an order's creation fee falling due (after 10 minutes
of running), a wallet running dry, a market tick — and stores when the next one is due,
so that reads before it need not write at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from clore.sandbox.backend.billing import (
    accrue,
    charge_creation_fee,
    creation_fee_due,
    exhaustion_times,
)
from clore.sandbox.backend.lifecycle import end_order, provision
from clore.sandbox.backend.machines import Endpoints
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import MAX_CATCHUP_EVENTS, MAX_CATCHUP_TICKS

__all__ = ["MarketTicker", "next_due", "schedule", "settle"]

#: Runs one market event at time ``t``; returns a short description of what happened.
MarketTicker = Callable[[Repository, float], str]

_EPSILON = 1e-9


def _market_next(repo: Repository, rate: float) -> float:
    if rate <= 0:
        return math.inf
    last = repo.get_meta("market_last")
    if last is None:
        return math.inf
    return float(last) + 1.0 / rate


def next_due(repo: Repository, market_rate: float) -> float:
    """When the next scheduled event happens (``inf`` when nothing is scheduled)."""
    candidates = [_market_next(repo, market_rate)]
    order_event = repo.next_order_event()
    if order_event is not None:
        candidates.append(order_event)
    billing = repo.billing_orders()
    candidates.extend(t for t, _, _ in exhaustion_times(repo, billing))
    candidates.extend(t for t in map(creation_fee_due, billing) if t is not None)
    return min(candidates)


def schedule(repo: Repository, market_rate: float) -> None:
    """Store when the next event is due (call after every change)."""
    repo.set_meta("next_due", repr(next_due(repo, market_rate)))


def settle(
    repo: Repository,
    now: float,
    market_rate: float,
    ticker: MarketTicker | None,
    endpoints: Endpoints | None = None,
) -> list[str]:
    """Process every event due at or before ``now``; returns the market events that ran.

    ``endpoints`` assigns provisioned orders their host and ports (see ``provision``)."""
    ran: list[str] = []
    rate = market_rate
    for _ in range(MAX_CATCHUP_EVENTS):
        t = next_due(repo, rate)
        if t > now:
            break
        ran.extend(_process(repo, t, rate, ticker, endpoints))
        if rate > 0 and len(ran) >= MAX_CATCHUP_TICKS:
            # Far behind (a big jump of the clock): skip the remaining market ticks.
            repo.set_meta("market_last", repr(now))
            rate = 0.0
    schedule(repo, market_rate)
    return ran


def _process(
    repo: Repository,
    t: float,
    market_rate: float,
    ticker: MarketTicker | None,
    endpoints: Endpoints | None,
) -> list[str]:
    """Process everything due at ``t`` (the earliest due time)."""
    billing = repo.billing_orders()
    due = exhaustion_times(repo, billing)
    dry = {(user, cur) for when, user, cur in due if when <= t + _EPSILON}
    for order in billing:
        accrue(repo, order, t)
        fee_due = creation_fee_due(order)
        if fee_due is not None and fee_due <= t + _EPSILON:
            charge_creation_fee(repo, order)
            wallet = repo.get_wallet(order.user_id, order.currency)
            if wallet is not None and wallet.balance <= _EPSILON:
                # The fee took what was left: the wallet is dry now, as at any other end.
                dry.add((order.user_id, order.currency))
        repo.update_order(order)
    for user_id, currency in sorted(dry):
        wallet = repo.get_wallet(user_id, currency)
        if wallet is not None and wallet.balance != 0.0:
            # The wallet is empty at t by construction; what is left is rounding in the
            # last charge, of either sign. It shows 0, never a residue or less.
            wallet.balance = 0.0
            repo.put_wallet(wallet)
        for order in billing:
            fresh = repo.get_order(order.id)
            if (
                fresh is not None
                and not fresh.ended
                and (order.user_id, order.currency)
                == (
                    user_id,
                    currency,
                )
            ):
                end_order(repo, fresh, t, "balance")
    for order in repo.orders_due(t + _EPSILON):
        if order.end_at <= t + _EPSILON:
            end_order(repo, order, t, "expired")
        elif not order.provisioned:
            server = repo.get_server(order.server_id)
            if server is not None:
                provision(repo, order, server, endpoints)
    ran: list[str] = []
    if market_rate > 0 and _market_next(repo, market_rate) <= t + _EPSILON:
        repo.set_meta("market_last", repr(t))
        if ticker is not None:
            ran.append(ticker(repo, t))
    return ran
