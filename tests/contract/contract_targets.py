"""The two targets of the contract suite and the helpers its tests share.

A ``Target`` is a sandbox the tests talk to through the public SDK, plus the control
operations they need (users, time, faults, servers). ``InProcessTarget`` wraps
``clore.testing``'s ``sandbox`` (a ``ManualClock`` shared with the clients);
``LiveTarget`` drives a sandbox server over HTTP and its ``/_sandbox/`` control plane.

On both targets a client's sleeps move the sandbox's time instead of waiting: in-process
through the shared ``ManualClock``, live through ``ServerClock``, whose ``sleep`` asks the
server to advance. So ``wait_for_order`` polling, retry backoff and the 600 s spot window
behave the same on both, and no test waits for simulated time to pass for real.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from clore import AsyncClore, Clore, CloreClient, Pacing, Server
from clore._clock import ManualClock
from clore.sandbox import BASE_URL, ControlClient, Sandbox, control_client

CURRENCY = "bitcoin"
IMAGE = "ubuntu:22.04"

#: Pacing for a server without rate limits: no waits between requests, but the client
#: still knows the 600 s spot-lowering rule (``Pacing.disabled()`` would forget it too).
UNPACED = Pacing(min_interval=0.0, create_interval=0.0, margin=0.0, shared=False)


class Controls(Protocol):
    """What ``Sandbox`` and ``ControlClient`` both offer (the same names by design)."""

    def reset(self) -> None: ...

    def create_user(
        self, name: str, balances: dict[str, float] | None = None, servers: list[int] | None = None
    ) -> tuple[str, int]: ...

    def advance(self, seconds: float) -> float: ...

    def inject_fault(self, endpoint: str, fault: str, count: int = 1) -> None: ...

    def faults(self) -> list[tuple[str, str, int]]: ...

    def clear_faults(self) -> None: ...

    def set_server(
        self,
        server_id: int,
        price: dict[str, Any] | None = None,
        rented: bool | None = None,
        online: bool | None = None,
    ) -> None: ...


class Target:
    """A sandbox reached through the public SDK, with its control operations."""

    name = "target"

    def __init__(self, controls: Controls, demo_key: str) -> None:
        self.controls = controls
        self.demo_key = demo_key
        self._closers: list[Callable[[], None]] = []

    # ---- clients ---------------------------------------------------------------------
    def client_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """Keyword arguments binding a ``Clore``/``AsyncClore`` to this target."""
        raise NotImplementedError

    def _key(self, api_key: str | None, anonymous: bool) -> str | None:
        return None if anonymous else (api_key or self.demo_key)

    def client(self, api_key: str | None = None, *, anonymous: bool = False, **kw: Any) -> Clore:
        """A ``clore.Clore`` (the demo user unless ``api_key``; no key when ``anonymous``)."""
        options = {**self.client_options(), **kw}
        client = Clore(self._key(api_key, anonymous), **options)
        self._closers.append(client.close)
        return client

    def async_client(self, api_key: str | None = None, **kw: Any) -> AsyncClore:
        """A ``clore.AsyncClore`` (close it with ``async with``)."""
        options = {**self.client_options(asynchronous=True), **kw}
        return AsyncClore(api_key or self.demo_key, **options)

    def compat_client(self, api_key: str | None = None, **kw: Any) -> CloreClient:
        """The vendor guide's ``CloreClient`` on top of this target."""
        options = {**self.client_options(), **kw}
        client = CloreClient(api_key or self.demo_key, **options)
        self._closers.append(client.close)
        return client

    # ---- control ---------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seed state, no faults queued."""
        self.controls.reset()
        self.controls.clear_faults()

    def create_user(
        self, name: str, balances: dict[str, float], servers: list[int] | None = None
    ) -> tuple[str, int]:
        """A new user with these balances (hosting ``servers``): (api_key, user_id)."""
        return self.controls.create_user(name, balances, servers)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time (and the clients' with it)."""
        self.controls.advance(seconds)

    def inject_fault(self, endpoint: str, fault: str, count: int = 1) -> None:
        """The next ``count`` calls of ``endpoint`` fail with ``fault``."""
        self.controls.inject_fault(endpoint, fault, count)

    def faults(self) -> list[tuple[str, str, int]]:
        """Faults still queued: (endpoint, fault, remaining)."""
        return self.controls.faults()

    def set_server(
        self,
        server_id: int,
        *,
        price: dict[str, Any] | None = None,
        rented: bool | None = None,
        online: bool | None = None,
    ) -> None:
        """Change a server as its host or the market would."""
        self.controls.set_server(server_id, price=price, rented=rented, online=online)

    def close(self) -> None:
        """Close every client made by this target."""
        for close in reversed(self._closers):
            close()


class InProcessTarget(Target):
    """``clore.testing``'s sandbox: no socket, a ``ManualClock`` shared with the clients."""

    name = "inprocess"

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox, sandbox.demo_key)
        self.sandbox = sandbox
        assert isinstance(sandbox.clock, ManualClock)

    def client_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.sandbox.async_transport() if asynchronous else self.sandbox.transport()
        return {"base_url": BASE_URL, "transport": transport, "clock": self.sandbox.clock}


class ServerClock:
    """A live sandbox's time as a client clock: reading it is local, sleeping advances it.

    The server's simulated time runs at real speed plus the advances, so it is read as
    ``time.time()`` plus an offset taken from the server whenever it moves.
    """

    def __init__(self, controls: ControlClient) -> None:
        self._controls = controls
        self._offset = float(controls.info()["now"]) - time.time()

    def synced(self, now: float) -> None:
        """Record the server's time ``now`` (returned by ``advance``)."""
        self._offset = now - time.time()

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.synced(self._controls.advance(seconds))

    async def asleep(self, seconds: float) -> None:
        await asyncio.to_thread(self.sleep, seconds)


class LiveTarget(Target):
    """A sandbox server over HTTP; the control plane through ``control_client``."""

    name = "live"

    def __init__(self, base_url: str, demo_key: str | None = None) -> None:
        controls = control_client(base_url)
        info = controls.info()
        super().__init__(controls, demo_key or str(info["demo_key"]))
        self.base_url = base_url
        self.remote = controls
        self.reset()
        self.clock = ServerClock(controls)
        # A server with rate limits is paced as usual (its waits advance the server);
        # one without them is not paced at all, which keeps the live run fast.
        self.pacing = Pacing(shared=False) if info.get("rate_limit") else UNPACED

    def client_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        return {"base_url": self.base_url, "clock": self.clock, "pacing": self.pacing}

    def advance(self, seconds: float) -> None:
        self.clock.synced(self.remote.advance(seconds))

    def close(self) -> None:
        super().close()
        self.remote.clear_faults()
        self.remote.close()


# --------------------------------------------------------------------------- live server


@dataclass
class LiveServer:
    """A sandbox server to run the live target against; ``proc`` when we started it."""

    base_url: str
    demo_key: str | None
    proc: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        """Stop the server if this suite started it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_live_server(workdir: Path) -> LiveServer:
    """``python -m clore.sandbox serve`` on a free port of 127.0.0.1, in memory, unlimited."""
    env = dict(os.environ)
    for name, sub in (
        ("CLORE_CONFIG_DIR", "config"),
        ("CLORE_CACHE_DIR", "cache"),
        ("CLORE_DATA_DIR", "data"),
    ):
        env[name] = str(workdir / sub)
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--host", "127.0.0.1"]
    args += ["--port", "0", "--db", ":memory:", "--no-rate-limit"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url_line, key_line = proc.stdout.readline(), proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
    if match is None or not key_line.startswith("demo key: "):
        proc.kill()
        raise RuntimeError(f"sandbox server did not start: {url_line!r} {key_line!r}")
    server = LiveServer(match.group(1), key_line.split(": ", 1)[1].strip(), proc)
    root = server.base_url.removesuffix("/v1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{root}/_sandbox/info", timeout=1).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("sandbox server did not answer within 30 s")


# --------------------------------------------------------------------------- market helpers


def rentable(
    servers: Iterable[Server],
    currency: str = CURRENCY,
    *,
    spot: bool = False,
    exclude: Iterable[int] = (),
) -> list[Server]:
    """Free servers taking ``currency`` with a price in it, cheapest first."""
    skip = set(exclude)
    found = [
        s
        for s in servers
        if not s.rented
        and s.id not in skip
        and currency in s.allowed_coins
        and s.price_per_day(currency, spot=spot) is not None
    ]
    return sorted(found, key=lambda s: (s.price_per_day(currency, spot=spot), s.id))


def cheapest(client: Clore, currency: str = CURRENCY, *, spot: bool = False) -> Server:
    """The cheapest free server taking ``currency`` (on demand, or its spot minimum)."""
    return rentable(client.marketplace(), currency, spot=spot)[0]


def by_id(client: Clore, server_id: int) -> Server | None:
    """The marketplace record of ``server_id`` (None when it is not listed)."""
    return next((s for s in client.marketplace() if s.id == server_id), None)


def is_rented(client: Clore, server_id: int) -> bool:
    """Whether the marketplace shows ``server_id`` rented (it must be listed)."""
    listed = by_id(client, server_id)
    assert listed is not None, f"server {server_id} is not on the marketplace"
    return listed.rented
