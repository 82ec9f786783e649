"""clore spot bid and clore spot price: raises at once, lowering within the API's rules."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import Cli

from clore.cli._format import amount


def _bid(run: Cli, factor: float = 2.0) -> tuple[int, float, dict[str, Any]]:
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    bid = round(server["price"]["spot"]["bitcoin"] * factor, 8)
    doc = run.json("spot", "bid", str(server["id"]), "--price", f"{bid:.8f}btc", "--yes")
    return doc["order"]["id"], bid, server


def test_spot_bid_creates_a_spot_order_at_the_bid(run: Cli) -> None:
    """spot bid SERVER --price P places a spot order whose price is the bid per day."""
    oid, bid, server = _bid(run)
    order = run.client.get_order(oid)
    assert (order.spot, order.si, float(order.price)) == (True, server["id"], pytest.approx(bid))


def test_spot_bid_accepts_per_hour_prices(run: Cli) -> None:
    """A /h bid is converted to the per-day bid the API takes."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    hourly = server["price"]["spot"]["bitcoin"] * 3 / 24
    doc = run.json("spot", "bid", str(server["id"]), "--price", f"{hourly:.10f}btc/h", "--yes")
    assert doc["order"]["price"] == pytest.approx(hourly * 24, rel=1e-6)


def test_spot_bid_dry_run_sends_nothing(run: Cli) -> None:
    """--dry-run shows a spot create_order body with spotprice."""
    doc = run.json("spot", "bid", "1234", "--price", "0.00003", "--dry-run")
    assert doc["body"]["type"] == "spot" and doc["body"]["spotprice"] == 0.00003
    assert run.client.my_orders() == []


def test_raising_is_immediate(run: Cli) -> None:
    """A higher price is set at once."""
    oid, bid, _ = _bid(run)
    result = run("spot", "price", str(oid), f"{bid * 1.5:.8f}")
    assert result.exit_code == 0, result.output
    assert "raised the bid" in result.stderr
    assert float(run.client.get_order(oid).price) == pytest.approx(bid * 1.5, abs=1e-8)


def test_lowering_beyond_max_step_is_refused_with_the_limit(run: Cli) -> None:
    """Too big a cut: exit 1 naming the max step and the lowest bid it allows (once the
    600 s since the last lowering have passed)."""
    oid, bid, _ = _bid(run)
    result = run("spot", "price", str(oid), f"{bid / 2:.8f}")
    assert result.exit_code == 1
    step = round(bid * 0.1, 8)
    message = result.stderr.strip()
    assert f"exceeds the max step of {amount(step, 'bitcoin')} BTC/day" in message
    assert (
        f"the lowest bid allowed is {amount(bid - step, 'bitcoin')} BTC/day, once 600 s have passed"
        in message
    )
    assert float(run.client.get_order(oid).price) == pytest.approx(bid)


def test_second_lowering_inside_600_s_says_how_long_to_wait(run: Cli) -> None:
    """One small cut is fine; another right after is refused with the time left."""
    oid, bid, _ = _bid(run)
    assert run("spot", "price", str(oid), f"{bid * 0.95:.8f}").exit_code == 0
    run.clock.advance(100)
    result = run("spot", "price", str(oid), f"{bid * 0.9:.8f}")
    assert result.exit_code == 1
    assert "once every 600 s" in result.stderr
    assert "(500 s)" in result.stderr or "(499 s)" in result.stderr


def test_walk_steps_down_within_both_rules(run: Cli) -> None:
    """--walk lowers by at most max_step, once per 600 s, until the target."""
    oid, bid, _ = _bid(run, factor=3.0)
    target = round(bid * 0.7, 8)
    started = run.clock.time()
    result = run("spot", "price", str(oid), f"{target:.8f}", "--walk")
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if line.startswith("lowered the bid")]
    assert len(steps) >= 3
    assert float(run.client.get_order(oid).price) == pytest.approx(target, abs=1e-8)
    assert run.clock.time() - started >= 600 * (len(steps) - 1)
    waits = [line for line in result.stderr.splitlines() if "next lowering allowed in" in line]
    assert len(waits) >= len(steps) - 1


def test_spot_price_on_an_on_demand_order_is_bad_input(run: Cli) -> None:
    """Only spot orders have a bid."""
    oid = run.rent_cheapest_4090()["id"]
    result = run("spot", "price", str(oid), "0.0001")
    assert result.exit_code == 2 and "not a spot bid" in result.stderr


def test_spot_price_in_an_unknown_currency_is_refused(run: Cli) -> None:
    """A price in a currency clore does not know is exit 2 naming the known ones."""
    oid, _, _ = _bid(run)
    result = run("spot", "price", str(oid), "3eur")
    assert result.exit_code == 2 and "unknown currency 'eur'" in result.stderr


def _keep_cap(run: Cli, oid: int, *args: str) -> float:
    """The cap `spot keep` reports in its first bid_raised or cap_exceeded event."""
    import json

    result = run("spot", "keep", str(oid), *args, "--for", "1m", "--jsonl")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    return float(next(e["details"]["cap"] for e in events if "cap" in e["details"]))


def test_spot_keep_converts_a_usd_cap_to_the_order_currency(run: Cli, other_user: Any) -> None:
    """--max-bid 5 --currency usd and --max-bid 5usd are 5 USD in BTC, never 5 BTC."""
    oid, bid, server = _bid(run)
    other_user().create_order(server["id"], "img", order_type="spot", spotprice=bid * 1.5)
    rate = run.client.spot_marketplace(server["id"]).currency_rates_in_usd["bitcoin"]
    assert _keep_cap(run, oid, "--max-bid", "5", "--currency", "usd") == pytest.approx(5 / rate)
    assert _keep_cap(run, oid, "--max-bid", "5usd") == pytest.approx(5 / rate)


def test_spot_keep_refuses_an_ended_order_without_recover(run: Cli) -> None:
    """An order that has already ended is exit 1 (only --recover can do something with it)."""
    oid, _, _ = _bid(run)
    run.client.cancel_order(oid)
    result = run("spot", "keep", str(oid), "--max-bid", "0.001")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"clore: error: order {oid} has already ended (--recover bids on another)"
    )


def test_a_losing_spot_bid_says_it_is_not_running(run: Cli, other_user: Any) -> None:
    """A bid under the running one is placed, with a warning naming the highest bid."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    high = round(server["price"]["spot"]["bitcoin"] * 3, 8)
    other_user().create_order(server["id"], "img", order_type="spot", spotprice=high)
    low = round(server["price"]["spot"]["bitcoin"] * 2, 8)
    result = run("spot", "bid", str(server["id"]), "--price", f"{low:.8f}", "--yes")
    assert result.exit_code == 0, result.output
    assert f"is not running: the highest bid is {amount(high, 'bitcoin')} BTC/day" in result.stderr
