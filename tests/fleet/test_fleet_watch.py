"""Exactly once across machines: watchers with one intent on two machines share the ledger in
Redis, through a kill -9 mid-rental, a lock holder's death, a late holder, and a Redis that
restarts without its data. Machines are processes with their own directories, against a
sandbox server with its rate limiter on."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fleet_support import CountingSandbox, Lines, Machine, RedisServer, wait_until

from clore._ledger_redis import FleetStateFile, ledger_keys
from clore._redis import key_digest
from clore.workflows import WatchState

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[CountingSandbox]:
    server = CountingSandbox(tmp_path / "sandbox").start()
    yield server
    server.stop()


def _env(sandbox: CountingSandbox, url: str) -> dict[str, str]:
    return {"CLORE_API_KEY": sandbox.demo_key, "CLORE_BASE_URL": sandbox.base,
            "CLORE_PACING_URL": url}  # fmt: skip


def _ledger(sandbox: CountingSandbox, url: str, name: str) -> list[dict[str, Any]]:
    """The rentals of ledger ``watch-NAME.json`` as Redis holds them now."""
    key = ledger_keys(key_digest(sandbox.demo_key), f"watch-{name}.json")[0]
    raw = redis.Redis.from_url(url).hget(key, "value")
    return [] if raw is None else list(json.loads(raw)["rentals"])


def _orders_after_quiet(sandbox: CountingSandbox) -> list[dict[str, Any]]:
    time.sleep(1.2)  # the machines are done: one more request of the key must not collide
    return sandbox.orders()


def _watch(machine: Machine, env: dict[str, str], name: str, timeout: str = "30") -> Lines:
    return Lines(machine.start("watch", name, "1", "2", "90", timeout, **env))


def test_two_watchers_with_one_intent_on_two_machines_rent_once(
    sandbox: CountingSandbox, redis_url: str, tmp_path: Path
) -> None:
    """Two machines watching for the same thing, count 1: one order between them, both done."""
    env = _env(sandbox, redis_url)
    a, b = (_watch(Machine(tmp_path, m), env, "same") for m in ("a", "b"))
    events = [a.finish(90), b.finish(90)]
    assert [e["ledger"] for e in (events[0][0], events[1][0])] == ["FleetStateFile"] * 2
    assert sum(kinds.count("rented") for kinds in ([e["kind"] for e in ev] for ev in events)) == 1
    assert all(ev[-1]["kind"] == "done" for ev in events)
    assert len(_orders_after_quiet(sandbox)) == 1
    assert sandbox.refusals() == 0


def test_a_watcher_killed_mid_rental_is_settled_by_the_other_machine_and_restarts_done(
    sandbox: CountingSandbox, redis_url: str, tmp_path: Path
) -> None:
    """The renting machine is killed (SIGKILL) while create_order is on the wire and the order
    committed: the other machine finds the order once the dead loop's lease ends, rents
    nothing, and the killed machine restarted finds its watch done."""
    sandbox.control("POST", "faults", endpoint="create_order", fault="timeout_after_commit")
    env = _env(sandbox, redis_url)
    machines = {name: Machine(tmp_path, name) for name in ("a", "b")}
    running = {name: _watch(m, env, "kill", timeout="8") for name, m in machines.items()}

    def pending() -> dict[str, Any] | None:
        return next((r for r in _ledger(sandbox, redis_url, "kill") if r["status"] == "pending"),
                    None)  # fmt: skip

    intent = wait_until(pending, 40, "a pending intent in the ledger")
    renter = next(name for name, lines in running.items() if lines.proc.pid == intent["pid"])
    survivor = next(name for name in running if name != renter)
    wait_until(sandbox.creates, 30, "create_order at the sandbox")
    time.sleep(0.3)  # committed; the sandbox holds the answer back
    running[renter].proc.send_signal(signal.SIGKILL)
    running[renter].finish(10)

    seen = running[survivor].finish(90)
    kinds = [e["kind"] for e in seen]
    assert "renting" not in kinds
    assert kinds[-1] == "done"
    rented = [e for e in seen if e["kind"] == "rented"]
    assert len(rented) == 1

    again = _watch(machines[renter], env, "kill").finish(60)
    assert [e["kind"] for e in again][-1] == "done"
    assert "renting" not in [e["kind"] for e in again]

    orders = _orders_after_quiet(sandbox)
    assert [o["id"] for o in orders] == [rented[0]["order_id"]]
    assert [r["status"] for r in _ledger(sandbox, redis_url, "kill")] == ["rented"]
    assert sandbox.refusals() == 0


def test_a_killed_lock_holder_blocks_the_fleet_only_until_its_lease_ends(
    redis_url: str, tmp_path: Path
) -> None:
    """A machine dies holding the ledger's lock: another gets it once the lease (2 s) ends,
    with the next fence, not before and not much after."""
    env = {"CLORE_API_KEY": "lock-key-0123456789", "CLORE_PACING_URL": redis_url}
    holder = Lines(Machine(tmp_path, "a").start("hold", "lock", "60", "2", **env))
    token = holder.wait_for("locked", 30)["token"]
    holder.proc.send_signal(signal.SIGKILL)
    holder.finish(10)
    ledger = FleetStateFile(tmp_path / "b" / "watch-lock.json", redis_url,
                            key_digest(env["CLORE_API_KEY"]))  # fmt: skip
    killed_at = time.monotonic()
    left = redis.Redis.from_url(redis_url).pttl(ledger.lock_key) / 1000
    assert left > 0  # the dead machine's lock outlives it: only its lease ends it
    with ledger.locked():
        waited = time.monotonic() - killed_at
        assert int(str(ledger.token).rsplit(":", 1)[1]) == int(token.rsplit(":", 1)[1]) + 1
        ledger.write(WatchState())
    assert left - 0.1 <= waited <= left + 1.0


def test_a_holder_that_comes_back_after_its_lease_cannot_write(
    redis_url: str, tmp_path: Path
) -> None:
    """A machine stopped (SIGSTOP) past its lease while another took the lock and wrote: when
    it resumes, its write is refused and the other's stands."""
    env = {"CLORE_API_KEY": "late-key-0123456789", "CLORE_PACING_URL": redis_url}
    late = Lines(Machine(tmp_path, "a").start("hold", "late", "1.5", "1", **env))
    late.wait_for("locked", 30)
    late.proc.send_signal(signal.SIGSTOP)
    try:
        ledger = FleetStateFile(tmp_path / "b" / "watch-late.json", redis_url,
                                key_digest(env["CLORE_API_KEY"]))  # fmt: skip
        with ledger.locked():
            ledger.write(WatchState(version=7))
    finally:
        late.proc.send_signal(signal.SIGCONT)
    outcome = late.finish(30)[-1]
    assert outcome["kind"] == "refused"
    assert outcome["type"] == "LeaseLostError"
    assert ledger.read(WatchState) == WatchState(version=7)


def test_redis_restarted_without_its_data_mid_rental_rents_nothing_twice(
    sandbox: CountingSandbox, tmp_path: Path
) -> None:
    """Redis dies (SIGKILL, no persistence) while a create_order is on the wire and comes back
    empty 3 s later: the other watcher stops with a clear error naming the Redis, the renter
    finds its order and restores the ledger from its copy, and the other, restarted, rents
    nothing."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        sandbox.control("POST", "faults", endpoint="create_order", fault="timeout_after_commit")
        env = _env(sandbox, server.url)
        machines = {name: Machine(tmp_path, name) for name in ("a", "b")}
        running = {name: _watch(m, env, "restart", timeout="8") for name, m in machines.items()}

        def pending() -> dict[str, Any] | None:
            rentals = _ledger(sandbox, server.url, "restart")
            return next((r for r in rentals if r["status"] == "pending"), None)

        intent = wait_until(pending, 40, "a pending intent in the ledger")
        renter = next(name for name, lines in running.items() if lines.proc.pid == intent["pid"])
        other = next(name for name in running if name != renter)
        wait_until(sandbox.creates, 30, "create_order at the sandbox")
        time.sleep(0.3)
        server.kill()
        fatal = running[other].finish(30)[-1]
        server.start()

        assert fatal["kind"] == "fatal"
        assert fatal["type"] == "FleetStoreError"
        assert f"fleet store {server.url} unreachable" in fatal["message"]

        seen = running[renter].finish(90)
        rented = [e for e in seen if e["kind"] == "rented"]
        assert len(rented) == 1
        assert seen[-1]["kind"] == "done"

        again = _watch(machines[other], env, "restart").finish(60)
        assert "renting" not in [e["kind"] for e in again]
        assert again[-1]["kind"] == "done"
        assert [o["id"] for o in _orders_after_quiet(sandbox)] == [rented[0]["order_id"]]
    finally:
        server.stop()


def test_machines_have_their_own_directories(tmp_path: Path) -> None:
    """A simulated machine's cache, data and home are its own."""
    a, b = Machine(tmp_path, "a").env(), Machine(tmp_path, "b").env()
    for var in ("CLORE_CACHE_DIR", "CLORE_DATA_DIR", "CLORE_CONFIG_DIR", "HOME"):
        assert a[var] != b[var]
        assert os.path.isdir(a[var])
