"""Fixtures of the fleet tests: a real redis-server on 127.0.0.1 (skipped, saying why, only
when no redis-server binary exists) and no pacing settings leaking in from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import NO_REDIS, REDIS_SERVER, RedisServer


@pytest.fixture(autouse=True)
def _no_pacing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLORE_PACING", "CLORE_PACING_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (tests that stop or kill one start their own)."""
    if REDIS_SERVER is None:
        pytest.skip(NO_REDIS)
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    """The session's Redis, emptied (FLUSHALL) for this test."""
    import redis

    redis.Redis.from_url(redis_session.url).flushall()
    return redis_session.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, kill or restart."""
    if REDIS_SERVER is None:
        pytest.skip(NO_REDIS)
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
