"""``clore.market.gpus``: the models on the market, their servers, GPUs and prices per
GPU-day, over the real capture and small hand-made markets."""

from __future__ import annotations

import statistics

import msgspec
import pytest

from clore._wire import MarketplaceResponse, Price, Server, Specs
from clore.market import PriceContext, parse_filters
from clore.market.gpus import NO_GPU, GpuModel, natural_key, sort_models, summarize
from clore.sandbox import snapshot_bytes

RATES = {"bitcoin": 60_000.0, "CLORE-Blockchain": 0.01}
BTC = PriceContext("bitcoin", RATES)


def _server(
    sid: int,
    gpu: str,
    btc: float | None = None,
    *,
    rented: bool = False,
    coins: tuple[str, ...] = ("bitcoin", "CLORE-Blockchain"),
    clore: float | None = None,
) -> Server:
    on_demand = {k: v for k, v in (("bitcoin", btc), ("CLORE-Blockchain", clore)) if v}
    return Server(
        id=sid,
        price=Price(on_demand=on_demand),
        specs=Specs(gpu=gpu),
        rented=rented,
        allowed_coins=list(coins),
    )


def _capture() -> list[Server]:
    return msgspec.json.decode(snapshot_bytes(), type=MarketplaceResponse, strict=False).servers


def test_counts_and_prices_per_gpu_day_of_one_model() -> None:
    """Servers and GPUs listed and available; the cheapest and median of the available
    payable servers per GPU-day, in BTC and in USD at the rates."""
    servers = [
        _server(1, "2x NVIDIA GeForce RTX 4090", 0.0004),  # 0.0002 per GPU
        _server(2, "1x NVIDIA GeForce RTX 4090", 0.0003),
        _server(3, "4x NVIDIA GeForce RTX 4090", 0.0004, rented=True),
        _server(4, "1x NVIDIA GeForce RTX 4090", 0.0001, coins=("CLORE-Blockchain",)),
        _server(5, "1x NVIDIA GeForce RTX 4090", 0.0005),
        _server(6, "1x NVIDIA GeForce RTX 4090 Laptop GPU", 0.00001),
    ]
    rows = {m.model: m for m in summarize(servers, BTC)}
    desktop = rows["RTX 4090"]
    assert (desktop.servers, desktop.available, desktop.gpus, desktop.gpus_available) == (
        5,
        4,
        9,
        5,
    )
    assert (desktop.payable, desktop.cheapest, desktop.median) == (3, 0.0002, 0.0003)
    assert (desktop.cheapest_usd, desktop.median_usd) == pytest.approx((12.0, 18.0))
    assert (rows["RTX 4090 Laptop"].servers, rows["RTX 4090 Laptop"].cheapest) == (1, 0.00001)


def test_a_model_nobody_can_pay_in_the_currency_has_no_price_in_it() -> None:
    """A CLORE-only model is counted, but has no BTC price (nor a USD one from it)."""
    servers = [_server(1, "1x NVIDIA GeForce RTX 3060", 0.0001, coins=("CLORE-Blockchain",))]
    (row,) = summarize(servers, BTC)
    assert (row.available, row.payable, row.cheapest, row.median_usd) == (1, 0, None, None)
    (in_clore,) = summarize(
        [_server(1, "1x RTX 3060", 0.0001, clore=500, coins=("CLORE-Blockchain",))],
        PriceContext("CLORE-Blockchain", RATES),
    )
    assert (in_clore.cheapest, in_clore.cheapest_usd) == (500.0, pytest.approx(5.0))


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    """Four prices: the median is between the second and the third."""
    servers = [_server(i, "1x RTX 3090", p) for i, p in enumerate((1.0, 2.0, 4.0, 10.0))]
    assert summarize(servers, PriceContext("bitcoin"))[0].median == 3.0


def test_filters_select_the_servers_counted() -> None:
    """Filter words apply before counting (here: 2 GPUs or more)."""
    servers = [_server(1, "1x RTX 3090", 0.1), _server(2, "2x RTX 3090", 0.1)]
    (row,) = summarize(servers, BTC, parse_filters(["gpus>=2"]))
    assert (row.servers, row.gpus) == (1, 2)


def test_a_listing_without_a_gpu_is_its_own_row() -> None:
    """An empty ``specs.gpu`` is ``(no GPU)``, with no price per GPU."""
    (row,) = summarize([_server(1, "", 0.1)], BTC)
    assert (row.model, row.gpus, row.cheapest) == (NO_GPU, 0, None)


def test_models_sort_by_name_with_numbers_as_numbers() -> None:
    """RTX 3060 < RTX 3060 Ti < RTX 3070 < RTX 20000; GTX before RTX."""
    names = ["RTX 3070", "RTX 20000", "RTX 3060 Ti", "GTX 1080", "RTX 3060", "RTX A2000"]
    assert sorted(names, key=natural_key) == [
        "GTX 1080",
        "RTX 3060",
        "RTX 3060 Ti",
        "RTX 3070",
        "RTX 20000",
        "RTX A2000",
    ]


def _row(model: str, available: int, cheapest: float | None) -> GpuModel:
    return GpuModel(
        model, available, available, available, available, 0, cheapest, cheapest, None, None
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("model", ["A", "B", "C"]),
        ("available", ["B", "C", "A"]),
        ("gpus", ["B", "C", "A"]),
        ("price", ["C", "A", "B"]),
        ("median", ["C", "A", "B"]),
    ],
)
def test_each_sort_key(key: str, expected: list[str]) -> None:
    """available/gpus most first, price/median cheapest first with unknown last."""
    rows = [_row("B", 5, None), _row("A", 1, 2.0), _row("C", 3, 1.0)]
    assert [m.model for m in sort_models(rows, key)] == expected


def test_an_unknown_sort_key_is_refused() -> None:
    """The message lists the keys."""
    with pytest.raises(ValueError, match="model, available, gpus, price, median"):
        sort_models([], "cost")


def test_the_capture_summarized_adds_up_to_its_servers_and_gpus() -> None:
    """Over the 3,500 servers: every server and GPU counted once; the RTX 4090 row as
    counted directly from the records."""
    servers = _capture()
    rows = summarize(servers, BTC)
    assert sum(m.servers for m in rows) == len(servers) == 3500
    assert sum(m.gpus for m in rows) == sum(s.gpu_count for s in servers)
    assert len(rows) == len({m.model for m in rows}) == 60
    row = next(m for m in rows if m.model == "RTX 4090")
    desktop = [s for s in servers if s.gpu_model == "NVIDIA GeForce RTX 4090"]
    free = [s for s in desktop if not s.rented]
    prices = sorted(
        s.price.on_demand["bitcoin"] / s.gpu_count
        for s in free
        if "bitcoin" in s.allowed_coins and "bitcoin" in s.price.on_demand
    )
    assert (row.servers, row.available, row.payable) == (len(desktop), len(free), len(prices))
    assert (row.cheapest, row.median) == (prices[0], statistics.median(prices))
