"""Helpers of the tests that reach sandbox orders' machines through the sandbox's API."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from machines_support import KeyPair, OpenSSH

from clore import Clore, Order

PASSWORD = "sandboxpw42"


def banner(host: str, port: int, timeout: float = 10.0) -> bytes:
    """The first bytes the server at host:port sends (b"" when it refuses or says nothing)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(256)
    except OSError:
        return b""


def refused(host: str, port: int) -> bool:
    """True when nothing listens on host:port any more."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def openssh(order: Order, workdir: Path, *, key: KeyPair | None = None) -> OpenSSH:
    """OpenSSH's tools aimed at the order's SSH endpoint (its password unless ``key``)."""
    assert order.ssh_endpoint is not None, "the order is not provisioned"
    endpoint: Any = SimpleNamespace(ssh_port=order.ssh_endpoint[1])
    if key is not None:
        return OpenSSH(endpoint, workdir, key=key)
    return OpenSSH(endpoint, workdir, password=PASSWORD)


def rent(client: Clore, server_id: int, **options: Any) -> Order:
    """An on-demand order of ``server_id`` with the test password (and SSH unless ports)."""
    options.setdefault("ssh_password", PASSWORD)
    return client.create_order(server_id, "ubuntu:22.04", **options)
