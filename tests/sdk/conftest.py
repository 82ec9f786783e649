"""Fixtures for the SDK tests: the ``clore.testing`` sandbox and clients bound to it through
a ``Wire`` that records what was sent.

``sandbox`` is the public fixture's (the 3,500-server snapshot, rate limits on, a
``ManualClock`` shared with the clients: ``clock``); ``wire`` sees every request and the
sandbox's answer; ``client``/``aclient`` act as the demo user through it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# tests/_stub holds the test helpers; make it importable however pytest was started.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _stub.wire import Wire  # noqa: E402
from clore import AsyncClore, Clore  # noqa: E402
from clore._clock import ManualClock  # noqa: E402
from clore.sandbox import BASE_URL, Sandbox  # noqa: E402


@pytest.fixture
def clock(sandbox_clock: ManualClock) -> ManualClock:
    """The ManualClock the sandbox and every client of the test share."""
    return sandbox_clock


@pytest.fixture
def wire(sandbox: Sandbox) -> Wire:
    """Every request the test's clients send to the sandbox, with its answer."""
    return Wire(sandbox)


@pytest.fixture
def client(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Clore]:
    """A Clore acting as the sandbox's demo user, through ``wire``."""
    sandbox: Sandbox = request.getfixturevalue("sandbox")
    wire: Wire = request.getfixturevalue("wire")
    with Clore(sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=clock) as c:
        yield c


@pytest.fixture
async def aclient(sandbox: Sandbox, wire: Wire, clock: ManualClock) -> AsyncIterator[AsyncClore]:
    """An AsyncClore acting as the sandbox's demo user, through ``wire``."""
    async with AsyncClore(
        sandbox.demo_key, base_url=BASE_URL, transport=wire.async_transport(), clock=clock
    ) as c:
        yield c


@pytest.fixture(scope="session")
def snapshot_bytes() -> bytes:
    """The real 3,500-server marketplace capture that ships with the sandbox."""
    from clore.sandbox import snapshot_bytes as bundled

    return bundled()
