"""``clore market`` and ``clore server`` never show a price in a currency the server does
not take: such servers are left out of the listing, counted, and the currency that lists
them named."""

from __future__ import annotations

import json

from cli_helpers import Cli

from clore.rentals.choice import payable


def _clore_only(run: Cli) -> list[int]:
    """Available servers of the sandbox that take CLORE only (yet list a BTC price)."""
    return [
        s.id
        for s in run.client.marketplace()
        if not s.rented
        and s.allowed_coins == ["CLORE-Blockchain"]
        and s.price_per_day("bitcoin") is not None
    ]


def test_market_leaves_out_servers_that_do_not_take_the_currency(run: Cli) -> None:
    """In BTC, a CLORE-only server is not listed (its converted BTC price would be a lie);
    the note counts them and names --currency clore; in CLORE it is listed."""
    clore_only = set(_clore_only(run))
    assert clore_only  # the capture has 287 of them
    result = run("market", "--limit", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    listed = {s["id"] for s in doc["servers"]}
    assert listed & clore_only == set()
    assert doc["not_payable"] >= len(clore_only)
    assert doc["matched"] == len(listed)
    human = run("market", "--limit", "5")
    assert f"{doc['not_payable']} more matching servers do not take BTC" in human.stderr
    assert "--currency clore lists them" in human.stderr
    in_clore = json.loads(run("market", "--limit", "0", "-c", "clore", "--json").stdout)
    assert clore_only <= {s["id"] for s in in_clore["servers"]}


def test_every_listed_price_is_in_a_currency_the_server_takes(run: Cli) -> None:
    """Each row of `market --currency btc` is payable in BTC at its own listed price."""
    doc = run.json("market", "--limit", "0", "--all")
    servers = {s.id: s for s in run.client.marketplace()}
    rows = [(servers[s["id"]], s["derived"]["price_per_day"]) for s in doc["servers"]]
    assert rows and all(payable(server, "bitcoin") for server, _ in rows)
    assert all(price == server.price_per_day("bitcoin") for server, price in rows)


def test_server_details_show_no_price_in_a_currency_it_does_not_take(run: Cli) -> None:
    """`clore server ID` of a CLORE-only server says it does not take BTC, no BTC price."""
    sid = _clore_only(run)[0]
    result = run("server", str(sid))
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    price_line = next(line for line in lines if line.startswith("Price "))
    assert "does not take BTC" in price_line and "BTC/day" not in price_line
