"""The readiness probe: what counts as an SSH banner, and the drivers' reads over TCP."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from clore._client import _aprobe, _probe
from clore._flows import Probe, ssh_banner


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", True),
        (b"SSH-2.0-AsyncSSH_2.14", True),
        (b"a greeting first\r\nSSH-2.0-x\r\n", True),  # RFC 4253 allows lines before it
        (b"HTTP/1.1 400 Bad Request\r\n", False),
        (b"", False),
        (b"ssh-2.0-lowercase\r\n", False),
    ],
)
def test_an_ssh_banner_is_a_line_starting_ssh(data: bytes, expected: bool) -> None:
    """Only a line starting "SSH-" is an SSH server's identification."""
    assert ssh_banner(data) == expected


@pytest.fixture
def speaker() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP server that sends the next greeting in the list to each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    greetings: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(greetings.pop(0) if greetings else b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], greetings
    server.close()
    thread.join(timeout=5)


def test_both_drivers_read_what_the_server_sends_first(speaker: tuple[int, list[bytes]]) -> None:
    """Clore's and AsyncClore's probes read the greeting; a closed port reads nothing."""
    port, greetings = speaker
    greetings += [b"SSH-2.0-test\r\n", b"HTTP/1.0 200 OK\r\n"]
    assert ssh_banner(_probe(Probe("127.0.0.1", port, timeout=5)))
    assert asyncio.run(_aprobe(Probe("127.0.0.1", port, timeout=5))) == b"HTTP/1.0 200 OK\r\n"
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed = spare.getsockname()[1]
    assert _probe(Probe("127.0.0.1", closed, timeout=5)) == b""
    assert asyncio.run(_aprobe(Probe("127.0.0.1", closed, timeout=5))) == b""
