"""The automation commands end to end over a small sandbox: output streams and exit codes."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from wf_sandbox import World, record

from clore.cli import cli
from clore.cli._context import AppContext


def server(sid: int, price: float, spot: float | None = None) -> dict[str, Any]:
    """A 4090 at ``price`` BTC/day on demand, mrl 24 h."""
    return record(sid, price, spot, mrl=24)


@pytest.fixture
def worlds(tmp_path: Path) -> Iterator[Any]:
    made: list[World] = []

    def make(*servers: dict[str, Any]) -> World:
        where = tmp_path / f"world-{len(made)}"
        where.mkdir()
        made.append(World(where, list(servers)))
        return made[-1]

    yield make
    for world in made:
        world.close()


def invoke(client: Any, world: World, *args: str) -> Result:
    app = AppContext(client_instance=client, clock_instance=world.clock)
    return CliRunner().invoke(cli, list(args), obj=app)


def jsonl(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_watch_rents_once_and_prints_events_as_jsonl(worlds: Any) -> None:
    """`clore watch --rent --jsonl` prints one JSON event per line and rents a single server;
    the human lines are progress then, not written on a stderr that is not a terminal."""
    world = worlds(server(1, 0.0005), server(2, 0.0003))
    world.at(25, lambda: world.set_price(2, 0.00015))
    result = invoke(world.scripted(), world, "watch", "gpus=1", "--max-price", "0.0002btc",
                    "--rent", "--yes", "--jsonl", "--ssh-password", "abc123")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    events = jsonl(result)
    assert [e["kind"] for e in events] == ["match", "renting", "rented", "done"]
    assert [o.server_id for o in world.orders()] == [2]
    assert events[2]["message"].startswith("rented server 2 as order ")
    assert "rented server 2" not in result.stderr


def test_ctrl_c_stops_a_loop_with_exit_130_and_no_traceback(worlds: Any) -> None:
    """An interrupt during the wait between polls exits 130 with a one-line note."""
    world = worlds(server(1, 0.0005))

    def interrupt() -> None:
        raise KeyboardInterrupt

    world.at(35, interrupt)
    result = invoke(world.scripted(), world, "watch", "--max-price", "0.0002", "--rent", "--yes",
                    "--ssh-password", "abc123")  # fmt: skip
    assert result.exit_code == 130
    assert "stopped (Ctrl-C); state kept in" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_budget_options_need_rent(worlds: Any) -> None:
    """--budget without --rent is a usage error (exit 2), nothing polled."""
    world = worlds(server(1, 0.0001))
    result = invoke(world.scripted(), world, "watch", "--max-price", "0.0002", "--budget", "0.001")
    assert result.exit_code == 2
    assert world.wire.seen == []


def test_monitor_keeps_running_when_the_webhook_is_down(worlds: Any) -> None:
    """With a webhook nobody listens to, the monitor reports hook_failed for each event
    (from the hooks' thread, so in any order after it) and goes on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    world = worlds(server(1, 0.0001), server(2, 0.0001))
    client = world.scripted()
    client.create_order(1, "img")
    world.clock.advance(30)  # provisioned before the monitor starts
    world.at(45, lambda: world.rent(2))
    url = f"http://127.0.0.1:{port}/"
    result = invoke(client, world, "monitor", "--webhook", url, "--webhook-retries", "0",
                    "--hook-timeout", "5", "--for", "2m", "--jsonl")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    events = jsonl(result)
    assert [e["kind"] for e in events if e["source"] == "monitor"] == [
        "tracking", "created", "ready"
    ]  # fmt: skip
    failed = [e["details"]["event_kind"] for e in events if e["kind"] == "hook_failed"]
    assert failed == ["tracking", "created", "ready"]


def test_guard_cancels_at_max_time(worlds: Any) -> None:
    """`clore guard --order ID --max-time 10m` cancels the order and exits when it is gone."""
    world = worlds(server(1, 0.0001))
    client = world.scripted()
    order = client.create_order(1, "img")
    ct = world.order(order.id).ct
    result = invoke(client, world, "guard", "--order", str(order.id), "--max-time", "10m",
                    "--interval", "60", "--runway-below", "0")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert world.order(order.id).ended
    assert "guard_cancelled" in result.stdout  # an event is a result
    (cancel,) = world.wire.sent("cancel_order")
    assert 540 <= cancel.at - ct <= 600


def test_guard_and_spot_keep_json_is_json_lines_of_their_events(worlds: Any) -> None:
    """`guard --json` and `spot keep --json` stream JSON Lines (event schema v1), as
    monitor and watch do: nothing else on stdout."""
    world = worlds(server(1, 0.0001), server(2, 0.0004, spot=0.00005))
    client = world.scripted()
    limited = client.create_order(1, "img")
    spot = client.create_order(2, "img", order_type="spot", spotprice=0.0001)
    world.bid(2, 0.00012, world.user("rival"))
    guarded = invoke(client, world, "guard", "--order", str(limited.id), "--max-time", "10m",
                     "--runway-below", "0", "--json")  # fmt: skip
    kept = invoke(client, world, "spot", "keep", str(spot.id), "--max-bid", "0.0002btc",
                  "--for", "1m", "--json")  # fmt: skip
    assert (guarded.exit_code, kept.exit_code) == (0, 0), guarded.stderr + kept.stderr
    streams = [jsonl(guarded), jsonl(kept)]
    assert [{e["v"] for e in events} for events in streams] == [{1}, {1}]
    assert [e["kind"] for e in streams[0]] == ["guard_cancelled"]
    assert "bid_raised" in [e["kind"] for e in streams[1]]
    assert [e["order_id"] for e in streams[1]][:1] == [spot.id]


def test_spot_keep_rebids_when_outbid(worlds: Any) -> None:
    """`clore spot keep` raises an outbid order's bid within the cap."""
    world = worlds(server(1, 0.0004, spot=0.00005))
    client = world.scripted()
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001)
    world.bid(1, 0.00012, world.user("rival"))
    result = invoke(client, world, "spot", "keep", str(order.id), "--max-bid", "0.0002btc",
                    "--for", "1m", "--jsonl")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    raised = [e for e in jsonl(result) if e["kind"] == "bid_raised"]
    assert [e["details"]["new"] for e in raised] == [0.0001212]
    assert world.order(order.id).price == 0.0001212


def test_watch_against_the_sandbox_rents_the_dropped_offer(tmp_path: Path) -> None:
    """`clore watch` on the in-process sandbox rents the 4090 whose price drops under the cap."""
    world = World(tmp_path)
    try:
        world.at(42, lambda: world.set_price(12, 0.00018))
        app = AppContext(sandbox_instance=world.sandbox)
        result = CliRunner().invoke(
            cli,
            ["watch", "gpu=4090", "--max-price", "0.0002btc", "--rent", "--yes", "--jsonl",
             "--ssh-password", "abc123", "--for", "10m"],
            obj=app,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        rented = [e for e in jsonl(result) if e["kind"] == "rented"]
        assert [(e["server_id"], e["details"]["price"]) for e in rented] == [(12, 0.00018)]
        assert rented[0]["order"]["si"] == 12
    finally:
        world.close()


def test_watch_rent_shows_the_generated_jupyter_token(worlds: Any) -> None:
    """Renting with an http port and no --jupyter-token: the generated token is shown on
    stderr (the API never returns it), beside the JSON Lines of --json."""
    world = worlds(server(1, 0.0001))
    result = invoke(world.scripted(), world, "watch", "--max-price", "0.0002", "--rent", "--yes",
                    "--ssh-password", "abc123", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "rented" in [e["kind"] for e in jsonl(result)]
    shown = re.search(r"^jupyter token: (\S+) ", result.stderr, re.MULTILINE)
    assert shown is not None, result.stderr
    sent = [s.body.get("jupyter_token") for s in world.wire.sent("create_order")]
    assert sent == [shown.group(1)]


def test_watch_refuses_a_malformed_amount_before_any_request(worlds: Any) -> None:
    """A bad --max-price (or --budget, --max-time) is exit 2 with nothing sent."""
    world = worlds(server(1, 0.0001))
    client = world.scripted()
    for args in (["--max-price", "cheap"], ["--max-price", "1", "--rent", "--max-time", "x"]):
        result = invoke(client, world, "watch", *args)
        assert result.exit_code == 2, result.output
    assert client.calls == [] and world.wire.seen == []


def test_watch_in_the_payment_currency_fetches_no_rates(worlds: Any) -> None:
    """Amounts in the payment currency need no USD rates: every request is a poll."""
    world = worlds(server(1, 0.0005))
    client = world.scripted()
    result = invoke(client, world, "watch", "--max-price", "0.0002btc", "--for", "35s")
    assert result.exit_code == 0, result.stderr
    assert {name for _, name, _, _ in client.calls} == {"marketplace"}
    assert client.count("marketplace") == 4
    assert {s.endpoint for s in world.wire.seen} == {"marketplace"}


def test_time_and_webhook_options_are_checked_naming_the_option(worlds: Any) -> None:
    """Bad --until/--for/--webhook values are exit 2 on one line naming the option, before
    any request."""
    world = worlds(server(1, 0.0001))
    client = world.scripted()
    cases = [
        (["watch", "--max-price", "1", "--until", "25:00"], "--until: "),
        (["watch", "--max-price", "1", "--for", "1y"], "--for: bad duration '1y'"),
        (["monitor", "--webhook", "hooks.example.com"], "--webhook: expected an http"),
    ]
    for args, message in cases:
        result = invoke(client, world, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"clore: error: {message}"), result.stderr
    assert client.calls == [] and world.wire.seen == []


def test_guard_once_exits_1_naming_the_order_whose_cancel_failed(worlds: Any) -> None:
    """`guard --once` whose cancel was refused exits 1 with one line naming the order that
    still runs, and never says it will retry."""
    world = worlds(server(1, 0.0001))
    client = world.scripted()
    order = client.create_order(1, "img")
    world.sandbox.inject_fault("cancel_order", "db_error")
    result = invoke(client, world, "guard", "--order", str(order.id), "--max-time", "1m",
                    "--once", "--runway-below", "0")  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert "retrying" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"clore: error: order {order.id} is still running"), last
    assert not world.order(order.id).ended
