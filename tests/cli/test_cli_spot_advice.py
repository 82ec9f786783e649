"""Spot advice that is right: `spot price` takes the currencies and units its messages
suggest, the max-step hint accounts for the 600 s window, and a bid under the server's
minimum is told that minimum."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import Cli

from clore.cli._format import amount


def _bid(run: Cli, factor: float = 2.0) -> tuple[int, float, dict[str, Any]]:
    server = run.json("market", "gpu=4090", "gpus=1", "spot", "--limit", "1")["servers"][0]
    bid = round(server["price"]["spot"]["bitcoin"] * factor, 8)
    doc = run.json("spot", "bid", str(server["id"]), "--price", f"{bid:.8f}btc", "--yes")
    return doc["order"]["id"], bid, server


def _usd_rate(run: Cli, server_id: int) -> float:
    return float(run.client.spot_marketplace(server_id).currency_rates_in_usd["bitcoin"])


def test_spot_price_takes_a_usd_amount_and_converts_it_to_the_orders_currency(
    run: Cli,
) -> None:
    """`spot price ORDER 3usd` (what --currency usd would mean) sets the BTC bid worth it."""
    oid, bid, server = _bid(run)
    rate = _usd_rate(run, server["id"])
    usd = bid * 1.5 * rate
    result = run("spot", "price", str(oid), f"{usd:.6f}usd")
    assert result.exit_code == 0, result.output
    assert "raised the bid" in result.stderr and "≈" in result.stderr
    assert float(run.client.get_order(oid).price) == pytest.approx(usd / rate, abs=1e-8)


@pytest.mark.parametrize("text", ["{h:.10f}btc/h", "{h:.10f} BTC/hour", "{d:.8f} BTC/day"])
def test_spot_price_takes_the_units_it_prints(run: Cli, text: str) -> None:
    """Per-hour amounts and the `0.00001800 BTC/day` form of its own messages are read."""
    oid, bid, _ = _bid(run)
    day = round(bid * 1.2, 8)
    result = run("spot", "price", str(oid), text.format(h=day / 24, d=day))
    assert result.exit_code == 0, result.output
    assert float(run.client.get_order(oid).price) == pytest.approx(day, rel=1e-6)


def test_the_max_step_hint_states_the_600_s_rule(run: Cli) -> None:
    """Lowered meanwhile by another client of the key (this one cannot know), a cut past
    the max step is refused with the lowest bid allowed *once* the 600 s have passed,
    not "now"; and that bid is indeed refused until then."""
    oid, bid, _ = _bid(run, factor=3.0)
    with run.sandbox.client() as other:  # its own pacing memory: the CLI's knows nothing
        other.set_spot_price(oid, round(bid * 0.95, 8))
    current = round(bid * 0.95, 8)
    result = run("spot", "price", str(oid), f"{current / 2:.8f}")
    assert result.exit_code == 1
    line = result.stderr.strip()
    step = round(current * 0.1, 8)
    assert f"exceeds the max step of {step:.8f} BTC/day" in line
    assert f"the lowest bid allowed is {amount(current - step, 'bitcoin')} BTC/day" in line
    assert "once 600 s have passed since the bid was last lowered" in line
    assert "allowed now" not in line and "--walk" in line
    again = run("spot", "price", str(oid), f"{current - step:.8f}")
    assert again.exit_code == 1 and "once every 600 s" in again.stderr


def test_the_max_step_hint_gives_the_time_left_when_the_window_is_known(run: Cli) -> None:
    """Lowered by this machine 100 s ago: the hint says when the lowest bid is allowed."""
    oid, bid, _ = _bid(run, factor=3.0)
    assert run("spot", "price", str(oid), f"{bid * 0.95:.8f}").exit_code == 0
    run.clock.advance(100)
    result = run("spot", "price", str(oid), f"{bid / 2:.8f}")
    assert result.exit_code == 1
    assert "once every 600 s" in result.stderr
    assert "(500 s)" in result.stderr or "(499 s)" in result.stderr


def test_a_bid_under_the_minimum_is_told_the_minimum(run: Cli) -> None:
    """`spot price` below the server's spot minimum: exit 1 naming that minimum."""
    oid, _, server = _bid(run)
    minimum = server["price"]["spot"]["bitcoin"]
    result = run("spot", "price", str(oid), f"{minimum / 2:.8f}")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert f"below the server's spot minimum of {minimum:.8f} BTC/day" in line
    assert "too_low_price" in line and len(result.stderr.splitlines()) == 1


def test_a_new_bid_under_the_minimum_is_told_the_minimum(run: Cli) -> None:
    """`spot bid SERVER --price P` under the minimum: exit 1 naming it; nothing placed."""
    server = run.json("market", "gpu=4090", "gpus=1", "spot", "--limit", "1")["servers"][0]
    minimum = server["price"]["spot"]["bitcoin"]
    low = f"{minimum / 2:.8f}"
    result = run("spot", "bid", str(server["id"]), "--price", low, "--yes")
    assert result.exit_code == 1
    assert f"below the server's spot minimum of {minimum:.8f} BTC/day" in result.stderr
    assert run.client.my_orders() == []


def test_spot_bid_takes_a_usd_bid_in_the_payment_currency(run: Cli) -> None:
    """`spot bid --price 3usd` bids the BTC worth 3 USD (BTC is what is paid)."""
    server = run.json("market", "gpu=4090", "gpus=1", "spot", "--limit", "1")["servers"][0]
    rate = _usd_rate(run, server["id"])
    usd = server["price"]["spot"]["bitcoin"] * 2 * rate
    doc = run.json("spot", "bid", str(server["id"]), "--price", f"{usd:.6f}usd", "--yes")
    assert doc["order"]["currency"] == "bitcoin"
    assert doc["order"]["price"] == pytest.approx(usd / rate, abs=1e-8)
