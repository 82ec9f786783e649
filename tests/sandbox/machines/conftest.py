"""Fixtures of the machines suite: one ``Machines`` per module, machines stopped after each test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clore.sandbox.machines import Endpoint, Machines, MachineSpec

_ids = itertools.count(1000)


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    """A ``Machines`` on a temporary root (bubblewrap when this host has it)."""
    with Machines(root=tmp_path_factory.mktemp("machines")) as pool:
        yield pool


@pytest.fixture
def start(machines: Machines) -> Iterator[Callable[..., Endpoint]]:
    """Start a machine from MachineSpec fields (a fresh order id each); stopped afterwards."""
    started: list[int] = []

    def _start(spec: MachineSpec | None = None, **fields: Any) -> Endpoint:
        if spec is None:
            spec = MachineSpec(order_id=next(_ids), **fields)
        started.append(spec.order_id)
        return machines.start(spec)

    yield _start
    for order_id in started:
        machines.stop(order_id)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "client"
    path.mkdir()
    return path


def next_order_id() -> int:
    return next(_ids)
