"""``Sandbox``: one sandbox — database, clock, backend, dispatcher — reachable every way.

Over HTTP through ``app`` (served by uvicorn, see ``serve``), in-process through
``transport()``/``async_transport()`` and the SDK clients from ``client()``, and from
Python through the control methods (``reset``, ``advance``, ``inject_fault``, ...), which
are the same operations the ``/_sandbox/`` control plane exposes.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import UNSET, UnsetType

from clore._clock import Clock, clock_scale
from clore._facts import CREATE_INTERVAL, ENDPOINTS, MIN_INTERVAL
from clore.sandbox.access import ControlAccess
from clore.sandbox.backend import Backend
from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.seed import SNAPSHOT, load_records, require_source
from clore.sandbox.clock import SimClock
from clore.sandbox.control import Control
from clore.sandbox.dispatch import Dispatcher, SandboxRequest, SandboxResponse
from clore.sandbox.faults import FAULTS, fault_spec
from clore.sandbox.fleet import Fleet, MachineOptions, MachinesMode
from clore.sandbox.handlers import Handlers
from clore.sandbox.openapi import openapi_bytes
from clore.sandbox.ratelimit import RateLimiter
from clore.sandbox.store import SqliteStore
from clore.sandbox.transport import AsyncSandboxTransport, SandboxTransport

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from clore import AsyncClore, Clore
    from clore.sandbox.template import Templates

__all__ = ["BASE_URL", "Sandbox"]

#: The base URL in-process clients use (the host name is never resolved).
BASE_URL = "http://sandbox.local/v1"


class Sandbox:
    """A Clore.ai API v1 sandbox over a SQLite database.

    ``db`` is ``":memory:"`` or a file path (an existing file is opened, not reseeded);
    ``seed`` is ``"snapshot"`` (the bundled 3,500-server capture), a JSON(.gz) file of a
    marketplace response, or None for an empty market. ``clock`` is any
    ``clore._clock.Clock`` (a ``ManualClock`` in tests); without one, simulated time runs
    ``time_scale`` times faster than real time. ``demo_key`` fixes the demo user's key.
    ``control_token`` (16 to 256 visible ASCII characters) makes every control-plane
    request, over any transport, carry it in the ``x-sandbox-token`` header; without one
    the control plane serves loopback peers and the in-process transports only.
    ``template`` (a ``clore.sandbox.template.Templates``) copies a new database from a
    seeded template instead of seeding it (see that module). ``machines`` says where the
    orders' machines run (``"auto"``, ``"local"``, ``"background"``, ``"off"``, or a
    ``clore.sandbox.fleet.MachineOptions``; see ``clore.sandbox.fleet``).
    """

    def __init__(
        self,
        db: str | Path = ":memory:",
        seed: str | Path | None = SNAPSHOT,
        clock: Clock | None = None,
        rate_limit: bool = True,
        market_activity: float = 0.0,
        demo_key: str | None = None,
        rng_seed: int = 0,
        *,
        time_scale: float = 1.0,
        fault_hold: float = 30.0,
        control_token: str | None = None,
        template: Templates | None = None,
        machines: MachinesMode | MachineOptions = "auto",
    ) -> None:
        access = ControlAccess(control_token)  # first: a bad token creates no database
        if not (math.isfinite(market_activity) and market_activity >= 0):
            raise ValueError("market_activity must be a rate >= 0 (events per second)")
        if clock is None and not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"time scale must be a finite number > 0, got {time_scale!r}")
        self.store = SqliteStore(db)
        self.db = self.store.path
        self.fault_hold = fault_hold
        self._extra = 0.0
        # Backend first: the clock's resume point is stored in the database.
        self.backend = Backend(
            self.store, self.now, market_activity=market_activity, rng_seed=rng_seed
        )
        self._sim: SimClock | None = None
        self._offset_seen = 0.0
        if clock is None:
            self._sim = SimClock(time_scale, start=self._resume_time())
            clock = self._sim
        self.clock: Clock = clock
        source = require_source(None if seed is None else str(seed))
        if template is not None:  # a copy of the seeded template instead of a seeding
            demo_key = template.restore(
                self.store,
                source,
                self.now(),
                rng_seed=rng_seed,
                market_activity=market_activity,
                demo_key=demo_key,
            )
        self.backend.initialize(lambda: load_records(source), source, demo_key)
        self.backend.start_market()
        self.limiter = RateLimiter(
            rate_limit, interval=MIN_INTERVAL, create_interval=CREATE_INTERVAL
        )
        self.handlers = Handlers(self.backend)
        options = machines if isinstance(machines, MachineOptions) else MachineOptions(machines)
        self.fleet = Fleet(
            self.backend,
            options,
            db=None if self.store.memory else self.db,
            realtime=clock_scale(self.clock) > 0,
            tick=self._machines_tick,
            shared_clock=self._sim is not None,  # another process can follow the database's
        )
        if self.fleet.mode != "off":
            self.backend.endpoints = self.fleet
        self.backend.on_created = self.fleet.remember
        self.control = Control(self)
        self.dispatcher = Dispatcher(
            self.backend, self.handlers, self.limiter, self.now, self.control, access
        )
        self._demo_key = self.backend.demo_key()
        self._app: Starlette | None = None

    def _resume_time(self) -> float:
        offset = float(self.backend.meta("clock_offset") or 0.0)
        self._offset_seen = offset  # what _machines_tick follows from
        high = float(self.backend.meta("clock_high") or 0.0)
        return max(time.time() + offset, high)

    # ---- time -------------------------------------------------------------------------
    @property
    def time_scale(self) -> float:
        """Sandbox seconds per real second: the ``time_scale`` of a sandbox on real time,
        0 on a ``ManualClock`` (it moves only when told), else what the clock declares."""
        return clock_scale(self.clock)

    def now(self) -> float:
        """The sandbox's current (simulated) unix time."""
        return self.clock.time() + self._extra

    def advance(self, seconds: float) -> float:
        """Move simulated time forward; billing, provisioning, expiry and market follow."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise invalid_input("seconds: must be a finite number >= 0")
        step = getattr(self.clock, "advance", None)
        if callable(step):
            step(seconds)
        else:
            self._extra += seconds
        if self._sim is not None and not self.store.memory:
            self._offset_seen = self._sim.offset()
            self.backend.set_meta("clock_offset", repr(self._offset_seen))
        self.backend.settle()
        self.dispatcher.apply_held()  # late commits whose time came
        self.fleet.sync()
        return self.now()

    def _machines_tick(self) -> None:
        """A timer's step while machines run: follow the database's clock (another
        process's ``advance`` moved its stored offset by as much) and settle what is due."""
        if self._sim is not None and not self.store.memory:
            stored = float(self.backend.meta("clock_offset") or 0.0)
            if stored > self._offset_seen:
                self._sim.advance(stored - self._offset_seen)
            self._offset_seen = max(self._offset_seen, stored)
        self.backend.settle_due()

    # ---- identity -------------------------------------------------------------------------
    @property
    def demo_key(self) -> str:
        """The API key of the funded demo user."""
        return self._demo_key

    @property
    def app(self) -> Starlette:
        """The Starlette ASGI app: API v1 under ``/v1/`` and the control plane."""
        if self._app is None:
            from clore.sandbox.app import create_app

            self._app = create_app(self.handle, fault_hold=self.fault_hold)
        return self._app

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request (the synchronous core every transport uses), stamped with
        the sandbox's time and time scale (the ``x-sandbox-now``/``-time-scale`` headers)."""
        response = self.dispatcher.handle(request)
        self.fleet.sync()  # before the answer: a cancelled order's machine is gone by then
        return replace(response, now=self.now(), time_scale=self.time_scale)

    # ---- control --------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seed state (the demo key stays; other users are removed)."""
        source = self.backend.seed_source()
        self.backend.reset(load_records(source))
        self.limiter.clear()
        self.fleet.sync()

    def create_user(
        self, name: str, balances: dict[str, float] | None = None, servers: list[int] | None = None
    ) -> tuple[str, int]:
        """Add a user with wallets funded from ``balances``; returns (api_key, user_id).

        ``servers`` (ids) makes the new user their host.
        """
        user = self.backend.create_user(name, balances or {}, servers)
        return user.api_key or "", user.id

    def inject_fault(
        self, endpoint: str, fault: str, count: int = 1, *, seconds: float | None = None
    ) -> None:
        """Make the next ``count`` calls of ``endpoint`` (e.g. "create_order") fail.

        ``seconds``: for ``rate_limit`` the ``Retry-After``, for ``late_commit`` the sandbox
        time after which the held request takes effect (see ``clore.sandbox.faults``).
        """
        name = endpoint.removeprefix("/v1/").removeprefix("/")
        if name not in ENDPOINTS:
            raise invalid_input(f"endpoint: unknown endpoint {endpoint!r}")
        if fault not in FAULTS:
            raise invalid_input(f"fault: one of {', '.join(FAULTS)}")
        if not 1 <= count <= 100000:
            raise invalid_input("count: 1 to 100000")
        try:
            spec = fault_spec(fault, seconds)
        except ValueError as exc:
            raise invalid_input(str(exc)) from None
        self.backend.add_fault(name, spec, count)

    def faults(self) -> list[tuple[str, str, int]]:
        """Queued faults as (endpoint, fault, remaining)."""
        return self.backend.faults()

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self.backend.clear_faults()

    def set_server(
        self,
        server_id: int,
        price: dict[str, Any] | None = None,
        rented: bool | None = None,
        online: bool | None = None,
        *,
        visible: bool | None = None,
        end_outbid: bool | None = None,
        delivers: dict[str, Any] | UnsetType | None = UNSET,
    ) -> None:
        """Change a server as its host or the market would.

        ``price`` is marketplace-shaped (``{"on_demand": {...}, "spot": {...}}``, merged);
        ``rented=True`` lets another renter take it on demand, ``False`` ends whoever holds it.
        ``delivers`` (``clore.sandbox.machines.Delivers`` fields, merged; a field None, or
        ``delivers=None``, back to the listing) is the hardware its machines report.
        """
        self.backend.set_server(
            server_id,
            price=price,
            rented=rented,
            online=online,
            visible=visible,
            end_outbid=end_outbid,
            delivers=delivers,
        )
        self.fleet.sync()

    # ---- machines -------------------------------------------------------------------------
    def order_logs(self, order_id: int, limit: int = 64 * 1024) -> str:
        """The newest ``limit`` bytes of the order's command output (its log)."""
        if self.backend.order_record(order_id) is None:
            raise invalid_input(f"order: no order {order_id}")
        return self.fleet.logs(order_id, limit)

    def set_access_fault(self, order_id: int, fault: str | None, seconds: float = 0.0) -> None:
        """Make the order's SSH port ``refuse`` connections, ``delay`` its banner by
        ``seconds`` (a slow boot) or ``drop`` its open sessions; None clears."""
        if self.backend.order_record(order_id) is None:
            raise invalid_input(f"order: no order {order_id}")
        try:
            self.fleet.set_access_fault(order_id, fault, seconds)
        except ValueError as exc:
            raise invalid_input(str(exc)) from None

    def machines_info(self) -> dict[str, Any]:
        """Where the machines run, their isolation and the orders running one."""
        return self.fleet.info()

    def market_tick(self, count: int = 1) -> list[str]:
        """Run ``count`` market events now; returns what happened."""
        return self.backend.market_tick(count)

    def info(self) -> dict[str, Any]:
        """Time, demo key, settings."""
        return {
            "now": self.now(),
            "demo_key": self.demo_key,
            "rate_limit": self.limiter.enabled,
            "time_scale": self._sim.scale if self._sim is not None else None,
            "market_activity": self.backend.market_activity,
            "seed": self.backend.seed_source(),
            "db": self.db,
            "machines": self.fleet.mode,
        }

    def openapi(self) -> bytes:
        """The OpenAPI document (public v1 paths and the control plane)."""
        return openapi_bytes()

    # ---- clients ------------------------------------------------------------------------
    def transport(self) -> SandboxTransport:
        """An ``httpx.BaseTransport`` that calls this sandbox in-process."""
        return SandboxTransport(self.handle)

    def async_transport(self) -> AsyncSandboxTransport:
        """An ``httpx.AsyncBaseTransport`` that calls this sandbox in-process."""
        return AsyncSandboxTransport(self.handle)

    def client(self, api_key: str | None = None, **kwargs: Any) -> Clore:
        """A ``clore.Clore`` bound to this sandbox (the demo user unless ``api_key``)."""
        from clore import Clore

        kwargs.setdefault("clock", self.clock)
        return Clore(
            api_key=api_key or self.demo_key,
            base_url=BASE_URL,
            transport=self.transport(),
            **kwargs,
        )

    def async_client(self, api_key: str | None = None, **kwargs: Any) -> AsyncClore:
        """A ``clore.AsyncClore`` bound to this sandbox (the demo user unless ``api_key``)."""
        from clore import AsyncClore

        kwargs.setdefault("clock", self.clock)
        return AsyncClore(
            api_key=api_key or self.demo_key,
            base_url=BASE_URL,
            transport=self.async_transport(),
            **kwargs,
        )

    # ---- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop this process's machines and close the database."""
        self.fleet.close()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
