"""clore market and clore server against the in-process sandbox."""

from __future__ import annotations

from typing import Any

from cli_helpers import Cli

from clore import Clore
from clore.sandbox import BASE_URL


def test_market_lists_available_4090s_cheapest_first(run: Cli) -> None:
    """The table shows only available RTX 4090 servers, sorted by price per day."""
    result = run("market", "gpu=4090", "--limit", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:7] == ["ID", "GPU", "VRAM", "BTC/day", "BTC/h", "USD/day", "USD/h"]
    assert len(lines) == 6
    assert all("RTX 4090" in line for line in lines[1:])
    prices = [float(line.split()[6]) for line in lines[1:]]  # id, 1×, RTX, 4090, 24, GB
    assert prices == sorted(prices)
    assert "5 of " in result.stderr and "prices per day and per hour" in result.stderr


def test_market_json_has_the_documented_schema(run: Cli) -> None:
    """--json: currency, rates, cache facts, match count and ServerRecords with derived."""
    doc = run.json("market", "gpu=4090", "gpus=1", "--limit", "3", "--sort", "price")
    assert set(doc) == {
        "currency", "rates", "fetched_at", "cached", "matched", "not_payable", "servers"
    }  # fmt: skip
    assert doc["currency"] == "bitcoin"
    assert doc["rates"]["bitcoin"] > 1000
    assert len(doc["servers"]) == 3 and doc["matched"] >= 3
    first = doc["servers"][0]
    assert {"id", "price", "specs", "rented", "mrl"} <= set(first)
    derived = first["derived"]
    assert derived["gpu_count"] == 1 and derived["available"] is True
    assert derived["price_per_day"] == first["price"]["on_demand"]["bitcoin"]
    assert abs(derived["price_per_hour"] * 24 - derived["price_per_day"]) < 1e-12
    usd = derived["price_per_day"] * doc["rates"]["bitcoin"]
    assert abs(derived["usd_per_day"] - usd) < 1e-9
    days = [s["derived"]["price_per_day"] for s in doc["servers"]]
    assert days == sorted(days)


def test_all_includes_rented_servers(run: Cli) -> None:
    """Available servers only by default; --all adds rented ones."""
    available = run.json("market", "--limit", "0")
    everything = run.json("market", "--all", "--limit", "0")
    assert all(not s["rented"] for s in available["servers"])
    assert any(s["rented"] for s in everything["servers"])
    assert everything["matched"] > available["matched"]
    table = run("market", "--all", "--limit", "3")
    assert table.stdout.splitlines()[0].split()[-1] == "Status"


def test_currency_option_changes_the_price_columns(run: Cli) -> None:
    """--currency clore shows CLORE per day and per hour."""
    result = run("market", "gpu=4090", "--currency", "clore", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "CLORE/day" in result.stdout and "CLORE/h" in result.stdout


def test_price_filters_in_usd_per_hour(run: Cli) -> None:
    """price<0.2usd/h keeps servers below 4.8 USD per day."""
    doc = run.json("market", "gpu=4090", "price<0.2usd/h", "--limit", "0")
    assert doc["servers"]
    assert all(s["derived"]["usd_per_day"] < 4.8 for s in doc["servers"])


def test_sort_by_several_keys(run: Cli) -> None:
    """--sort price,-reliability: equal prices are ordered by reliability, highest first."""
    doc = run.json("market", "gpu=4090", "--sort", "gpus,-reliability", "--limit", "0")
    keys = [(s["derived"]["gpu_count"], -s["reliability"]) for s in doc["servers"]]
    assert keys == sorted(keys)


def test_listing_is_cached_briefly(run: Cli) -> None:
    """A second query within 30 s reuses the listing; --refresh and age bypass it."""
    assert run.json("market", "--limit", "1")["cached"] is False
    assert run.json("market", "gpu=3090", "--limit", "1")["cached"] is True
    assert run.json("market", "--limit", "1", "--refresh")["cached"] is False
    run.clock.advance(31)
    assert run.json("market", "--limit", "1")["cached"] is False
    run.clock.advance(5)
    assert run.json("market", "--limit", "1", "--max-age", "1")["cached"] is False


def test_cache_lifetime_comes_from_the_environment(run: Cli) -> None:
    """CLORE_MARKET_TTL=0 disables reuse."""
    run.json("market", "--limit", "1")
    doc = run.json("market", "--limit", "1", env={"CLORE_MARKET_TTL": "0"})
    assert doc["cached"] is False


def test_without_rates_usd_figures_are_unknown_and_it_says_so(run: Cli) -> None:
    """A keyless client gets no rates: USD shows — and a note explains why."""
    keyless = Clore(
        api_key=None, base_url=BASE_URL, transport=run.sandbox.transport(), clock=run.clock
    )
    result = run("market", "gpu=4090", "--limit", "2", client=keyless)
    assert result.exit_code == 0, result.output
    assert "no USD rates" in result.stderr
    assert "—" in result.stdout
    usd = run("market", "gpu=4090", "price<5usd", "--json", client=keyless)
    assert usd.exit_code == 0
    import json

    assert json.loads(usd.stdout)["servers"] == []


def test_malformed_filters_exit_2_naming_word_and_fields(run: Cli) -> None:
    """A bad word is one stderr line quoting it and listing the known fields; nothing else."""
    for word in ("gpus>>2", "colour=red", "gpu>4090", "price<3eur"):
        result = run("market", word)
        assert result.exit_code == 2, word
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert repr(word) in lines[0] and "Known fields: id, gpu" in lines[0]


def test_bad_sort_key_and_currency_exit_2(run: Cli) -> None:
    """Unknown sort keys and currencies are usage errors."""
    sort = run("market", "--sort", "colour")
    currency = run("market", "--currency", "eur")
    assert (sort.exit_code, currency.exit_code) == (2, 2)
    assert "unknown sort key 'colour'" in sort.stderr
    assert "unknown currency 'eur'" in currency.stderr


def _cheapest_4090(run: Cli) -> dict[str, Any]:
    server: dict[str, Any] = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    return server


def test_server_shows_details_and_marks_your_spot_offers(run: Cli) -> None:
    """clore server ID shows prices per day/hour and the spot offers, yours marked."""
    server = _cheapest_4090(run)
    sid = str(server["id"])
    bid = f"{server['price']['spot']['bitcoin'] * 1.5:.8f}btc"
    assert run("spot", "bid", sid, "--price", bid, "--yes").exit_code == 0
    result = run("server", sid)
    assert result.exit_code == 0, result.output
    assert f"Server {sid}" in result.stdout
    assert "BTC/day" in result.stdout and "BTC/h" in result.stdout and "USD/day" in result.stdout
    assert "Spot offers" in result.stdout and "yours" in result.stdout
    doc = run.json("server", sid)
    assert doc["server"]["id"] == server["id"]
    assert [o["my"] for o in doc["spot"]["offers"]] == [True]


def test_unknown_server_exits_4(run: Cli) -> None:
    """A server id not on the marketplace is 'not found'."""
    result = run("server", "999999999")
    assert result.exit_code == 4
    assert result.stderr.strip() == "clore: error: server 999999999 is not on the marketplace"


def test_market_runs_a_subcommand_only_when_it_is_the_first_word(run: Cli) -> None:
    """`market record ...` records; the same word after an option is refused as misplaced
    (exit 2, one line), never read as a filter."""
    recorded = run.json("market", "record", "--count", "1", "--interval", "1m")
    misplaced = run("market", "--all", "record")
    assert (recorded["snapshots"], misplaced.exit_code, misplaced.stdout) == (1, 2, "")
    assert misplaced.stderr.strip().splitlines() == [
        "clore: error: 'record' is a subcommand: put it first (clore market record [OPTIONS]...)"
    ]


def test_market_listing_keeps_its_options_and_the_bare_spot_filter(run: Cli) -> None:
    """Options before, between and after filter words, and the bare `spot` word, still list."""
    doc = run.json("market", "--limit", "2", "spot", "gpu=4090", "--sort", "price", "-c", "clore")
    assert (doc["currency"], len(doc["servers"])) == ("CLORE-Blockchain", 2)
    assert all("4090" in s["specs"]["gpu"] and s["price"]["spot"] for s in doc["servers"])


def test_market_help_shows_the_listing_options_and_the_subcommands(run: Cli) -> None:
    """`market --help` lists the listing's options and record, stats, history; a
    subcommand's help is its own, under `clore market`."""
    group = run("market", "--help")
    sub = run("market", "history", "--help")
    assert (group.exit_code, sub.exit_code) == (0, 0)
    assert {"--sort", "--limit", "--max-age", "record", "stats", "history"} <= set(
        group.stdout.split()
    )
    assert sub.stdout.startswith("Usage: clore market history [OPTIONS] [FILTER]...")


def test_shell_completion_offers_the_subcommands_as_the_first_word() -> None:
    """`clore market rec<TAB>` completes to record; after a filter word, no subcommand."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    clore_bin = Path(sys.executable).with_name("clore")

    def complete(words: str) -> list[str]:
        env = dict(os.environ, _CLORE_COMPLETE="bash_complete", COMP_WORDS=words)
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        done = subprocess.run([clore_bin], capture_output=True, text=True, env=env, timeout=60)
        return [line for line in done.stdout.splitlines() if line]

    assert (complete("clore market rec"), complete("clore market gpu=4090 hist")) == (
        ["plain,record"],
        [],
    )
