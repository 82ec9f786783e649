"""Fixtures of the sandbox suite: the public ``clore.testing`` ones, a tiny market, live servers.

(``pytest_plugins`` is only allowed in the root conftest, so the public fixtures are
imported here under their own names, which is how pytest registers them.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_support import SMALL_MARKET, LiveServer, start_live_server

from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.testing import (  # noqa: F401
    async_clore_client,
    clore_client,
    sandbox,
    sandbox_clock,
    sandbox_factory,
)


@pytest.fixture
def small_seed(tmp_path: Path) -> Path:
    """An eight-server market (demo user hosts 6-8): 0.0864 BTC/day on demand, half on spot."""
    path = tmp_path / "small-market.json"
    path.write_text(json.dumps(SMALL_MARKET))
    return path


@pytest.fixture
def small(sandbox_factory: Callable[..., Sandbox], small_seed: Path) -> Sandbox:  # noqa: F811
    """A sandbox on the small market, rate limits off, on the shared ManualClock."""
    return sandbox_factory(seed=str(small_seed), rate_limit=False)


@pytest.fixture
def api(small: Sandbox) -> Iterator[httpx.Client]:
    """A plain httpx client on ``small`` (in-process transport), as the demo user."""
    with httpx.Client(
        transport=small.transport(),
        base_url="http://sandbox.local/v1",
        headers={"auth": small.demo_key},
    ) as client:
        yield client


@pytest.fixture
def clock(sandbox_clock: ManualClock) -> ManualClock:  # noqa: F811
    """The ManualClock every sandbox of the test runs on."""
    return sandbox_clock


class ASGIClientTransport(httpx.BaseTransport):
    """Sends each request through an ASGI app (``httpx.ASGITransport``) on a fresh loop,
    as if from ``client`` (the peer address and port the app sees)."""

    def __init__(self, app: Any, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return asyncio.run(send())


@pytest.fixture
def asgi_client() -> Iterator[Callable[..., httpx.Client]]:
    """Make synchronous httpx clients that go through ``sandbox.app`` (the Starlette app),
    from a loopback peer unless ``peer`` says otherwise."""
    made: list[httpx.Client] = []

    def make(target: Sandbox, peer: str = "127.0.0.1") -> httpx.Client:
        client = httpx.Client(
            transport=ASGIClientTransport(target.app, (peer, 40000)),
            base_url="http://sandbox.test",
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start sandbox servers on 127.0.0.1 (port 0, the small market unless ``--seed``
    is given, stderr kept for ``log()``); every one is stopped when the test ends."""
    started: list[LiveServer] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> LiveServer:
        seed = tmp_path / "live-market.json"
        seed.write_text(json.dumps(SMALL_MARKET))
        server = start_live_server(tmp_path / f"live-{len(started)}", seed, *extra, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
