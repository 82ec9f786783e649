"""A sandbox order is a machine: it appears when provisioning ends and goes with the order.

In-process sandboxes on a ManualClock, reached through real sockets on 127.0.0.1 with
OpenSSH's ssh and scp: the endpoint's birth at provisioning's end, the order's env,
command and log, a file round trip, and every ending closing the endpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from machines_support import make_key, require
from orders_support import PASSWORD, banner, openssh, refused, rent

from clore import Clore
from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import PROVISIONING_DELAY


@pytest.fixture
def client(small: Sandbox) -> Clore:
    return small.client()


def test_the_machine_starts_when_provisioning_ends(
    small: Sandbox, client: Clore, clock: ManualClock
) -> None:
    """Before provisioning ends no machine runs; advancing past it starts one whose SSH port,
    the order's "22:PORT" on 127.0.0.1, answers with an SSH banner."""
    order = rent(client, 1)
    user = small.backend.authenticate(small.demo_key)
    assert user is not None
    record = small.backend.order_record(order.id)
    assert record is not None and record.ready_at is not None
    clock.advance(record.ready_at - 1 - clock.time())
    (early,) = small.backend.my_orders(user, False)
    assert early.order.tcp_ports == [] and small.machines_info()["running"] == []
    small.advance(1)
    ready = client.get_order(order.id)
    assert ready.hosts == ["127.0.0.1"]
    host, port = ready.ssh_endpoint or ("", 0)
    assert banner(host, port).startswith(b"SSH-2.0-")
    assert small.machines_info()["running"] == [order.id]


def test_openssh_logs_in_with_the_password_and_sees_the_order(
    small: Sandbox, client: Clore, clock: ManualClock, workdir: Path
) -> None:
    """ssh root@127.0.0.1 with the order's password runs in the order's machine: its env,
    the listing's GPUs; a wrong password is refused; the command's output is its log."""
    order = rent(client, 1, env={"STAGE": "test"}, command="echo booted $STAGE")
    small.advance(PROVISIONING_DELAY)
    ready = client.get_order(order.id)
    tools = openssh(ready, workdir)
    result = tools.ssh("echo $STAGE; nvidia-smi -L | wc -l; pwd")
    assert (result.returncode, result.stdout.split()) == (0, ["test", "2", "/root"])
    wrong = openssh(ready, workdir)
    wrong.env["SSH_ASKPASS"] = str(workdir / "wrong")
    (workdir / "wrong").write_text("#!/bin/sh\necho nope\n")
    (workdir / "wrong").chmod(0o700)
    assert wrong.ssh("true").returncode == 255
    deadline = time.monotonic() + 10
    while "booted test" not in small.order_logs(order.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert small.order_logs(order.id) == "booted test\n"
    with httpx.Client(transport=small.transport(), base_url="http://sandbox.local") as http:
        answer = http.get(f"/_sandbox/orders/{order.id}/logs").json()
    assert answer == {"code": 0, "order": order.id, "log": "booted test\n"}


def test_a_key_logs_in_and_scp_copies_a_file_both_ways(
    small: Sandbox, client: Clore, workdir: Path
) -> None:
    """The private key of the order's ssh_key logs in (another key does not); scp puts a
    file into the machine and gets it back unchanged."""
    key, other = make_key(workdir), make_key(workdir, "other")
    order = client.create_order(1, "img", ssh_key=key.public)
    small.advance(PROVISIONING_DELAY)
    ready = client.get_order(order.id)
    assert openssh(ready, workdir, key=other).ssh("true").returncode == 255
    tools = openssh(ready, workdir, key=key)
    payload = workdir / "payload.bin"
    payload.write_bytes(os.urandom(50_000))
    assert tools.run("scp", str(payload), "root@127.0.0.1:/root/in.bin").returncode == 0
    assert tools.ssh("cp /root/in.bin /root/out.bin").returncode == 0
    back = workdir / "back.bin"
    assert tools.run("scp", "root@127.0.0.1:/root/out.bin", str(back)).returncode == 0
    assert back.read_bytes() == payload.read_bytes()


def test_the_database_never_holds_the_password(small: Sandbox, client: Clore) -> None:
    """The SSH password lives with the machines only: the stored order has none."""
    order = rent(client, 1)
    record = small.backend.order_record(order.id)
    assert record is not None and PASSWORD not in repr(record)


def _ssh_port(client: Clore, order_id: int) -> int:
    endpoint = client.get_order(order_id).ssh_endpoint
    assert endpoint is not None
    return endpoint[1]


def _closed_within_a_second(port: int) -> bool:
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if refused("127.0.0.1", port):
            return True
        time.sleep(0.02)
    return False


def test_cancel_closes_the_endpoint_and_ends_its_sessions(
    small: Sandbox, client: Clore, workdir: Path
) -> None:
    """Cancelling closes the SSH port and the open session, and kills the order's
    processes, before cancel_order returns."""
    order = rent(client, 1)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    session = openssh(client.get_order(order.id), workdir).popen(
        "root@127.0.0.1", "echo up; sleep 600"
    )
    assert session.stdout is not None and session.stdout.readline() == "up\n"
    started = time.monotonic()
    client.cancel_order(order.id)
    assert refused("127.0.0.1", port)
    assert session.wait(timeout=5) != 0
    assert time.monotonic() - started < 1.0
    assert small.machines_info()["running"] == []


def test_expiry_closes_the_endpoint(small: Sandbox, client: Clore) -> None:
    """An order reaching ct + mrl closes its endpoint (server 5 rents for one hour)."""
    order = rent(client, 5)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    small.advance(3600)
    assert _closed_within_a_second(port)
    assert client.get_order(order.id).expired


def test_an_empty_wallet_closes_the_endpoint(small: Sandbox) -> None:
    """A wallet running dry ends its orders, and their endpoints close."""
    key, _ = small.create_user("poor", {"bitcoin": 0.0864 / 24 * 1.1 + 0.0001})
    client = small.client(api_key=key)
    order = rent(client, 1)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    assert banner("127.0.0.1", port).startswith(b"SSH-")
    small.advance(2 * 3600)
    assert _closed_within_a_second(port)
    assert client.get_order(order.id).expired


def test_an_offline_server_stops_its_machines_and_they_come_back(
    small: Sandbox, client: Clore
) -> None:
    """A server going offline stops its orders' machines; back online, they start again on
    the same ports."""
    order = rent(client, 1)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    small.set_server(1, online=False)
    assert refused("127.0.0.1", port)
    small.set_server(1, online=True)
    assert banner("127.0.0.1", port).startswith(b"SSH-")


def test_an_outbid_spot_order_stops_and_resumes(small: Sandbox, client: Clore) -> None:
    """A spot order outbid (paused) loses its machine, as a real container stops; winning
    again brings it back on its ports."""
    order = client.create_order(4, "img", order_type="spot", spotprice=0.05, ssh_password=PASSWORD)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    rival_key, _ = small.create_user("rival", {"bitcoin": 1.0})
    with small.client(api_key=rival_key) as rival:
        bid = rival.create_order(4, "img", order_type="spot", spotprice=0.08)
        assert refused("127.0.0.1", port)
        rival.cancel_order(bid.id)
    assert banner("127.0.0.1", port).startswith(b"SSH-")


def test_a_reset_stops_every_machine(small: Sandbox, client: Clore) -> None:
    """reset forgets the orders, and their machines stop."""
    order = rent(client, 1)
    small.advance(PROVISIONING_DELAY)
    port = _ssh_port(client, order.id)
    small.reset()
    assert refused("127.0.0.1", port)


def test_orders_of_a_sandbox_without_machines_name_loopback(
    sandbox_factory: object, small_seed: Path
) -> None:
    """With machines="off" an order still gets loopback endpoints, where nothing listens."""
    make = sandbox_factory
    assert callable(make)
    sb: Sandbox = make(seed=str(small_seed), rate_limit=False, machines="off")
    with sb.client() as client:
        order = rent(client, 1)
        sb.advance(PROVISIONING_DELAY)
        ready = client.get_order(order.id)
    assert ready.hosts == ["127.0.0.1"] and refused("127.0.0.1", _port_of(ready.tcp_ports))


def _port_of(tcp_ports: object) -> int:
    assert isinstance(tcp_ports, list)
    return int(str(tcp_ports[0]).split(":")[1])


def test_rsync_copies_into_the_machine(small: Sandbox, client: Clore, workdir: Path) -> None:
    """rsync over ssh works where rsync is installed."""
    require("rsync")
    order = rent(client, 1)
    small.advance(PROVISIONING_DELAY)
    tools = openssh(client.get_order(order.id), workdir)
    (workdir / "tree").mkdir()
    (workdir / "tree" / "a.txt").write_text("alpha")
    assert tools.rsync("-a", f"{workdir / 'tree'}/", "root@127.0.0.1:/root/tree/").returncode == 0
    assert tools.ssh("cat /root/tree/a.txt").stdout == "alpha"
