"""The contract suite runs every test against two targets through the ``target`` fixture.

``inprocess``: ``clore.testing``'s ``sandbox`` (fresh per test, a ``ManualClock`` shared
with the clients; nothing sleeps for real). ``live``: a sandbox server over HTTP, marked
``slow`` — the one at ``CLORE_TEST_BASE_URL`` when set (its demo key from
``/_sandbox/info`` or ``CLORE_TEST_API_KEY``; it is reset before each test), else one
``python -m clore.sandbox serve`` started for the session on 127.0.0.1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from contract_targets import InProcessTarget, LiveServer, LiveTarget, Target, start_live_server

from clore.sandbox import Sandbox


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server of the live target: ``CLORE_TEST_BASE_URL``, or one started here."""
    url = os.environ.get("CLORE_TEST_BASE_URL")
    if url:
        yield LiveServer(url, os.environ.get("CLORE_TEST_API_KEY") or None)
        return
    server = start_live_server(tmp_path_factory.mktemp("live-sandbox"))
    try:
        yield server
    finally:
        server.stop()


def _no_real_sleep(seconds: float) -> None:
    raise AssertionError(f"the in-process target slept {seconds} s for real")


@pytest.fixture(
    params=["inprocess", pytest.param("live", marks=pytest.mark.slow)],
)
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The sandbox under test, in-process or live, in its seed state."""
    made: Target
    if request.param == "inprocess":
        sandbox: Sandbox = request.getfixturevalue("sandbox")
        made = InProcessTarget(sandbox)
        monkeypatch.setattr(time, "sleep", _no_real_sleep)
    else:
        server: LiveServer = request.getfixturevalue("live_server")
        made = LiveTarget(server.base_url, server.demo_key)
    try:
        yield made
    finally:
        made.close()
