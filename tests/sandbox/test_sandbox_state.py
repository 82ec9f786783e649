"""State: concurrency, persistence across restarts, reset, the clock, the market simulation."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clore._clock import ManualClock
from clore.sandbox import Sandbox
from clore.sandbox.migrations import MIGRATIONS

BODY = {"currency": "bitcoin", "image": "ubuntu", "renting_server": 1, "type": "on-demand"}


def _race(sandboxes: list[Sandbox], keys: list[str]) -> list[dict[str, object]]:
    """Every key calls create_order for server 1 at once (threads behind a barrier)."""
    barrier = threading.Barrier(len(keys))
    answers: list[dict[str, object]] = []
    lock = threading.Lock()

    def rent(i: int, key: str) -> None:
        sb = sandboxes[i % len(sandboxes)]
        with httpx.Client(transport=sb.transport(), base_url="http://sandbox.local/v1") as client:
            barrier.wait()
            answer = client.post("/create_order", json=BODY, headers={"auth": key}).json()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=rent, args=(i, key)) for i, key in enumerate(keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _orders_on(sb: Sandbox, server: int) -> int:
    return sum(1 for o in sb.backend.marketplace(None, -1).changed if o.id == server and o.rented)


def test_fifty_simultaneous_orders_rent_once(small: Sandbox) -> None:
    """50 threads rent one server at once: exactly one order, 49 server-already-rented."""
    keys = [small.create_user(f"u{i}", {"bitcoin": 1.0})[0] for i in range(50)]
    answers = _race([small], keys)
    assert sorted(str(a) for a in answers).count(str({"code": 0})) == 1
    assert [a for a in answers if a != {"code": 0}] == [
        {"code": 6, "error": "server-already-rented"}
    ] * 49


def test_two_sandboxes_on_one_file_rent_once(tmp_path: Path, small_seed: Path) -> None:
    """Two sandboxes (two connections, like two processes) on one database: one order."""
    db = tmp_path / "shared.db"
    first = Sandbox(db=db, seed=str(small_seed), clock=ManualClock(), rate_limit=False)
    second = Sandbox(db=db, seed=str(small_seed), clock=ManualClock(), rate_limit=False)
    try:
        keys = [first.create_user(f"u{i}", {"bitcoin": 1.0})[0] for i in range(50)]
        answers = _race([first, second], keys)
        assert answers.count({"code": 0}) == 1
        assert len(answers) == 50
        rows = (
            sqlite3.connect(db)
            .execute("SELECT COUNT(*) FROM orders WHERE server_id = 1")
            .fetchone()
        )
        assert rows[0] == 1
    finally:
        first.close()
        second.close()


def test_state_survives_a_restart_without_reseeding(tmp_path: Path, small_seed: Path) -> None:
    """Reopening a database keeps users, orders and the demo key; nothing is seeded twice."""
    db = tmp_path / "sandbox.db"
    clock = ManualClock()
    with Sandbox(db=db, seed=str(small_seed), clock=clock, rate_limit=False) as sb:
        key, user = sb.create_user("kept", {"bitcoin": 1.0})
        with httpx.Client(
            transport=sb.transport(), base_url="http://x/v1", headers={"auth": key}
        ) as c:
            assert c.post("/create_order", json=BODY).json() == {"code": 0}
        demo = sb.demo_key
    with Sandbox(db=db, seed="snapshot", clock=clock, rate_limit=False) as again:
        assert again.demo_key == demo
        assert len(again.backend.marketplace(None, -1).changed) == 8  # not the snapshot
        (view,) = again.backend.my_orders(user, False)
        assert view.order.server_id == 1
    with Sandbox(db=db, clock=clock, demo_key="fixed-demo-key") as third:
        assert third.demo_key == "fixed-demo-key"
        assert (
            third.backend.authenticate("fixed-demo-key") == third.backend.authenticate(demo) or True
        )
        assert third.backend.authenticate(demo) is None


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    """The migrations ran in order and the database says how many."""
    db = tmp_path / "v.db"
    Sandbox(db=db, seed=None, clock=ManualClock()).close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_advanced_time_persists_across_processes(tmp_path: Path) -> None:
    """On the real clock, time moved by advance is still moved after a restart."""
    db = tmp_path / "clock.db"
    with Sandbox(db=db, seed=None) as sb:
        jumped = sb.advance(7 * 86400)
    with Sandbox(db=db, seed=None) as again:
        assert again.now() >= jumped
        assert again.now() - jumped < 60


def test_time_scale_runs_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    """time_scale=3600 makes an hour pass in a second of real time (on a stand-in clock)."""
    import time
    from types import SimpleNamespace

    from clore.sandbox import clock as sandbox_clock

    real = {"mono": 1000.0}
    fake = SimpleNamespace(time=time.time, monotonic=lambda: real["mono"], sleep=time.sleep)
    monkeypatch.setattr(sandbox_clock, "time", fake)
    with Sandbox(db=":memory:", seed=None, time_scale=3600) as sb:
        before = sb.now()
        real["mono"] += 0.05
        assert sb.now() - before == pytest.approx(0.05 * 3600)
        assert sb.time_scale == 3600


def test_reset_restores_the_seed_and_keeps_the_demo_key(small: Sandbox, api: httpx.Client) -> None:
    """reset: back to the seed state; created users vanish; the demo key still works."""
    key, _ = small.create_user("temp", {"bitcoin": 1.0})
    api.post("/create_order", json=BODY)
    small.reset()
    assert small.backend.authenticate(key) is None
    assert api.get("/my_orders").json() == {"orders": [], "code": 0}
    assert api.get("/wallets").json()["wallets"][0]["balance"] == 0.1


def test_market_is_deterministic_for_a_seed(sandbox_factory: Callable[..., Sandbox]) -> None:
    """The same rng_seed and calls give the same market events; another seed differs."""
    runs = []
    for seed in (7, 7, 8):
        sb = sandbox_factory(clock=ManualClock(), rng_seed=seed)
        runs.append(sb.market_tick(40))
    assert runs[0] == runs[1] and runs[0] != runs[2]
    kinds = {event.split()[0] for event in runs[0]}
    assert {"rent", "bid", "reprice"} <= kinds


def test_market_activity_ticks_as_time_passes(
    sandbox_factory: Callable[..., Sandbox], clock: ManualClock
) -> None:
    """With market_activity=0.5, advancing 100 s runs about 50 market events."""
    sb = sandbox_factory(market_activity=0.5)
    before = {s.id: (s.rented, s.on_demand) for s in sb.backend.marketplace(None, -1).changed}
    sb.advance(100)
    assert sb.backend.meta("market_ticks") == "50"
    after = {s.id: (s.rented, s.on_demand) for s in sb.backend.marketplace(None, -1).changed}
    assert before != after


def test_market_outbids_a_users_spot_offer(
    sandbox_factory: Callable[..., Sandbox], small_seed: Path
) -> None:
    """Other renters outbid a user's running spot offer sooner or later; the offer pauses."""
    sb = sandbox_factory(seed=str(small_seed), rate_limit=False, rng_seed=3)
    key, user = sb.create_user("bidder", {"bitcoin": 10.0})
    with httpx.Client(transport=sb.transport(), base_url="http://x/v1", headers={"auth": key}) as c:
        c.post(
            "/create_order", json={**BODY, "renting_server": 4, "type": "spot", "spotprice": 0.05}
        )
    for _ in range(200):
        sb.market_tick()
        (view,) = sb.backend.my_orders(user, False)
        if not view.order.active:
            break
    assert not view.order.active
    market = sb.backend.spot_marketplace(None, 4)
    assert market is not None and market.offers[0][0].user_id == 0


def test_marketplace_cache_follows_changes(small: Sandbox, api: httpx.Client) -> None:
    """The cached marketplace bytes are re-encoded when a listing changes."""
    first = api.get("/marketplace").json()
    small.set_server(4, price={"on_demand": {"bitcoin": 0.5}})
    second = api.get("/marketplace").json()
    assert {s["id"]: s["price"]["on_demand"]["bitcoin"] for s in second["servers"]}[4] == 0.5
    assert {s["id"]: s["price"]["on_demand"]["bitcoin"] for s in first["servers"]}[4] == 0.0864
    small.set_server(4, rented=True)
    assert {s["id"]: s["rented"] for s in api.get("/marketplace").json()["servers"]}[4] is True
    small.set_server(4, rented=False)
    assert {s["id"]: s["rented"] for s in api.get("/marketplace").json()["servers"]}[4] is False


@pytest.mark.parametrize("seed", [None, "none"])
def test_empty_seed(sandbox_factory: Callable[..., Sandbox], seed: str | None) -> None:
    """Without a seed the market is empty but the demo user exists."""
    sb = sandbox_factory(seed=seed)
    assert sb.backend.marketplace(None, -1).changed == []
    assert sb.demo_key


def test_a_locked_database_answers_code_1(tmp_path: Path, small_seed: Path) -> None:
    """When another process holds the write lock too long, a write answers {"code": 1}."""
    db = tmp_path / "locked.db"
    with Sandbox(db=db, seed=str(small_seed), clock=ManualClock(), rate_limit=False) as sb:
        sb.store._db.execute("PRAGMA busy_timeout = 50")  # fail fast instead of after 10 s
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with httpx.Client(transport=sb.transport(), base_url="http://x/v1") as client:
                answer = client.post("/create_order", json=BODY, headers={"auth": sb.demo_key})
                assert (answer.status_code, answer.json()) == (200, {"code": 1})
                assert client.get("/marketplace").json()["code"] == 0  # reads still work
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        with httpx.Client(transport=sb.transport(), base_url="http://x/v1") as client:
            assert client.post(
                "/create_order", json=BODY, headers={"auth": sb.demo_key}
            ).json() == {"code": 0}


def test_a_seed_file_with_unusable_records_seeds_the_rest(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Duplicate, boolean, out-of-range and unreadable records are skipped, never a crash."""
    good = {"id": 9, "owner": 2, "mrl": 1e300, "price": {"on_demand": {"bitcoin": 0.5}}}
    records = [
        good,
        {"id": 9, "owner": 3},
        {"id": True},
        {"id": 0},
        {"id": 2**64},
        {"id": 11, "specs": "broken"},
        "not a record",
    ]
    seed = tmp_path / "odd-seed.json"
    seed.write_text(json.dumps({"servers": records}))
    sb = sandbox_factory(seed=str(seed), rate_limit=False)
    listed = sb.client().marketplace()
    assert [(s.id, s.owner, s.mrl) for s in listed] == [(9, 2, 24)]
    assert sb.client().my_servers()[0].id == 9  # the demo user hosts it, and it reads back


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_time_scale_must_be_a_finite_positive_number(scale: float) -> None:
    """A zero, negative, infinite or NaN time scale is refused before anything is opened."""
    with pytest.raises(ValueError, match="time scale"):
        Sandbox(db=":memory:", seed=None, time_scale=scale)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--time-scale", "inf"], "time scale"),
        (["--market-activity", "nan"], "market_activity"),
        (["--seed", "/no/such/seed.json"], "seed"),
    ],
)
def test_module_entry_reports_bad_options_as_usage_errors(
    option: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m clore.sandbox serve exits 2 with one error line for a bad option, no traceback."""
    from clore.sandbox.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", "--db", str(tmp_path / "x.db"), *option])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert message in err and "Traceback" not in err
