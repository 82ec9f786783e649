"""A loop's ledger in the fleet's Redis: one record for every machine, locks with leases
and fencing, owners' leases, and a copy on each machine.

``FleetStateFile`` is a ``clore.workflows.state.StateFile`` whose value lives in Redis
(named by a hash of the API key and the file's name, never the key), so two watchers
with the same intent on two machines share one ledger and rent once, and a watch
resumed on another machine finds its intents and orders.

* **Locks** (``locked()``) are Redis keys with a lease (``PX``): a machine that dies
  while holding one blocks the others for the lease at most. Each acquisition takes the
  next number of a fence counter (``INCR``; ``clore._redis.LEASE_ACQUIRE``, which
  create_order's claims share); the lock's value is ``owner:fence``, and every write
  checks, in the same Lua script, that the lock still holds exactly that value and the
  fence is still the counter's. A machine that comes back after its lease ended (a
  pause, a partition) is refused (``LeaseLostError``) instead of writing over what the
  next holder decided.
* **Owners**: a pending intent is in flight while the loop that wrote it runs. Across
  machines a PID tells nothing, so each live loop of this process with an intent keeps
  a key ``clore:owner:...`` alive (a heartbeat thread renews its lease); a loop that died
  lets it expire, and the others may then settle its intent with ``my_orders``.
* **The copy on this machine** (the ``StateFile``'s own path) is written whenever the
  ledger read or written differs from it. Intents are never deleted, so a ledger read is
  the union of Redis's and the copy's records, by id, the more settled status winning
  (pending < unconfirmed < rented, void): a Redis that restarted without its data gets
  each machine's records back as soon as that machine touches the ledger.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from clore._redis import (
    LEASE_ACQUIRE,
    LEASE_RELEASE,
    FleetStoreError,
    LeaseLostError,
    Script,
    connect,
    failure,
    redact_url,
)
from clore.workflows.state import Rental, StateFile, is_live_owner

if TYPE_CHECKING:
    import redis

__all__ = ["FleetStateFile", "fleet_state", "ledger_keys", "merge_rentals", "owner_key"]

T = TypeVar("T")
log = logging.getLogger("clore")

#: How long a lock is held without a write before it lapses (seconds).
LOCK_LEASE: Final = 15.0
#: How long an owner's key lives without a heartbeat, and how often it beats.
OWNER_LEASE: Final = 10.0
OWNER_BEAT: Final = 2.0

_WRITE = Script(
    """
-- KEYS data, lock, fence; ARGV token ('' = no lock: only while nobody holds one), value,
-- lease ms -> 1 written, 0 refused (the lock is no longer this token's)
local held = redis.call('GET', KEYS[2])
local fence = 0
if ARGV[1] == '' then
  if held then return 0 end
else
  if held ~= ARGV[1] then return 0 end
  fence = tonumber(string.match(ARGV[1], ':(%d+)$'))
  if fence ~= tonumber(redis.call('GET', KEYS[3])) then return 0 end
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'fence', fence)
return 1
"""
)
#: How settled a status is: a record's more settled form wins a merge.
_SETTLED: Final = {"pending": 0, "unconfirmed": 1, "rented": 2, "void": 2}


def ledger_keys(digest: str, name: str) -> tuple[str, str, str]:
    """The value, lock and fence keys of ledger ``name`` of a key digest."""
    base = f"clore:ledger:{{{digest}}}:{name}"
    return base, f"{base}:lock", f"{base}:fence"


def owner_key(digest: str, owner: str) -> str:
    return f"clore:owner:{{{digest}}}:{owner}"


def merge_rentals(remote: T | None, local: T | None) -> tuple[T | None, bool]:
    """``remote`` with the records only ``local`` knows added and the more settled status
    of each record kept; True when that changed anything. Values without ``rentals``:
    ``remote``, or ``local`` when there is no ``remote``."""
    if remote is None:
        return local, local is not None
    remote_rentals = getattr(remote, "rentals", None)
    local_rentals = getattr(local, "rentals", None)
    if not isinstance(remote_rentals, list) or not isinstance(local_rentals, list):
        return remote, False
    index = {r.id: i for i, r in enumerate(remote_rentals)}
    changed = False
    for rental in local_rentals:
        at = index.get(rental.id)
        if at is None:
            remote_rentals.append(rental)
            index[rental.id] = len(remote_rentals) - 1
            changed = True
        elif _SETTLED.get(rental.status, 0) > _SETTLED.get(remote_rentals[at].status, 0):
            remote_rentals[at] = rental
            changed = True
    return remote, changed


class _Heartbeats:
    """Keeps the owner keys of this process's live loops alive (one daemon thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[tuple[str, str], str] = {}  # (url, key) -> owner token
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, url: str, key: str, owner: str) -> None:
        with self._lock:
            self._owners[(url, key)] = owner
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="clore-fleet-owners", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(OWNER_BEAT)
            with self._lock:
                owners = dict(self._owners)
            for (url, key), owner in owners.items():
                alive = is_live_owner(owner)
                try:
                    client = connect(url)
                    if alive:
                        client.set(key, "1", px=int(OWNER_LEASE * 1000))
                    else:
                        client.delete(key)
                except Exception as exc:  # a Redis outage: the lease ends; beat again later
                    log.debug("fleet: owner heartbeat to %s failed: %s", redact_url(url), exc)
                    continue
                if not alive:
                    with self._lock:
                        self._owners.pop((url, key), None)


_beats = _Heartbeats()


class FleetStateFile(StateFile):
    """A ``StateFile`` kept in the fleet's Redis, with its path as this machine's copy."""

    def __init__(
        self,
        path: Path | str,
        url: str,
        digest: str,
        *,
        lease: float = LOCK_LEASE,
        wait: float | None = None,
    ) -> None:
        super().__init__(path)
        self.url = url
        self.digest = digest
        self.lease = lease
        #: How long ``locked()`` waits for another holder (past two leases, it never lets go).
        self.wait = 2 * lease + 5 if wait is None else wait
        self.key, self.lock_key, self.fence_key = ledger_keys(digest, self.path.name)
        self._held = threading.local()
        self._mirrored: bytes | None = None

    def __repr__(self) -> str:
        return f"FleetStateFile({self.path.name!r}, {redact_url(self.url)!r})"

    @property
    def where(self) -> str:
        """Where the ledger lives, for messages (no credentials)."""
        return f"{redact_url(self.url)} ({self.path.name}; copy at {self.path})"

    @property
    def client(self) -> redis.Redis:
        return connect(self.url)

    def _call(self, script: Script, keys: list[str], args: list[Any], doing: str) -> Any:
        import redis

        try:
            return script(self.client, keys, args)
        except redis.RedisError as exc:
            raise failure(self.url, exc, doing) from None

    @property
    def token(self) -> str | None:
        """The token of the lock this thread holds, if any."""
        return getattr(self._held, "token", None)

    # ---- reading and writing ---------------------------------------------------------

    def exists(self) -> bool:
        import redis

        try:
            remote = bool(self.client.exists(self.key))
        except redis.RedisError as exc:
            raise failure(self.url, exc, f"reading the ledger {self.path.name}") from None
        return remote or super().exists()

    def read(self, type_: type[T]) -> T | None:
        """The ledger: Redis's records and this machine's copy's, merged."""
        import redis

        try:
            raw = self.client.hget(self.key, "value")
        except redis.RedisError as exc:
            raise failure(self.url, exc, f"reading the ledger {self.path.name}") from None
        remote = None if raw is None else msgspec.json.decode(raw, type=type_)
        try:
            local = super().read(type_)
        except (OSError, msgspec.DecodeError):
            local = None  # an unreadable copy is only a copy
        value, restored = merge_rentals(remote, local)
        if restored and remote is not None and local is not None:
            log.warning(
                "fleet: ledger %s at %s lacked records this machine had; restored them",
                self.path.name,
                redact_url(self.url),
            )
        if value is not None:
            if restored and self.token is not None:
                self._write_remote(value)
            self._mirror(value)
        return value

    def write(self, value: Any) -> None:
        """Write the ledger to Redis (fenced when this thread holds the lock), then the copy.

        Raises ``LeaseLostError`` when the lock's lease ended (or another machine holds
        it): nothing is written then.
        """
        self._keep_owners_alive(value)
        self._write_remote(value)
        self._mirror(value)

    def _write_remote(self, value: Any) -> None:
        blob = msgspec.json.encode(value)
        token = self.token or ""
        done = self._call(
            _WRITE,
            [self.key, self.lock_key, self.fence_key],
            [token, blob, int(self.lease * 1000)],
            f"writing the ledger {self.path.name}",
        )
        if not done:
            held = "its lock's lease ended" if token else "another machine holds its lock"
            raise LeaseLostError(
                f"ledger {self.path.name} at {redact_url(self.url)}: not written, {held} "
                "(another machine may have acted since)"
            )

    def _mirror(self, value: Any) -> None:
        blob = msgspec.json.encode(value)
        if blob == self._mirrored:
            return
        try:
            super().write(value)
            self._mirrored = blob
        except OSError as exc:  # the copy is a safety net; the ledger itself is in Redis
            log.warning("fleet: cannot keep this machine's copy at %s: %s", self.path, exc)

    # ---- the lock --------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger's lock (a lease of ``lease`` s, renewed by each write)."""
        if self.token is not None:
            raise RuntimeError("FleetStateFile.locked() is not re-entrant")
        owner = f"{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + self.wait
        while True:
            token, left, _holder = self._call(
                LEASE_ACQUIRE,
                [self.lock_key, self.fence_key],
                [owner, int(self.lease * 1000)],
                f"locking the ledger {self.path.name}",
            )
            if token is not None:
                break
            if time.monotonic() >= deadline:
                raise FleetStoreError(
                    f"ledger {self.path.name} at {redact_url(self.url)}: its lock stayed "
                    f"taken for {self.wait:g} s"
                )
            time.sleep(min(0.05, max(0.005, (int(left) if left else 50) / 1000)))
        self._held.token = token.decode() if isinstance(token, bytes) else str(token)
        try:
            yield
        finally:
            held, self._held.token = self._held.token, None
            with contextlib.suppress(FleetStoreError):
                # A lock we cannot release lapses with its lease.
                self._call(LEASE_RELEASE, [self.lock_key], [held], "unlocking the ledger")

    # ---- owners ----------------------------------------------------------------------

    def _keep_owners_alive(self, value: Any) -> None:
        for rental in getattr(value, "rentals", None) or []:
            owner = getattr(rental, "owner", "")
            if rental.status in ("pending", "unconfirmed") and is_live_owner(owner):
                key = owner_key(self.digest, owner)
                import redis

                try:
                    self.client.set(key, "1", px=int(OWNER_LEASE * 1000))
                except redis.RedisError as exc:
                    raise failure(self.url, exc, "recording a live loop") from None
                _beats.add(self.url, key, owner)

    def in_flight(self, rental: Rental, now: float, lease: float) -> bool:
        """True while the loop that wrote a pending intent may still be renting: its owner's
        key lives (renewed by its heartbeat on whatever machine it runs)."""
        if now - rental.intent_at > lease:
            return False
        if is_live_owner(rental.owner):
            return True  # a loop of this process, still running
        import redis

        try:
            return bool(self.client.exists(owner_key(self.digest, rental.owner)))
        except redis.RedisError as exc:
            raise failure(self.url, exc, "checking a loop's lease") from None


def fleet_state(state: StateFile, client: object) -> StateFile:
    """``state`` moved to the fleet's Redis when ``client`` paces there (else ``state``)."""
    if isinstance(state, FleetStateFile):
        return state
    from clore._pacing_redis import RedisPacer

    pacer = getattr(getattr(client, "_ctx", None), "pacer", None)
    if not isinstance(pacer, RedisPacer):
        return state
    return FleetStateFile(state.path, pacer.url, pacer.store.digest)
