"""Small JSON state files for the loops, and the rental ledger that makes renting exactly-once.

Files live under ``data_dir()/"workflows"``, are written atomically (``clore._files``: fsync,
rename, mode 0600) and are changed only under an exclusive lock on a sibling ``.lock`` file,
so several loops (threads or processes) can share one file.

The ledger answers "did we already rent for this?" across crashes and restarts. A loop
records a rental *intent* before calling ``create_order`` and the order id after it:

* ``pending``      intent written, ``create_order`` running (or the process died during it);
* ``unconfirmed``  ``create_order`` failed without telling whether an order exists;
* ``rented``       the order id is known;
* ``void``         nothing was rented (refused, or reconciled as absent).

Pending and unconfirmed intents count as rentals (towards ``--count`` and the budget) until
``reconcile`` settles them against ``my_orders``: an order on the intent's server created at
or after the intent makes it ``rented``; otherwise the intent becomes ``void`` once no live
loop owns it and ``grace`` seconds have passed, so an order that was committed while its
process died is found before anyone rents again.

Where the ledger lives is the ``StateFile``'s business: this machine's file, or, for a
client whose pacing lives in a fleet's Redis, that Redis (``shared_state``;
``clore._ledger_redis.FleetStateFile``: leased and fenced locks, owners alive by lease,
a copy on each machine). A store decides whether a pending intent is still in flight
(``StateFile.in_flight``): here by this process's live loops and the PID, there by the
owner's lease, since a PID names nothing on another machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from clore._files import locked, write_atomic
from clore._paths import data_dir
from clore._wire import Order

__all__ = [
    "Rental",
    "RentalStatus",
    "StateFile",
    "counted",
    "is_live_owner",
    "new_owner",
    "reconcile",
    "release_owner",
    "shared_state",
    "state_key",
    "workflows_dir",
]

T = TypeVar("T")

RentalStatus = Literal["pending", "unconfirmed", "rented", "void"]

#: Tokens of the loops alive in this process (a pending intent they own is in flight).
_LIVE_OWNERS: set[str] = set()


def workflows_dir() -> Path:
    """``data_dir()/"workflows"``: where every loop keeps its state."""
    return data_dir() / "workflows"


def state_key(params: Any) -> str:
    """A short stable name for a loop's parameters (the same command maps to the same file)."""
    blob = msgspec.json.encode(params, order="sorted")
    return hashlib.sha256(blob).hexdigest()[:16]


def new_owner() -> str:
    """Register a loop of this process and return its owner token."""
    token = uuid.uuid4().hex[:12]
    _LIVE_OWNERS.add(token)
    return token


def release_owner(token: str) -> None:
    """Mark the loop ``token`` as finished: its pending intents are no longer in flight."""
    _LIVE_OWNERS.discard(token)


def is_live_owner(token: str) -> bool:
    """True while the loop ``token`` of this process runs."""
    return token in _LIVE_OWNERS


class Rental(msgspec.Struct, kw_only=True):
    """One rental intent of a loop and what became of it."""

    id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex[:12])
    server_id: int
    price: float
    currency: str
    cost: float = 0.0
    planned_seconds: float | None = None
    intent_at: float  # the loop's clock: leases and grace periods count from it
    intent_server_at: float | None = None  # the server's clock: compared with orders' ct
    owner: str
    pid: int
    status: RentalStatus = "pending"
    order_id: int | None = None
    note: str = ""


def counted(rentals: Iterable[Rental]) -> list[Rental]:
    """The rentals that count towards limits: everything except ``void``."""
    return [r for r in rentals if r.status != "void"]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        # Exists but is not ours, or the platform cannot tell: assume alive (the lease ends it).
        return True
    return True


def _in_flight(rental: Rental, now: float, lease: float) -> bool:
    if now - rental.intent_at > lease:
        return False
    if rental.pid == os.getpid():
        return rental.owner in _LIVE_OWNERS
    return _pid_alive(rental.pid)


def reconcile(
    rentals: list[Rental],
    orders: Iterable[Order],
    now: float,
    *,
    grace: float = 60.0,
    lease: float = 900.0,
    slack: float = 5.0,
    in_flight: Callable[[Rental, float, float], bool] | None = None,
) -> list[Rental]:
    """Settle pending/unconfirmed intents against ``my_orders(include_completed=True)``.

    Returns the rentals whose status changed. ``now``, ``grace`` and ``lease`` are on the
    loop's clock; an order's ``ct`` is compared with the intent's server time
    (``intent_server_at``; ``intent_at`` in files written before it existed), ``slack``
    tolerating the error of that estimate. ``in_flight`` (the store's
    ``StateFile.in_flight``) says whether a pending intent's loop may still be renting;
    by default this machine's rule.
    """
    still_renting = in_flight or _in_flight
    taken = {r.order_id for r in rentals if r.order_id is not None}
    changed: list[Rental] = []
    for rental in rentals:
        if rental.status not in ("pending", "unconfirmed"):
            continue
        if rental.status == "pending" and still_renting(rental, now, lease):
            continue
        since = rental.intent_at if rental.intent_server_at is None else rental.intent_server_at
        found = [
            o
            for o in orders
            if o.si == rental.server_id and float(o.ct) >= since - slack and o.id not in taken
        ]
        if found:
            order = min(found, key=lambda o: float(o.ct))
            rental.status = "rented"
            rental.order_id = order.id
            rental.note = "reconciled with my_orders"
            taken.add(order.id)
            changed.append(rental)
        elif now - rental.intent_at >= grace:
            rental.status = "void"
            rental.note = "no order found in my_orders"
            changed.append(rental)
    return changed


class StateFile:
    """A JSON file holding one msgspec value, replaced atomically and changed under a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    def read(self, type_: type[T]) -> T | None:
        """The stored value, or None when the file does not exist."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return msgspec.json.decode(data, type=type_)

    def write(self, value: Any) -> None:
        """Replace the file with ``value`` (``clore._files.write_atomic``: fsync, rename, 0600)."""
        blob = msgspec.json.format(msgspec.json.encode(value), indent=2)
        write_atomic(self.path, blob + b"\n", mode=0o600)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's exclusive lock (across threads and processes); not re-entrant."""
        with locked(self.lock_path):
            yield

    def in_flight(self, rental: Rental, now: float, lease: float) -> bool:
        """True while the loop that wrote pending ``rental`` may still be renting (this
        process's live loops; another process's PID while it runs; ``lease`` at most)."""
        return _in_flight(rental, now, lease)


def shared_state(state: StateFile | None, client: object) -> StateFile | None:
    """Where a loop of ``client`` keeps ``state``: the fleet's Redis when the client's
    pacing lives there (a ``FleetStateFile`` with ``state``'s path as this machine's
    copy), else ``state`` itself."""
    if state is None:
        return None
    from clore._ledger_redis import fleet_state

    return fleet_state(state, client)
