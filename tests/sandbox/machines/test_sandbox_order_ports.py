"""An order's forwarded ports, its machine across a restart of a file sandbox, and where
the machines may listen."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from orders_support import PASSWORD, banner, openssh, refused, rent

from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import PROVISIONING_DELAY
from clore.sandbox.fleet import MachineOptions, machines_root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_forwarded_http_and_tcp_ports_reach_servers_inside_the_order(
    small: Sandbox, workdir: Path
) -> None:
    """The http port's URL answers 502 while nothing listens in the machine, then relays to
    the server a user starts there; a forwarded tcp port relays the same way."""
    http_port, tcp_port = _free_port(), _free_port()
    with small.client() as client:
        order = rent(client, 1, ports={"22": "tcp", str(http_port): "http", str(tcp_port): "tcp"})
        small.advance(PROVISIONING_DELAY)
        ready = client.get_order(order.id)
    assert ready.http_url is not None and ready.http_url.startswith("http://127.0.0.1:")
    assert httpx.get(ready.http_url, timeout=10).status_code == 502
    tools = openssh(ready, workdir)
    for port in (http_port, tcp_port):
        serve = f"python3 -m http.server {port} --bind 127.0.0.1"
        start = f"cd /root && nohup {serve} >/dev/null 2>&1 &"
        assert tools.ssh(f"echo served > /root/page.txt; {start}").returncode == 0

    def page(url: str) -> str | None:
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            return None
        return response.text if response.status_code == 200 else None

    assert _until(lambda: page(f"{ready.http_url}/page.txt")) == "served\n"
    public = ready.port_map[tcp_port]
    assert _until(lambda: page(f"http://127.0.0.1:{public}/page.txt")) == "served\n"


def test_a_reopened_file_sandbox_brings_running_orders_machines_back(
    tmp_path: Path, small_seed: Path, workdir: Path
) -> None:
    """A file sandbox closed with an order running, then opened again, restarts the order's
    machine on the same port, and its password still logs in: passwords and keys are kept
    in owner-only files beside the database (never in it), gone when the order ends."""
    db = tmp_path / "sandbox.db"
    clock = ManualClock()
    options: dict[str, Any] = {"seed": str(small_seed), "clock": clock, "rate_limit": False}
    with Sandbox(db=db, machines="local", **options) as first, first.client() as client:
        order = rent(client, 1)
        first.advance(PROVISIONING_DELAY)
        host, port = client.get_order(order.id).ssh_endpoint or ("", 0)
        assert banner(host, port).startswith(b"SSH-")
    assert refused(host, port)
    stored = machines_root(db) / "access" / f"{order.id}.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(machines_root(db).stat().st_mode) == 0o700
    assert PASSWORD.encode() not in db.read_bytes()
    with Sandbox(db=db, machines="local", **options) as again, again.client() as client:
        ready = client.get_order(order.id)
        assert ready.ssh_endpoint == (host, port)
        result = openssh(ready, workdir).ssh("echo back")
        assert (result.returncode, result.stdout) == (0, "back\n")
        client.cancel_order(order.id)
    assert not stored.exists()


def test_machines_listen_on_loopback_unless_exposed_on_purpose() -> None:
    """A machine host off loopback is refused unless the options say public (serve's
    --expose-machines-publicly); orders then name the advertised host."""
    with pytest.raises(ValueError, match="loopback only"):
        MachineOptions(host="0.0.0.0")
    exposed = MachineOptions(host="0.0.0.0", public=True, advertise="sandbox.example")
    assert exposed.shown_host == "sandbox.example"
    assert MachineOptions().host == "127.0.0.1"


def test_a_machines_ports_are_bound_to_loopback(small: Sandbox) -> None:
    """The SSH port of an order is bound to 127.0.0.1: the same port on another local
    address of this host is not it."""
    with small.client() as client:
        order = rent(client, 1)
        small.advance(PROVISIONING_DELAY)
        _, port = client.get_order(order.id).ssh_endpoint or ("", 0)
    assert banner("127.0.0.1", port).startswith(b"SSH-")
    assert not banner("127.0.0.2", port).startswith(b"SSH-")


def test_the_machines_timer_follows_advances_of_other_processes_only(
    tmp_path: Path, small_seed: Path
) -> None:
    """The process running a file database's machines moves its clock by what another
    process advanced, and otherwise keeps its own time scale (a slowed sandbox stays slow)."""
    db = tmp_path / "shared.db"
    options: dict[str, Any] = {"seed": str(small_seed), "rate_limit": False}
    with Sandbox(db=db, time_scale=1e-6, machines="local", **options) as host:
        assert host.fleet.start_hosting()
        before = host.now()
        time.sleep(0.6)  # a couple of timer ticks
        assert host.now() - before < 0.1  # 0.6 s at 1e-6
        with Sandbox(db=db, time_scale=1e-6, machines="off", **options) as other:
            other.advance(3600)
        assert _until(lambda: host.now() - before >= 3599, timeout=5)
        assert host.now() - before < 3601
