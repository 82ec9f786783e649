"""A machine's life: its command and log, stop ending sessions and processes, access
faults, isolation, the SFTP root, and the loopback-only rule."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from machines_support import KeyPair, OpenSSH, make_key, require, wait_for

from clore.sandbox.machines import Endpoint, Machines, MachineSpec
from conftest import next_order_id

PASSWORD = "Life1234"


def login(endpoint: Endpoint, **kw: Any) -> Any:
    """An asyncssh connection (context manager) as root with the password."""
    return asyncssh.connect(
        "127.0.0.1",
        endpoint.ssh_port,
        username="root",
        password=PASSWORD,
        known_hosts=None,
        client_keys=None,
        **kw,
    )


def host_processes_with(token: str) -> list[int]:
    """Host pids whose command line contains ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if token.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_the_command_starts_with_the_machine_and_its_output_is_the_log(
    machines: Machines, start: Callable[..., Endpoint]
) -> None:
    """The order's command runs at start in HOME with the order env; its output is kept,
    also after the machine stopped."""
    order_id = next_order_id()
    start(
        MachineSpec(
            order_id=order_id,
            env={"MODEL": "llama"},
            command='echo "serving $MODEL from $(pwd)"; echo oops >&2',
        )
    )
    log = wait_for(lambda: text if "oops" in (text := machines.logs(order_id)) else None)
    machines.stop(order_id)
    assert "serving llama from " in log
    assert machines.logs(order_id) == log


def test_start_is_idempotent_and_stop_of_an_unknown_order_says_so(
    machines: Machines, start: Callable[..., Endpoint]
) -> None:
    """Starting a running order returns its endpoint; stopping one that does not run is False."""
    spec = MachineSpec(order_id=next_order_id(), ssh_password=PASSWORD)
    first = start(spec)
    assert machines.start(spec) == first
    assert machines.endpoint(spec.order_id) == first
    assert spec.order_id in machines.running()
    assert machines.stop(999_999) is False


async def test_stop_closes_sessions_and_kills_processes_within_a_second(
    machines: Machines, start: Callable[..., Endpoint]
) -> None:
    """stop(): open sessions end, foreground and background processes die, the port closes
    and the order directory goes, all within a second."""
    token = f"{time.time_ns() % 10**6 + 0.123:.3f}"  # a unique sleep argument to find
    endpoint = start(ssh_password=PASSWORD, command=f"sleep 1{token}")
    async with login(endpoint) as conn:
        await conn.run(f"nohup sleep 2{token} >/dev/null 2>&1 &")
        foreground = await conn.create_process(f"sleep 3{token}")
        wait_for(lambda: True if len(host_processes_with(token)) >= 3 else None)
        started = time.monotonic()
        machines.stop(endpoint.order_id)
        await asyncio.wait_for(foreground.wait_closed(), 1.0)
        await asyncio.wait_for(conn.wait_closed(), 1.0)
        gone = wait_for(lambda: True if not host_processes_with(token) else None, timeout=1.0)
        elapsed = time.monotonic() - started
    assert gone and elapsed < 1.0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", endpoint.ssh_port), timeout=2).close()
    assert not endpoint.directory.exists()


def test_stop_can_keep_the_directory_for_debugging(
    machines: Machines, start: Callable[..., Endpoint]
) -> None:
    """keep=True leaves the order's files in place."""
    endpoint = start()
    (endpoint.directory / "root" / "notes.txt").write_text("kept\n")
    machines.stop(endpoint.order_id, keep=True)
    assert (endpoint.directory / "root" / "notes.txt").read_text() == "kept\n"


def banner_after(port: int) -> tuple[bytes, float]:
    """The first bytes the SSH port sends, and how long they took after connecting."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        data = sock.recv(64)
        return data, time.monotonic() - started


async def test_access_faults_refuse_delay_and_drop(
    machines: Machines, start: Callable[..., Endpoint]
) -> None:
    """refuse: connections refused, then served again on the same port once cleared; delay:
    the banner comes after the delay; drop: open sessions are cut, new ones served."""
    endpoint = start(ssh_password=PASSWORD)
    port = endpoint.ssh_port
    assert port is not None
    machines.set_access_fault(endpoint.order_id, "refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert machines.access_fault(endpoint.order_id) == ("refuse", 0.0)
    machines.set_access_fault(endpoint.order_id, "delay", 0.4)
    banner, waited = banner_after(port)
    assert banner.startswith(b"SSH-2.0-") and waited >= 0.35
    machines.set_access_fault(endpoint.order_id, None)
    assert banner_after(port)[1] < 0.35
    async with login(endpoint) as conn:
        machines.set_access_fault(endpoint.order_id, "drop")
        await asyncio.wait_for(conn.wait_closed(), 2.0)
    async with login(endpoint) as conn:
        assert (await conn.run("echo back")).stdout == "back\n"
    assert machines.access_fault(endpoint.order_id) is None


def test_bad_fault_requests_are_refused(machines: Machines, start: Callable[..., Endpoint]) -> None:
    """Unknown faults, a delay without seconds and an order without a machine are errors."""
    endpoint = start()
    with pytest.raises(ValueError, match="access fault must be one of"):
        machines.set_access_fault(endpoint.order_id, "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay fault needs"):
        machines.set_access_fault(endpoint.order_id, "delay")
    with pytest.raises(KeyError, match="no machine runs for order 424242"):
        machines.set_access_fault(424242, "refuse")


@pytest.fixture
def key(workdir: Path) -> KeyPair:
    return make_key(workdir)


async def test_bubblewrap_hides_the_host_and_keeps_the_system_read_only(
    machines: Machines, start: Callable[..., Endpoint], tmp_path: Path
) -> None:
    """Under bubblewrap the user's home and the sandbox's files are invisible, the system is
    read-only, /etc/shadow is empty, and ps shows only the order's processes."""
    if machines.isolation_kind != "bubblewrap":
        pytest.skip(f"bubblewrap is not in force here: {machines.isolation}")
    home = Path(os.environ["HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "secret.txt").write_text("do not show\n")
    endpoint = start(ssh_password=PASSWORD, command="sleep 600")
    async with login(endpoint) as conn:
        seen = await conn.run(
            f"cat {home}/secret.txt; ls {machines.root}; touch /usr/x; wc -c < /etc/shadow; "
            "hostname; (ps -e -o comm= 2>/dev/null || echo sh) | sort -u | tr '\\n' ' '"
        )
    out, err = str(seen.stdout), str(seen.stderr)
    assert "do not show" not in out
    assert "No such file or directory" in err
    assert "Read-only file system" in err
    lines = out.splitlines()
    assert lines[0].strip() == "0"
    assert lines[1] == f"clore-{endpoint.order_id}"
    assert set(lines[2].split()) <= {"bwrap", "sh", "sleep", "ps", "sort", "tr", "bash"}


async def test_sftp_follows_links_inside_the_machine_only(
    start: Callable[..., Endpoint], tmp_path: Path, key: KeyPair, workdir: Path
) -> None:
    """A link to a host file outside the order directory is not followed by SFTP; a link
    to a file of the machine is."""
    outside = tmp_path / "host-secret.txt"
    outside.write_text("host secret\n")
    endpoint = start(ssh_key=key.public)
    async with asyncssh.connect(
        "127.0.0.1", endpoint.ssh_port, username="root", client_keys=[key.key], known_hosts=None
    ) as conn:
        await conn.run(
            f"echo mine > data.txt && ln -s /root/data.txt alias && ln -s {outside} escape "
            "&& ln -s ../../../../../../../../etc/hostname up"
        )
        async with conn.start_sftp_client() as sftp:
            async with sftp.open("alias") as handle:
                alias = await handle.read()
            refused = []
            for name in ("escape", "up"):
                try:
                    async with sftp.open(name) as handle:
                        refused.append(await handle.read())
                except asyncssh.SFTPError:
                    refused.append(None)
    assert alias == "mine\n"
    assert refused == [None, None]


def test_machines_listen_on_loopback_only_unless_told() -> None:
    """A non-loopback host is refused unless allow_public says the risk is meant."""
    with pytest.raises(ValueError, match="loopback only"):
        Machines(host="0.0.0.0", isolation="none")


async def test_without_isolation_a_machine_still_serves_ssh_and_nvidia_smi(
    tmp_path: Path,
) -> None:
    """isolation='none' runs commands unconfined in the order directory, and says so."""
    require("ssh")
    with Machines(root=tmp_path / "plain", isolation="none") as plain:
        endpoint = plain.start(
            MachineSpec(
                order_id=1,
                ssh_password=PASSWORD,
                gpu="NVIDIA GeForce RTX 4090",
                gpu_count=1,
                gpuram=24,
            )
        )
        async with login(endpoint) as conn:
            result = await conn.run("pwd; nvidia-smi -L | cut -d'(' -f1")
    assert plain.isolation.startswith("none: ")
    assert result.stdout == f"{endpoint.directory / 'root'}\nGPU 0: NVIDIA GeForce RTX 4090 \n"


def test_password_login_with_openssh_after_a_refuse_fault_is_cleared(
    machines: Machines, start: Callable[..., Endpoint], workdir: Path
) -> None:
    """A readiness loop sees the port refused, then logs in once the fault is cleared."""
    endpoint = start(ssh_password=PASSWORD)
    machines.set_access_fault(endpoint.order_id, "refuse")
    refused = OpenSSH(endpoint, workdir, password=PASSWORD).ssh("true")
    machines.set_access_fault(endpoint.order_id, None)
    served = OpenSSH(endpoint, workdir, password=PASSWORD).ssh("echo ok")
    assert (refused.returncode, "Connection refused" in refused.stderr) == (255, True)
    assert (served.returncode, served.stdout) == (0, "ok\n")
