"""Which servers a rental may go to, best first: the ones that match the filters, are
available, can be paid in the currency, pass the quality floors and are not on the local
bad-host list, ranked by price.

**Payable.** A server is a candidate only when it accepts the paying currency
(``allowed_coins``) *and* lists a price in it (the spot minimum for a spot bid): the API
refuses any other order (``currency-not-allowed``), so a converted price is never used
to choose.

**Floors** (``Floors``; ``rent --cheapest``, ``watch --rent``, the job runner and the agent
server use the defaults). Chosen from the real 2024 capture (1,472 available servers
payable in bitcoin):

* ``min_reliability`` **0.9**: reliability is the share of time the server was up; below
  90 % a day-long rental is likely to be cut. In the capture the lowest fifth of the
  available servers runs from 0 to 0.84 and the median is 0.99; the floor keeps 1,112
  of 1,472 (three quarters).
* ``min_rating`` **2.5** once a server has ``min_ratings`` **3** or more ratings: the
  middle of the 0..5 scale, close to the median (2.55) of the available servers rated
  3+ times in the capture, so it removes the worse-rated half of the servers renters have judged.
  Clore's renters rate harshly (a floor of 4 would keep 10 of 108 single RTX 4090s).
  Fewer than 3 ratings say too little either way (one angry or one friendly vote): such
  servers are judged on reliability alone, which keeps new hosts rentable.
* **online**: the marketplace lists only online servers, so a fresh listing is the check;
  ``rent --cheapest`` always fetches one (never the cache) and ``watch`` polls.

Both floors together keep 743 of the 1,472 servers and 44 of the 108 single RTX 4090s; the
cheapest of those costs 20 % more than the cheapest single RTX 4090s overall, two at one
price that are 85 % and 42 % reliable. ``Floors.off()`` (``--any-quality``) removes the
reliability and rating floors; the currency rule and the bad-host list stay (``clore
hosts bad forget`` takes a host off the list).

**Bad hosts.** Servers on the local bad-host list (``clore.rentals.verify.BadHosts``: a
server, its owner, or an owner with two servers on it) are skipped; the list is read
once per ranking.

**Ranking**: by price per day in the currency (on demand, or the spot minimum for a spot
bid), then by reliability, highest first; remaining ties keep the marketplace's order.
``rentals.placement.place`` tries the candidates in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from clore._wire import Server
from clore.market import Filter, PriceContext, compile_filters

if TYPE_CHECKING:
    from clore.rentals.verify.badhosts import BadHostList, BadReason

__all__ = [
    "DEFAULT_MIN_RATING",
    "DEFAULT_MIN_RATINGS",
    "DEFAULT_MIN_RELIABILITY",
    "Choice",
    "Floors",
    "candidate_filter",
    "cheapest",
    "choose",
    "payable",
]

#: The default floors (see the module docstring for why these values).
DEFAULT_MIN_RELIABILITY: Final = 0.9
DEFAULT_MIN_RATING: Final = 2.5
DEFAULT_MIN_RATINGS: Final = 3


def payable(server: Server, currency: str, *, spot: bool = False) -> bool:
    """True when ``server`` takes ``currency`` and lists a price in it (the spot minimum
    for a spot bid)."""
    return server.accepts(currency) and server.price_per_day(currency, spot=spot) is not None


@dataclass(frozen=True)
class Floors:
    """The quality a candidate must have: ``min_reliability`` (0..1), and an average
    rating of at least ``min_rating`` once it has ``min_ratings`` ratings or more."""

    min_reliability: float = DEFAULT_MIN_RELIABILITY
    min_rating: float = DEFAULT_MIN_RATING
    min_ratings: int = DEFAULT_MIN_RATINGS

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_reliability <= 1.0:
            raise ValueError(f"min_reliability must be within 0..1, not {self.min_reliability}")
        if not 0.0 <= self.min_rating <= 5.0:
            raise ValueError(f"min_rating must be within 0..5, not {self.min_rating}")
        if self.min_ratings < 0:
            raise ValueError(f"min_ratings must be 0 or more, not {self.min_ratings}")

    @classmethod
    def off(cls) -> Floors:
        """No reliability or rating floor (``--any-quality``)."""
        return cls(min_reliability=0.0, min_rating=0.0, min_ratings=0)

    @property
    def is_off(self) -> bool:
        """True when no server falls below these floors."""
        return self.min_reliability <= 0.0 and self.min_rating <= 0.0

    def problem(self, server: Server) -> str | None:
        """Why ``server`` falls below the floors (``reliability 42% < 90%``), or None."""
        reliability = float(server.reliability)
        if reliability < self.min_reliability:
            return f"reliability {_percent(reliability)} < {_percent(self.min_reliability)}"
        avg, count = float(server.rating.avg), int(server.rating.cnt)
        if count >= max(self.min_ratings, 1) and avg < self.min_rating:
            return f"rating {avg:.1f} from {count} ratings < {self.min_rating:g}"
        return None

    def admits(self, server: Server) -> bool:
        """True when ``server`` passes every floor."""
        return self.problem(server) is None

    def describe(self) -> str:
        """``reliability >= 90%, rating >= 2.5 (once rated 3+ times)``, or ``none``."""
        if self.is_off:
            return "none"
        parts = []
        if self.min_reliability > 0:
            parts.append(f"reliability >= {_percent(self.min_reliability)}")
        if self.min_rating > 0:
            rated = f" (once rated {self.min_ratings}+ times)" if self.min_ratings > 1 else ""
            parts.append(f"rating >= {self.min_rating:g}{rated}")
        return ", ".join(parts)


def _percent(value: float) -> str:
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


@dataclass(frozen=True)
class Choice:
    """The outcome of ``choose``: the ``candidates``, best first, and what was left out
    of the matching available servers and why."""

    candidates: list[Server]
    matched: int
    not_payable: list[Server] = field(default_factory=list)
    below_floors: list[tuple[Server, str]] = field(default_factory=list)
    bad_hosts: list[tuple[Server, BadReason]] = field(default_factory=list)

    def describe_left_out(self) -> str:
        """``3 below the quality floors, 1 on the bad-host list`` ("" when none)."""
        parts = []
        if self.not_payable:
            parts.append(f"{len(self.not_payable)} not payable in the currency")
        if self.below_floors:
            parts.append(f"{len(self.below_floors)} below the quality floors")
        if self.bad_hosts:
            parts.append(f"{len(self.bad_hosts)} on the bad-host list")
        return ", ".join(parts)


def candidate_filter(
    currency: str,
    *,
    spot: bool = False,
    floors: Floors | None = None,
    bad_hosts: BadHostList | None = None,
) -> Callable[[Server], bool]:
    """``choose``'s rule for one server at a time (a watch's match): payable in
    ``currency``, above ``floors`` (default ``Floors()``), not on ``bad_hosts`` (default:
    the local list, read now, once)."""
    floors = Floors() if floors is None else floors
    if bad_hosts is None:
        from clore.rentals.verify.badhosts import BadHosts

        bad_hosts = BadHosts().load()
    listed = bad_hosts

    def admits(server: Server) -> bool:
        return (
            payable(server, currency, spot=spot)
            and floors.admits(server)
            and listed.is_bad(server) is None
        )

    return admits


def _price_key(server: Server, currency: str, spot: bool) -> tuple[float, float]:
    price = server.price_per_day(currency, spot=spot)
    assert price is not None  # only payable servers are ranked
    return price, -float(server.reliability)


def choose(
    servers: Iterable[Server],
    filters: Sequence[Filter],
    ctx: PriceContext,
    *,
    spot: bool = False,
    floors: Floors | None = None,
    bad_hosts: BadHostList | None = None,
) -> Choice:
    """The available servers matching ``filters``, payable in ``ctx.currency``, above
    ``floors`` (default ``Floors()``) and not on ``bad_hosts`` (default: the local list,
    read once), ranked by price then reliability; with what was left out and why."""
    floors = Floors() if floors is None else floors
    if bad_hosts is None:
        from clore.rentals.verify.badhosts import BadHosts

        bad_hosts = BadHosts().load()
    predicate = compile_filters(filters, ctx)
    matched = [s for s in servers if not s.rented and predicate(s)]
    currency = ctx.currency
    kept: list[Server] = []
    not_payable: list[Server] = []
    below: list[tuple[Server, str]] = []
    bad: list[tuple[Server, BadReason]] = []
    for server in matched:
        if not payable(server, currency, spot=spot):
            not_payable.append(server)
            continue
        problem = floors.problem(server)
        if problem is not None:
            below.append((server, problem))
            continue
        reason = bad_hosts.is_bad(server)
        if reason is not None:
            bad.append((server, reason))
            continue
        kept.append(server)
    kept.sort(key=lambda s: _price_key(s, currency, spot))
    return Choice(kept, len(matched), not_payable, below, bad)


def cheapest(
    servers: Iterable[Server],
    filters: Sequence[Filter],
    ctx: PriceContext,
    *,
    spot: bool = False,
    floors: Floors | None = None,
    bad_hosts: BadHostList | None = None,
) -> list[Server]:
    """The candidates of ``choose``: available, matching, payable in ``ctx.currency``,
    above ``floors`` (default ``Floors()``) and not bad hosts, cheapest first (by the spot
    minimum when ``spot``), ties by reliability."""
    return choose(servers, filters, ctx, spot=spot, floors=floors, bad_hosts=bad_hosts).candidates
