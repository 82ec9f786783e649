"""Alert conditions on the market and its past, and firing once per episode."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import pytest
from history_helpers import RATES, listing

from clore.market.history import (
    Episodes,
    HistoryAlert,
    HistoryError,
    HistoryStore,
    ModelStats,
    PriceStats,
    Selection,
    check,
    parse_condition,
    window_stats,
)

if TYPE_CHECKING:
    from clore import Clore, Server
    from clore.sandbox import Sandbox


def stats(available: int, cheapest: float | None, listed: int = 10) -> ModelStats:
    price = None if cheapest is None else PriceStats(5, 4, cheapest, 1.0, 2.0, 3.0, 4.0)
    return ModelStats(None, listed, available, listed - available, listed, available, price, None)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("price<p10@7d", ("price", "<", None, "p10", 7 * 86400.0)),
        ("median <= median@24h", ("median", "<=", None, "median", 86400.0)),
        ("available>3", ("available", ">", 3.0, None, None)),
        ("occupancy>=80%", ("occupancy", ">=", 0.8, None, None)),
        ("listed < 100", ("listed", "<", 100.0, None, None)),
    ],
)
def test_conditions_parse(text: str, fields: tuple[object, ...]) -> None:
    """METRIC OP VALUE, with numbers, percentages or STAT@WINDOW."""
    cond = parse_condition(text)
    assert (cond.metric, cond.op, cond.number, cond.stat, cond.window) == fields


def test_a_price_condition_takes_an_amount_with_its_currency() -> None:
    """``price<0.5usd/h`` is 12 USD per GPU-day."""
    cond = parse_condition("price<0.5usd/h")
    assert cond.amount is not None
    assert (cond.amount.per_day, cond.amount.currency) == (12.0, "USD-Blockchain")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("price", "expected METRIC OP VALUE"),
        ("cheap<3", "unknown metric"),
        ("available>3%", "for occupancy only"),
        ("price<p10@soon", "bad duration"),
        ("price<3dollars", "unknown currency"),
    ],
)
def test_bad_conditions_are_one_line_errors(text: str, message: str) -> None:
    """Each mistake says what was expected."""
    with pytest.raises(HistoryError, match=message):
        parse_condition(text)


def test_check_compares_the_metric_with_its_threshold() -> None:
    """available>3 holds with 4 free; price<p10 compares the cheapest ask with the baseline;
    a USD amount is converted at the rates; no data never holds."""
    baseline = PriceStats(9, 9, 0.5, 0.8, 1.0, 2.0, 3.0)
    results = [
        check(parse_condition("available>3"), stats(4, 0.7), currency="bitcoin").holds,
        check(parse_condition("available>3"), stats(3, 0.7), currency="bitcoin").holds,
        check(
            parse_condition("price<p10@7d"), stats(4, 0.7), currency="bitcoin", baseline=baseline
        ).holds,
        check(
            parse_condition("price<p10@7d"), stats(4, 0.9), currency="bitcoin", baseline=baseline
        ).holds,
        check(
            parse_condition("price<60000usd"), stats(4, 0.9), currency="bitcoin", rates=RATES
        ).holds,
        check(parse_condition("price<p10@7d"), stats(4, 0.1), currency="bitcoin").holds,
        check(parse_condition("price<1"), stats(0, None), currency="bitcoin").holds,
    ]
    assert results == [True, False, True, False, True, False, False]


def test_a_condition_fires_once_per_episode() -> None:
    """It fires when it starts to hold, not while it goes on, and again after a pause."""
    episodes = Episodes()
    seen = [False, True, True, False, True, True]
    assert [episodes.observe("c", holds) for holds in seen] == [
        False,
        True,
        False,
        False,
        True,
        False,
    ]


def test_an_episode_already_reported_is_not_reported_after_a_restart() -> None:
    """The episode state can be saved and restored."""
    first = Episodes()
    first.observe("c", True)
    again = Episodes(first.state)
    assert (again.observe("c", True), again.observe("c", False), again.observe("c", True)) == (
        False,
        False,
        True,
    )


def _recorded(
    sandbox: Sandbox, client: Clore, store: HistoryStore, count: int
) -> list[tuple[float, list[Server]]]:
    """``count`` snapshots of a quiet market (no repricing), 20 minutes apart."""
    out = []
    for _ in range(count):
        sandbox.advance(1200)
        servers = listing(client)
        store.record(servers, at=sandbox.now(), rates=RATES)
        out.append((sandbox.now(), servers))
    return out


def _free_4090s(servers: list[Server]) -> int:
    return sum(1 for s in servers if not s.rented and s.specs.gpu.endswith("RTX 4090"))


def test_a_deal_below_the_window_p10_fires_once_on_live_listings(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """price<p10@3h on 4090s: quiet on the recorded market, fires when one 4090 is listed
    below the hourly cheapest asks' p10, stays quiet while it stays there, fires again
    for a new deal."""
    selection = Selection.parse(model="4090")
    servers = _recorded(sandbox, clore_client, store, count=9)[-1][1]
    now = sandbox.now()
    baseline = window_stats(store, selection, "price", since=now - 3 * 3600, until=now)
    assert baseline is not None
    alert = HistoryAlert([parse_condition("price<p10@3h")], selection, store)
    deal = next(s for s in servers if not s.rented and s.specs.gpu.endswith("RTX 4090"))
    cheap = {"bitcoin": baseline.min * deal.gpu_count / 2}
    fired = [alert.check(servers, now=now, rates=RATES)[0][1]]
    sandbox.set_server(deal.id, price={"on_demand": cheap})
    with_deal = listing(clore_client)
    fired += [alert.check(with_deal, now=now, rates=RATES)[0][1] for _ in range(2)]
    sandbox.set_server(deal.id, rented=True)
    fired.append(alert.check(listing(clore_client), now=now, rates=RATES)[0][1])
    fired.append(alert.check(with_deal, now=now, rates=RATES)[0][1])
    assert fired == [False, True, False, False, True]


def test_availability_condition_on_a_live_listing(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """available>3 for the 4090s of the sandbox: free ones are counted from the listing."""
    servers = listing(clore_client)
    free = _free_4090s(servers)
    alert = HistoryAlert([parse_condition(f"available>{free - 1}")], Selection(model="4090"), None)
    ((verdict, fired),) = alert.check(servers, now=sandbox.now())
    assert (verdict.holds, fired, verdict.value) == (True, True, float(free))


def test_window_stats_are_the_hourly_values_of_the_metric(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """available over 3 h: one value per hour (each hour's last snapshot)."""
    recorded = _recorded(sandbox, clore_client, store, count=9)
    now = sandbox.now()
    hourly: dict[int, int] = {}
    for at, servers in recorded:
        if at >= now - 3 * 3600:
            hourly[int(at // 3600)] = _free_4090s(servers)
    got = window_stats(store, Selection(model="4090"), "available", since=now - 3 * 3600, until=now)
    assert got is not None
    values = sorted(hourly.values())
    assert (got.count, got.min, got.median, got.max) == (
        len(values),
        values[0],
        pytest.approx(statistics.median(values)),
        values[-1],
    )


def test_a_history_condition_needs_a_store() -> None:
    """STAT@WINDOW without a database is refused up front."""
    with pytest.raises(HistoryError, match="needs a history database"):
        HistoryAlert([parse_condition("price<p10@7d")], Selection(), None)
