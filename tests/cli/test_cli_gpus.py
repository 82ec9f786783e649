"""``clore gpus``: the models on the market with their servers, GPUs and prices per
GPU-day, from the cached listing, as a table and as JSON."""

from __future__ import annotations

from typing import Any

from cli_helpers import Cli

from clore import Clore


class Counting:
    """The client, counting its marketplace calls."""

    def __init__(self, client: Clore) -> None:
        self._client = client
        self.marketplace_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def marketplace(self) -> Any:
        self.marketplace_calls += 1
        return self._client.marketplace()


def test_gpus_json_lists_every_model_with_counts_and_prices(run: Cli) -> None:
    """One record per exact model; the counts add up to the listing; RTX 4090 and its
    laptop part are two models."""
    doc = run.json("gpus")
    assert set(doc) == {"currency", "rates", "fetched_at", "cached", "sort", "models"}
    models = {m["model"]: m for m in doc["models"]}
    servers = run.client.marketplace()
    assert sum(m["servers"] for m in models.values()) == len(servers)
    assert {"RTX 4090", "RTX 4090 Laptop", "RTX 3060", "RTX 3060 Laptop"} <= set(models)
    desktop = [s for s in servers if s.gpu_model == "NVIDIA GeForce RTX 4090"]
    row = models["RTX 4090"]
    assert (row["servers"], row["servers_available"]) == (
        len(desktop),
        sum(1 for s in desktop if not s.rented),
    )
    assert row["gpus"] == sum(s.gpu_count for s in desktop)
    assert 0 < row["cheapest_per_gpu_day"] <= row["median_per_gpu_day"]
    rate = doc["rates"]["bitcoin"]
    assert abs(row["cheapest_usd_per_gpu_day"] - row["cheapest_per_gpu_day"] * rate) < 1e-9


def test_gpus_names_are_what_gpu_filters_match(run: Cli) -> None:
    """`gpu=MODEL` with a listed name selects exactly that model's available servers."""
    models = {m["model"]: m for m in run.json("gpus")["models"]}
    for name in ("RTX 4090", "RTX 3060 Laptop", "RTX A2000 12GB"):
        listed = run.json("market", f"gpu={name}", "--limit", "0", "--all")
        assert (name, listed["matched"] + listed["not_payable"]) == (name, models[name]["servers"])


def test_gpus_table_shows_prices_in_the_currency_and_in_usd(run: Cli) -> None:
    """The table has the model, available/listed servers and GPUs, and per-GPU-day prices."""
    result = run("gpus", "--sort", "available")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "Model", "Servers", "GPUs", "cheapest", "BTC/GPU-day", "median", "BTC/GPU-day",
        "cheapest", "USD", "median", "USD",
    ]  # fmt: skip
    available = [int(line.split()[-6].split("/")[0]) for line in rows if line.strip()]
    assert available == sorted(available, reverse=True)
    assert "models on 3500 listed servers" in result.stderr


def test_gpus_uses_the_cached_listing(run: Cli) -> None:
    """A second `gpus` (and a `market` after it) within the cache's lifetime asks nothing."""
    client = Counting(run.client)
    assert run("gpus", client=client).exit_code == 0
    assert run("gpus", "--sort", "price", client=client).exit_code == 0
    assert run("market", client=client).exit_code == 0
    assert client.marketplace_calls == 1
    assert run("gpus", "--refresh", client=client).exit_code == 0
    assert client.marketplace_calls == 2


def test_gpus_filters_and_currency(run: Cli) -> None:
    """FILTER words narrow what is counted; --currency clore prices in CLORE."""
    everything = {m["model"]: m for m in run.json("gpus")["models"]}
    multi = {m["model"]: m for m in run.json("gpus", "gpus>=4", "-c", "clore")["models"]}
    assert multi and all(m["servers"] <= everything[name]["servers"] for name, m in multi.items())
    row = next(m for m in multi.values() if m["cheapest_per_gpu_day"] is not None)
    assert row["cheapest_per_gpu_day"] > 1  # CLORE per GPU-day, not BTC


def test_gpus_bad_input_is_exit_2(run: Cli) -> None:
    """An unknown sort key or a bad filter word is one line, exit 2."""
    for args, text in ((["--sort", "cost"], "'cost' is not one of"), (["gpu=RTX"], "names no")):
        result = run("gpus", *args)
        assert (result.exit_code, text in result.stderr) == (2, True), result.stderr
