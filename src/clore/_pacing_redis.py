"""A key's pacing state in Redis, shared by every machine of a fleet.

``RedisPacer`` is a ``Pacer`` whose every decision (reserve, complete, penalty, the spot
rule) is one call of the Lua port in ``clore._pacing_lua``: Redis runs a script
atomically, so a decision and the state it writes are one step for the whole fleet, as
a locked file makes them one step for a machine. ``RedisStore`` is the same state behind
the ``Store`` protocol (``transact``: read, decide in Python, compare-and-set), for
reading the state and for any ``Pacer`` built on it.

Why a script of our own rather than ``limits`` or ``pyrate-limiter``: those count
requests in fixed or sliding windows ("at most N per period"). The API's rule is
different: the next request may go ``interval`` seconds after the previous *answer*,
while a request is on the wire nothing else goes, a 429 widens the interval for a few
minutes, and a spot price may be lowered 600 s after its last lowering. A window
counter would let a second request go while the first is still in flight, and two
requests closer than the interval at the server whenever the network delays an answer.

Times: with the real clock (``server_clock=True``) "now" is Redis's ``TIME``, one clock
for the fleet whatever the machines' skew; with an injected clock (tests) it is the
caller's. Holds carry a lease (``PX``), so a machine that dies mid-request blocks the
fleet at most until its request's timeout; a holder on this machine that certainly no
longer runs (``clore._holder``) is released at once, as the file store does.

Claims: ``RedisPacer.claim`` gives create_order a fenced lease on its server
(``clore._redis.Lease``, ``CLAIM_LEASE`` s, renewed while held), so the fleet's
create_orders on one server run one at a time, from the snapshot of ``my_orders`` to
the end of the reconciliation, and a holder that comes back after its lease ended is
told before it sends or claims an order it found.

Failures: a decision that cannot be made (Redis down) raises ``FleetStoreError`` and
nothing is sent. Recording an answer (``complete``, a penalty, a bid) that cannot be
written is logged and dropped instead: the request already happened, raising would hide
its answer (a rented order!), and the hold's lease still keeps the others waiting.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from clore._holder import Holder, is_gone, this_process
from clore._pacing import MAX_HOLD, Busy, Claim, Kind, Pacer, Pacing, PacingState, SpotState
from clore._pacing_lua import PACING_LUA
from clore._pacing_store import release_dead_hold
from clore._redis import FleetStoreError, Lease, Script, connect, failure, key_digest

if TYPE_CHECKING:
    import redis

__all__ = ["CLAIM_LEASE", "RedisPacer", "RedisStore", "claim_keys", "holder_id", "pacing_keys"]

T = TypeVar("T")
log = logging.getLogger("clore")

_SCRIPT = Script(PACING_LUA)
#: Attempts of a compare-and-set in ``RedisStore.transact`` before it gives up.
_CAS_ATTEMPTS = 100
#: How long a claim outlives its holder's last renewal (seconds): how long a machine that
#: died mid-create_order keeps the others off its server.
CLAIM_LEASE: Final = 10.0


def pacing_keys(digest: str) -> list[str]:
    """The state, hold and spot keys of a key digest (one hash slot: ``{digest}``)."""
    base = f"clore:pacing:{{{digest}}}"
    return [base, f"{base}:hold", f"{base}:spot"]


def claim_keys(digest: str, name: str) -> tuple[str, str]:
    """The claim and fence keys of claim ``name`` of a key digest (the key's hash slot)."""
    base = f"clore:claim:{{{digest}}}:{name}"
    return base, f"{base}:fence"


def holder_id(holder: Holder) -> str:
    """The process part of a holder, as stored in a hold (kind apart), comparable as text."""
    data = holder.to_json()
    data.pop("kind", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _num(raw: bytes | str | None) -> float | None:
    if raw is None or raw in (b"", ""):
        return None
    return float(raw)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _parse_hold(raw: str) -> tuple[float, str, Holder | None]:
    until, kind, who = raw.split("\n", 2)
    try:
        holder = Holder.from_json({**json.loads(who), "kind": kind})
    except ValueError:
        holder = None
    return float(until), kind, holder


class RedisStore:
    """A key's pacing state in Redis behind the ``Store`` protocol.

    ``transact`` reads the whole state, runs ``fn`` in Python and writes the result back
    only if nothing changed it meanwhile (a version number, checked in Lua), retrying
    otherwise: correct for any ``fn``, and what tests use to look at the state.
    ``RedisPacer`` does not go through it: its decisions run in Lua, in one round trip.
    """

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url
        self.digest = key_digest(api_key)
        self.keys = pacing_keys(self.digest)
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self.url)
        return self._client

    def call(self, doing: str, op: str, now: float | None, *args: Any) -> Any:
        """Run operation ``op`` of the script; a Redis failure is a ``FleetStoreError``."""
        import redis

        try:
            return _SCRIPT(self.client, self.keys, [op, _fmt(now), *args])
        except redis.RedisError as exc:
            raise failure(self.url, exc, doing) from None

    def snapshot(self) -> tuple[PacingState, str, str]:
        """The state as stored, its version, and the raw hold ("" when none)."""
        raw = self.call("reading the pacing state", "snapshot", 0.0)
        fields = [_text(item) for item in raw]
        state = PacingState(
            last_request=_num(fields[0]),
            last_create=_num(fields[1]),
            penalty=_num(fields[2]) or 0.0,
            penalty_at=_num(fields[3]) or 0.0,
        )
        hold = fields[5]
        if hold:
            state.inflight_until, _kind, state.holder = _parse_hold(hold)
        for order, value in zip(fields[6::2], fields[7::2], strict=True):
            bid, lowered, seen, _seq = value.split("\n")
            state.spot[order] = SpotState(_num(bid), _num(lowered), _num(seen) or 0.0)
        return state, fields[4], hold

    def transact(self, fn: Callable[[PacingState], T], *, now: float | None = None) -> T:
        for _ in range(_CAS_ATTEMPTS):
            state, version, hold = self.snapshot()
            before = state.to_json()
            if now is not None:
                release_dead_hold(state, now)
            result = fn(state)
            if state.to_json() == before:
                return result
            if self._put(state, version, hold, now):
                return result
        raise FleetStoreError(
            f"fleet store {self.url_shown}: the pacing state kept changing under "
            f"{_CAS_ATTEMPTS} attempts to update it"
        )

    @property
    def url_shown(self) -> str:
        from clore._redis import redact_url

        return redact_url(self.url)

    def _put(self, state: PacingState, version: str, hold: str, now: float | None) -> bool:
        hold_value, lease = "", 0
        if state.inflight_until is not None and state.holder is not None:
            if hold and _parse_hold(hold)[0] == state.inflight_until:
                hold_value = hold  # the hold as it was: keep its holder's exact text
            else:
                hold_value = "\n".join(
                    (repr(state.inflight_until), state.holder.kind, holder_id(state.holder))
                )
            # A new hold's lease runs to its end (a second past, as the script's own);
            # without "now" it cannot be placed, so it gets the longest a hold counts.
            left = MAX_HOLD if now is None else state.inflight_until - now
            lease = math.ceil(max(0.0, left) * 1000) + 1000
        spot: list[str] = []
        for order, entry in state.spot.items():
            spot += [order, _fmt(entry.bid), _fmt(entry.lowered_at), _fmt(entry.seen_at)]
        done = self.call(
            "updating the pacing state",
            "put",
            0.0,
            version,
            _fmt(state.last_request),
            _fmt(state.last_create),
            _fmt(state.penalty),
            _fmt(state.penalty_at),
            hold_value,
            lease,
            *spot,
        )
        return bool(done)


class RedisPacer(Pacer):
    """A ``Pacer`` whose decisions Redis makes atomically for every machine of the key.

    ``server_clock`` (the real clock) takes "now" from Redis for the request intervals;
    otherwise the times passed in are used (an injected clock).
    """

    store: RedisStore

    def __init__(
        self, config: Pacing, url: str, api_key: str | None, *, server_clock: bool = True
    ) -> None:
        super().__init__(config, RedisStore(url, api_key))
        self.url = url
        self.server_clock = server_clock
        self.claim_lease = CLAIM_LEASE

    def claim(self, name: str) -> Claim | Busy:
        """A fenced lease on ``name`` for this caller (``clore._redis.Lease``, renewed by
        this process while held), or who holds it and for how long yet.

        ``FleetStoreError`` when Redis cannot be reached: nothing is to be sent then.
        """
        key, fence = claim_keys(self.store.digest, name)
        what = f"claim on {name.replace('-', ' ')}"
        lease = Lease(self.url, key, fence, lease=self.claim_lease, what=what)
        taken, left, holder = lease.acquire(f"taking the {what} (nothing was sent)")
        return lease if taken else Busy(left, holder)

    def _now(self, now: float) -> float | None:
        return None if self.server_clock else now

    def _me(self) -> str:
        return holder_id(this_process())

    def reserve(self, kind: Kind, now: float, hold: float = 30.0) -> float:
        if not self.config.enabled:
            return 0.0
        c = self.config
        while True:
            wait_raw, blocking, at = self.store.call(
                "pacing a request (nothing was sent)",
                "reserve",
                self._now(now),
                kind,
                repr(float(hold)),
                repr(float(c.min_interval)),
                repr(float(c.create_interval)),
                repr(float(c.margin)),
                self._me(),
            )
            wait = float(wait_raw)
            if wait <= 0 or blocking is None or not self._release_if_gone(_text(blocking), at):
                return wait

    def _release_if_gone(self, raw: str, at: bytes | str) -> bool:
        """Release a hold whose holder certainly no longer runs (on this machine only)."""
        until, _kind, holder = _parse_hold(raw)
        if holder is None or until <= float(at) or not is_gone(holder):
            return False
        released = self.store.call("releasing a dead hold", "release", float(at), raw)
        if released:
            log.debug("pacing: released the hold of process %d, which no longer runs", holder.pid)
        return bool(released)

    def _record(self, doing: str, op: str, now: float | None, *args: Any) -> None:
        try:
            self.store.call(doing, op, now, *args)
        except FleetStoreError as exc:
            log.warning("pacing: %s; the hold's lease keeps the fleet waiting instead", exc)

    def complete(self, kind: Kind, now: float, *, rate_limited: bool = False) -> None:
        if not self.config.enabled:
            return
        self._record(
            "recording an answer",
            "complete",
            self._now(now),
            kind,
            "1" if rate_limited else "0",
            repr(float(self.config.min_interval)),
            self._me(),
        )

    def penalize(self, now: float) -> None:
        if self.config.enabled:
            self._record(
                "recording a rate limit",
                "penalize",
                self._now(now),
                repr(float(self.config.min_interval)),
            )

    def spot_wait(self, order_id: int, price: float, now: float) -> float:
        if not self.config.enabled:
            return 0.0
        raw = self.store.call(
            "checking the spot rule (nothing was sent)",
            "spot_wait",
            now,
            str(order_id),
            repr(float(price)),
            repr(float(self.config.spot_lower_interval)),
        )
        return float(raw)

    def note_bid(
        self, order_id: int, price: float | None, now: float, *, lowered_at: float | None = None
    ) -> None:
        if not self.config.enabled:
            return
        self._record(
            "recording a bid", "note_bid", now, str(order_id), _fmt(price), _fmt(lowered_at)
        )

    def observe_bids(self, bids: dict[int, float], now: float) -> None:
        if not self.config.enabled or not bids:
            return
        pairs: list[str] = []
        for order_id, bid in bids.items():
            pairs += [str(order_id), repr(float(bid))]
        self._record("recording bids", "observe", now, *pairs)
