"""Statistics from the store against a direct computation over the same listings: counts,
occupancy, per-host percentiles, prices at the recorded rates, clearing prices."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from history_helpers import RATES, listing

from clore._wire import Price, Server, Specs
from clore.market import USD, PriceContext, compile_filters, parse_filters, server_price
from clore.market.history import HistoryStore, Selection, series, stats_at
from clore.market.models import canonical_model, matches_model

if TYPE_CHECKING:
    from clore import Clore
    from clore.sandbox import Sandbox

Keep = Callable[[Server, PriceContext], bool]
Recorded = list[tuple[float, list[Server], dict[str, float]]]


def is_4090(server: Server, _ctx: PriceContext) -> bool:
    return matches_model("4090", canonical_model(server.specs.gpu))


def record_market(sandbox: Sandbox, client: Clore, store: HistoryStore, count: int = 6) -> Recorded:
    """``count`` snapshots 300 s apart of a moving sandbox market (and rates that move)."""
    out: Recorded = []
    for k in range(count):
        if k:
            sandbox.market_tick(150)
            free = [s for s in out[-1][1] if not s.rented and is_4090(s, PriceContext())]
            # At least one clearing each time, repriced as it is rented: the clearing
            # price is the ask before, not the price after.
            dearer = {c: float(v) * 2 for c, v in free[k].price.on_demand.items()}
            sandbox.set_server(free[k].id, rented=True, price={"on_demand": dearer})
        sandbox.advance(300)
        servers = listing(client)
        rates = {**RATES, "bitcoin": RATES["bitcoin"] * (1 + 0.01 * k)}
        at = sandbox.now()
        store.record(servers, at=at, rates=rates)
        out.append((at, servers, rates))
    return out


def flat(doc: dict[str, Any]) -> dict[str, Any]:
    """``{"price": {"min": 1}}`` -> ``{"price.min": 1}`` (pytest.approx compares flat dicts)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def direct_prices(values_by_host: dict[int, list[float]]) -> dict[str, float] | None:
    """min/max over listings; p10/median/p90 over host medians, linear between ranks."""
    medians = [statistics.median(v) for v in values_by_host.values()]
    if len(medians) < 2:
        return None
    deciles = statistics.quantiles(medians, n=10, method="inclusive")
    every = [x for v in values_by_host.values() for x in v]
    return {
        "min": min(every),
        "p10": deciles[0],
        "median": statistics.median(medians),
        "p90": deciles[8],
        "max": max(every),
        "hosts": len(medians),
    }


def direct(servers: Sequence[Server], ctx: PriceContext, keep: Keep) -> dict[str, Any]:
    """The market of one listing, computed straight from the records."""
    chosen = [s for s in servers if keep(s, ctx)]
    rented = sum(1 for s in chosen if s.rented)
    asks: dict[int, list[float]] = defaultdict(list)
    usd: dict[int, list[float]] = defaultdict(list)
    for s in chosen:
        if s.rented:
            continue
        host = s.owner if s.owner is not None else -s.id
        day = server_price(s, ctx)
        if day is not None:
            asks[host].append(day / s.gpu_count)
        dollars = server_price(s, ctx, USD)
        if dollars is not None:
            usd[host].append(dollars / s.gpu_count)
    return flat(
        {
            "listed": len(chosen),
            "rented": rented,
            "available": len(chosen) - rented,
            "occupancy": rented / len(chosen),
            "price": direct_prices(asks),
            "usd": direct_prices(usd),
        }
    )


def direct_clearing(
    before: Sequence[Server], after: Sequence[Server], ctx: PriceContext, keep: Keep
) -> list[float]:
    """Asks, in the earlier listing, of the servers rented by the later one."""
    now = {s.id: s for s in after}
    out = []
    for s in before:
        later = now.get(s.id)
        if later is not None and not s.rented and later.rented and keep(s, ctx):
            day = server_price(s, ctx)
            if day is not None:
                out.append(day / s.gpu_count)
    return out


def as_dict(stats: Any) -> dict[str, Any]:
    def prices(p: Any) -> dict[str, float] | None:
        if p is None:
            return None
        return {
            "min": p.min,
            "p10": p.p10,
            "median": p.median,
            "p90": p.p90,
            "max": p.max,
            "hosts": p.hosts,
        }

    return flat(
        {
            "listed": stats.listed,
            "rented": stats.rented,
            "available": stats.available,
            "occupancy": stats.occupancy,
            "price": prices(stats.price),
            "usd": prices(stats.price_usd),
        }
    )


def test_stats_now_equal_a_direct_computation(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """Counts, occupancy and per-host percentiles of the 4090s at the last snapshot."""
    recorded = record_market(sandbox, clore_client, store)
    _, servers, rates = recorded[-1]
    ctx = PriceContext("bitcoin", rates)
    result = stats_at(store, Selection.parse(model="4090"), currency="bitcoin", window=0)
    assert direct(servers, ctx, is_4090) == pytest.approx(as_dict(result.total))


def test_stats_at_an_earlier_moment_rebuild_that_market(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """--at a past time replays the change rows to that snapshot, at that snapshot's rates."""
    recorded = record_market(sandbox, clore_client, store)
    at, servers, rates = recorded[2]
    ctx = PriceContext("CLORE-Blockchain", rates)
    result = stats_at(
        store, Selection.parse(model="4090"), at=at + 1, currency="CLORE-Blockchain", window=0
    )
    assert (at, direct(servers, ctx, is_4090)) == (
        result.at,
        pytest.approx(as_dict(result.total)),
    )


def test_the_clearing_price_is_the_ask_just_before_each_rental(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """Over the window: every available->rented move, priced as it was asked before it."""
    recorded = record_market(sandbox, clore_client, store)
    expected: list[float] = []
    for (_, before, _), (_, after, rates) in itertools.pairwise(recorded):
        expected += direct_clearing(before, after, PriceContext("bitcoin", rates), is_4090)
    result = stats_at(store, Selection.parse(model="4090"), currency="bitcoin", window=3600)
    clearing = result.total.clearing
    assert clearing is not None
    assert (len(expected), statistics.median(expected), min(expected), max(expected)) == (
        clearing.count,
        pytest.approx(clearing.median),
        pytest.approx(clearing.min),
        pytest.approx(clearing.max),
    )


def test_any_filter_expression_is_a_selection(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """Filter words on terms and on prices select as `clore market` would, at each
    snapshot's rates."""
    recorded = record_market(sandbox, clore_client, store, count=3)
    words = ["gpus>=2", "price<8usd", "cc!=RU"]
    filters = parse_filters(words)

    def keep(server: Server, ctx: PriceContext) -> bool:
        return compile_filters(filters, ctx)(server)

    _, servers, rates = recorded[-1]
    result = stats_at(store, Selection.parse(words), currency="USD-Blockchain", window=0)
    ctx = PriceContext("USD-Blockchain", rates)
    assert direct(servers, ctx, keep) == pytest.approx(as_dict(result.total))


def test_stats_per_model_sum_to_the_total(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """One row per exact model (4090 apart from 4090 Laptop), adding up to the whole."""
    record_market(sandbox, clore_client, store, count=2)
    result = stats_at(store, Selection.parse(["gpus>=1"]), window=0)
    names = [m.model for m in result.models]
    assert (
        sum(m.listed for m in result.models),
        "RTX 4090" in names and "RTX 4090 Laptop" in names,
        names == sorted(names),
    ) == (result.total.listed, True, True)


def test_series_points_are_the_last_snapshot_of_each_bucket(
    sandbox: Sandbox, clore_client: Clore, store: HistoryStore
) -> None:
    """With two snapshots per bucket, each point is the market at the later one, and its
    clearing events are those of both."""
    recorded = record_market(sandbox, clore_client, store, count=6)
    bucket = 600
    result = series(
        store,
        Selection.parse(model="4090"),
        since=recorded[0][0],
        bucket=bucket,
        currency="bitcoin",
    )
    by_bucket: dict[int, list[int]] = defaultdict(list)
    for i, (at, _, _) in enumerate(recorded):
        by_bucket[int(at // bucket)].append(i)
    expected = []
    for key in sorted(by_bucket):
        last = by_bucket[key][-1]
        _, servers, rates = recorded[last]
        ctx = PriceContext("bitcoin", rates)
        cleared = sum(
            len(direct_clearing(recorded[i - 1][1], recorded[i][1], ctx, is_4090))
            for i in by_bucket[key]
            if i > 0
        )
        expected.append((key * bucket, recorded[last][0], direct(servers, ctx, is_4090), cleared))
    actual = [
        (
            p.t,
            p.at,
            pytest.approx(as_dict(p.stats)),
            p.stats.clearing.count if p.stats.clearing else 0,
        )
        for p in result.points
    ]
    assert expected == actual


def _server(sid: int, owner: int, per_gpu: float, gpus: int = 1, rented: bool = False) -> Server:
    return Server(
        id=sid,
        owner=owner,
        price=Price(on_demand={"bitcoin": per_gpu * gpus}),
        rented=rented,
        specs=Specs(gpu=f"{gpus}x NVIDIA GeForce RTX 4090"),
    )


def test_one_host_with_forty_listings_does_not_set_the_median(store: HistoryStore) -> None:
    """Host 1 lists forty servers at 1.0; four other hosts one each at 2..5: the median is
    over five hosts (3.0), while min and max are over all forty-four listings."""
    servers = [_server(100 + i, 1, 1.0) for i in range(40)]
    servers += [_server(200 + i, 2 + i, 2.0 + i, gpus=2) for i in range(4)]
    servers.append(_server(300, 9, 0.1, rented=True))  # rented: not an ask
    store.record(servers, at=1000.0)
    price = stats_at(store, Selection(model="4090"), window=0).total.price
    assert price is not None
    assert pytest.approx(
        (price.count, price.hosts, price.min, price.p10, price.median, price.p90, price.max)
    ) == (44, 5, 1.0, 1.4, 3.0, 4.6, 5.0)
