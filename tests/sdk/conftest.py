"""Fixtures for the SDK tests: a ManualClock, the in-memory fake API and clients bound to it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# tests/_stub holds the fakes; make it importable however pytest was started.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from _stub.fake_api import BASE_URL, KEY, FakeAPI  # noqa: E402
from clore import AsyncClore, Clore  # noqa: E402
from clore._clock import ManualClock  # noqa: E402


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def api(clock: ManualClock) -> FakeAPI:
    return FakeAPI(clock=clock)


@pytest.fixture
def client(api: FakeAPI, clock: ManualClock) -> Iterator[Clore]:
    with Clore(KEY, base_url=BASE_URL, transport=api.transport(), clock=clock) as c:
        yield c


@pytest.fixture
async def aclient(api: FakeAPI, clock: ManualClock) -> AsyncIterator[AsyncClore]:
    async with AsyncClore(KEY, base_url=BASE_URL, transport=api.transport(), clock=clock) as c:
        yield c


@pytest.fixture(scope="session")
def snapshot_bytes() -> bytes:
    """The real 3,500-server marketplace capture that ships with the sandbox."""
    from clore.sandbox import snapshot_bytes as bundled

    return bundled()
