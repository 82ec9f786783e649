"""``Fleet``: keeps a machine running for every sandbox order that should have one, and
no other — the link between the backend's orders and ``clore.sandbox.machines``.

The backend decides (``backend.machines.machine_wanted``: a real user's order, past
provisioning, running now); the fleet follows after every change: it starts the machine
of an order that should run one (on the ports the order was given at provisioning, which
``assign`` picked free), stops the machine of every other (cancel, expiry, an empty
wallet, outbid, its server offline, a reset), and gives running machines what their
server's host delivers. SSH passwords and keys, which the database never holds, are kept
here (``Credentials``).

Where the machines run (``MachineOptions.mode``):

- ``local``: in this process (an in-memory sandbox, ``serve``). On a file database only
  one process runs them, the holder of ``host.HostLock``; another process asking for
  ``local`` while it is held hands its machines to the holder.
- ``background``: in the database's host process (``clore.sandbox.host``), started on
  demand, so machines outlive this process (the CLI's ``--sandbox``: one process per
  command). ``auto`` is ``background`` for a file database on the sandbox's own clock,
  else ``local`` (``:memory:``, or an injected clock, which no other process shares).
- ``off``: none; orders get loopback ports where nothing listens.

A sandbox on real time settles itself four times a second while it hosts machines, so an
order that expires or runs out of money closes its endpoint within a second even when no
request comes; on a ``ManualClock`` everything follows ``advance`` and each request.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from clore.sandbox.backend.machines import Assigned, public_port
from clore.sandbox.credentials import Credentials
from clore.sandbox.fleet_options import MachineOptions, MachinesMode, machines_root
from clore.sandbox.host import HostLock, HostServer, call_host, spawn_host
from clore.sandbox.machines.spec import Delivers, MachineSpec

if TYPE_CHECKING:
    from clore._wire import CreateOrderRequest
    from clore.sandbox.backend import Backend
    from clore.sandbox.backend.api import MachineOrder
    from clore.sandbox.backend.records import OrderRec, ServerRec
    from clore.sandbox.machines import AccessFault, Machines

__all__ = ["Credentials", "Fleet", "MachineOptions", "MachinesMode", "machines_root"]

log = logging.getLogger("clore.sandbox.machines")

_TICK = 0.25
_REPOKE = 5.0


class Fleet:
    """The machines of one sandbox's orders (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        options: MachineOptions,
        *,
        db: str | None,
        realtime: bool,
        tick: Callable[[], None] | None = None,
        shared_clock: bool = True,
    ) -> None:
        self.backend = backend
        self.options = options
        self._db = None if db is None else Path(db).expanduser()
        mode = options.mode
        if mode == "auto":
            mode = "background" if self._db is not None and shared_clock else "local"
        if os.name != "posix":
            mode = "off"  # machines need POSIX processes, signals and unix sockets
        self.mode: MachinesMode = mode
        if options.root is not None:
            self.root: Path | None = Path(options.root)
        elif self._db is not None:
            self.root = machines_root(self._db)
        else:
            self.root = None  # a temporary one, made with the first machine
        self._realtime = realtime
        self._tick_hook = tick
        on_disk = None if self._db is None else self.root
        self.credentials = Credentials(None if on_disk is None else on_disk / "access")
        self._lock = threading.RLock()  # one reconcile at a time
        self._reserve_lock = threading.Lock()
        self._reserved: dict[int, list[socket.socket]] = {}
        self._machines: Machines | None = None
        self._running: dict[int, Delivers] = {}
        self._failed: set[int] = set()
        self._host_lock = None if on_disk is None else HostLock(on_disk)
        self._server: HostServer | None = None
        self._hosting = False
        self._synced = -1
        self._poked: tuple[int, ...] | None = None
        self._poked_at = 0.0
        self._idle_since = time.monotonic()
        self._ticker: threading.Thread | None = None
        self._closed = threading.Event()
        #: Called when another process asks the host to exit (a ``serve`` taking over).
        self.on_exit_request: Callable[[], None] | None = None

    def _root(self) -> Path:
        """The machines directory of a file database (or the one given), made 0700."""
        if self.root is None:
            raise RuntimeError("an in-memory sandbox's machines make their own directory")
        if not self.root.exists():
            self.root.mkdir(mode=0o700, parents=True)
        return self.root

    # ---- what the backend calls ---------------------------------------------------------

    def assign(self, order: OrderRec, server: ServerRec) -> Assigned:
        """Free public ports for an order at the end of its provisioning (held until its
        machine starts, so two orders never get the same one)."""
        ports = order.ports or {"22": "tcp"}
        tcp: list[str] = []
        http_pub = None
        held: list[socket.socket] = []
        host = self.options.host if self.mode != "off" else "127.0.0.1"
        shown = self.options.shown_host if self.mode != "off" else "127.0.0.1"
        for inner, kind in sorted(ports.items(), key=lambda item: int(item[0])):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            held.append(sock)
            public = sock.getsockname()[1]
            if kind == "http":
                http_pub = f"{shown}:{public}"
            else:
                tcp.append(f"{inner}:{public}")
        with self._reserve_lock:
            for old in self._reserved.pop(order.id, []):
                old.close()
            self._reserved[order.id] = held
        return Assigned(shown, tcp, http_pub)

    def remember(self, order_id: int, request: CreateOrderRequest) -> None:
        """Keep a new order's SSH password and key for its machine."""
        if self._db is not None:
            self._root()  # 0700 before anything is written under it
        self.credentials.put(order_id, request.ssh_password, request.ssh_key)

    # ---- following the backend ---------------------------------------------------------

    def sync(self, *, force: bool = False) -> None:
        """Start and stop machines to match the orders (cheap when nothing was written)."""
        if self.mode == "off" or self._closed.is_set():
            return
        if self.backend.writes == self._synced and not force:
            return  # the common case, without the lock: nothing was written since
        with self._lock:
            writes = self.backend.writes
            if writes == self._synced and not force:
                return
            self._synced = writes
            wanted = self.backend.machine_orders()
            if wanted:
                self._idle_since = time.monotonic()
            if self._hosting or self._take_hosting(bool(wanted)):
                self._reconcile(wanted)
            else:
                self._poke(wanted)

    def _take_hosting(self, needed: bool) -> bool:
        """Become the process that runs the machines when this one may and should."""
        if self.mode != "local" or not needed:
            return False
        return self.start_hosting()

    def start_hosting(self) -> bool:
        """Run the machines in this process from now on (False when another process runs
        them); starts the timer on real time and, for a file database, the host socket."""
        with self._lock:
            if self._hosting:
                return True
            if self._host_lock is not None:
                if not self._host_lock.acquire():
                    return False
                self._server = HostServer(self._root(), self._request)
            self._hosting = True
            if self._realtime or self._db is not None:
                self._ticker = threading.Thread(
                    target=self._tick_loop, name="clore-sandbox-settle", daemon=True
                )
                self._ticker.start()
            self._reconcile(self.backend.machine_orders())
            return True

    def take_over(self) -> bool:
        """Host the machines here, asking a background host to hand them over first."""
        if self.start_hosting():
            return True
        if self._db is None:
            return False
        call_host(self._root(), {"op": "exit"}, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.start_hosting():
                return True
            time.sleep(0.05)
        return False

    def _tick_loop(self) -> None:
        while not self._closed.wait(_TICK):
            try:
                if self._tick_hook is not None:
                    self._tick_hook()
                # Other processes write the same file: look at the orders every tick.
                self.sync(force=self._db is not None)
            except Exception:
                log.exception("machines: a settle tick failed")

    def _machines_pool(self) -> Machines:
        if self._machines is None:
            from clore.sandbox.machines import Machines

            options = self.options
            self._machines = Machines(
                None if self.root is None else self._root(),
                host=options.host,
                allow_public=options.public,
                isolation=options.isolation,
                keep=options.keep,
            )
            self.root = self._machines.root  # an in-memory sandbox's temporary one
        return self._machines

    def _reconcile(self, wanted: list[MachineOrder]) -> None:
        by_id = {item.order.id: item for item in wanted}
        for order_id in [i for i in self._running if i not in by_id]:
            self._stop(order_id)
        self._failed &= set(by_id)
        for order_id in [i for i in list(self._reserved) if i not in by_id]:
            self._release(order_id)
        for item in wanted:
            delivers = _delivers(item.delivers)
            if item.order.id in self._running:
                if self._running[item.order.id] != delivers:
                    self._machines_pool().set_delivers(item.order.id, delivers)
                    self._running[item.order.id] = delivers
            elif item.order.id not in self._failed:
                self._start(item, delivers)

    def _start(self, item: MachineOrder, delivers: Delivers) -> None:
        order = item.order
        password, key = self.credentials.get(order.id)
        try:
            spec = MachineSpec.from_server(
                order.id,
                json.loads(item.server.record),
                env=dict(order.extra.get("env") or {}),
                command=order.extra.get("command"),
                ssh_password=password,
                ssh_key=key,
                ports=order.ports or {"22": "tcp"},
                delivers=delivers,
            )
            wanted = _recorded_ports(order)
            self._release(order.id)
            machines = self._machines_pool()
            try:
                endpoint = machines.start(spec, ports=wanted)
            except OSError:
                # The ports it was given are taken now: new ones, recorded for the API.
                endpoint = machines.start(spec)
            tcp = endpoint.tcp_ports_list
            http_pub = (
                None
                if endpoint.http_public_port is None
                else f"{self.options.shown_host}:{endpoint.http_public_port}"
            )
            if (
                tcp != list(order.tcp_ports)
                or http_pub != order.http_pub
                or order.pub_cluster != [self.options.shown_host]
            ):
                self.backend.set_endpoints(order.id, self.options.shown_host, tcp, http_pub)
        except Exception:
            log.exception("machines: order %s: its machine did not start", order.id)
            self._failed.add(order.id)
            return
        self._running[order.id] = delivers

    def _stop(self, order_id: int) -> None:
        self._running.pop(order_id, None)
        try:
            self._machines_pool().stop(order_id)
        except Exception:
            log.exception("machines: order %s: stopping its machine failed", order_id)
        self._drop_ended()

    def _drop_ended(self) -> None:
        for order_id in self.credentials.stored():
            record = self.backend.order_record(order_id)
            if record is None or record.ended:
                self.credentials.drop(order_id)

    def _release(self, order_id: int) -> None:
        with self._reserve_lock:
            for sock in self._reserved.pop(order_id, []):
                sock.close()

    def _poke(self, wanted: list[MachineOrder]) -> None:
        """Tell the database's host to follow now (starting one when machines are wanted)."""
        ids = tuple(sorted(item.order.id for item in wanted))
        for order_id in ids:
            self._release(order_id)
        stale = time.monotonic() - self._poked_at > _REPOKE
        if ids == self._poked and not (ids and stale):
            return
        if self._db is None or self.root is None:
            return
        answer = call_host(self.root, {"op": "sync"})
        if answer is None and ids and self.mode == "background":
            if spawn_host(self._db, self._root()):
                answer = call_host(self.root, {"op": "sync"})
            if answer is None:
                log.warning("machines: no host process runs the machines of %s", self._db)
        self._poked = ids if answer is not None or not ids else None
        self._poked_at = time.monotonic()

    # ---- requests from other processes (host socket) --------------------------------------

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "sync":
            if self._tick_hook is not None:
                self._tick_hook()
            self.sync(force=True)
            return {"ok": True}
        if op == "info":
            return {"ok": True, **self.info()}
        if op == "access":
            self.set_access_fault(
                int(request["order"]), request.get("fault"), float(request.get("seconds") or 0)
            )
            return {"ok": True}
        if op == "exit":
            if self.on_exit_request is None:
                return {"ok": False, "error": "this host does not hand over (a serve runs it)"}
            self.on_exit_request()
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # ---- control ---------------------------------------------------------------------------

    def logs(self, order_id: int, limit: int = 64 * 1024) -> str:
        """The newest ``limit`` bytes of the order's command output ("" when none)."""
        if self.root is None:
            return ""
        path = self.root / "logs" / f"{order_id}.log"
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - limit))
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def set_access_fault(self, order_id: int, fault: str | None, seconds: float = 0.0) -> None:
        """Make the order's SSH refuse, delay or drop connections (None clears).

        ValueError (one line) when the order runs no machine or the fault is unknown.
        """
        from clore.sandbox.machines import ACCESS_FAULTS, UnknownMachineError

        if fault is not None and fault not in ACCESS_FAULTS:
            raise ValueError(f"fault: one of {', '.join(ACCESS_FAULTS)}, or null to clear")
        self.sync()
        if self._hosting or self._db is None:
            try:
                self._machines_pool().set_access_fault(
                    order_id, cast("AccessFault", fault), seconds
                )
            except UnknownMachineError:
                raise ValueError(f"order {order_id} runs no machine") from None
            return
        answer = (
            None
            if self.root is None
            else call_host(
                self.root, {"op": "access", "order": order_id, "fault": fault, "seconds": seconds}
            )
        )
        if answer is None:
            raise ValueError(f"order {order_id} runs no machine")
        if not answer.get("ok"):
            raise ValueError(str(answer.get("error") or "refused"))

    def info(self) -> dict[str, Any]:
        """Where the machines run, their isolation, and the running orders."""
        if self.mode == "off":
            return {"mode": "off", "isolation": "none: machines are off", "running": []}
        if self._hosting or self._db is None:
            return {
                "mode": self.mode,
                "host_pid": os.getpid(),
                "isolation": self._isolation_line(),
                "running": sorted(self._running),
            }
        answer = None if self.root is None else call_host(self.root, {"op": "info"})
        if answer is None:
            return {
                "mode": self.mode,
                "host_pid": None,
                "isolation": "machines run in a background host, started when an order needs one",
                "running": [],
            }
        answer.pop("ok", None)
        return {**answer, "mode": self.mode}

    def _isolation_line(self) -> str:
        if self._machines is not None:
            return self._machines.isolation
        # What a pool would use, without starting one (the probe runs once per process).
        from clore.sandbox.machines.isolation import detect
        from clore.sandbox.machines.layout import shim_python

        return detect(self.options.isolation, python=shim_python()).description

    def isolation(self) -> str:
        """One line: what confines the orders' commands (``serve``'s banner)."""
        return str(self.info()["isolation"])

    def idle_for(self) -> float:
        """Seconds since an order last needed a machine here."""
        with self._lock:
            if self._running:
                self._idle_since = time.monotonic()
            return time.monotonic() - self._idle_since

    def close(self) -> None:
        """Stop this process's machines (a file database's restart brings them back)."""
        self._closed.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._machines is not None:
                self._machines.close()
                self._machines = None
            self._running.clear()
            for order_id in list(self._reserved):
                self._release(order_id)
            if self._host_lock is not None:
                self._host_lock.release()
            self._hosting = False


def _delivers(data: dict[str, Any]) -> Delivers:
    try:
        return Delivers.from_mapping(data)
    except ValueError:
        return Delivers()


def _recorded_ports(order: OrderRec) -> dict[int, int]:
    """Container port -> public port as the order's record holds them."""
    ports: dict[int, int] = {}
    for entry in order.tcp_ports:
        inner, _, public = entry.partition(":")
        if inner.isdigit() and public.isdigit():
            ports[int(inner)] = int(public)
    http = next((p for p, kind in (order.ports or {}).items() if kind == "http"), None)
    port = public_port(order.http_pub)
    if http is not None and port is not None:
        ports[int(http)] = port
    return ports
