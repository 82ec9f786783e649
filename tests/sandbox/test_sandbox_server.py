"""The sandbox as a real HTTP server (uvicorn subprocesses on 127.0.0.1): slow tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    demo_key: str

    @property
    def root(self) -> str:
        return self.base.removesuffix("/v1")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _start(db: Path, *extra: str) -> Server:
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--port", "0", "--db", str(db), *extra]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    url_line = proc.stdout.readline()
    key_line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
    if match is None or not key_line.startswith("demo key: "):
        proc.kill()
        raise AssertionError(f"unexpected banner: {url_line!r} {key_line!r}")
    server = Server(proc, match.group(1), key_line.split(": ", 1)[1].strip())
    for _ in range(200):
        try:
            httpx.get(server.root + "/_sandbox/info", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError("server did not answer")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start sandbox servers; every one is stopped when the test ends."""
    started: list[Server] = []

    def run(*extra: str, db: Path | None = None) -> Server:
        server = _start(db or tmp_path / "sandbox.db", *extra)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop(signal.SIGKILL)


BODY = {"currency": "bitcoin", "image": "ubuntu", "renting_server": 25769, "type": "on-demand"}


def test_serve_prints_the_demo_key_and_answers(start: Callable[..., Server]) -> None:
    """serve prints URL and demo key; --demo-key fixes the key; the API answers over TCP."""
    server = start("--demo-key", "my-demo-key")
    assert server.demo_key == "my-demo-key"
    market = httpx.get(server.base + "/marketplace", timeout=30).json()
    assert market["code"] == 0 and len(market["servers"]) == 3500
    wallets = httpx.get(server.base + "/wallets", headers={"auth": "my-demo-key"}).json()
    assert wallets["code"] == 0
    assert httpx.get(server.base + "/wallets", headers={"auth": "nope"}).status_code == 401


def test_drop_after_commit_really_drops(start: Callable[..., Server]) -> None:
    """Over TCP the answer never comes (a protocol error), yet the order exists."""
    server = start("--no-rate-limit")
    httpx.post(
        server.root + "/_sandbox/faults",
        json={"endpoint": "create_order", "fault": "drop_after_commit"},
    )
    headers = {"auth": server.demo_key}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(server.base + "/create_order", json=BODY, headers=headers, timeout=10)
    orders = httpx.get(server.base + "/my_orders", headers=headers).json()["orders"]
    assert [o["si"] for o in orders] == [25769]


def test_timeout_holds_the_request_without_acting(start: Callable[..., Server]) -> None:
    """Over TCP the call hangs past the client's timeout; nothing was created; others proceed."""
    server = start("--no-rate-limit")
    httpx.post(
        server.root + "/_sandbox/faults", json={"endpoint": "create_order", "fault": "timeout"}
    )
    headers = {"auth": server.demo_key}
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            httpx.post(server.base + "/create_order", json=BODY, headers=headers, timeout=1.5)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    deadline = time.monotonic() + 10  # until the server holds it: its fault is taken
    while httpx.get(server.root + "/_sandbox/faults").json()["faults"]:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.02)
    assert httpx.get(server.base + "/wallets", headers=headers, timeout=5).json()["code"] == 0
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], httpx.ReadTimeout)
    assert httpx.get(server.base + "/my_orders", headers=headers).json()["orders"] == []


def test_injected_500_over_tcp(start: Callable[..., Server]) -> None:
    """http_500 is a real HTTP 500 with a non-JSON body."""
    server = start()
    httpx.post(
        server.root + "/_sandbox/faults", json={"endpoint": "marketplace", "fault": "http_500"}
    )
    response = httpx.get(server.base + "/marketplace")
    assert response.status_code == 500 and not response.text.startswith("{")


def test_fifty_concurrent_orders_over_http(start: Callable[..., Server]) -> None:
    """50 clients race for one server over TCP: exactly one order."""
    server = start("--no-rate-limit")
    keys = [
        httpx.post(
            server.root + "/_sandbox/users", json={"name": f"u{i}", "balances": {"bitcoin": 1}}
        ).json()["api_key"]
        for i in range(50)
    ]
    barrier = threading.Barrier(50)
    answers: list[dict[str, object]] = []

    def rent(key: str) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            answers.append(
                client.post(server.base + "/create_order", json=BODY, headers={"auth": key}).json()
            )

    threads = [threading.Thread(target=rent, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count({"code": 0}) == 1
    assert answers.count({"code": 6, "error": "server-already-rented"}) == 49


def test_kill_9_loses_no_acknowledged_order(start: Callable[..., Server], tmp_path: Path) -> None:
    """Under load, SIGKILL and restart: every acknowledged order is there, balances add up."""
    db = tmp_path / "durable.db"
    server = start("--no-rate-limit", db=db)
    market = httpx.get(server.base + "/marketplace", timeout=30).json()["servers"]
    free = [s["id"] for s in market if not s["rented"] and "bitcoin" in s["allowed_coins"]][:400]
    users = []
    for i in range(8):
        made = httpx.post(
            server.root + "/_sandbox/users", json={"name": f"u{i}", "balances": {"bitcoin": 5}}
        ).json()
        users.append(made["api_key"])
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        key = users[worker]
        with httpx.Client(timeout=10) as client:
            for server_id in free[worker::8]:
                if stop.is_set():
                    return
                try:
                    body = {**BODY, "renting_server": server_id}
                    answer = client.post(
                        server.base + "/create_order", json=body, headers={"auth": key}
                    ).json()
                except httpx.HTTPError:
                    return
                if answer == {"code": 0}:
                    with lock:
                        acknowledged.append((key, server_id))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    server.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 20

    # Restarted with time all but frozen, so that my_orders and wallets read one instant.
    again = start("--no-rate-limit", "--time-scale", "1e-9", db=db)
    for key in users:
        headers = {"auth": key}
        orders = httpx.get(again.base + "/my_orders", headers=headers).json()["orders"]
        present = {o["si"] for o in orders}
        mine = {sid for k, sid in acknowledged if k == key}
        assert mine <= present
        balance = httpx.get(again.base + "/wallets", headers=headers).json()["wallets"][0][
            "balance"
        ]
        # The orders ran for seconds: no creation fee yet (it comes after 10 minutes).
        paid = sum(o["spend"] * 1.1 for o in orders)
        assert balance >= 0 and balance == pytest.approx(5 - paid, rel=1e-9)


def test_control_client_drives_a_running_server(start: Callable[..., Server]) -> None:
    """clore.sandbox.control_client offers the Sandbox control methods over HTTP."""
    from clore import InvalidInputError
    from clore.sandbox import control_client

    server = start()
    with control_client(server.base) as control:
        key, user_id = control.create_user("remote", {"bitcoin": 1.0})
        before = control.info()["now"]
        assert control.advance(3600) >= before + 3600
        control.inject_fault("wallets", "db_error", 2)
        assert control.faults() == [("wallets", "db_error", 2)]
        control.clear_faults()
        control.set_server(25769, rented=True)
        assert len(control.market_tick(3)) == 3
        with pytest.raises(InvalidInputError):
            control.inject_fault("nope", "db_error")
        control.reset()
    assert httpx.get(server.base + "/wallets", headers={"auth": key}).status_code == 401
    assert isinstance(user_id, int)
