"""Fixtures of the verification suite: one ``Machines`` per module, machines stopped after
each test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from verify_support import PASSWORD, StartListing, snapshot_server

from clore.rentals.verify import Target
from clore.sandbox.machines import Endpoint, Machines, MachineSpec

_ids = itertools.count(7000)


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    """A ``Machines`` on a temporary root (bubblewrap when this host has it)."""
    with Machines(root=tmp_path_factory.mktemp("machines")) as pool:
        yield pool


@pytest.fixture
def start_listing(machines: Machines) -> Iterator[StartListing]:
    """Start a machine for a captured server's listing: ``start_listing(server_id,
    delivers={...}, order_id=..., ssh_password=..., ssh_key=...)`` -> (target, endpoint)."""
    started: list[int] = []

    def _start(
        server_id: int, *, order_id: int | None = None, **order: Any
    ) -> tuple[Target, Endpoint]:
        order_id = next(_ids) if order_id is None else order_id
        if "ssh_key" not in order:
            order.setdefault("ssh_password", PASSWORD)
        spec = MachineSpec.from_server(order_id, snapshot_server(server_id), **order)
        endpoint = machines.start(spec)
        started.append(order_id)
        assert endpoint.ssh_port is not None
        return Target("127.0.0.1", endpoint.ssh_port, order_id), endpoint

    yield _start
    for order_id in started:
        machines.stop(order_id)
