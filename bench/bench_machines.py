"""Sandbox machines: time from ``Machines.start`` to an SSH login's command output, and
the sandbox's memory with 50 running machines each holding an idle SSH session.

Login latency: each round starts a machine (bubblewrap when usable), then OpenSSH's
``ssh`` logs in with a key and runs ``echo ready``; the clock stops at its output. The
same is measured through the sandbox's API: an order of an in-process sandbox (on a
ManualClock) whose provisioning is about to end; the clock starts at the ``advance`` that
ends it (the sandbox starts the machine) and runs through ``get_order`` (the SDK reading
the order's SSH port) and the login. The
baseline is a bare asyncssh server in the same process, started the same way (on a
fresh port, key login, ``/bin/sh -c`` as a plain subprocess) but with no per-order work:
no directory, no isolation, no relays. There is no system sshd on these machines to
compare with, so that bare server stands in for "a plain local ssh": stock
(``asyncssh.listen``), and with the machines' quick-ACK connections, which shows the
per-order work alone. Rounds interleave the three; medians and ratios are printed
(goal: machine <= 1.5x the stock server).

Memory: a child process holds an in-process sandbox; its resident memory is read idle
(seeded, no order), then with 50 running orders — rented through the SDK, provisioned by
``advance``, so the sandbox started their machines — each holding an idle interactive
SSH session (opened by asyncssh clients in this process). The goal is under 3 MB per
order above the idle sandbox. The processes each machine runs (its bubblewrap init, the
session's shell) are reported apart, as their proportional set size (PSS).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import asyncssh

from clore import Pacing
from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.fleet import MachineOptions
from clore.sandbox.machines import Machines, MachineSpec
from clore.sandbox.machines.sshd import _QuickAck

ROUNDS = 15
ORDERS = 50
LATENCY_GOAL = 1.5
MEMORY_GOAL_MB = 3.0

_SSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
]


def _ssh(key: Path, port: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        ["ssh", *_SSH_OPTIONS, "-i", str(key), "-p", str(port), "root@127.0.0.1", "echo ready"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.stdout != "ready\n":
        raise RuntimeError(f"ssh to port {port} failed: {result.stderr.strip()}")
    return time.perf_counter() - started


# ---- the bare server ------------------------------------------------------------------


class _Bare(asyncssh.SSHServer):
    def __init__(self, public: asyncssh.SSHKey) -> None:
        self._public = public

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == "root" and key == self._public


async def _bare_session(process: asyncssh.SSHServerProcess[bytes]) -> None:
    child = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        process.command or "true",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    out, err = await child.communicate()
    process.stdout.write(out)
    process.stderr.write(err)
    process.exit(child.returncode or 0)


class _BareServers:
    """Bare asyncssh servers on a loop thread of their own, like Machines' loop."""

    def __init__(self, host_key: asyncssh.SSHKey, public: asyncssh.SSHKey) -> None:
        self._options = asyncssh.SSHServerConnectionOptions(
            server_host_keys=[host_key],
            server_factory=lambda: _Bare(public),
            process_factory=_bare_session,
            encoding=None,
        )
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def listen(self, quick: bool) -> tuple[int, Any]:
        async def stock() -> tuple[int, Any]:
            server = await asyncssh.listen("127.0.0.1", 0, options=self._options)
            return server.sockets[0].getsockname()[1], server

        async def quick_ack() -> tuple[int, Any]:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: _QuickAck(loop, self._options), "127.0.0.1", 0
            )
            return server.sockets[0].getsockname()[1], server

        coro = quick_ack() if quick else stock()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def close(self, server: Any) -> None:
        async def go() -> None:
            server.close()

        asyncio.run_coroutine_threadsafe(go(), self._loop).result(10)


class _ApiRounds:
    """Orders of an in-process sandbox whose provisioning ends on demand."""

    def __init__(self, public: str) -> None:
        self.clock = ManualClock()
        self.sandbox = Sandbox(clock=self.clock, rate_limit=False, machines="local")
        self.client = self.sandbox.client(pacing=Pacing.disabled())
        self.public = public
        free = [s for s in self.client.marketplace() if not s.rented and s.accepts("bitcoin")]
        self.server = min(free, key=lambda s: s.price_per_day("bitcoin")).id

    def round(self, key_path: Path) -> float:
        order = self.client.create_order(self.server, "img", ssh_key=self.public)
        record = self.sandbox.backend.order_record(order.id)
        assert record is not None and record.ready_at is not None
        self.clock.advance(record.ready_at - 0.5 - self.clock.time())
        started = time.perf_counter()
        self.sandbox.advance(1.0)  # provisioning ends: the sandbox starts the machine
        endpoint = self.client.get_order(order.id).ssh_endpoint
        assert endpoint is not None
        _ssh(key_path, endpoint[1])
        took = time.perf_counter() - started
        self.client.cancel_order(order.id)
        return took

    def close(self) -> None:
        self.client.close()
        self.sandbox.close()


def latency(workdir: Path) -> tuple[dict[str, float], str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = workdir / "id_ed25519"
    key_path.write_bytes(key.export_private_key())
    key_path.chmod(0o600)
    public = key.export_public_key().decode()
    machines = Machines(root=workdir / "machines")
    bare = _BareServers(asyncssh.generate_private_key("ssh-ed25519"), key.convert_to_public())
    api = _ApiRounds(public)
    times: dict[str, list[float]] = {
        "start": [],
        "machine": [],
        "api": [],
        "stock": [],
        "quick": [],
    }
    try:
        for order_id in range(ROUNDS + 1):  # round 0 warms caches and is not counted
            started = time.perf_counter()
            endpoint = machines.start(MachineSpec(order_id=order_id, ssh_key=public))
            returned = time.perf_counter() - started
            assert endpoint.ssh_port is not None
            _ssh(key_path, endpoint.ssh_port)
            measured = {"start": returned, "machine": time.perf_counter() - started}
            machines.stop(order_id)
            measured["api"] = api.round(key_path)
            for name in ("stock", "quick"):
                started = time.perf_counter()
                port, server = bare.listen(quick=name == "quick")
                _ssh(key_path, port)
                measured[name] = time.perf_counter() - started
                bare.close(server)
            if order_id:
                for name, value in measured.items():
                    times[name].append(value)
        isolation = machines.isolation_kind
    finally:
        machines.close()
        api.close()
    return {name: statistics.median(values) for name, values in times.items()}, isolation


# ---- memory ---------------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def serve(count: int, root: str) -> None:
    """The child: a sandbox that rents ``count`` orders, driven by lines on stdin."""
    options = MachineOptions(mode="local", root=Path(root))
    sandbox = Sandbox(clock=ManualClock(), rate_limit=False, machines=options)
    client = sandbox.client(pacing=Pacing.disabled())
    free = [s for s in client.marketplace() if not s.rented and s.accepts("bitcoin")]
    cheapest = sorted(free, key=lambda s: s.price_per_day("bitcoin"))[:count]
    public = sys.stdin.readline().strip()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()  # "start"
    orders = [client.create_order(s.id, "img", ssh_key=public).id for s in cheapest]
    sandbox.advance(15)  # provisioning ends: the sandbox starts the machines
    ports = []
    for order_id in orders:
        endpoint = client.get_order(order_id).ssh_endpoint
        assert endpoint is not None
        ports.append(endpoint[1])
    isolation = sandbox.machines_info()["isolation"]
    print(json.dumps({"ports": ports, "isolation": isolation}), flush=True)
    sys.stdin.readline()  # "stop"
    client.close()
    sandbox.close()


async def _hold_sessions(key: asyncssh.SSHKey, ports: list[int]) -> list[Any]:
    held = []
    for port in ports:
        conn = await asyncssh.connect(
            "127.0.0.1", port, username="root", client_keys=[key], known_hosts=None
        )
        process = await conn.create_process(term_type="xterm")
        process.stdin.write("echo idle\n")
        await asyncio.wait_for(process.stdout.readuntil("idle"), 10)
        held.append((conn, process))
    return held


def memory(workdir: Path) -> tuple[float, float, float, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(ORDERS), str(workdir / "memory")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    loop = asyncio.new_event_loop()
    try:
        child.stdin.write(key.export_public_key().decode())
        child.stdin.flush()
        json.loads(child.stdout.readline())
        time.sleep(0.5)
        idle = _rss_kb(child.pid)
        child.stdin.write("start\n")
        child.stdin.flush()
        started = json.loads(child.stdout.readline())
        held = loop.run_until_complete(_hold_sessions(key, started["ports"]))
        time.sleep(1.0)
        loaded = _rss_kb(child.pid)
        others = sum(_pss_kb(pid) for pid in _descendants(child.pid))
        for conn, _ in held:
            conn.close()
        child.stdin.write("stop\n")
        child.stdin.flush()
        child.wait(timeout=60)
    finally:
        loop.close()
        if child.poll() is None:
            child.kill()
    return idle / 1024, loaded / 1024, others / 1024, started["isolation"]


def main() -> int:
    if subprocess.run(["which", "ssh"], capture_output=True, check=False).returncode:
        print("ssh (OpenSSH client) is not installed: nothing to measure")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-machines-") as tmp:
        workdir = Path(tmp)
        medians, isolation = latency(workdir)
        idle, loaded, others, described = memory(workdir)
    machine, plain, quick = medians["machine"], medians["stock"], medians["quick"]
    through_api = medians["api"]
    ratio = through_api / plain
    per_order = (loaded - idle) / ORDERS
    print(f"isolation: {described}")
    print(f"start -> OpenSSH login + command output, median of {ROUNDS} rounds:")
    print(f"  sandbox API: provisioning end -> login   {through_api * 1000:7.1f} ms")
    print(f"  sandbox machine ({isolation})            {machine * 1000:7.1f} ms")
    print(f"  bare asyncssh server, stock           {plain * 1000:7.1f} ms")
    print(f"  bare asyncssh server, quick ACKs      {quick * 1000:7.1f} ms")
    print(f"  the machine's own work: {machine / quick:.2f}x the quick-ACK server")
    print(f"  Machines.start itself returned in {medians['start'] * 1000:.1f} ms")
    verdict = "ok" if ratio <= LATENCY_GOAL else "OVER"
    print(f"  machine / stock server: {machine / plain:.2f}x")
    print(f"  provisioning end -> login / stock server: {ratio:.2f}x (goal <= {LATENCY_GOAL}x)")
    print(f"  {verdict}")
    print(f"sandbox RSS: {idle:.1f} MB idle, {loaded:.1f} MB with {ORDERS} running orders")
    print(f"  each holding an idle SSH session: {per_order:.2f} MB per order")
    print(f"  (goal < {MEMORY_GOAL_MB} MB): {'ok' if per_order < MEMORY_GOAL_MB else 'OVER'}")
    print(f"  the machines' processes: {others:.1f} MB PSS, {others / ORDERS:.2f} MB per order")
    return 0 if ratio <= LATENCY_GOAL and per_order < MEMORY_GOAL_MB else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
        raise SystemExit(0)
    raise SystemExit(main())
