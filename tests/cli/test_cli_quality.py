"""Quality by default: ``rent --cheapest`` and ``watch`` choose among servers above the
reliability and rating floors, payable in the currency and off the bad-host list; the
floors are in ``--help``, overridable and removable (``--any-quality``)."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import Cli

from clore.cli import _quality
from clore.rentals import choice
from clore.rentals.verify import BadHosts

HEADLINE = ("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes")


def _rented(run: Cli, *args: str) -> tuple[int, float]:
    """Run a rent, return (server id, its reliability) of the order it made."""
    doc = run.json(*args)
    sid = doc["order"]["si"]
    server = next(s for s in run.client.marketplace() if s.id == sid)
    return sid, float(server.reliability)


def test_the_headline_rent_no_longer_picks_a_42_percent_server(run: Cli) -> None:
    """`rent --cheapest gpu=4090 gpus=1` rents a server at least 90 % reliable, rated well
    enough, and says how reliable and what the floors left out."""
    result = run(*HEADLINE)
    assert result.exit_code == 0, result.output
    order = run.client.my_orders()[0]
    server = next(s for s in run.client.marketplace() if s.id == order.si)
    assert float(server.reliability) >= 0.9
    assert server.rating.cnt < 3 or float(server.rating.avg) >= 2.5
    assert re.search(rf"server {order.si} \(1× RTX 4090, \d+% reliable", result.stderr)
    assert "below the quality floors" in result.stderr and "--any-quality" in result.stderr


def test_any_quality_rents_below_the_floors_cheapest_first_ties_by_reliability(
    run: Cli,
) -> None:
    """--any-quality: the cheapest single 4090 whatever its quality; of the two at the
    lowest price the more reliable one (85 %) comes first, then the 42 % one."""
    first = _rented(run, *HEADLINE, "--any-quality")
    run.client.cancel_order(run.client.my_orders()[0].id)
    second = _rented(run, *HEADLINE, f"id!={first[0]}", "--any-quality")
    assert (first[1] < 0.9, 0.4 < second[1] < 0.5, second[1] < first[1]) == (True, True, True)


def test_the_floors_can_be_raised_and_lowered(run: Cli) -> None:
    """--min-reliability 99.9% rents a server that reliable; lower floors rent cheaper."""
    strict = _rented(run, *HEADLINE, "--min-reliability", "99.9%")
    assert strict[1] >= 0.999
    loose_args = (*HEADLINE, "--min-reliability", "0.8", "--min-rating", "1", "--min-ratings", "50")
    assert _rented(run, *loose_args)[1] >= 0.8


def test_nothing_above_the_floors_is_exit_4_saying_how_to_widen(run: Cli) -> None:
    """When every match falls below the floors, the error counts them and names the options."""
    result = run(*HEADLINE, "reliability<0.95", "--min-reliability", "95%")
    assert result.exit_code == 4
    line = result.stderr.strip()
    assert "no available server matches gpu=4090 gpus=1 reliability<0.95 and takes BTC" in line
    assert re.search(r"; \d+ more match below the quality floors \(reliability >= 95%", line)
    assert "--any-quality" in line and len(result.stderr.splitlines()) == 1


def test_a_bad_host_is_skipped_by_rent_cheapest(run: Cli) -> None:
    """The server rent --cheapest would rent, once on the bad-host list, is passed over."""
    best = run.json(*HEADLINE, "--dry-run")["body"]["renting_server"]
    BadHosts().add_server(best, reason="gpu_count fail: listed 1, found 0")
    result = run(*HEADLINE, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["body"]["renting_server"] != best
    assert "1 on the bad-host list" in result.stderr


def test_a_server_not_taking_the_currency_is_never_rented(run: Cli) -> None:
    """rent --cheapest --currency clore rents only servers that take CLORE and list it."""
    sid, _ = _rented(run, *HEADLINE, "--currency", "clore")
    server = next(s for s in run.client.marketplace() if s.id == sid)
    assert server.accepts("CLORE-Blockchain")
    assert server.price_per_day("CLORE-Blockchain") is not None


@pytest.mark.parametrize("command", [("rent",), ("watch",)])
def test_the_floors_and_their_defaults_are_in_help(run: Cli, command: tuple[str, ...]) -> None:
    """--help names each floor option with its default."""
    text = " ".join(run(*command, "--help").stdout.split())
    assert "--min-reliability R" in text and "(default 0.9, i.e. 90%)" in text
    assert "--min-rating STARS" in text and "(default 2.5)" in text
    assert "--min-ratings N" in text and "(default 3)" in text
    assert "--any-quality" in text


def test_the_help_defaults_are_the_library_defaults() -> None:
    """The CLI spells the defaults without importing the library; they must agree."""
    assert (
        _quality.DEFAULT_MIN_RELIABILITY,
        _quality.DEFAULT_MIN_RATING,
        _quality.DEFAULT_MIN_RATINGS,
    ) == (choice.DEFAULT_MIN_RELIABILITY, choice.DEFAULT_MIN_RATING, choice.DEFAULT_MIN_RATINGS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rent", "18811", "--any-quality", "--yes"], "--any-quality applies to --cheapest only"),
        (["rent", "18811", "--min-rating", "3", "--yes"], "--min-rating applies to --cheapest"),
        ([*HEADLINE, "--any-quality", "--min-rating", "3"], "drop --min-rating"),
        ([*HEADLINE, "--min-reliability", "95"], "'95' is outside 0..1"),
        ([*HEADLINE, "--min-reliability", "high"], "not a reliability (0.9 or 90%)"),
        ([*HEADLINE, "--min-rating", "6"], "'6' is not a rating (0 to 5)"),
        ([*HEADLINE, "--min-ratings", "-1"], "--min-ratings"),
    ],
)
def test_bad_floor_options_exit_2_before_anything_is_sent(
    run: Cli, args: list[str], message: str
) -> None:
    """Malformed or misplaced floors are one line, exit 2, and nothing is rented."""
    result = run(*args)
    assert (result.exit_code, message in result.stderr) == (2, True), result.stderr
    assert run.client.my_orders() == []


def test_watch_matches_only_servers_above_the_floors(run: Cli) -> None:
    """A watch reports the servers rent --cheapest could choose; --any-quality all of them."""
    price = "0.00006btc"
    args = ("watch", "gpu=4090", "gpus=1", "--max-price", price, "--for", "15s", "--jsonl")

    def matched(*extra: str) -> list[int]:
        result = run(*args, *extra)
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.stdout.splitlines()]
        return [e["server_id"] for e in events if e["kind"] == "match"]

    floored, everything = matched(), matched("--any-quality")
    servers = {s.id: s for s in run.client.marketplace()}
    assert floored and all(float(servers[sid].reliability) >= 0.9 for sid in floored)
    assert set(floored) < set(everything)
    assert min(float(servers[sid].reliability) for sid in everything) < 0.5
