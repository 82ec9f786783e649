"""``clore --explain``: every command prints its requests (secrets redacted), sends none
that changes anything, and ends with exit 0; reads work as usual."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import Cli
from click.testing import Result

from clore import Clore
from clore.sandbox import BASE_URL

PASSWORD = "Zq7secretPw"
TOKEN = "jtokSecret42"


class Recording(httpx.BaseTransport):
    """The sandbox's transport, keeping the endpoint of every request that reached it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.endpoints: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.endpoints.append(request.url.path.rsplit("/", 1)[-1])
        return self.inner.handle_request(request)


def state(run: Cli) -> Any:
    """What a mutating command could change: the demo user's orders (ended or not, and
    their prices) and the configuration of the servers they host."""
    orders = sorted(
        (o.id, o.expired, float(o.price)) for o in run.client.my_orders(include_completed=True)
    )
    configs = [run.client.server_config(s.name) for s in run.client.my_servers()[:2]]
    return orders, configs


def explained(run: Cli, *args: str) -> tuple[Result, list[str]]:
    """``clore --explain ARGS`` through a recording client: the result and the endpoints
    that reached the sandbox. CLORE_EXPLAIN, which --explain sets, is restored after."""
    wire = Recording(run.sandbox.transport())
    run.clock.advance(1.0)  # a fresh client: past the key's 1 s interval, so no 429 retries
    with Clore(run.sandbox.demo_key, base_url=BASE_URL, transport=wire, clock=run.clock) as c:
        result = run("--explain", *args, client=c, env={"CLORE_EXPLAIN": None})
    return result, wire.endpoints


def spot_order(run: Cli, factor: float = 2.0) -> tuple[int, int, float]:
    """A spot bid of the demo user on the cheapest single-4090 server: (order, server, bid)."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    bid = round(server["price"]["spot"]["bitcoin"] * factor, 8)
    order = run.client.create_order(server["id"], "img", order_type="spot", spotprice=bid)
    return order.id, server["id"], bid


def on_demand_order(run: Cli) -> int:
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]
    return run.client.create_order(server["id"], "img", ssh_password="abc123").id


def _rent(run: Cli) -> list[str]:
    return ["rent", "18811", "--yes", "--ssh-password", PASSWORD, "--jupyter-token", TOKEN]


def _rent_cheapest(run: Cli) -> list[str]:
    return ["rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", "--ssh-password", PASSWORD]


def _spot_bid(run: Cli) -> list[str]:
    return ["spot", "bid", "18811", "--price", "0.001btc", "--yes", "--ssh-password", PASSWORD]


def _spot_price(run: Cli) -> list[str]:
    oid, _, bid = spot_order(run)
    return ["spot", "price", str(oid), f"{bid * 1.5:.8f}"]


def _spot_keep(run: Cli) -> list[str]:
    oid, server, bid = spot_order(run)
    rival_key, _ = run.sandbox.create_user("rival", {"bitcoin": 1.0})
    with run.sandbox.client(api_key=rival_key) as rival:
        rival.create_order(server, "img", order_type="spot", spotprice=bid * 1.2)
    return ["spot", "keep", str(oid), "--max-bid", f"{bid * 3:.8f}btc", "--for", "5m"]


def _cancel(run: Cli) -> list[str]:
    return ["cancel", str(on_demand_order(run)), "--issue", "slow GPU"]


def _guard(run: Cli) -> list[str]:
    oid = on_demand_order(run)
    run.sandbox.advance(7200)
    return ["guard", "--order", str(oid), "--max-time", "1h", "--once"]


def _host_set(run: Cli) -> list[str]:
    name = run.client.my_servers()[0].name
    return ["host", "set", name, "--mrl", "48", "--hidden"]


def _watch_rent(run: Cli) -> list[str]:
    return [
        "watch", "gpu=4090", "gpus=1", "--max-price", "1btc", "--rent", "--yes",
        "--any-quality", "--interval", "10", "--for", "1m", "--ssh-password", PASSWORD,
    ]  # fmt: skip


MUTATING: dict[str, tuple[Callable[[Cli], list[str]], str]] = {
    "rent": (_rent, "create_order"),
    "rent --cheapest": (_rent_cheapest, "create_order"),
    "spot bid": (_spot_bid, "create_order"),
    "spot price": (_spot_price, "set_spot_price"),
    "spot keep": (_spot_keep, "set_spot_price"),
    "cancel": (_cancel, "cancel_order"),
    "guard": (_guard, "cancel_order"),
    "host set": (_host_set, "set_server_settings"),
    "watch --rent": (_watch_rent, "create_order"),
}


@pytest.mark.parametrize("name", list(MUTATING))
def test_a_mutating_command_sends_nothing_and_prints_what_it_would(run: Cli, name: str) -> None:
    """Under --explain the command's changing request is printed (method, URL, body) and
    never reaches the sandbox, the sandbox's state is unchanged, it ends with exit 0 and
    "explained; nothing was changed", and no secret is printed."""
    arrange, endpoint = MUTATING[name]
    args = arrange(run)
    before = state(run)
    result, reached = explained(run, *args)
    assert result.exit_code == 0, result.output
    assert endpoint not in reached
    assert not {"create_order", "cancel_order", "set_spot_price", "set_server_settings"} & set(
        reached
    )
    assert state(run) == before
    lines = result.stdout.splitlines()
    assert f"explain: POST {BASE_URL}/{endpoint}  auth: ***  (changes something: not sent)" in lines
    assert lines[-1] == f"explained; nothing was changed (POST {endpoint} not sent)"
    output = result.stdout + result.stderr
    for secret in (PASSWORD, TOKEN, run.sandbox.demo_key):
        assert secret not in output


def test_rent_shows_its_body_with_the_secrets_redacted(run: Cli, default_ssh_key: Path) -> None:
    """The create_order body is printed as JSON: the server, the password and token as
    ***, the SSH key shortened."""
    result, _ = explained(run, *_rent(run), "--ssh-key", str(default_ssh_key))
    assert result.exit_code == 0, result.output
    start = result.stdout.index("(changes something: not sent)\n") + len(
        "(changes something: not sent)\n"
    )
    end = result.stdout.index("explained; nothing was changed")
    body = json.loads(result.stdout[start:end])
    assert (body["renting_server"], body["ssh_password"], body["jupyter_token"]) == (
        18811,
        "***",
        "***",
    )
    assert body["ssh_key"].startswith("ssh-ed25519 AAAAC3Nz…")
    assert len(body["ssh_key"]) < 60


def test_explain_json_is_one_document_with_the_requests(run: Cli) -> None:
    """--explain --json: one document: what was not sent, every request, no result."""
    oid = on_demand_order(run)
    result, reached = explained(run, "cancel", str(oid), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["explained"], doc["changed"], doc["result"]) == (True, False, None)
    assert [r["endpoint"] for r in doc["not_sent"]] == ["cancel_order"]
    assert doc["not_sent"][0]["body"] == {"id": oid}
    assert [(r["endpoint"], r["sent"]) for r in doc["requests"]] == [
        ("my_orders", True),
        ("cancel_order", False),
    ]
    assert reached == ["my_orders"]
    assert not run.client.get_order(oid).expired


def test_a_stream_under_explain_json_stays_json_lines(run: Cli) -> None:
    """watch --rent --json under --explain: every stdout line is one JSON object, the
    last the explanation, naming the create_order not sent."""
    result, _ = explained(run, *_watch_rent(run), "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["kind"] for line in lines[:-1]} == {"match", "renting"}
    assert [r["endpoint"] for r in lines[-1]["not_sent"]] == ["create_order"]
    assert lines[-1]["not_sent"][0]["body"]["ssh_password"] == "***"


def test_a_read_only_command_works_as_usual_and_lists_its_requests(run: Cli) -> None:
    """orders under --explain prints the same listing, plus one line per request sent."""
    on_demand_order(run)
    plain = run("orders", "--all")
    result, reached = explained(run, "orders", "--all")
    assert (plain.exit_code, result.exit_code) == (0, 0)
    shown = [line for line in result.stdout.splitlines() if line.startswith("explain: ")]
    rest = [line for line in result.stdout.splitlines() if not line.startswith("explain: ")]
    assert rest == plain.stdout.splitlines()
    assert shown == [
        f"explain: GET {BASE_URL}/my_orders?return_completed=true  auth: ***  (a read: sent)"
    ]
    assert reached == ["my_orders"]
    assert "explained; nothing was changed" not in result.stdout


def test_a_read_only_json_command_keeps_its_document_as_the_result(run: Cli) -> None:
    """wallets --json under --explain: the explanation's result is wallets' own document."""
    plain = run.json("wallets")
    result, _ = explained(run, "wallets", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["result"] == plain
    assert (doc["not_sent"], [r["endpoint"] for r in doc["requests"]]) == ([], ["wallets"])


@pytest.mark.parametrize("command", [["ssh", "1"], ["config", "show"], ["sandbox", "info"]])
def test_commands_acting_outside_the_api_are_refused(run: Cli, command: list[str]) -> None:
    """ssh, config, sandbox ... act where explain cannot hold them back: exit 2, one line,
    nothing sent."""
    result, reached = explained(run, *command)
    assert result.exit_code == 2
    assert result.stderr.startswith("clore: error: --explain covers API requests only; ")
    assert len(result.stderr.splitlines()) == 1
    assert reached == []


def test_clore_explain_in_the_environment_is_explain(run: Cli) -> None:
    """CLORE_EXPLAIN=1 (what --explain sets for hooks' clore commands) explains too."""
    oid = on_demand_order(run)
    result = run("cancel", str(oid), env={"CLORE_EXPLAIN": "1"})
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1]
    assert last == "explained; nothing was changed (POST cancel_order not sent)"
    assert not run.client.get_order(oid).expired


def test_the_client_leaves_explain_mode_with_the_invocation(run: Cli) -> None:
    """An injected client is explained for the run only: afterwards it sends again."""
    oid = on_demand_order(run)
    result = run("--explain", "cancel", str(oid), env={"CLORE_EXPLAIN": None})
    assert result.exit_code == 0, result.output
    assert run.client.explain is None
    run.client.cancel_order(oid)
    assert run.client.get_order(oid).expired


@pytest.mark.slow
def test_explain_in_a_real_process_changes_nothing(tmp_path: Path) -> None:
    """`clore --sandbox --explain rent ...` as a process: exit 0, the request on stdout,
    and the embedded sandbox has no order afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    clore = [sys.executable, "-m", "clore", "--sandbox"]
    done = subprocess.run(
        [*clore, "--explain", "rent", "18811", "--yes", "--ssh-password", PASSWORD],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "explained; nothing was changed (POST create_order not sent)"
    )
    assert PASSWORD not in done.stdout + done.stderr
    after = subprocess.run(
        [*clore, "orders", "--all", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["orders"] == []


def test_an_explained_watch_leaves_no_rental_intent_behind(run: Cli) -> None:
    """watch --rent under --explain voids the intent it wrote: the same watch run for
    real afterwards rents (the explained run is no rental in its ledger)."""
    first, _ = explained(run, *_watch_rent(run))
    assert first.exit_code == 0, first.output
    run.clock.advance(1.0)
    real = run(*_watch_rent(run), "--json")
    assert real.exit_code == 0, real.output
    kinds = [json.loads(line)["kind"] for line in real.stdout.splitlines()]
    assert "rented" in kinds
    assert len(run.client.my_orders()) == 1
