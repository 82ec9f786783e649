"""CLI tests run every command through click's runner against the in-process sandbox.

The sandbox, its client and the CLI share one ``ManualClock``: pacing waits, ``--wait``,
``--watch`` and ``--walk`` advance simulated time instantly. (``pytest_plugins`` is only
allowed in the root conftest, so ``clore.testing``'s fixtures are imported.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from cli_helpers import Cli

from clore.testing import sandbox, sandbox_clock, sandbox_factory  # noqa: F401

if TYPE_CHECKING:
    from clore import Clore
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox


@pytest.fixture
def run(sandbox: Sandbox, sandbox_clock: ManualClock) -> Iterator[Cli]:  # noqa: F811
    """``run("market", "gpu=4090")`` -> click Result; ``run.json(...)`` -> decoded JSON."""
    with sandbox.client() as client:
        yield Cli(sandbox, sandbox_clock, client)


@pytest.fixture
def other_user(sandbox: Sandbox) -> Iterator[Callable[..., Clore]]:  # noqa: F811
    """Clients of additional funded users (rivals for spot bids and servers)."""
    made: list[Clore] = []

    def make(name: str = "rival") -> Clore:
        key, _ = sandbox.create_user(name, {"bitcoin": 1.0, "CLORE-Blockchain": 1e6})
        client = sandbox.client(api_key=key)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
