"""End to end through real processes: a ``serve`` subprocess (uvicorn) whose orders are
machines, and the CLI's one-process-per-command ``--sandbox`` mode, whose machines live in
a background host process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from machines_support import make_key, require
from orders_support import PASSWORD, banner, openssh, refused

from clore import Clore, Pacing

pytestmark = pytest.mark.slow

SCALE = 600.0  # an hour of the sandbox in six real seconds


def test_serve_runs_machines_and_closes_an_expired_one_within_a_second(
    live_server: Any, workdir: Path
) -> None:
    """Against `serve`: wait_for_order returns once SSH answers, OpenSSH logs in with the
    password, and the order's expiry (server 5 rents for one hour) closes the endpoint
    within a real second, with no request to the server."""
    server = live_server("--time-scale", str(SCALE), "--no-rate-limit", "--db", ":memory:")
    with Clore(api_key=server.demo_key, base_url=server.base, pacing=Pacing.disabled()) as client:
        order = client.create_order(5, "img", ssh_password=PASSWORD)
        ready = client.wait_for_order(order.id, timeout=60, poll_interval=0.05)
        host, port = ready.ssh_endpoint or ("", 0)
        result = openssh(ready, workdir).ssh("nvidia-smi -L | wc -l")
        assert (result.returncode, result.stdout.strip()) == (0, "2")
        ends_at = ready.ends_at
        deadline = time.monotonic() + 30
        while not refused(host, port) and time.monotonic() < deadline:
            time.sleep(0.02)
        closed_at = float(httpx.get(f"{server.root}/_sandbox/info").json()["now"])
    assert refused(host, port)
    assert (closed_at - ends_at) / SCALE < 1.0


def test_serve_prints_the_machines_isolation(live_server: Any) -> None:
    """The banner's fourth line names the isolation the orders' machines run under."""
    server = live_server("--db", ":memory:")
    assert server.proc.stdout is not None
    lines = [server.proc.stdout.readline(), server.proc.stdout.readline()]
    assert lines[0].startswith("database: ")
    assert lines[1].startswith("machines: ") and lines[1].split()[1] in ("bubblewrap:", "none:")


def _clore(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clore", "--sandbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_the_cli_sandbox_mode_keeps_machines_in_a_background_host(
    tmp_path: Path, workdir: Path
) -> None:
    """`clore --sandbox rent --wait` leaves a reachable order behind after its process
    ended: a background host runs the machine; `clore --sandbox ssh` logs in with the key
    rent sent, `copy` fetches a file, `cancel` closes the endpoint, and the host goes
    once its database does."""
    require("ssh")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = make_key(home / ".ssh")
    (home / ".ssh" / "id_ed25519.pub").write_text(key.public + "\n")
    data = tmp_path / "data"
    env = {
        **os.environ,
        "HOME": str(home),
        "CLORE_DATA_DIR": str(data),
        "CLORE_CONFIG_DIR": str(tmp_path / "config"),
        "CLORE_CACHE_DIR": str(tmp_path / "cache"),
    }
    for name in ("CLORE_API_KEY", "CLORE_BASE_URL", "CLORE_PROFILE"):
        env.pop(name, None)
    rent = ["rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", "--wait", "--timeout", "60"]
    rented = _clore(env, "--json", *rent)
    assert rented.returncode == 0, rented.stderr
    order = json.loads(rented.stdout)["order"]
    host, port = "127.0.0.1", int(str(order["tcp_ports"][0]).split(":")[1])
    assert banner(host, port).startswith(b"SSH-")  # the rent process is gone; the machine is not
    ran = _clore(env, "ssh", str(order["id"]), "--", "echo hi > /root/x; cat /root/x")
    assert (ran.returncode, ran.stdout) == (0, "hi\n"), ran.stderr
    copied = _clore(env, "copy", f"{order['id']}:/root/x", str(workdir))
    assert copied.returncode == 0, copied.stderr
    assert (workdir / "x").read_text() == "hi\n"
    assert _clore(env, "cancel", str(order["id"])).returncode == 0
    assert refused(host, port)
    pid = int((data / "sandbox.machines" / "host.lock").read_text().split()[0])
    assert _alive(pid)
    shutil.rmtree(data)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_without_machines_runs_none(tmp_path: Path) -> None:
    """`clore sandbox serve --no-machines` (API load tests) says so in its banner, and its
    provisioned orders name loopback ports where nothing listens."""
    args = ["sandbox", "serve", "--no-machines", "--port", "0", "--db", ":memory:"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "clore", *args, "--no-rate-limit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().split()[-1]
        key = proc.stdout.readline().split()[-1]
        proc.stdout.readline()
        assert proc.stdout.readline().strip() == "machines: none: machines are off"
        with Clore(api_key=key, base_url=base, pacing=Pacing.disabled()) as client:
            free = next(s for s in client.marketplace() if not s.rented and s.accepts("bitcoin"))
            order = client.create_order(free.id, "img", ssh_password=PASSWORD)
            httpx.post(base.removesuffix("/v1") + "/_sandbox/advance", json={"seconds": 15})
            host, port = client.get_order(order.id).ssh_endpoint or ("", 0)
        assert host == "127.0.0.1" and refused(host, port)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
