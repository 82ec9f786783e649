"""Budget guards on clore rent and clore spot bid: --max-spend, --max-time and --guard."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import Cli

from clore.cli._format import duration
from clore.market import format_amount
from clore.workflows import Limits, registered_limits, workflows_dir


def test_rent_registers_its_limits_for_clore_guard(run: Cli) -> None:
    """rent --max-spend/--max-time records the limits for the order and says who enforces them."""
    result = run("rent", "18811", "--yes", "--max-spend", "0.0001btc", "--max-time", "8h")
    assert result.exit_code == 0, result.output
    (order,) = run.client.my_orders()
    assert registered_limits() == {order.id: Limits(max_spend=0.0001, max_time=28800.0)}
    spend = format_amount(0.0001, "bitcoin")
    assert f"Limits for order {order.id}: spend up to {spend} BTC" in result.stderr
    assert f"running time up to {duration(28800.0)}" in result.stderr
    assert "enforced only while a guard runs" in result.stderr
    assert "clore guard --all" in result.stderr


def test_rent_json_reports_the_limits(run: Cli) -> None:
    """--json: "limits" holds max_spend (order currency) and max_time (seconds), else null."""
    doc = run.json("rent", "18811", "--yes", "--max-time", "90m")
    assert doc["limits"] == {"max_spend": None, "max_time": 5400.0}
    assert run.json("rent", "16020", "--yes")["limits"] is None


def test_a_spend_limit_in_usd_is_converted_to_the_order_currency(run: Cli) -> None:
    """--max-spend 5usd on a bitcoin order is stored in bitcoin at the API's USD rates."""
    doc = run.json("rent", "18811", "--yes", "--max-spend", "5usd")
    assert doc["limits"]["max_spend"] == pytest.approx(5 / 68022.87)


def test_clore_guard_all_enforces_limits_registered_by_rent(run: Cli) -> None:
    """After rent --max-time, `clore guard --all --once` cancels the order near its limit."""
    oid = run.json("rent", "18811", "--yes", "--max-time", "2h")["order"]["id"]
    run.sandbox.advance(3600)
    early = run("guard", "--all", "--once")
    assert early.exit_code == 0 and not run.client.get_order(oid).expired
    run.sandbox.advance(3600 - 30)
    late = run("guard", "--all", "--once")
    assert late.exit_code == 0, late.output
    assert "guard_cancelled" in late.stdout  # an event is a result
    assert run.client.get_order(oid).expired
    assert registered_limits() == {}


def test_rent_guard_enforces_the_limit_in_the_foreground(run: Cli) -> None:
    """--guard stays until the order ends and cancels it one check before --max-time;
    with --json its events are progress (stderr, with -v off a terminal)."""
    result = run("-v", "rent", "18811", "--yes", "--max-time", "30m", "--guard", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # one document, printed before the guard starts
    order = run.client.get_order(doc["order"]["id"])
    assert order.expired
    assert "guarding order" in result.stderr and "guard_cancelled" in result.stderr
    cancel = json.loads((workflows_dir() / "guard.log").read_text().splitlines()[-1])
    assert cancel["order_id"] == order.id
    age = cancel["at"] - float(order.ct)
    assert 1800 - 60 <= age < 1800  # cancelled within one check before the limit


def test_rent_guard_prints_its_events_as_results(run: Cli) -> None:
    """Without --json, the foreground guard's events are results on stdout, after the
    rent's own; the line it starts with is a note on stderr."""
    result = run("rent", "18811", "--yes", "--max-time", "30m", "--guard")
    assert result.exit_code == 0, result.output
    events = [line for line in result.stdout.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert [line.split()[2] for line in events] == ["guard_cancelled"]
    assert result.stdout.splitlines()[-1] == events[-1]
    assert "guarding order" in result.stderr and "guard_cancelled" not in result.stderr


def test_guard_without_a_limit_is_refused_before_renting(run: Cli) -> None:
    """--guard alone is a usage error, and nothing is rented."""
    result = run("rent", "18811", "--yes", "--guard")
    assert result.exit_code == 2
    assert result.stderr.strip() == "clore: error: --guard needs --max-spend or --max-time"
    assert run.client.my_orders() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-time", "soon"], "--max-time: bad duration 'soon'"),
        (["--max-time", "0"], "--max-time: must be greater than zero"),
        (["--max-spend", "lots"], "--max-spend: bad price 'lots'"),
        (["--max-spend", "0.01btc/h"], "--max-spend: a total amount, not a rate"),
    ],
)
def test_malformed_limits_exit_2_and_rent_nothing(run: Cli, args: list[str], message: str) -> None:
    """A bad limit is one stderr line, exit 2, and no order."""
    result = run("rent", "18811", "--yes", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"clore: error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert run.client.my_orders() == []


def test_spot_bid_takes_the_same_limits(run: Cli) -> None:
    """spot bid --max-spend registers the limit for the new spot order."""
    doc = run.json("spot", "bid", "21317", "--price", "0.00005btc", "--yes", "--max-spend", "0.001")
    assert registered_limits() == {doc["order"]["id"]: Limits(max_spend=0.001)}


@pytest.mark.parametrize(
    "command",
    [
        ["guard", "--order", "424242", "--max-time", "1h"],
        ["guard", "--order", "424242", "--max-time", "1h", "--register"],
        ["monitor", "--order", "424242"],
    ],
)
def test_loops_refuse_an_order_that_is_not_yours(run: Cli, command: list[str]) -> None:
    """--order with an unknown id is exit 4 on one line, not a loop that ends in silence."""
    result = run(*command)
    assert result.exit_code == 4
    assert result.stderr.strip() == "clore: error: order 424242 is not among your orders"
    assert registered_limits() == {}


def test_loops_refuse_an_order_that_has_ended(run: Cli) -> None:
    """--order with an ended order is exit 1 saying so."""
    oid = run.json("rent", "18811", "--yes")["order"]["id"]
    run.client.cancel_order(oid)
    result = run("guard", "--order", str(oid), "--max-spend", "0.001")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"clore: error: order {oid} has already ended"


def test_guard_register_json_is_one_document(run: Cli) -> None:
    """guard --register --json prints the recorded limits as one JSON document."""
    oid = run.json("rent", "18811", "--yes")["order"]["id"]
    doc = run.json("guard", "--order", str(oid), "--max-time", "2h", "--register")
    assert doc == {"registered": {str(oid): {"max_spend": None, "max_time": 7200.0}}}
    assert registered_limits() == {oid: Limits(max_time=7200)}


def test_guard_without_any_limit_to_enforce_says_so(run: Cli) -> None:
    """No limits given and none registered: a warning, not a silent no-op."""
    run.json("rent", "18811", "--yes")
    result = run("guard", "--all", "--once")
    assert result.exit_code == 0, result.output
    assert "warning: no limits to enforce" in result.stderr


def test_malformed_limits_are_refused_before_any_request(run: Cli) -> None:
    """rent --cheapest with a bad --max-time exits 2 before even listing the market."""
    seen: list[str] = []
    result = run("rent", "--cheapest", "gpu=4090", "--yes", "--max-time", "soon",
                 client=_Recording(run.client, seen))  # fmt: skip
    assert result.exit_code == 2
    assert seen == []


class _Recording:
    """A client wrapper that records the names of the SDK methods called."""

    def __init__(self, client: object, seen: list[str]) -> None:
        self._client, self._seen = client, seen

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._client, name)
        if callable(attr):
            self._seen.append(name)
        return attr


def test_guard_register_merges_with_the_limits_set_at_rent(run: Cli) -> None:
    """rent --max-spend, then guard --register --max-time: both limits are registered
    (the spend is not silently dropped); the output names what is registered now."""
    oid = run.json("rent", "18811", "--yes", "--max-spend", "0.0001btc")["order"]["id"]
    result = run("guard", "--order", str(oid), "--max-time", "2h", "--register")
    assert result.exit_code == 0, result.output
    assert registered_limits() == {oid: Limits(max_spend=0.0001, max_time=7200.0)}
    assert f"limits recorded for order {oid} (merged with any before)" in result.stdout
    assert "spend up to 0.0001" in result.stdout
    doc = run.json("guard", "--order", str(oid), "--max-spend", "0.0002", "--register")
    assert doc == {"registered": {str(oid): {"max_spend": 0.0002, "max_time": 7200.0}}}


def test_guard_register_replace_drops_the_limits_before(run: Cli) -> None:
    """--replace: only the limits given stay registered; --replace alone is a usage error."""
    oid = run.json("rent", "18811", "--yes", "--max-spend", "0.0001btc")["order"]["id"]
    doc = run.json("guard", "--order", str(oid), "--max-time", "2h", "--register", "--replace")
    assert doc == {"registered": {str(oid): {"max_spend": None, "max_time": 7200.0}}}
    assert registered_limits() == {oid: Limits(max_time=7200.0)}
    alone = run("guard", "--order", str(oid), "--max-time", "1h", "--replace")
    assert alone.exit_code == 2
    assert alone.stderr.strip() == "clore: error: --replace goes with --register"
    assert registered_limits() == {oid: Limits(max_time=7200.0)}


def test_guard_list_shows_the_registered_limits_and_who_enforces_them(run: Cli) -> None:
    """guard --list: each order with its limits (in its currency), its state and whether a
    guard enforces them now (none runs here); --json the same as data."""
    oid = run.json("rent", "18811", "--yes", "--max-spend", "0.0001btc", "--max-time", "8h")[
        "order"
    ]["id"]
    ended = run.json("rent", "16020", "--yes", "--max-time", "1h")["order"]["id"]
    run.client.cancel_order(ended)
    result = run("guard", "--list")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith(str(oid)))
    assert "running" in line and f"spend up to {format_amount(0.0001, 'bitcoin')} BTC" in line
    assert f"running time up to {duration(28800.0)}" in line and "no guard running" in line
    assert "keep `clore guard --all` running" in result.stdout
    doc = run.json("guard", "--list")
    rows = {r["order_id"]: r for r in doc["limits"]}
    assert rows[oid]["max_spend"] == 0.0001 and rows[oid]["currency"] == "bitcoin"
    assert (rows[oid]["state"], rows[oid]["enforced"], rows[oid]["guards"]) == (
        "running",
        False,
        [],
    )
    assert rows[ended]["state"] == "ended"
    assert doc["guards"] == []
    only = run.json("guard", "--list", "--order", str(oid))
    assert [r["order_id"] for r in only["limits"]] == [oid]


def test_guard_list_without_limits_says_so_and_refuses_other_options(run: Cli) -> None:
    """Nothing registered: one line; --list with --all or limits is a usage error."""
    result = run("guard", "--list")
    assert (result.exit_code, result.stdout.strip()) == (0, "No limits registered.")
    bad = run("guard", "--list", "--all")
    assert bad.exit_code == 2 and "--list takes only --order" in bad.stderr
