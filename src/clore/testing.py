"""Pytest fixtures for code that talks to Clore.ai: an in-process sandbox and clients.

Enable them with ``pytest_plugins = ["clore.testing"]`` in a ``conftest.py``::

    def test_rent(clore_client, sandbox):
        order = clore_client.create_order(25769, "ubuntu:22.04")
        sandbox.advance(15)
        assert clore_client.get_order(order.id).ready

``sandbox`` is a fresh ``clore.sandbox.Sandbox`` per test: an in-memory database seeded
with the bundled 3,500-server snapshot, rate limits on, and a ``ManualClock`` shared with
the clients, so their pacing waits advance the sandbox's time instead of sleeping.
``clore_client``/``async_clore_client`` act as the funded demo user. ``sandbox_factory``
builds more sandboxes with other options; all are closed at the end of the test.

The snapshot is seeded once per test session (``sandbox_templates``): each sandbox gets
a copy of that seeded database (SQLite's backup API, about a millisecond) with its own
demo key, the same state a fresh seeding would give. Pass ``template=None`` to
``sandbox_factory`` to seed for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from clore._clock import ManualClock

if TYPE_CHECKING:
    from clore._client import AsyncClore, Clore
    from clore.sandbox import Sandbox
    from clore.sandbox.template import Templates

__all__ = [
    "async_clore_client",
    "clore_client",
    "sandbox",
    "sandbox_clock",
    "sandbox_factory",
    "sandbox_templates",
]

SandboxFactory = Callable[..., "Sandbox"]


@pytest.fixture
def sandbox_clock() -> ManualClock:
    """The ``ManualClock`` the ``sandbox`` fixture and its clients share."""
    return ManualClock()


@pytest.fixture(scope="session")
def sandbox_templates() -> Iterator[Templates]:
    """The seeded databases this session's sandboxes are copied from (one per seed)."""
    from clore.sandbox.template import Templates

    templates = Templates()
    yield templates
    templates.close()


@pytest.fixture
def sandbox_factory(
    sandbox_clock: ManualClock, sandbox_templates: Templates
) -> Iterator[SandboxFactory]:
    """Build sandboxes (``Sandbox(**options)``, on ``sandbox_clock`` unless given a clock,
    copied from ``sandbox_templates`` unless given ``template=None``)."""
    from clore.sandbox import Sandbox

    made: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        options.setdefault("clock", sandbox_clock)
        options.setdefault("template", sandbox_templates)
        built = Sandbox(**options)
        made.append(built)
        return built

    yield make
    for built in made:
        built.close()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A seeded in-memory sandbox on a ``ManualClock``, rate limits on."""
    return sandbox_factory(db=":memory:", seed="snapshot", rate_limit=True)


@pytest.fixture
def clore_client(sandbox: Sandbox) -> Iterator[Clore]:
    """A ``clore.Clore`` acting as the sandbox's demo user."""
    client = sandbox.client()
    with client:
        yield client


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def async_clore_client(sandbox: Sandbox) -> AsyncIterator[AsyncClore]:
        """A ``clore.AsyncClore`` acting as the sandbox's demo user."""
        client = sandbox.async_client()
        async with client:
            yield client
