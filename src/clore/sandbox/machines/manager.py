"""``Machines``: the running machines of one sandbox, served from an asyncio loop on a
thread of its own, so it works the same under uvicorn and in an in-process sandbox.

Every public method is a blocking call, safe from any thread but the machines' own loop.
``start`` makes the order's directory, listens on its ports and starts its command (a
few milliseconds); ``stop`` closes its ports and sessions, kills its processes and
removes its directory. Ports listen on ``host`` (loopback unless ``allow_public``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import asyncssh

from clore.sandbox.machines.hardware import hardware
from clore.sandbox.machines.isolation import IsolationMode, detect
from clore.sandbox.machines.layout import Layout, install_shims, shim_python
from clore.sandbox.machines.relay import Handler, Listener, relay_http, relay_tcp
from clore.sandbox.machines.runtime import Runtime
from clore.sandbox.machines.spec import Delivers, Endpoint, MachineSpec
from clore.sandbox.machines.sshd import SSHServerFactory

__all__ = ["ACCESS_FAULTS", "AccessFault", "Machines", "UnknownMachineError"]

log = logging.getLogger("clore.sandbox.machines")

AccessFault = Literal["refuse", "delay", "drop"]
ACCESS_FAULTS: tuple[AccessFault, ...] = ("refuse", "delay", "drop")

_T = TypeVar("_T")
_CALL_TIMEOUT = 30.0
_STOP_WAIT = 1.0


class UnknownMachineError(KeyError):
    """No machine runs for that order."""

    def __init__(self, order_id: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id

    def __str__(self) -> str:
        return f"no machine runs for order {self.order_id}"


@dataclass
class _Machine:
    runtime: Runtime
    ssh: SSHServerFactory | None
    listeners: dict[int, Listener] = field(default_factory=dict)

    @property
    def ssh_listener(self) -> Listener | None:
        return self.listeners.get(22) if self.ssh else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_key(path: Path) -> asyncssh.SSHKey:
    """The host key at ``path``, created (ed25519, mode 0600) when missing."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    os.replace(tmp, path)
    return key


class Machines:
    """The machines of running orders: SSH, relays, processes, simulated hardware.

    ``root`` holds them (a temporary directory, removed by ``close``, when None);
    ``isolation`` is ``"auto"`` (bubblewrap when usable), ``"bubblewrap"`` or ``"none"``;
    ``keep`` keeps each stopped order's directory for debugging; ``host_key`` is the SSH
    host key file (default ``root/ssh_host_ed25519_key``, created when missing).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        allow_public: bool = False,
        isolation: IsolationMode = "auto",
        keep: bool = False,
        host_key: str | Path | None = None,
        log_limit: int = 1 << 20,
    ) -> None:
        if not _is_loopback(host) and not allow_public:
            raise ValueError(
                f"machines listen on loopback only; {host!r} would expose every order's "
                "SSH and ports to the network (pass allow_public=True to mean it)"
            )
        self.host = host
        self.keep = keep
        self._temporary = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="clore-m-"))
        self.root.mkdir(parents=True, exist_ok=True)
        python = shim_python()
        self._isolation = detect(isolation, python=python)
        install_shims(self.root / "bin", python)
        self._host_key = _host_key(
            Path(host_key) if host_key else self.root / "ssh_host_ed25519_key"
        )
        self._log_limit = log_limit
        self._machines: dict[int, _Machine] = {}
        self._removals: set[asyncio.Future[None]] = set()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="clore-sandbox-machines", daemon=True
        )
        self._thread.start()

    # ---- facts ------------------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """What confines the orders' commands, in one line (for ``serve`` and the docs)."""
        return self._isolation.description

    @property
    def isolation_kind(self) -> str:
        """``"bubblewrap"`` or ``"none"``."""
        return self._isolation.kind

    def running(self) -> list[int]:
        """Order ids whose machines run, ascending."""
        return self._call(self._running())

    def endpoint(self, order_id: int) -> Endpoint | None:
        """Where the order's machine answers, or None when it does not run."""
        return self._call(self._endpoint(order_id))

    def logs(self, order_id: int, limit: int = 64 * 1024) -> str:
        """The last ``limit`` bytes of the order's command output ("" when there is none).

        Kept after the order ends, until ``close`` of a temporary root.
        """
        path = Layout(order_id, self.root, self._isolation.isolated).log
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - limit))
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, spec: MachineSpec, *, ports: Mapping[int, int] | None = None) -> Endpoint:
        """Start the order's machine (or return the running one's endpoint).

        ``ports`` maps container ports to the public ports wanted (an ephemeral port
        for each one missing). OSError when a port cannot be bound.
        """
        return self._call(self._start(spec, dict(ports or {})))

    def stop(self, order_id: int, *, keep: bool | None = None) -> bool:
        """End the order's machine; False when none ran. ``keep`` overrides ``self.keep``."""
        return self._call(self._stop(order_id, self.keep if keep is None else keep))

    def set_access_fault(
        self, order_id: int, fault: AccessFault | None, seconds: float = 0.0
    ) -> None:
        """Change how the order's SSH port answers new connections.

        ``"refuse"``: connections are refused until cleared; ``"delay"``: each new
        connection waits ``seconds`` before the SSH banner (a slow boot); ``"drop"``: cut
        every open SSH connection now (once; new ones are served). ``None`` clears.
        """
        if fault is not None and fault not in ACCESS_FAULTS:
            raise ValueError(f"access fault must be one of {', '.join(ACCESS_FAULTS)}")
        if fault == "delay" and not (0 < seconds <= 3600):
            raise ValueError("a delay fault needs 0 < seconds <= 3600")
        self._call(self._fault(order_id, fault, float(seconds)))

    def access_fault(self, order_id: int) -> tuple[str, float] | None:
        """The standing fault of the order's SSH port (``("delay", 5.0)``), or None."""
        return self._call(self._get_fault(order_id))

    def set_delivers(self, order_id: int, delivers: Delivers) -> None:
        """Make the running machine report other hardware from now on."""
        self._call(self._set_delivers(order_id, delivers))

    def close(self) -> None:
        """Stop every machine, the loop and its thread; remove a temporary root."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self._call(self._stop_all())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Machines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- on the loop ------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._closed:
            coro.close()
            raise RuntimeError("the machines are closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("Machines methods block; call them from another thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(_CALL_TIMEOUT)

    def _get(self, order_id: int) -> _Machine:
        machine = self._machines.get(order_id)
        if machine is None:
            raise UnknownMachineError(order_id)
        return machine

    async def _running(self) -> list[int]:
        return sorted(self._machines)

    async def _endpoint(self, order_id: int) -> Endpoint | None:
        machine = self._machines.get(order_id)
        return None if machine is None else self._endpoint_of(machine)

    def _endpoint_of(self, machine: _Machine) -> Endpoint:
        spec = machine.runtime.spec
        ports = {c: lst.port for c, lst in machine.listeners.items()}
        http = spec.http_port
        return Endpoint(
            order_id=spec.order_id,
            host=self.host,
            ssh_port=ports.get(22) if machine.ssh else None,
            tcp_ports={c: p for c, p in ports.items() if spec.ports[c] == "tcp"},
            http_port=http,
            http_public_port=None if http is None else ports[http],
            directory=machine.runtime.layout.base,
            isolation=self._isolation.kind,
        )

    async def _start(self, spec: MachineSpec, wanted: dict[int, int]) -> Endpoint:
        existing = self._machines.get(spec.order_id)
        if existing is not None:
            return self._endpoint_of(existing)
        layout = Layout(spec.order_id, self.root, self._isolation.isolated)
        layout.create(hardware(spec))
        runtime = Runtime(spec, layout, self._isolation, self._log_limit)
        machine = _Machine(runtime, SSHServerFactory(runtime, self._host_key) if spec.ssh else None)
        try:
            for port, kind in sorted(spec.ports.items()):
                handler: Handler
                if port == 22 and machine.ssh is not None:
                    handler = machine.ssh.handle
                elif kind == "http":
                    handler = relay_http(port, runtime.relayed)
                else:
                    handler = relay_tcp(port, runtime.relayed)
                listener = Listener(self.host, wanted.get(port, 0), handler, runtime.tasks)
                listener.open()
                machine.listeners[port] = listener
            # After the answer: start() returns before bwrap and the command are spawned.
            asyncio.get_running_loop().call_later(0, lambda: runtime.track(runtime.boot()))
        except BaseException:
            await self._teardown(machine, keep=False)
            raise
        self._machines[spec.order_id] = machine
        return self._endpoint_of(machine)

    async def _stop(self, order_id: int, keep: bool) -> bool:
        machine = self._machines.pop(order_id, None)
        if machine is None:
            return False
        await self._teardown(machine, keep)
        return True

    async def _teardown(self, machine: _Machine, keep: bool) -> None:
        runtime = machine.runtime
        for listener in machine.listeners.values():
            listener.close()
        for conn in list(runtime.connections):
            conn.close()
        for writer in list(runtime.relayed):
            writer.close()
        runtime.procs.kill_all()
        await runtime.procs.wait(_STOP_WAIT)
        for conn in list(runtime.connections):
            conn.abort()
        tasks = list(runtime.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_WAIT)
        if not keep:
            trash = runtime.layout.discard()
            if trash is not None:
                loop = asyncio.get_running_loop()
                removal = loop.run_in_executor(None, shutil.rmtree, trash, True)
                self._removals.add(removal)
                removal.add_done_callback(self._removals.discard)

    async def _stop_all(self) -> None:
        for order_id in list(self._machines):
            await self._stop(order_id, self.keep)
        if self._removals:
            await asyncio.wait(list(self._removals), timeout=_CALL_TIMEOUT)

    async def _fault(self, order_id: int, fault: AccessFault | None, seconds: float) -> None:
        machine = self._get(order_id)
        listener = machine.ssh_listener
        if machine.ssh is None or listener is None:
            raise ValueError(f"order {order_id} has no SSH port")
        faults = machine.ssh.faults
        if fault == "drop":
            machine.ssh.drop()
            return
        if fault == "refuse":
            listener.pause()
        else:
            listener.resume()
        faults.kind = fault
        faults.seconds = seconds if fault == "delay" else 0.0

    async def _get_fault(self, order_id: int) -> tuple[str, float] | None:
        machine = self._get(order_id)
        if machine.ssh is None or machine.ssh.faults.kind is None:
            return None
        return machine.ssh.faults.kind, machine.ssh.faults.seconds

    async def _set_delivers(self, order_id: int, delivers: Delivers) -> None:
        machine = self._get(order_id)
        runtime = machine.runtime
        runtime.spec = replace(runtime.spec, delivers=delivers)
        runtime.layout.write_hardware(hardware(runtime.spec))
