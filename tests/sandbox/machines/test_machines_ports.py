"""Forwarded ports: tcp and http relays to a server started inside the order, and ssh -L."""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from machines_support import OpenSSH, wait_for

from clore.sandbox.machines import Endpoint

PASSWORD = "Ports123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def tcp_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def ports() -> tuple[int, int]:
    """Two free container ports (machines share the host's network)."""
    return free_port(), free_port()


@pytest.fixture
def endpoint(start: Callable[..., Endpoint], ports: tuple[int, int]) -> Endpoint:
    tcp, http = ports
    return start(ssh_password=PASSWORD, ports={22: "tcp", tcp: "tcp", http: "http"})


@pytest.fixture
def client(endpoint: Endpoint, workdir: Path) -> OpenSSH:
    return OpenSSH(endpoint, workdir, password=PASSWORD)


def serve_inside(client: OpenSSH, port: int) -> None:
    """Start ``python3 -m http.server PORT`` in the machine, in the background."""
    started = client.ssh(
        "echo 'hello from the order' > index.html && "
        f"nohup python3 -m http.server {port} --bind 127.0.0.1 >http.log 2>&1 &"
    )
    assert started.returncode == 0, started.stderr


def test_endpoint_lists_public_ports_for_each_forwarded_port(
    endpoint: Endpoint, ports: tuple[int, int]
) -> None:
    """tcp_ports maps 22 and the tcp port; the http port gets its own URL; all loopback."""
    tcp, http = ports
    assert {22, tcp} == set(endpoint.tcp_ports)
    assert endpoint.tcp_ports[22] == endpoint.ssh_port
    assert (http, f"http://127.0.0.1:{endpoint.http_public_port}/") == (
        endpoint.http_port,
        endpoint.http_url,
    )
    assert [f"22:{endpoint.ssh_port}", f"{tcp}:{endpoint.tcp_ports[tcp]}"] == sorted(
        endpoint.tcp_ports_list, key=lambda s: int(s.split(":")[0])
    )


def test_http_relay_answers_502_until_a_server_listens_inside(
    endpoint: Endpoint, client: OpenSSH, ports: tuple[int, int]
) -> None:
    """The http URL says 502 while nothing listens, then shows the order's http.server."""
    _, http = ports
    assert http_get(endpoint.http_url or "")[0] == 502
    serve_inside(client, http)
    status, body = wait_for(
        lambda: r if (r := http_get(f"{endpoint.http_url}index.html"))[0] == 200 else None
    )
    assert (status, body) == (200, b"hello from the order\n")


def test_tcp_relay_reaches_a_server_inside_and_closes_before_one_listens(
    endpoint: Endpoint, client: OpenSSH, ports: tuple[int, int]
) -> None:
    """A tcp forward closes at once while nothing listens, then relays bytes both ways."""
    tcp, _ = ports
    public = endpoint.tcp_ports[tcp]
    request = b"GET /index.html HTTP/1.0\r\n\r\n"
    assert tcp_exchange(public, request) == b""
    serve_inside(client, tcp)
    reply = wait_for(lambda: r if (r := tcp_exchange(public, request)) else None)
    assert reply.startswith(b"HTTP/1.0 200")
    assert reply.endswith(b"hello from the order\n")


@pytest.fixture
def forward(client: OpenSSH, ports: tuple[int, int]) -> Iterator[int]:
    local = free_port()
    process = client.popen("-N", "-L", f"{local}:127.0.0.1:{ports[1]}", "root@127.0.0.1")
    yield local
    process.kill()
    process.wait(timeout=5)


def test_ssh_local_forwarding_reaches_a_port_inside(
    client: OpenSSH, ports: tuple[int, int], forward: int
) -> None:
    """ssh -L to 127.0.0.1:PORT reaches the order's server."""
    serve_inside(client, ports[1])
    status, body = wait_for(
        lambda: r if (r := _get_or_none(f"http://127.0.0.1:{forward}/index.html")) else None
    )
    assert (status, body) == (200, b"hello from the order\n")


def _get_or_none(url: str) -> tuple[int, bytes] | None:
    try:
        return http_get(url)
    except (OSError, subprocess.SubprocessError):
        return None


def test_forwarding_is_allowed_to_loopback_only() -> None:
    """direct-tcpip requests to anything but loopback are refused before any connect."""
    from clore.sandbox.machines.sshd import _Server

    server = _Server.__new__(_Server)
    allowed = [
        server.connection_requested(host, 80, "127.0.0.1", 5000)
        for host in ("127.0.0.1", "localhost", "::1", "10.0.0.1", "example.com")
    ]
    assert allowed == [True, True, True, False, False]
