"""Placing one order on the first of several candidate servers that takes it.

``place`` tries the candidates in turn, at most ``tries`` of them. A lost race — the
server was rented meanwhile (``ServerAlreadyRentedError``), its price moved under a locked
price (``PriceChangedError``), it went offline (``ServerOfflineError``) — moves on to the
next candidate. Anything else ends the placement with that error. An order that may exist
(``OrderUnconfirmedError``: the SDK could not tell whether an attempt rented) ends it
too, always: the order may be running, and billing, already, so trying another server
could rent twice. (The SDK raises a plain refusal only when no attempt may have acted.)

The caller decides what each attempt is preceded by (``before``: a confirmation, which may
raise to stop) and hears of each lost race (``on_lost``); nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clore._errors import (
    OrderUnconfirmedError,
    PriceChangedError,
    ServerAlreadyRentedError,
    ServerOfflineError,
)
from clore._wire import Order, Server
from clore.workflows._protocols import SupportsCreateOrder
from clore.workflows.plan import RentSpec

__all__ = ["Candidate", "Placed", "Skipped", "place", "race_lost"]


@dataclass(frozen=True)
class Candidate:
    """A server to try: its id and, when it was looked up, its listing."""

    server_id: int
    server: Server | None = None

    def listed_price(self, currency: str, *, spot: bool = False) -> float | None:
        """The listed price per day in ``currency`` (the spot minimum with ``spot``); None
        when not looked up or not offered."""
        return None if self.server is None else self.server.price_per_day(currency, spot=spot)


@dataclass(frozen=True)
class Skipped:
    """A candidate passed over: the server and the API's reason (its code-6 string)."""

    server_id: int
    reason: str


@dataclass(frozen=True)
class Placed:
    """The order made, the candidate it was made on, and the candidates skipped before."""

    order: Order
    candidate: Candidate
    skipped: list[Skipped] = field(default_factory=list)


def race_lost(exc: BaseException) -> bool:
    """True for a refusal that another candidate may not meet: the server was rented
    meanwhile, its price moved, or it went offline. Never for an order that may exist."""
    if isinstance(exc, OrderUnconfirmedError):
        return False
    return isinstance(exc, ServerAlreadyRentedError | PriceChangedError | ServerOfflineError)


def _reason(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    return str(error) if error else type(exc).__name__


def place(
    client: SupportsCreateOrder,
    candidates: Sequence[Candidate],
    spec: RentSpec,
    *,
    bid: float | None = None,
    tries: int = 1,
    before: Callable[[Candidate], None] | None = None,
    on_lost: Callable[[Candidate, Skipped, Candidate], None] | None = None,
) -> Placed:
    """Create one order from ``spec`` on the first of ``candidates[:tries]`` that takes it.

    A spot order bids ``bid`` per day; an on-demand order is made at the candidate's
    listed price (sent as ``required_price`` when ``spec.lock_price``). ``before(c)`` runs
    before each attempt; ``on_lost(c, skipped, next_candidate)`` after each lost race that
    moves on. Every attempt's arguments are checked first (``ParameterError``, nothing
    asked or sent). Raises the last lost race's error when every candidate tried was lost,
    and any other error at once (``OrderUnconfirmedError`` included: never another server).
    """
    attempts = list(candidates[: max(1, tries)])
    if not attempts:
        raise ValueError("place: no candidate server")
    prices = [bid if spec.spot else c.listed_price(spec.currency) for c in attempts]
    for candidate, price in zip(attempts, prices, strict=True):
        # Bad settings raise ParameterError now: before anything is asked or sent.
        spec.preview(candidate.server_id, price)
    skipped: list[Skipped] = []
    for index, (candidate, price) in enumerate(zip(attempts, prices, strict=True)):
        if before is not None:
            before(candidate)
        try:
            order = spec.create(client, candidate.server_id, price)
        except Exception as exc:
            if not race_lost(exc) or index + 1 >= len(attempts):
                raise
            passed = Skipped(candidate.server_id, _reason(exc))
            skipped.append(passed)
            if on_lost is not None:
                on_lost(candidate, passed, attempts[index + 1])
            continue
        return Placed(order, candidate, skipped)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover
