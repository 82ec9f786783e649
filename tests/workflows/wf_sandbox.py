"""A small in-process sandbox for the workflow tests, on a scripted clock.

The market is a handful of servers written as a seed file, so every poll is cheap; the
sandbox and every client share one ``ScriptedClock``, so pacing waits and poll intervals
move simulated time instantly and scripted market events fire at their moment. Every
request goes through ``World.wire`` (``_stub.wire.Wire``), which records it.

``Scripted`` wraps a real client for the loops that take one: it logs each call and can
raise an error instead of a call, or act right after one (``fail``, ``after``): what a
process sees when it dies after create_order, or when an error surfaces that the sandbox
has no fault for. The API's rules are the sandbox's alone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stub.wire import Wire, end, mine, rent, user
from clore._client import Clore
from clore._clock import Clock, ManualClock
from clore._pacing import Pacing
from clore._wire import SetSpotPriceRequest
from clore.sandbox import BASE_URL, Sandbox
from clore.sandbox.backend.records import OrderRec

GPU_4090 = "1x NVIDIA GeForce RTX 4090"
GPU_3090 = "1x NVIDIA GeForce RTX 3090"
START = 1_700_000_000.0


def record(
    sid: int, price: float, spot: float | None = None, gpu: str = GPU_4090, mrl: float = 72
) -> dict[str, Any]:
    """A marketplace server record: prices per day in bitcoin (spot: half the on-demand
    price unless given), ``mrl`` hours."""
    return {
        "id": sid,
        "owner": 5000 + sid,
        "mrl": mrl,
        "price": {"on_demand": {"bitcoin": price}, "spot": {"bitcoin": spot or price / 2}},
        "rented": False,
        "specs": {"gpu": gpu, "gpuram": 24, "cpus": "8/16", "ram": 64, "net": {"cc": "US"}},
        "reliability": 0.99,
        "allowed_coins": ["bitcoin"],
    }


#: Two 4090s above the test cap of 0.0002 BTC/day, one 3090 below it.
DEFAULT_SERVERS = [
    record(11, 0.0005, 0.00005),
    record(12, 0.0004, 0.00006),
    record(13, 0.00015, 0.00004, GPU_3090),
]


class ScriptedClock(ManualClock):
    """A ManualClock that runs scheduled actions when a sleep passes their time."""

    def __init__(self, start: float = START) -> None:
        super().__init__(start)
        self._script: list[tuple[float, int, Callable[[], None]]] = []
        self._script_lock = threading.Lock()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` once time reaches ``when`` (absolute unix seconds)."""
        with self._script_lock:
            self._script.append((when, len(self._script), action))
            self._script.sort(key=lambda item: (item[0], item[1]))

    def after(self, delay: float, action: Callable[[], None]) -> None:
        self.at(self.time() + delay, action)

    def sleep(self, seconds: float) -> None:
        target = self.time() + max(0.0, seconds)
        self.slept.append(seconds)
        while True:
            with self._script_lock:
                if not self._script or self._script[0][0] > target:
                    break
                when, _, action = self._script.pop(0)
            self.set(when)
            action()
        self.set(target)


def run_until(events: Any, kind: str | None = None, *, limit: int = 200) -> list[Any]:
    """Collect events until one of ``kind`` (included) or the generator ends; at most ``limit``."""
    seen = []
    for event in events:
        seen.append(event)
        if kind is not None and event.kind == kind:
            break
        if len(seen) >= limit:
            raise AssertionError(f"no {kind!r} event within {limit}: {[e.kind for e in seen]}")
    return seen


class Scripted:
    """A client whose calls are logged (``calls``: time, name, args, kwargs), and which
    raises the next queued ``fail[name]`` error instead of a call, or runs ``after[name]``
    with a call's result right after it returned."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.calls: list[tuple[float, str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail: dict[str, list[BaseException]] = {}
        self.after: dict[str, Callable[[Any], None]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((self.clock.time(), name, args, kwargs))
            queued = self.fail.get(name)
            if queued:
                raise queued.pop(0)
            result = attr(*args, **kwargs)
            hook = self.after.get(name)
            if hook is not None:
                hook(result)
            return result

        return call

    def count(self, name: str) -> int:
        """How many times ``name`` was called."""
        return sum(1 for _, n, _, _ in self.calls if n == name)


class World:
    """A sandbox, its clock, the wire to it, and ways to make clients and change the market."""

    def __init__(
        self,
        tmp_path: Path,
        servers: list[dict[str, Any]] | None = None,
        *,
        clock: Clock | None = None,
        rate_limit: bool = True,
    ) -> None:
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"servers": DEFAULT_SERVERS if servers is None else servers}))
        self.clock: Any = ScriptedClock() if clock is None else clock
        self.sandbox = Sandbox(
            db=":memory:", seed=str(seed), clock=self.clock, rate_limit=rate_limit
        )
        self.wire = Wire(self.sandbox)

    def client(self, api_key: str | None = None, *, shared: bool = True) -> Clore:
        """A client of the demo user (or ``api_key``); its pacing is shared with every other
        (and off on a sandbox without rate limits)."""
        pacing = Pacing(shared=True) if shared else None
        if not self.sandbox.limiter.enabled:
            pacing = Pacing.disabled()
        return Clore(
            api_key=api_key or self.sandbox.demo_key,
            base_url=BASE_URL,
            transport=self.wire.transport(),
            clock=self.clock,
            pacing=pacing,
        )

    def scripted(self, api_key: str | None = None) -> Scripted:
        """A ``Scripted`` demo-user (or ``api_key``) client."""
        return Scripted(self.client(api_key), self.clock)

    def user(self, name: str, bitcoin: float = 1.0) -> str:
        """A new user funded with ``bitcoin``; returns its API key."""
        key, _ = self.sandbox.create_user(name, {"bitcoin": bitcoin})
        return key

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` ``delay`` simulated seconds from now."""
        self.clock.after(delay, action)

    def set_price(self, sid: int, price: float) -> None:
        """The host reprices ``sid`` on demand (BTC per day)."""
        self.sandbox.set_server(sid, price={"on_demand": {"bitcoin": price}})

    def set_rented(self, sid: int, rented: bool = True) -> None:
        """Another renter takes ``sid`` on demand (or whoever holds it is ended)."""
        self.sandbox.set_server(sid, rented=rented)

    def bid(self, sid: int, price: float, api_key: str) -> int:
        """``api_key``'s user bids ``price`` on ``sid`` (no request on the wire)."""
        return rent(self.sandbox, sid, spot=True, spotprice=price, api_key=api_key)

    def rent(self, sid: int, api_key: str | None = None) -> int:
        """Rent ``sid`` on demand as the demo user (or ``api_key``'s; no request on the wire)."""
        return rent(self.sandbox, sid, api_key=api_key)

    def set_bid(self, order_id: int, price: float, api_key: str | None = None) -> None:
        """Change a spot bid (as its renter; no request on the wire)."""
        request = SetSpotPriceRequest(order_id=order_id, desired_price=price)
        self.sandbox.backend.set_spot_price(user(self.sandbox, api_key), request)

    def end(self, order_id: int, api_key: str | None = None) -> None:
        """An order ends (as its renter's cancel would end it; no request on the wire)."""
        end(self.sandbox, order_id, api_key)

    def orders(self, api_key: str | None = None) -> list[OrderRec]:
        """Every order of the demo user (or ``api_key``'s), ended ones too."""
        return mine(self.sandbox, api_key)

    def order(self, order_id: int) -> OrderRec:
        """One order as the sandbox holds it."""
        with self.sandbox.store.read() as repo:
            found = repo.get_order(order_id)
        assert found is not None
        return found

    def demo_user(self) -> int:
        return user(self.sandbox)

    def close(self) -> None:
        self.sandbox.close()
