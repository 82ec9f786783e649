"""The rest of the market: other renters rent, bid and leave; hosts reprice; servers flap.

Each tick draws one event from a ``random.Random`` seeded with the sandbox's ``rng_seed``
and the tick's number, so the same seed and the same sequence of calls give the same
market. Bids favour servers where real users hold the active spot offer, so that spot
keepers and watchers have something to react to.

Now and then (``LIE_RATE`` of ticks, from a random stream of its own, so the market's
events stay what they were) a host starts delivering other hardware than it lists — a
failing GPU, a slow machine, a narrower PCIe link, a GPU fewer — and as often a lying
host turns honest again: what its machines report changes, never its listing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from clore.sandbox.backend.hosts import set_rented
from clore.sandbox.backend.lifecycle import end_order, market_order, rerank
from clore.sandbox.backend.machines import all_delivers, set_delivers
from clore.sandbox.backend.records import ServerRec
from clore.sandbox.backend.repository import Repository
from clore.sandbox.backend.rules import MARKET_USER_ID, to_usd

__all__ = ["HEAL_RATE", "LIE_RATE", "tick"]

#: Share of ticks on which a host starts lying, and on which a lying host turns honest.
LIE_RATE = 0.01
HEAL_RATE = 0.01

_Action = Callable[[Repository, float, random.Random], str]


def _round_price(amount: float, currency: str) -> float:
    return round(amount, 8 if currency == "bitcoin" else 4)


def _rent(repo: Repository, t: float, rng: random.Random) -> str:
    free = repo.server_ids(listed=True, rented=False)
    if not free:
        return "idle"
    server = repo.get_server(rng.choice(free))
    if server is None:
        return "idle"
    duration = rng.uniform(0.05, 1.0) * float(server.mrl) * 3600.0
    set_rented(repo, t, server, True, duration=duration)
    return f"rent {server.id}"


def _end_one(
    repo: Repository, t: float, rng: random.Random, *, spot: bool, verb: str, otherwise: _Action
) -> str:
    """End one of the other renters' live spot offers or rentals, drawn at random; with
    none to end, do ``otherwise`` instead."""
    live = repo.live_order_ids(MARKET_USER_ID, spot=spot)
    order = repo.get_order(rng.choice(live)) if live else None
    if order is None:
        return otherwise(repo, t, rng)
    end_order(repo, order, t, "cancelled" if spot else "released")
    return f"{verb} {order.server_id}"


def _release(repo: Repository, t: float, rng: random.Random) -> str:
    return _end_one(repo, t, rng, spot=False, verb="release", otherwise=_rent)


def _bid(repo: Repository, t: float, rng: random.Random) -> str:
    contested = sorted({o.server_id for o in repo.billing_orders() if o.spot})
    if contested and rng.random() < 0.6:
        server_id = rng.choice(contested)
    else:
        free = repo.server_ids(listed=True, rented=False)
        if not free:
            return "idle"
        server_id = rng.choice(free)
    server = repo.get_server(server_id)
    if server is None or not server.spot:
        return "idle"
    offers = [o for o in repo.live_orders_on(server.id) if o.spot]
    if offers:
        top = max(offers, key=lambda o: to_usd(o.price, o.currency))
        currency, price = top.currency, top.price * rng.uniform(1.05, 1.25)
    else:
        currency = next((c for c in server.allowed_coins if c in server.spot), "")
        currency = currency or next(iter(server.spot))
        price = float(server.spot[currency]) * rng.uniform(1.0, 1.3)
    minimum = float(server.spot.get(currency, 0.0))
    price = max(_round_price(price, currency), minimum)
    _place_offer(repo, t, server, currency, price)
    return f"bid {server.id} {currency} {price}"


def _place_offer(
    repo: Repository, t: float, server: ServerRec, currency: str, price: float
) -> None:
    end_at = t + float(server.mrl) * 3600.0
    offer = market_order(
        server, spot=True, currency=currency, price=price, ct=t, end_at=end_at, billed_until=t
    )
    repo.insert_order(offer)
    rerank(repo, server, t)


def _unbid(repo: Repository, t: float, rng: random.Random) -> str:
    return _end_one(repo, t, rng, spot=True, verb="unbid", otherwise=_bid)


def _reprice(repo: Repository, t: float, rng: random.Random) -> str:
    listed = repo.server_ids(listed=True)
    server = repo.get_server(rng.choice(listed)) if listed else None
    if server is None:
        return "idle"
    factor = rng.uniform(0.85, 1.15)
    server.on_demand = {c: _round_price(p * factor, c) or p for c, p in server.on_demand.items()}
    server.spot = {c: _round_price(p * factor, c) or p for c, p in server.spot.items()}
    repo.update_server(server)
    return f"reprice {server.id} {factor:.3f}"


def _offline(repo: Repository, t: float, rng: random.Random) -> str:
    listed = repo.server_ids(listed=True)
    server = repo.get_server(rng.choice(listed)) if listed else None
    if server is None:
        return "idle"
    server.online = False
    repo.update_server(server)
    rerank(repo, server, t)
    return f"offline {server.id}"


def _online(repo: Repository, t: float, rng: random.Random) -> str:
    offline = repo.offline_server_ids()
    server = repo.get_server(rng.choice(offline)) if offline else None
    if server is None:
        return _offline(repo, t, rng) if rng.random() < 0.5 else "idle"
    server.online = True
    repo.update_server(server)
    rerank(repo, server, t)
    return f"online {server.id}"


_ACTIONS: list[tuple[_Action, float]] = [
    (_rent, 0.25),
    (_release, 0.2),
    (_bid, 0.2),
    (_unbid, 0.1),
    (_reprice, 0.15),
    (_offline, 0.04),
    (_online, 0.06),
]
_ACTION_FUNCS = [action for action, _ in _ACTIONS]
_ACTION_WEIGHTS = [weight for _, weight in _ACTIONS]


def _lie(server: ServerRec, rng: random.Random) -> dict[str, Any]:
    """One way a host may cheat on ``server`` (what its machines then report)."""
    specs = json.loads(server.record).get("specs") or {}
    gpu = str(specs.get("gpu") or "")
    count = int(gpu.split("x", 1)[0]) if gpu[:1].isdigit() and "x" in gpu else 1
    width = specs.get("pcie_width")
    choices: list[dict[str, Any]] = [
        {"gpu_error": True},
        {"slow": round(rng.uniform(1.5, 4.0), 2)},
    ]
    if isinstance(width, int) and width > 1:
        choices.append({"pcie_width": max(1, width // 4)})
    if count > 1:
        choices.append({"gpu_count": count - 1})
    return rng.choice(choices)


def _lies(repo: Repository, rng_seed: int, number: int) -> str | None:
    rng = random.Random(f"clore-sandbox-lies:{rng_seed}:{number}")
    draw = rng.random()
    if draw < LIE_RATE:
        listed = repo.server_ids(listed=True)
        server = repo.get_server(rng.choice(listed)) if listed else None
        if server is None:
            return None
        lie = _lie(server, rng)
        set_delivers(repo, server.id, lie)
        shown = " ".join(f"{k}={v}" for k, v in lie.items())
        return f"lie {server.id} {shown}"
    if draw < LIE_RATE + HEAL_RATE:
        liars = sorted(all_delivers(repo))
        if not liars:
            return None
        server_id = rng.choice(liars)
        set_delivers(repo, server_id, None)
        return f"honest {server_id}"
    return None


def tick(repo: Repository, t: float, rng_seed: int) -> str:
    """Run one market event at time ``t``; returns what happened ("rent 123", ...; a host
    lying or turning honest adds "; lie 456 slow=2.1" or "; honest 456")."""
    number = int(repo.get_meta("market_ticks") or 0) + 1
    repo.set_meta("market_ticks", str(number))
    rng = random.Random(f"clore-sandbox-market:{rng_seed}:{number}")
    action: _Action = rng.choices(_ACTION_FUNCS, weights=_ACTION_WEIGHTS)[0]
    event = action(repo, t, rng)
    lie = _lies(repo, rng_seed, number)
    return event if lie is None else f"{event}; {lie}"
