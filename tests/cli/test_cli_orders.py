"""clore orders (table, --json, --watch), clore order ID and clore cancel."""

from __future__ import annotations

import json
from collections.abc import Callable

from cli_helpers import Cli

from clore import Clore


def _rent(run: Cli, *extra: str) -> int:
    doc = run.json("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", *extra)
    order_id: int = doc["order"]["id"]
    return order_id


def test_orders_table_shows_state_price_spend_and_time_left(run: Cli) -> None:
    """A new order is provisioning, then ready; the row has prices with currency and spend."""
    oid = _rent(run)
    early = run("orders")
    assert early.exit_code == 0, early.output
    header, row = early.stdout.splitlines()[:2]
    assert header.split() == [
        "ID", "Server", "GPU", "Type", "BTC/day", "BTC/h", "State", "Spend", "BTC", "Time",
        "left", "SSH",
    ]  # fmt: skip
    assert row.split()[0] == str(oid) and "provisioning" in row
    run.sandbox.advance(120)
    later = run("orders").stdout.splitlines()[1]
    assert "ready" in later and "127.0.0.1:" in later  # a sandbox machine, on loopback


def test_orders_json_has_derived_state(run: Cli) -> None:
    """--json: {"orders": [OrderRecord]} with derived state and time left."""
    oid = _rent(run, "--wait")
    doc = run.json("orders")
    assert [o["id"] for o in doc["orders"]] == [oid]
    derived = doc["orders"][0]["derived"]
    assert derived["state"] == "ready" and derived["spot_active"] is None
    assert derived["time_left_seconds"] > 0
    assert set(derived) == {
        "state", "ready", "spot_active", "price_per_hour", "time_left_seconds",
        "expires_at", "ssh_command", "http_url",
    }  # fmt: skip


def test_all_includes_ended_orders(run: Cli) -> None:
    """Cancelled orders appear only with --all, as cancelled (not expired: they ended
    before their time)."""
    oid = _rent(run)
    assert run("cancel", str(oid)).exit_code == 0
    assert run.json("orders")["orders"] == []
    ended = run.json("orders", "--all")["orders"]
    assert [(o["id"], o["derived"]["state"]) for o in ended] == [(oid, "cancelled")]


def test_watch_piped_prints_one_line_per_monitor_event(run: Cli) -> None:
    """--watch off a terminal: the monitor's events as lines (tracking, then ready)."""
    oid = _rent(run)
    result = run("orders", "--watch", "--interval", "60", "--count", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    kinds = [line.split()[2] for line in lines]
    assert kinds == ["tracking", "ready"]
    assert f"tracking order {oid}" in lines[0]
    assert f"order {oid} ready: ssh root@" in lines[1]
    assert result.stderr == ""


def test_watch_json_prints_events_of_schema_v1(run: Cli) -> None:
    """--watch --json emits JSON Lines: one monitor event (schema v1) per line."""
    oid = _rent(run)
    result = run("orders", "--watch", "--count", "2", "--interval", "60", "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["kind"], e["order_id"]) for e in events] == [("tracking", oid), ("ready", oid)]
    assert {e["v"] for e in events} == {1}
    assert {e["source"] for e in events} == {"monitor"}
    assert events[1]["at"] - events[0]["at"] > 50  # the next poll, one interval later
    assert set(events[0]) == {
        "v", "source", "kind", "at", "time", "message", "order_id", "server_id", "details",
        "order", "server",
    }  # fmt: skip
    assert events[1]["order"]["id"] == oid and events[1]["details"]["ssh"].startswith("ssh ")


def test_watch_reports_cancelled_and_outbid_orders(
    run: Cli, other_user: Callable[..., Clore]
) -> None:
    """Events other than readiness reach --watch too: an outbid spot bid, a cancelled order."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    low = server["price"]["spot"]["bitcoin"] * 1.1
    mine = run.json("spot", "bid", str(server["id"]), "--price", f"{low:.8f}", "--yes")
    oid = _rent(run)

    class Meddling:
        """A client whose second my_orders comes after a rival bid and a cancel."""

        def __init__(self, client: Clore) -> None:
            self.client, self.calls = client, 0

        def __getattr__(self, name: str) -> object:
            return getattr(self.client, name)

        def my_orders(self, include_completed: bool = False) -> object:
            self.calls += 1
            if self.calls == 2:
                rival = other_user()
                rival.create_order(
                    server["id"], "ubuntu:22.04", order_type="spot", spotprice=round(low * 2, 8)
                )
                self.client.cancel_order(oid)
            return self.client.my_orders(include_completed=include_completed)

    result = run(
        "orders", "--watch", "--interval", "60", "--count", "2", "--json",
        client=Meddling(run.client),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kinds = {(e["kind"], e["order_id"]) for e in map(json.loads, result.stdout.splitlines())}
    assert ("outbid", mine["order"]["id"]) in kinds
    assert ("cancelled", oid) in kinds


def test_watch_on_a_terminal_draws_the_table_and_the_events(run: Cli) -> None:
    """On a terminal --watch keeps a live table of the orders with the latest events under it."""
    from click.testing import CliRunner

    from clore.cli import cli
    from clore.cli._context import AppContext
    from clore.cli._output import Output

    oid = _rent(run)
    app = AppContext(
        client_instance=run.client, clock_instance=run.clock, sandbox_instance=run.sandbox
    )
    app._out = Output(tty=True, err_tty=False)
    result = CliRunner().invoke(
        cli, ["orders", "--watch", "--interval", "60", "--count", "2"], obj=app,
        env={"NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    screen = result.stdout
    assert "─" in screen  # a rich table
    assert f"tracking order {oid}" in screen
    assert f"order {oid} ready" in screen
    assert "provisioning" in screen and "ready" in screen
    assert "Ctrl-C to stop" in screen


def test_count_needs_watch(run: Cli) -> None:
    """--count without --watch is a usage error."""
    result = run("orders", "--count", "2")
    assert result.exit_code == 2 and "--count needs --watch" in result.stderr


def test_outbid_spot_orders_are_shown_as_outbid(run: Cli, other_user: Callable[..., Clore]) -> None:
    """A spot bid beaten by a higher one shows as outbid."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    low = server["price"]["spot"]["bitcoin"] * 1.1
    mine = run.json("spot", "bid", str(server["id"]), "--price", f"{low:.8f}", "--yes")
    rival = other_user()
    rival.create_order(server["id"], "ubuntu:22.04", order_type="spot", spotprice=round(low * 2, 8))
    doc = run.json("orders")
    states = {o["id"]: o["derived"]["state"] for o in doc["orders"]}
    assert states[mine["order"]["id"]] == "outbid"
    assert doc["orders"][0]["derived"]["spot_active"] is False


def test_order_shows_one_order(run: Cli) -> None:
    """clore order ID: state, ssh command, HTTP URL, price per day/hour, spend, time left."""
    oid = _rent(run, "--wait")
    result = run("order", str(oid))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"Order {oid}" in text and "ready" in text
    assert "ssh root@" in text and "HTTP          http://127.0.0.1:" in text
    assert "BTC/day" in text and "BTC/h" in text and "Time left" in text


def test_unknown_order_exits_4_with_one_line(run: Cli) -> None:
    """An order id that is not yours: exit 4, one stderr line, empty stdout."""
    for args in (["order", "424242"], ["cancel", "424242"], ["ssh", "424242", "--print"]):
        result = run(*args)
        assert result.exit_code == 4, args
        assert result.stdout == ""
        assert result.stderr.strip() == "clore: error: order 424242 is not among your orders"


def test_cancel_ends_the_order_and_reports_its_final_spend(run: Cli) -> None:
    """cancel prints the final spend; the order is expired; a second cancel changes
    nothing and succeeds, as the SDK's cancel_order does (the API answers it with code 0)."""
    oid = _rent(run, "--wait")
    run.sandbox.advance(3600)
    result = run("cancel", str(oid), "--issue", "GPU fell off the bus")
    assert result.exit_code == 0, result.output
    assert f"Cancelled order {oid}" in result.stdout and "spent 0.0000" in result.stdout
    order = run.client.get_order(oid)
    assert order.expired and float(order.spend) > 0
    again = run("cancel", str(oid))
    run.client.cancel_order(oid)  # the SDK: no error either
    assert (again.exit_code, again.stderr) == (0, "")
    assert again.stdout.startswith(f"Order {oid} had already ended (cancelled); spent 0.0000")
    assert run.json("cancel", str(oid)) == {
        "cancelled": [],
        "already_ended": [run.json("orders", "--all")["orders"][0]],
    }


def test_cancel_json_lists_the_cancelled_orders(run: Cli) -> None:
    """--json: {"cancelled": [OrderRecord]} for every id."""
    first = _rent(run)
    second = _rent(run)
    doc = run.json("cancel", str(first), str(second))
    assert [(o["id"], o["expired"]) for o in doc["cancelled"]] == [(first, True), (second, True)]


def test_cancel_rejects_a_too_long_issue_before_sending(run: Cli) -> None:
    """An issue over 2048 characters is bad input (exit 2) and nothing is cancelled."""
    oid = _rent(run)
    result = run("cancel", str(oid), "--issue", "x" * 2049)
    assert result.exit_code == 2
    assert "at most 2048" in result.stderr
    assert not run.client.get_order(oid).expired


def test_watch_stops_on_ctrl_c_with_exit_130(run: Cli) -> None:
    """Ctrl-C during --watch: exit 130, the events so far printed, no traceback."""
    oid = _rent(run)

    class Interrupting:
        def __init__(self, client: Clore) -> None:
            self.client, self.calls = client, 0

        def __getattr__(self, name: str) -> object:
            return getattr(self.client, name)

        def my_orders(self, include_completed: bool = False) -> object:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.client.my_orders(include_completed=include_completed)

    result = run("orders", "--watch", "--interval", "60", client=Interrupting(run.client))
    assert result.exit_code == 130
    assert f"tracking order {oid}" in result.stdout
    assert "stopped (Ctrl-C)" in result.stderr and "Traceback" not in result.output


def test_cancel_checks_every_order_before_cancelling_any(run: Cli) -> None:
    """`cancel GOOD UNKNOWN` is exit 4 and leaves GOOD running (no half-done cancel)."""
    order = run.rent_cheapest_4090()
    result = run("cancel", str(order["id"]), "987654")
    assert result.exit_code == 4
    assert result.stderr.strip() == "clore: error: order 987654 is not among your orders"
    assert not run.client.get_order(order["id"]).expired
