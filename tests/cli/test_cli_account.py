"""clore wallets, clore fees and clore spend (burn rate and runway)."""

from __future__ import annotations

import pytest
from cli_helpers import Cli


def test_wallets_table_and_json(run: Cli) -> None:
    """Wallets show balance with currency; JSON keeps the API's fields."""
    result = run("wallets")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:2] == ["Wallet", "Balance"]
    assert " BTC" in result.stdout
    doc = run.json("wallets")
    names = [w["name"] for w in doc["wallets"]]
    assert "bitcoin" in names
    assert set(doc["wallets"][0]) >= {"name", "deposit", "balance", "withdrawal_fee"}


def test_fees_table_and_json(run: Cli) -> None:
    """Renter fees in percent and creation fees per order type and currency."""
    result = run("fees")
    assert result.exit_code == 0, result.output
    assert "on-demand" in result.stdout and "spot" in result.stdout and "%" in result.stdout
    doc = run.json("fees")
    assert set(doc) == {"renter_fees", "creation_fees"}
    assert doc["renter_fees"]["on_demand"]["base"]["bitcoin"] == 10


def test_spend_adds_up_orders_burn_rate_and_runway(run: Cli) -> None:
    """After an hour: spend per order, total, burn per day (price plus the 10% renter fee
    the wallet pays on top) and runway = balance / burn."""
    order = run.rent_cheapest_4090()
    run.sandbox.advance(3600)
    doc = run.json("spend")
    [row] = doc["orders"]
    assert row["id"] == order["id"] and row["running"] is True and row["spend"] > 0
    assert doc["totals"]["bitcoin"] == pytest.approx(row["spend"])
    burn = order["price"] * 1.10
    assert row["burn_per_day"] == pytest.approx(burn)
    assert doc["burn_per_day"] == {"bitcoin": pytest.approx(burn)}
    wallet = next(w for w in doc["wallets"] if w["name"] == "bitcoin")
    assert wallet["runway_seconds"] == pytest.approx(wallet["balance"] / burn * 86400)
    text = run("spend").stdout
    assert "Total spent:" in text and "/day" in text and "runway" in text


def test_spend_after_cancel_burns_nothing(run: Cli) -> None:
    """An ended order still counts in the total but no longer burns."""
    order = run.rent_cheapest_4090()
    run.sandbox.advance(600)
    run("cancel", str(order["id"]))
    doc = run.json("spend")
    assert doc["burn_per_day"] == {}
    assert doc["totals"]["bitcoin"] > 0
    assert all(w["runway_seconds"] is None for w in doc["wallets"])


def test_the_runway_matches_what_the_wallet_is_charged(run: Cli) -> None:
    """The balance falls by the burn rate spend reports: a day of it costs one day's burn
    (and the order's creation fee, taken once it has run 10 minutes)."""
    order = run.rent_cheapest_4090()
    before = run.json("spend")
    run.sandbox.advance(86400)
    after = run.json("spend")
    wallet = {w["name"]: w["balance"] for w in before["wallets"]}["bitcoin"]
    later = {w["name"]: w["balance"] for w in after["wallets"]}["bitcoin"]
    burn = before["burn_per_day"]["bitcoin"]
    assert wallet - later == pytest.approx(burn + order["creation_fee"], rel=1e-3)
