"""Pacing in a fleet's Redis: how it is chosen, what it stores, leases, clocks and failures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from clore import Clore, ConfigError, Pacing, config
from clore._clock import ManualClock
from clore._holder import Holder, this_process
from clore._pacing_redis import RedisPacer, holder_id, pacing_keys
from clore._pacing_store import FileStore, MemoryStore, make_pacer, state_file
from clore._paths import cache_dir
from clore.fleet import FleetStoreError, use_pacing

KEY = "fleet-pacing-key-0123456789abcdef"
T0 = 1_700_000_000.0


def _client(**kw: object) -> Clore:
    return Clore(KEY, base_url="http://127.0.0.1:9/v1", **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- choosing


def test_pacing_url_puts_the_state_in_redis(redis_url: str) -> None:
    """Pacing(url=...) paces through Redis, whatever the clock."""
    assert isinstance(_client(pacing=Pacing(url=redis_url))._ctx.pacer, RedisPacer)
    manual = _client(pacing=Pacing(url=redis_url), clock=ManualClock(T0))
    assert isinstance(manual._ctx.pacer, RedisPacer)
    assert manual._ctx.pacer.server_clock is False  # an injected clock's times are used


def test_the_environment_and_the_profile_replace_the_file(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLORE_PACING_URL, else the profile's pacing_url, takes the file's place."""
    assert isinstance(_client()._ctx.pacer.store, FileStore)
    config.set_profile("default", pacing_url=redis_url)
    assert isinstance(_client()._ctx.pacer, RedisPacer)
    monkeypatch.setenv("CLORE_PACING_URL", redis_url.replace("/0", "/1"))
    pacer = _client()._ctx.pacer
    assert isinstance(pacer, RedisPacer)
    assert pacer.url.endswith("/1")
    assert isinstance(_client(profile="default")._ctx.pacer, RedisPacer)


def test_local_pacing_wins_over_every_url(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLORE_PACING=local (and Pacing(url="local")) keep the local file."""
    config.set_profile("default", pacing_url=redis_url)
    monkeypatch.setenv("CLORE_PACING_URL", redis_url)
    assert isinstance(_client(pacing=Pacing(url="local"))._ctx.pacer.store, FileStore)
    monkeypatch.setenv("CLORE_PACING", "local")
    assert isinstance(_client()._ctx.pacer.store, FileStore)


def test_an_injected_clock_keeps_memory_despite_the_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what would use the file moves to Redis: tests' clients stay in memory."""
    monkeypatch.setenv("CLORE_PACING_URL", redis_url)
    assert isinstance(_client(clock=ManualClock(T0))._ctx.pacer.store, MemoryStore)
    assert isinstance(_client(pacing=Pacing(shared=False))._ctx.pacer.store, MemoryStore)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("env", "http://127.0.0.1:6379", "CLORE_PACING_URL: http://127.0.0.1:6379 is not a Redis"),
        ("mode", "redis", "CLORE_PACING: 'local' or unset"),
        ("arg", "redis://:pw@/0", "Pacing.url: redis:///0 names no host"),
    ],
)
def test_bad_pacing_settings_are_config_errors_naming_their_source(
    where: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setting that is not a Redis URL (or 'local') is refused, never its password shown."""
    with pytest.raises(ConfigError) as caught:
        if where == "env":
            monkeypatch.setenv("CLORE_PACING_URL", value)
            _client()
        elif where == "mode":
            monkeypatch.setenv("CLORE_PACING", value)
            _client()
        else:
            Pacing(url=value)
    assert str(caught.value).startswith(message)
    assert "pw" not in str(caught.value)


def test_a_profile_pacing_url_round_trips_and_its_repr_hides_the_password() -> None:
    """pacing_url is kept in config.toml; the profile's repr shows it without credentials."""
    config.set_profile("fleet", pacing_url="redis://u:secret-pw@10.0.0.5:6379/2")
    profile = config.load().profiles["fleet"]
    assert profile.pacing_url == "redis://u:secret-pw@10.0.0.5:6379/2"
    assert "secret-pw" not in repr(profile)
    assert "redis://10.0.0.5:6379/2" in repr(profile)
    assert "secret-pw" not in repr(Pacing(url="redis://u:secret-pw@10.0.0.5:6379/2"))


def test_use_pacing_sets_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--pacing's effect: 'local' sets CLORE_PACING, a URL sets CLORE_PACING_URL."""
    monkeypatch.setenv("CLORE_PACING", "")
    monkeypatch.setenv("CLORE_PACING_URL", "")
    use_pacing("local")
    assert os.environ["CLORE_PACING"] == "local"
    use_pacing("redis://127.0.0.1:6379/0")
    assert os.environ["CLORE_PACING_URL"] == "redis://127.0.0.1:6379/0"
    assert "CLORE_PACING" not in os.environ


# --------------------------------------------------------------------------- what is stored


def test_redis_holds_a_hash_of_the_key_never_the_key(redis_url: str) -> None:
    """Entries are named by the key's hash (the local file's name); the key is nowhere."""
    pacer = make_pacer(Pacing(url=redis_url), KEY, use_file=True)
    pacer.reserve("create", T0)
    pacer.complete("create", T0 + 0.3)
    pacer.note_bid(7, 1.5, T0)
    server = redis.Redis.from_url(redis_url)
    digest = state_file(KEY, cache_dir()).stem
    names = sorted(k.decode() for k in server.keys("*"))
    assert names == sorted(pacing_keys(digest)[::2])  # the state and spot hashes; no hold
    for name in names:
        dump = repr(server.hgetall(name))
        assert KEY not in dump and KEY not in name


def test_a_hold_carries_a_lease_that_ends_it(redis_url: str) -> None:
    """A reserved slot is a key with a PX lease a second past the request's timeout."""
    pacer = RedisPacer(Pacing(), redis_url, KEY, server_clock=False)
    assert pacer.reserve("request", T0, hold=5.0) == 0.0
    left = redis.Redis.from_url(redis_url).pttl(pacing_keys(pacer.store.digest)[1])
    assert 5000 < left <= 6000
    assert pacer.reserve("request", T0 + 4.9) == pytest.approx(0.02)  # still held
    assert pacer.reserve("request", T0 + 5.0) == 0.0  # the hold ended with its timeout


def test_a_hold_of_another_machine_is_kept_until_its_lease_ends(redis_url: str) -> None:
    """A holder on another host cannot be checked: its hold counts until its end."""
    pacer = RedisPacer(Pacing(), redis_url, KEY, server_clock=False)
    other = Holder(pid=os.getpid(), host="another-machine", kind="request")
    _place_hold(redis_url, pacer, other, until=T0 + 30)
    assert pacer.reserve("request", T0 + 1) == pytest.approx(0.02)
    assert pacer.reserve("request", T0 + 29.99) == pytest.approx(0.01)
    assert pacer.reserve("request", T0 + 30) == 0.0


def test_the_hold_of_a_dead_process_on_this_machine_is_released_at_once(redis_url: str) -> None:
    """A holder here that no longer runs (killed mid-request) frees the key at once; its
    request counts as answered then."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = Holder(**{**holder_fields(this_process()), "pid": int(done.stdout), "started": 1})
    pacer = RedisPacer(Pacing(), redis_url, KEY, server_clock=False)
    _place_hold(redis_url, pacer, dead, until=T0 + 30)
    assert pacer.reserve("request", T0 + 1) == pytest.approx(1.01)  # the interval, not 29 s
    assert pacer.reserve("request", T0 + 2.01) == 0.0


def holder_fields(holder: Holder) -> dict[str, object]:
    return {"pid": holder.pid, "host": holder.host, "boot": holder.boot,
            "pidns": holder.pidns, "started": holder.started}  # fmt: skip


def _place_hold(url: str, pacer: RedisPacer, holder: Holder, until: float) -> None:
    key = pacing_keys(pacer.store.digest)[1]
    value = f"{until!r}\n{holder.kind}\n{holder_id(holder)}"
    redis.Redis.from_url(url).set(key, value, px=60_000)


# --------------------------------------------------------------------------- clocks


def test_machines_with_skewed_clocks_are_paced_on_redis_s_clock(redis_url: str) -> None:
    """With the real clock "now" is Redis's: machines two hours apart wait one interval for
    each other, neither two hours nor nothing."""
    ahead = RedisPacer(Pacing(), redis_url, KEY, server_clock=True)
    behind = RedisPacer(Pacing(), redis_url, KEY, server_clock=True)
    assert ahead.reserve("request", T0 + 3600) == 0.0
    assert 1.0 < behind.reserve("request", T0 - 3600) <= 1.01
    ahead.complete("request", T0 + 3600)
    assert 1.0 < behind.reserve("request", T0 - 3600) <= 1.01


# --------------------------------------------------------------------------- failures


def test_a_flushed_script_cache_falls_back_to_eval(redis_url: str) -> None:
    """After SCRIPT FLUSH (or a restart) EVALSHA's NOSCRIPT is answered by sending the script."""
    pacer = RedisPacer(Pacing(), redis_url, KEY, server_clock=False)
    pacer.reserve("request", T0)
    redis.Redis.from_url(redis_url).script_flush()
    pacer.complete("request", T0 + 0.5)
    assert pacer.reserve("request", T0 + 1.0) == pytest.approx(0.51)


def test_an_unreachable_redis_fails_closed_and_nothing_is_sent(tmp_path: Path) -> None:
    """No Redis: the call raises FleetStoreError naming the URL without credentials, and
    no request reaches the API."""
    from fleet_support import free_port

    sent: list[httpx.Request] = []
    url = f"redis://fleet:hunter2@127.0.0.1:{free_port()}/3?password=hunter2"

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"code": 0, "wallets": []})

    client = Clore(KEY, pacing=Pacing(url=url), transport=httpx.MockTransport(handler))
    with pytest.raises(FleetStoreError) as caught:
        client.wallets()
    assert sent == []
    message = str(caught.value)
    assert message.startswith(f"fleet store redis://127.0.0.1:{url.split(':')[3].split('/')[0]}/3")
    assert "nothing was sent" in message
    assert "hunter2" not in message and "fleet:" not in message


def test_an_answer_that_cannot_be_recorded_is_still_returned(
    own_redis: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis lost after the request went: the answer is returned, a warning logged (the
    hold's lease keeps the fleet waiting)."""
    from fleet_support import RedisServer

    assert isinstance(own_redis, RedisServer)
    pacer = RedisPacer(Pacing(), own_redis.url, KEY, server_clock=True)
    assert pacer.reserve("request", T0) == 0.0
    own_redis.kill()
    with caplog.at_level(logging.WARNING, logger="clore"):
        pacer.complete("request", T0)
    assert "unreachable while recording an answer" in caplog.text
    with pytest.raises(FleetStoreError):
        pacer.reserve("request", T0)
