"""Lying hosts and access faults of sandbox orders, through the control plane and the CLI,
and readiness meaning reachable: wait_for_order waits for the SSH banner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from orders_support import banner, openssh, refused, rent

from clore import Clore, WaitTimeoutError
from clore._clock import ManualClock
from clore.cli import cli as cli_main
from clore.cli._context import AppContext
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import PROVISIONING_DELAY


@pytest.fixture
def client(small: Sandbox) -> Clore:
    return small.client()


@pytest.fixture
def http(small: Sandbox) -> Any:
    with httpx.Client(transport=small.transport(), base_url="http://sandbox.local") as client:
        yield client


def _running(small: Sandbox, client: Clore, server: int = 1) -> tuple[int, int]:
    order = rent(client, server)
    small.advance(PROVISIONING_DELAY)
    endpoint = client.get_order(order.id).ssh_endpoint
    assert endpoint is not None
    return order.id, endpoint[1]


# ---------------------------------------------------------------------------- lying hosts


def test_delivers_changes_what_running_and_new_machines_report_not_the_listing(
    small: Sandbox, client: Clore, http: httpx.Client, workdir: Path
) -> None:
    """POST /_sandbox/servers/{id} {"delivers": ...} makes the server's running machines and
    new ones report other hardware; the marketplace listing stays as it was."""
    order_id, _ = _running(small, client)
    listing = next(s for s in client.marketplace() if s.id == 1)
    tools = openssh(client.get_order(order_id), workdir)
    query = "nvidia-smi --query-gpu=name,pcie.link.width.current --format=csv,noheader"
    before = tools.ssh(query).stdout.splitlines()
    assert len(before) == 2
    answer = http.post(
        "/_sandbox/servers/1", json={"delivers": {"gpu_count": 1, "pcie_width": 4}}
    ).json()
    assert answer == {"code": 0}
    assert len(tools.ssh(query).stdout.splitlines()) == 1
    assert tools.ssh(query).stdout.strip().endswith(", 4")
    assert next(s for s in client.marketplace() if s.id == 1) == listing
    http.post("/_sandbox/servers/1", json={"delivers": {"gpu_error": True}})  # merged
    table = tools.ssh("nvidia-smi; echo status=$?").stdout
    assert "ERR!" in table and "status=0" in table
    assert len(tools.ssh(query).stdout.splitlines()) == 1
    http.post("/_sandbox/servers/1", json={"delivers": None})
    assert "ERR!" not in tools.ssh("nvidia-smi").stdout
    assert len(tools.ssh(query).stdout.splitlines()) == 2


def test_a_lying_servers_new_orders_get_its_lie(
    small: Sandbox, client: Clore, workdir: Path
) -> None:
    """A server set to lie before an order starts delivers the lie to that order too."""
    small.set_server(1, delivers={"gpu": "NVIDIA GeForce RTX 3060"})
    order_id, _ = _running(small, client)
    names = openssh(client.get_order(order_id), workdir).ssh("nvidia-smi -L").stdout
    assert "RTX 3060" in names and "RTX 4090" not in names


@pytest.mark.parametrize(
    "delivers",
    [{"gpu_count": -1}, {"slow": 0.5}, {"pcie_width": 3}, {"colour": "red"}, {"gpu_error": 1}],
)
def test_bad_delivers_are_code_2_with_a_reason(http: httpx.Client, delivers: Any) -> None:
    """An unknown field or a bad value is refused (code 2) with a one-line reason."""
    response = http.post("/_sandbox/servers/1", json={"delivers": delivers})
    assert response.json() == {"code": 2}
    assert "delivers" in response.headers["x-sandbox-detail"]


def test_the_cli_makes_a_host_lie_and_honest_again(small: Sandbox, workdir: Path) -> None:
    """clore sandbox server ID --delivers-gpu-count 1 --gpu-error ... --honest."""
    runner = CliRunner()

    def run(*args: str) -> Any:
        app = AppContext(sandbox_instance=small)
        try:
            return runner.invoke(cli_main, list(args), obj=app, catch_exceptions=False)
        finally:
            app.close()

    result = run("sandbox", "server", "1", "--delivers-gpu-count", "1", "--gpu-error")
    assert result.exit_code == 0, result.output
    assert small.backend.server_delivers(1) == {"gpu_count": 1, "gpu_error": True}
    assert run("sandbox", "server", "1", "--slow", "2.5").exit_code == 0
    assert small.backend.server_delivers(1) == {"gpu_count": 1, "gpu_error": True, "slow": 2.5}
    assert run("sandbox", "server", "1", "--honest").exit_code == 0
    assert small.backend.server_delivers(1) == {}
    assert run("sandbox", "server", "1").exit_code == 2
    assert run("sandbox", "server", "1", "--slow", "0.5").exit_code == 2


def test_the_market_makes_some_hosts_lie_at_a_low_seeded_rate(
    sandbox_factory: Any, small_seed: Path
) -> None:
    """Market ticks now and then make a host lie or turn honest; the same seed, the same lies."""
    runs = []
    for _ in range(2):
        sb: Sandbox = sandbox_factory(seed=str(small_seed), rate_limit=False, rng_seed=7)
        events = sb.market_tick(400)
        lies = [e.split("; ", 1)[1] for e in events if "; " in e]
        runs.append((lies, sb.backend.meta("delivers")))
    lies, stored = runs[0]
    assert runs[0] == runs[1]
    assert 1 <= len(lies) <= 30
    assert any(lie.startswith("lie ") for lie in lies)
    assert stored is not None


# ---------------------------------------------------------------------------- access faults


def test_access_faults_refuse_delay_and_drop(
    small: Sandbox, client: Clore, http: httpx.Client, workdir: Path
) -> None:
    """POST /_sandbox/orders/{id}/access: refuse closes the SSH port, null opens it again on
    the same port, delay holds the banner back, drop cuts the open sessions."""
    order_id, port = _running(small, client)
    path = f"/_sandbox/orders/{order_id}/access"
    assert http.post(path, json={"fault": "refuse"}).json()["code"] == 0
    assert refused("127.0.0.1", port)
    http.post(path, json={"fault": None})
    assert banner("127.0.0.1", port).startswith(b"SSH-")
    http.post(path, json={"fault": "delay", "seconds": 0.6})
    started = time.monotonic()
    assert banner("127.0.0.1", port).startswith(b"SSH-")
    assert time.monotonic() - started >= 0.5
    http.post(path, json={"fault": None})
    session = openssh(client.get_order(order_id), workdir).popen(
        "root@127.0.0.1", "echo up; sleep 600"
    )
    assert session.stdout is not None and session.stdout.readline() == "up\n"
    http.post(path, json={"fault": "drop"})
    assert session.wait(timeout=5) == 255
    assert banner("127.0.0.1", port).startswith(b"SSH-")  # new connections are served


def test_access_faults_refuse_bad_requests(
    small: Sandbox, client: Clore, http: httpx.Client
) -> None:
    """An unknown fault, a delay without seconds or an order without a machine is code 2."""
    order_id, _ = _running(small, client)
    bad = [
        (f"/_sandbox/orders/{order_id}/access", {"fault": "explode"}),
        (f"/_sandbox/orders/{order_id}/access", {"fault": "delay"}),
        ("/_sandbox/orders/999999/access", {"fault": "refuse"}),
    ]
    for path, body in bad:
        assert http.post(path, json=body).json() == {"code": 2}, (path, body)


def test_the_cli_sets_access_faults_and_reads_logs(small: Sandbox, client: Clore) -> None:
    """clore sandbox access ORDER --refuse / --delay S / --drop / --clear, and logs ORDER."""
    order = rent(client, 1, command="echo hi from the command")
    small.advance(PROVISIONING_DELAY)
    endpoint = client.get_order(order.id).ssh_endpoint
    assert endpoint is not None
    runner = CliRunner()

    def run(*args: str) -> Any:
        app = AppContext(sandbox_instance=small)
        try:
            return runner.invoke(cli_main, list(args), obj=app, catch_exceptions=False)
        finally:
            app.close()

    assert run("sandbox", "access", str(order.id), "--refuse").exit_code == 0
    assert refused(*endpoint)
    assert run("sandbox", "access", str(order.id), "--clear").exit_code == 0
    assert banner(*endpoint).startswith(b"SSH-")
    assert run("sandbox", "access", str(order.id), "--refuse", "--drop").exit_code == 2
    assert run("sandbox", "access", "999999", "--refuse").exit_code == 2
    deadline = time.monotonic() + 10
    while "hi from" not in small.order_logs(order.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    result = run("sandbox", "logs", str(order.id))
    assert (result.exit_code, result.output) == (0, "hi from the command\n")


# ---------------------------------------------------------------------------- readiness


class _ClearingClock(ManualClock):
    """A ManualClock whose first sleep clears the order's access fault (a boot finishing)."""

    def __init__(self, start: float, clear: Any) -> None:
        super().__init__(start)
        self._clear = clear

    def sleep(self, seconds: float) -> None:
        if self._clear is not None:
            self._clear()
            self._clear = None
        super().sleep(seconds)


def test_wait_for_order_waits_until_ssh_answers(small: Sandbox, clock: ManualClock) -> None:
    """A provisioned order whose SSH refuses connections is not ready: wait_for_order polls
    until the banner comes, and times out when it never does."""
    with small.client() as client:
        order = rent(client, 1)
        small.advance(PROVISIONING_DELAY)
        small.set_access_fault(order.id, "refuse")
        with pytest.raises(WaitTimeoutError, match="no SSH banner"):
            client.wait_for_order(order.id, timeout=20, poll_interval=5)
    polls: list[float] = []

    def clear() -> None:
        polls.append(clock.time())
        small.set_access_fault(order.id, None)

    later = _ClearingClock(clock.time(), clear)
    with small.client(clock=later) as client:
        ready = client.wait_for_order(order.id, timeout=60, poll_interval=5)
    assert ready.id == order.id and len(polls) == 1


def test_wait_for_order_reads_a_slow_banner(small: Sandbox) -> None:
    """With a slow boot (delay fault) the probe waits for the banner and the order is ready."""
    with small.client() as client:
        order = rent(client, 1)
        small.advance(PROVISIONING_DELAY)
        small.set_access_fault(order.id, "delay", 0.5)
        started = time.monotonic()
        assert client.wait_for_order(order.id, timeout=30).id == order.id
        assert time.monotonic() - started >= 0.45


def test_the_async_client_probes_too(small: Sandbox) -> None:
    """AsyncClore.wait_for_order returns once the order's SSH banner is read."""

    async def scenario() -> tuple[int, int]:
        async with small.async_client() as client:
            order = await client.create_order(1, "img", ssh_password="pw12345")
            small.advance(PROVISIONING_DELAY)
            small.set_access_fault(order.id, "delay", 0.3)
            ready = await client.wait_for_order(order.id, timeout=30)
            return ready.id, order.id

    got, expected = asyncio.run(scenario())
    assert got == expected


def test_an_http_only_order_is_ready_without_a_probe(small: Sandbox) -> None:
    """An order forwarding no port 22 is ready once provisioned; its URL is plain http on
    loopback and answers 502 while nothing listens in the machine."""
    with small.client() as client:
        order = client.create_order(1, "img", ports={"8891": "http"})
        ready = client.wait_for_order(order.id, timeout=60)
    assert ready.ssh_endpoint is None
    assert ready.http_url is not None and ready.http_url.startswith("http://127.0.0.1:")
    assert httpx.get(ready.http_url, timeout=10).status_code == 502
