"""Pacing: wait exactly as long as the API's per-key limits require, and no longer.

The API allows one request per second per key, one ``create_order`` per 5 s, and one
spot-price lowering per order per 600 s. ``delay`` is the pure decision: given the key's
history and now, how long must the next request of a kind wait. ``Pacer`` applies it
reserve-then-send on a ``Store``, the protocol behind which the history is kept and its
changes serialised; the stores themselves (memory for one client, a file for a machine)
and ``make_pacer``, which picks one, live in ``clore._pacing_store`` and stay importable
from here. Nothing in this module does I/O.

Two clocks are involved. Request spacing is measured on the client's clock (a time-scaled
sandbox is then paced over-conservatively, which is harmless: its limiter counts on its
own clock). The 600 s spot rule is the server's, decided on its clock: every time in
``PacingState.spot`` is server time (an estimate, see ``clore._servertime``), stored
under ``*_server`` keys so a shared file is unambiguous; callers pass the server's "now"
to the spot methods.

Intervals are measured from the moment the previous *answer* arrived, the latest instant
the server can have counted that request, so that network jitter cannot bring two
requests closer than the interval at the server. For the same reason a request on the
wire holds the key until its answer arrives: the key has at most one request in flight.
The state names the holding process (``clore._holder``), so that when it dies
mid-request (kill -9) a store shared between processes can release its hold at once
instead of waiting for the dead request's timeout; a holder that cannot be checked keeps
its hold until that timeout. A released hold counts as answered at the moment of release,
the latest the server can have counted it. After a 429 the interval grows by a penalty
that halves every ``PENALTY_HALF_LIFE`` seconds.

A pacer also hands out *claims* (``Pacer.claim``): create_order holds one on its server
from the snapshot of ``my_orders`` it takes before sending to the end of its
reconciliation, so that the one new order it then finds on the server is its own. Only
a store shared between machines has claims to give (``clore._pacing_redis``: a fenced
lease in Redis); here every claim is ``NO_CLAIM``, which holds nothing, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar

from clore._facts import CREATE_INTERVAL, MIN_INTERVAL, SPOT_LOWER_INTERVAL
from clore._holder import Holder, this_process

if TYPE_CHECKING:
    from clore._pacing_store import (
        FileStore,
        MemoryStore,
        make_pacer,
        release_dead_hold,
        state_file,
    )

__all__ = [
    "CLAIM_POLL",
    "CLAIM_WAIT",
    "NO_CLAIM",
    "Busy",
    "Claim",
    "FileStore",
    "MemoryStore",
    "NoClaim",
    "Pacer",
    "Pacing",
    "PacingState",
    "SpotState",
    "Store",
    "delay",
    "make_pacer",
    "release_dead_hold",
    "spot_lowering_wait",
    "state_file",
]

Kind = Literal["request", "create"]
T = TypeVar("T")

PENALTY_HALF_LIFE: Final = 120.0
MAX_SPOT_ENTRIES: Final = 256
#: How often a request waiting behind one in flight looks again (seconds).
INFLIGHT_POLL: Final = 0.02
#: Longest a request may hold the key; a longer hold (clock stepped back) is ignored.
MAX_HOLD: Final = 600.0
#: ``Pacing.url`` (and ``CLORE_PACING``, ``--pacing``) for this machine's file, whatever
#: else is configured.
LOCAL: Final = "local"
#: Longest create_order waits (seconds of the client's clock) for a server another
#: create_order of the fleet holds the claim of, before ServerClaimedError.
CLAIM_WAIT: Final = 120.0
#: How often a create_order waiting for a claim asks again (seconds).
CLAIM_POLL: Final = 0.25


@dataclass(frozen=True)
class Pacing:
    """How requests of one API key are spaced (seconds).

    ``min_interval`` between any two requests, ``create_interval`` between two
    ``create_order`` calls, ``spot_lower_interval`` between two lowerings of one spot
    order's price; ``margin`` is added to each interval. ``shared`` keeps the history in
    a file shared by every process (True), in memory for this client only (False), or
    decides by the clock (None: a file with the real clock, memory with an injected one).
    ``url`` keeps it in the Redis of a fleet instead (``redis://host:port/db``), or says
    ``"local"`` to keep the file whatever the environment says; None takes the place of
    the file from ``CLORE_PACING``/``CLORE_PACING_URL`` or the profile's ``pacing_url``
    (``clore._pacing_store.make_pacer``). Its repr leaves the URL out (it may hold a
    password).
    """

    min_interval: float = MIN_INTERVAL
    create_interval: float = CREATE_INTERVAL
    spot_lower_interval: float = SPOT_LOWER_INTERVAL
    margin: float = 0.01
    shared: bool | None = None
    enabled: bool = True
    url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("min_interval", "create_interval", "spot_lower_interval", "margin"):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value < 0:
                raise ValueError(f"Pacing.{name} must be a finite number >= 0, got {value!r}")
        if self.url is not None and self.url != LOCAL:
            from clore._redis import check_url

            object.__setattr__(self, "url", check_url(self.url, "Pacing.url"))

    @classmethod
    def disabled(cls) -> Pacing:
        """No pacing at all (for sandboxes started without rate limits)."""
        return cls(0.0, 0.0, 0.0, 0.0, shared=False, enabled=False)


@dataclass
class SpotState:
    """What pacing knows about one spot order: its last bid and when (server time) it was
    last lowered and last seen."""

    bid: float | None = None
    lowered_at: float | None = None
    seen_at: float = 0.0


@dataclass
class PacingState:
    """The history of one key; times are unix seconds, on the client's clock except in
    ``spot`` (server time). ``holder`` is the process whose request holds the key until
    ``inflight_until`` (None in files written before it was recorded)."""

    last_request: float | None = None
    last_create: float | None = None
    inflight_until: float | None = None
    penalty: float = 0.0
    penalty_at: float = 0.0
    spot: dict[str, SpotState] = field(default_factory=dict)
    holder: Holder | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "last_request": self.last_request,
            "last_create": self.last_create,
            "inflight_until": self.inflight_until,
            "holder": None if self.holder is None else self.holder.to_json(),
            "penalty": self.penalty,
            "penalty_at": self.penalty_at,
            "spot": {
                key: {
                    "bid": s.bid,
                    "lowered_at_server": s.lowered_at,
                    "seen_at_server": s.seen_at,
                }
                for key, s in self.spot.items()
            },
        }

    @classmethod
    def from_json(cls, data: object) -> PacingState:
        """Read a state written by ``to_json``; anything unreadable becomes a fresh state."""
        if not isinstance(data, dict):
            return cls()

        def num(value: object) -> float | None:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return float(value) if ok else None  # type: ignore[arg-type]

        spot: dict[str, SpotState] = {}
        raw_spot = data.get("spot")
        if isinstance(raw_spot, dict):
            for key, entry in raw_spot.items():
                if isinstance(entry, dict):
                    # Entries of an older file (``lowered_at``: the client's clock) are not
                    # read as server time; at worst the server refuses one lowering.
                    spot[str(key)] = SpotState(
                        num(entry.get("bid")),
                        num(entry.get("lowered_at_server")),
                        num(entry.get("seen_at_server")) or 0.0,
                    )
        return cls(
            last_request=num(data.get("last_request")),
            last_create=num(data.get("last_create")),
            inflight_until=num(data.get("inflight_until")),
            penalty=num(data.get("penalty")) or 0.0,
            penalty_at=num(data.get("penalty_at")) or 0.0,
            spot=spot,
            holder=Holder.from_json(data.get("holder")),
        )


def current_penalty(state: PacingState, now: float) -> float:
    """The 429 penalty still in force at ``now`` (it halves every PENALTY_HALF_LIFE s)."""
    # A negative penalty (a hand-edited file) would shorten the intervals: it counts as none.
    age = max(0.0, now - state.penalty_at)
    return float(max(0.0, state.penalty) * 0.5 ** (age / PENALTY_HALF_LIFE))


def delay(state: PacingState, now: float, kind: Kind, config: Pacing) -> float:
    """Seconds the next request of ``kind`` must wait so the API's limits hold (0 = go)."""
    if not config.enabled:
        return 0.0
    extra = config.margin + current_penalty(state, now)
    waits = [0.0]
    hold = None if state.inflight_until is None else state.inflight_until - now
    if hold is not None and 0 < hold <= MAX_HOLD:
        # Another request of this key is on the wire: its answer fixes the next slot.
        waits.append(min(INFLIGHT_POLL, hold))
    if state.last_request is not None:
        interval = config.min_interval + extra
        # A history stamped in the future (clock stepped back) never blocks longer than
        # one interval.
        waits.append(min(interval, state.last_request + interval - now))
    if kind == "create" and state.last_create is not None:
        interval = config.create_interval + extra
        waits.append(min(interval, state.last_create + interval - now))
    return max(waits)


def spot_lowering_wait(
    state: PacingState, order_id: int, price: float, now: float, config: Pacing
) -> float:
    """Server seconds until ``order_id``'s bid may be lowered to ``price`` (0 when allowed
    now); ``now`` is the server's time."""
    if not config.enabled or config.spot_lower_interval <= 0:
        return 0.0
    entry = state.spot.get(str(order_id))
    if entry is None or entry.bid is None or entry.lowered_at is None or price >= entry.bid:
        return 0.0
    return max(0.0, entry.lowered_at + config.spot_lower_interval - now)


class Store(Protocol):
    """Where a key's ``PacingState`` lives and how its changes are serialised.

    The seam for storage backends: ``clore._pacing_store`` has one for the threads of a
    client (``MemoryStore``) and one for the processes of a machine (``FileStore``); a
    store shared between machines fits the same protocol.
    """

    def transact(self, fn: Callable[[PacingState], T], *, now: float | None = None) -> T:
        """Run ``fn`` on the state under an exclusive lock and keep what it changed.

        With ``now`` (the client's clock) the store first releases the hold of a holder
        it knows to be gone, as ``release_dead_hold`` describes.
        """
        ...


class Claim(Protocol):
    """One caller's exclusive claim on a name (create_order's server) among every client
    sharing the store; released on exit from ``with`` (or by ``release``)."""

    def check(self) -> None:
        """Return when the claim is still this caller's; else raise ``LeaseLostError``
        (``FleetStoreError`` when the store cannot tell)."""
        ...

    def release(self) -> None:
        """Give the claim up (idempotent; never raises)."""
        ...

    def __enter__(self) -> Claim: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class Busy:
    """A claim held by someone else: ``left`` seconds of its lease, ``holder`` who."""

    left: float
    holder: str


class NoClaim:
    """The claim of a store that no other machine shares: it holds nothing."""

    def check(self) -> None:
        return None

    def release(self) -> None:
        return None

    def __enter__(self) -> NoClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


NO_CLAIM: Final = NoClaim()


class Pacer:
    """Applies ``delay`` to a store: reserve a slot, send, record when the answer came."""

    def __init__(self, config: Pacing, store: Store) -> None:
        self.config = config
        self.store = store

    def reserve(self, kind: Kind, now: float, hold: float = 30.0) -> float:
        """Take the next slot of ``kind`` if it is free at ``now`` (returns 0), else the wait.

        A taken slot holds the key until ``complete`` or ``now + hold`` (the request's
        timeout), whichever comes first, or until another process finds this one gone.
        """
        if not self.config.enabled:
            return 0.0

        def step(state: PacingState) -> float:
            wait = delay(state, now, kind, self.config)
            if wait <= 0:
                state.inflight_until = now + max(0.0, hold)
                state.holder = replace(this_process(), kind=kind)
                state.last_request = max(state.last_request or now, now)
                if kind == "create":
                    state.last_create = max(state.last_create or now, now)
            return wait

        return self.store.transact(step, now=now)

    def complete(self, kind: Kind, now: float, *, rate_limited: bool = False) -> None:
        """Record that the answer to a reserved request arrived at ``now``."""
        if not self.config.enabled:
            return

        def step(state: PacingState) -> None:
            # Release the hold only if it is this process's: after ours expired another
            # process may have taken the key, and its request is still on the wire.
            if state.holder is None or state.holder.same_process(this_process()):
                state.inflight_until = None
                state.holder = None
            state.last_request = max(state.last_request or now, now)
            if kind == "create":
                state.last_create = max(state.last_create or now, now)
            if rate_limited:
                self._penalize(state, now)

        self.store.transact(step)

    def claim(self, name: str) -> Claim | Busy:
        """Claim ``name`` (``"server-123"``) for this caller alone, or say who holds it.

        Only a store shared between machines has claims (``RedisPacer``); this pacer's
        store is one machine's, whose callers are not kept apart: ``NO_CLAIM``.
        """
        return NO_CLAIM

    def _penalize(self, state: PacingState, now: float) -> None:
        # The server counted something we did not (another client of the key, a clock
        # off by a little): widen the interval by a tenth, up to doubling it; the
        # penalty fades over a few minutes.
        unit = max(self.config.min_interval, 0.1)
        state.penalty = min(unit, current_penalty(state, now) + 0.1 * unit)
        state.penalty_at = now

    def penalize(self, now: float) -> None:
        """Record a rate-limit answer that came without HTTP 429 (``code`` 5)."""
        if self.config.enabled:
            self.store.transact(lambda state: self._penalize(state, now))

    def spot_wait(self, order_id: int, price: float, now: float) -> float:
        """Server seconds until ``order_id``'s bid may be lowered to ``price`` (0 = allowed);
        ``now`` is the server's time."""
        if not self.config.enabled:
            return 0.0
        return self.store.transact(
            lambda state: spot_lowering_wait(state, order_id, price, now, self.config)
        )

    def note_bid(
        self, order_id: int, price: float | None, now: float, *, lowered_at: float | None = None
    ) -> None:
        """Remember ``order_id``'s bid; a bid below the known one counts as a lowering at
        ``now`` (server time).

        ``lowered_at`` (from the server's ``time_to_lowering``) sets the lowering time
        directly; ``price`` None keeps the known bid.
        """
        if not self.config.enabled:
            return

        def step(state: PacingState) -> None:
            key = str(order_id)
            entry = state.spot.get(key) or SpotState()
            if lowered_at is not None:
                entry.lowered_at = lowered_at
            elif entry.bid is not None and price is not None and price < entry.bid:
                entry.lowered_at = now
            if price is not None:
                entry.bid = price
            entry.seen_at = now
            state.spot[key] = entry
            if len(state.spot) > MAX_SPOT_ENTRIES:
                oldest = sorted(state.spot, key=lambda k: state.spot[k].seen_at)
                for stale in oldest[: len(state.spot) - MAX_SPOT_ENTRIES]:
                    del state.spot[stale]

        self.store.transact(step)

    def observe_bids(self, bids: dict[int, float], now: float) -> None:
        """Learn current bids from ``my_orders`` (at server time ``now``) without counting
        them as lowerings."""
        if not self.config.enabled or not bids:
            return

        def step(state: PacingState) -> None:
            for order_id, bid in bids.items():
                entry = state.spot.get(str(order_id))
                if entry is not None:
                    entry.bid = bid
                    entry.seen_at = now
                elif len(state.spot) < MAX_SPOT_ENTRIES:
                    state.spot[str(order_id)] = SpotState(bid=bid, seen_at=now)

        self.store.transact(step)


#: Names of ``clore._pacing_store`` importable from here, as they were before the split;
#: loaded on first use, since that module imports this one.
_STORE_NAMES: Final = frozenset(
    {"FileStore", "MemoryStore", "make_pacer", "release_dead_hold", "state_file"}
)


def __getattr__(name: str) -> Any:
    if name in _STORE_NAMES:
        from clore import _pacing_store

        return getattr(_pacing_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
