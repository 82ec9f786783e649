"""The watcher's history alerts (``--when``) and its feeding of the history store, on the
sandbox's simulated market with a manual clock."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from clore.market import PriceContext
from clore.market.history import (
    HistoryAlert,
    HistoryStore,
    Selection,
    listings_of,
    parse_condition,
    window_stats,
)
from clore.workflows.events import DETAILS
from clore.workflows.history_watch import HistoryWatch
from clore.workflows.plan import RentSpec
from clore.workflows.state import StateFile
from clore.workflows.watch import Watcher, WatchFile

if TYPE_CHECKING:
    from clore import Clore, Server
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox

RATES = {"bitcoin": 60_000.0, "CLORE-Blockchain": 0.004, "USD-Blockchain": 1.0}
FOUR_090 = Selection(model="4090")


def _record_a_past(sandbox: Sandbox, client: Clore, store: HistoryStore, hours: int) -> None:
    """Half-hourly snapshots of the sandbox's market, its simulation moving in between."""
    for _ in range(hours * 2):
        sandbox.market_tick(40)
        sandbox.advance(1800)
        store.record(client.marketplace(), at=sandbox.now(), rates=RATES)


def _cheapest_free_4090(client: Clore) -> Server:
    """The available 4090 with the lowest ask per GPU-day in BTC (at ``RATES``)."""
    servers = client.marketplace()
    listed = listings_of(servers, FOUR_090, PriceContext("bitcoin", RATES))
    best = min((i for i in listed if not i.rented and i.price), key=lambda i: (i.price, i.server))
    return next(s for s in servers if s.id == best.server)


def _free_4090s(client: Clore) -> int:
    return sum(
        1
        for i in listings_of(client.marketplace(), FOUR_090, PriceContext("bitcoin"))
        if not i.rented
    )


def _watch(
    client: Clore, clock: ManualClock, store: HistoryStore, state: StateFile, **kw: Any
) -> list[Any]:
    """A watch that only alerts (``price<p10@6h`` on the 4090s), five polls a minute apart."""
    alert = HistoryAlert([parse_condition("price<p10@6h")], FOUR_090, store, currency="bitcoin")
    history = HistoryWatch(store=store, alert=alert, rates=RATES)
    options: dict[str, Any] = {
        "interval": 60.0,
        "until": clock.time() + 290,
        "state": state,
        "history": history,
        "report": False,
        **kw,
    }
    return list(Watcher(client, clock, **options).run())


def _alerts(events: list[Any]) -> list[Any]:
    return [e for e in events if e.kind == "history_alert"]


def test_an_alert_fires_once_per_episode_and_not_again_after_a_restart(
    sandbox: Sandbox, clore_client: Clore, sandbox_clock: ManualClock, tmp_path: Path
) -> None:
    """price<p10@6h: quiet on the market as recorded; a 4090 offered below the hourly p10
    fires once, however many polls it lasts and through a restart; priced back up, the
    episode ends; offered cheap again, it fires again."""
    store = HistoryStore(tmp_path / "history.db")
    state = StateFile(tmp_path / "watch.json")
    _record_a_past(sandbox, clore_client, store, hours=6)
    now = sandbox.now()
    baseline = window_stats(store, FOUR_090, "price", since=now - 6 * 3600, until=now)
    assert baseline is not None
    deal = _cheapest_free_4090(clore_client)
    usual = dict(deal.price.on_demand)
    cheap = {"bitcoin": baseline.min * deal.gpu_count / 2}

    quiet = _watch(clore_client, sandbox_clock, store, state)
    sandbox.set_server(deal.id, price={"on_demand": cheap})
    first = _watch(clore_client, sandbox_clock, store, state)
    restarted = _watch(clore_client, sandbox_clock, store, state)
    sandbox.set_server(deal.id, price={"on_demand": usual})
    over = _watch(clore_client, sandbox_clock, store, state)
    sandbox.set_server(deal.id, price={"on_demand": cheap})
    again = _watch(clore_client, sandbox_clock, store, state)

    counts = [len(_alerts(run)) for run in (quiet, first, restarted, over, again)]
    (alert,) = _alerts(first)
    assert counts == [0, 1, 0, 0, 1]
    assert (alert.server_id, alert.details["condition"], alert.details["baseline"]) == (
        deal.id,
        "price<p10@6h",
        "p10@6h",
    )
    assert set(alert.details) == set(DETAILS["history_alert"])
    assert alert.details["value"] < alert.details["threshold"]
    assert (state.read(WatchFile) or WatchFile()).episodes == {"price<p10@6h": True}


def test_the_watch_feeds_the_listings_it_fetched_to_the_history(
    sandbox: Sandbox, clore_client: Clore, sandbox_clock: ManualClock, tmp_path: Path
) -> None:
    """Five polls a minute apart store five snapshots, taken at the server's times; the
    marketplace is fetched once per poll, for the alerts and the store alike."""
    store = HistoryStore(tmp_path / "history.db")
    calls: list[str] = []
    sandbox_clock.advance(0)
    before = sandbox.now()

    class Counting:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(clore_client, name)
            if name == "marketplace":
                calls.append(name)
            return attr

    events = _watch(Counting(), sandbox_clock, store, StateFile(tmp_path / "w.json"))  # type: ignore[arg-type]
    snapshots = store.snapshots()
    assert (len(snapshots), len(calls), events[-1].kind) == (5, 5, "done")
    assert [round(s.t - before) for s in snapshots] == [0, 60, 120, 180, 240]


def test_a_renting_watch_keeps_its_episodes_beside_its_rentals(
    sandbox: Sandbox, clore_client: Clore, sandbox_clock: ManualClock, tmp_path: Path
) -> None:
    """The ledger's writes (an intent, its order) keep the episodes in the state file."""
    store = HistoryStore(tmp_path / "history.db")
    state = StateFile(tmp_path / "watch.json")
    deal = _cheapest_free_4090(clore_client)
    price = float(deal.price.on_demand["bitcoin"])
    free = _free_4090s(clore_client)
    alert = HistoryAlert(
        [parse_condition(f"available>{free - 1}")], FOUR_090, store, currency="bitcoin"
    )
    watcher = Watcher(
        clore_client,
        sandbox_clock,
        match=lambda s: s.id == deal.id,
        max_price=price,
        rent=RentSpec(image="cloreai/ubuntu22.04-jupyter"),
        interval=60.0,
        state=state,
        history=HistoryWatch(store=store, alert=alert, rates=RATES),
    )
    events = list(watcher.run())
    saved = state.read(WatchFile) or WatchFile()
    assert [e.kind for e in events if e.kind in ("history_alert", "rented", "done")] == [
        "history_alert",
        "rented",
        "done",
    ]
    assert ([r.status for r in saved.rentals], saved.episodes) == (
        ["rented"],
        {f"available>{free - 1}": True},
    )


def test_a_failing_history_database_is_an_error_event_not_the_end(
    sandbox: Sandbox, clore_client: Clore, sandbox_clock: ManualClock, tmp_path: Path
) -> None:
    """A history that cannot be read or written (here: closed) yields non-fatal error
    events; the watch goes on to its end."""
    store = HistoryStore(tmp_path / "history.db")
    store.close()
    events = _watch(clore_client, sandbox_clock, store, StateFile(tmp_path / "w.json"))
    errors = [e for e in events if e.kind == "error"]
    assert (len(errors), {e.details["fatal"] for e in errors}, events[-1].kind) == (
        10,
        {False},
        "done",
    )
    assert "the watch goes on" in errors[0].message


@pytest.mark.parametrize("record", [True, False])
def test_recording_needs_a_store(record: bool) -> None:
    """A HistoryWatch that records without a store is refused; one that does not is fine."""
    if record:
        with pytest.raises(ValueError, match="needs a history store"):
            HistoryWatch(record=True)
    else:
        assert HistoryWatch(record=False).episodes == {}
