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

``place_verified`` adds verification inside Clore's free window (``clore.rentals.verify``):
after each placement it waits for the order, verifies it and settles it; an order that
failed and was cancelled while free moves on to the next candidate (the failed host is on
the bad-host list by then, and candidates it rules out are passed over), at most
``verify_tries`` orders in all. ``avoid_bad_hosts`` drops the listed hosts beforehand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from clore._errors import (
    OrderUnconfirmedError,
    PriceChangedError,
    ServerAlreadyRentedError,
    ServerOfflineError,
)
from clore._wire import Order, Server
from clore.workflows._protocols import SupportsCreateOrder
from clore.workflows.plan import RentSpec

if TYPE_CHECKING:
    from clore.rentals.verify import BadHostList, BadHosts, Credentials, Settlement, VerifyOptions

__all__ = [
    "Candidate",
    "PlaceVerifiedClient",
    "Placed",
    "Skipped",
    "Verified",
    "avoid_bad_hosts",
    "place",
    "place_verified",
    "race_lost",
]


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


def avoid_bad_hosts(
    candidates: Sequence[Candidate], bad: BadHostList
) -> tuple[list[Candidate], list[Skipped]]:
    """``candidates`` without those on the bad-host list ``bad`` (by server, by owner, or
    by the owner's strikes), and the ones passed over with why."""
    kept: list[Candidate] = []
    passed: list[Skipped] = []
    for candidate in candidates:
        server = candidate.server
        found = bad.is_bad(server if server is not None else candidate.server_id)
        if found is None:
            kept.append(candidate)
        else:
            passed.append(Skipped(candidate.server_id, f"bad host: {found.reason}"))
    return kept, passed


class PlaceVerifiedClient(SupportsCreateOrder, Protocol):
    """What ``place_verified`` calls: create and cancel orders, the server's time
    (``clore.Clore`` has it)."""

    def cancel_order(self, order_id: int, issue: str | None = None) -> None: ...

    def server_time(self) -> float: ...


@dataclass(frozen=True)
class Verified:
    """How ``place_verified`` ended: the last placement and its settlement (``kept``, or
    the outcome that stopped it), and every settlement in turn (cancelled ones first)."""

    placed: Placed
    settlement: Settlement
    settlements: list[Settlement] = field(default_factory=list)

    @property
    def order(self) -> Order:
        """The last order placed (kept, or ended by its settlement)."""
        return self.placed.order


def place_verified(
    client: PlaceVerifiedClient,
    candidates: Sequence[Candidate],
    spec: RentSpec,
    *,
    credentials: Callable[[Order], Credentials],
    wait: Callable[[Order], Order],
    bid: float | None = None,
    tries: int = 1,
    verify_tries: int = 1,
    bad_hosts: BadHosts | None = None,
    options: Callable[[Order], VerifyOptions] | None = None,
    before: Callable[[Candidate], None] | None = None,
    on_lost: Callable[[Candidate, Skipped, Candidate], None] | None = None,
    on_placed: Callable[[Placed], None] | None = None,
    on_settled: Callable[[Settlement, Candidate | None], None] | None = None,
) -> Verified:
    """Place an order (``place``), ``wait`` for it, verify and settle it
    (``verify_and_settle``, created by us); while the settlement moves on (the order
    failed and was cancelled in the free window) and fewer than ``verify_tries`` orders
    were made, place again on the candidates after the one that failed, without the hosts
    the bad-host list now rules out. A machine that could not be logged in to ends it (the
    credentials, not the host, are the likely cause).

    ``credentials(order)`` says how to log in, ``options(order)`` how to verify (its
    known-hosts file, say). ``on_placed`` hears of each order as soon as it exists (so a
    caller interrupted later knows what is running); ``on_settled(settlement, next)`` of
    each settlement and the candidate tried next (None: no more). Errors of ``place`` and
    ``wait`` propagate; a verification never raises for an unreachable machine.
    """
    from clore.rentals.verify import verify_and_settle

    remaining = list(candidates)
    settlements: list[Settlement] = []
    while True:
        placed = place(
            client, remaining, spec, bid=bid, tries=tries, before=before, on_lost=on_lost
        )
        if on_placed is not None:
            on_placed(placed)
        ready = wait(placed.order)
        settled = verify_and_settle(
            client,
            ready,
            credentials(ready),
            created_by_us=True,
            listing=placed.candidate.server if placed.candidate.server is not None else ready,
            bad_hosts=bad_hosts,
            options=None if options is None else options(ready),
        )
        settlements.append(settled)
        following: list[Candidate] = []
        # A machine that could not be logged in to says more about the credentials than
        # about the host (settle cancels it, free, without listing it): another server
        # would fail the same way, so stop there.
        if settled.move_on and settled.report.reachable and len(settlements) < verify_tries:
            index = next(
                (i for i, c in enumerate(remaining) if c.server_id == placed.candidate.server_id),
                len(remaining) - 1,
            )
            following = remaining[index + 1 :]
            if bad_hosts is not None:
                following, _ = avoid_bad_hosts(following, bad_hosts.load())
        if on_settled is not None:
            on_settled(settled, following[0] if following else None)
        if not following:
            return Verified(Placed(ready, placed.candidate, placed.skipped), settled, settlements)
        remaining = following
