"""clore rent (by id and --cheapest), confirmation, dry runs, races and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli

from _stub.wire import Wire
from clore import Clore
from clore.sandbox import BASE_URL


class Racing:
    """A client whose first create_order is preceded by ``effect(server_id)``: a rival's move."""

    def __init__(self, client: Clore, effect: Callable[[int], None], times: int = 1) -> None:
        self._client = client
        self._effect = effect
        self.pending = times
        self.attempted: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_order(self, server_id: int, *args: Any, **kwargs: Any) -> Any:
        self.attempted.append(server_id)
        if self.pending:
            self.pending -= 1
            self._effect(server_id)
        return self._client.create_order(server_id, *args, **kwargs)


def _cheapest(run: Cli, *words: str) -> list[dict[str, Any]]:
    """The listed single RTX 4090s in the order `rent --cheapest` tries them: above the
    default quality floors, by price then reliability."""
    import msgspec

    from clore import Server
    from clore.rentals.choice import Floors

    doc = run.json(
        "market", "gpu=4090", "gpus=1", *words, "--limit", "0", "--refresh",
        "--sort", "price,-reliability",
    )  # fmt: skip
    servers: list[dict[str, Any]] = [
        s for s in doc["servers"] if Floors().admits(msgspec.convert(s, Server, strict=False))
    ]
    return servers[:5]


def test_rent_cheapest_waits_and_prints_ssh_and_jupyter(run: Cli) -> None:
    """--cheapest --wait --yes rents the cheapest match and prints ssh, http and jupyter."""
    cheapest = _cheapest(run)[0]
    result = run("rent", "--cheapest", "gpu=4090", "gpus=1", "--wait", "--yes")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["ssh"].strip().startswith("ssh root@") and " -p " in lines["ssh"]
    assert lines["http"].strip().startswith("http://127.0.0.1:")  # the sandbox's relay
    assert "/?token=" in lines["jupyter"]
    assert "cheapest of" in result.stderr and f"server {cheapest['id']}" in result.stderr
    assert "is ready after" in result.stderr
    orders = run.client.my_orders()
    assert [(o.si, o.ready) for o in orders] == [(cheapest["id"], True)]


def test_rent_json_reports_the_order_and_jupyter_url(run: Cli) -> None:
    """--json: the OrderRecord with derived access fields and the Jupyter URL."""
    order = run.rent_cheapest_4090("--jupyter-token", "tok123")
    assert order["derived"]["state"] == "ready"
    assert order["derived"]["ssh_command"].startswith("ssh root@")
    assert order["image"] == "cloreai/jupyter:ubuntu24.04-v2"
    doc = run.json("order", str(order["id"]))
    assert doc["order"]["tcp_ports"] and doc["order"]["pub_cluster"]


def test_rent_by_id_asks_for_confirmation_with_price_and_balance(run: Cli) -> None:
    """Without --yes a prompt shows price per day and hour and the balance; 'n' rents nothing."""
    sid = str(_cheapest(run)[0]["id"])
    declined = run("rent", sid, input="n\n")
    assert declined.exit_code == 1
    assert "BTC/day" in declined.stderr and "BTC/h" in declined.stderr
    assert "balance" in declined.stderr and "days at this price" in declined.stderr
    assert "plus the 10% renter fee" in declined.stderr
    assert "nothing was rented" in declined.stderr
    assert run.client.my_orders() == []
    accepted = run("rent", sid, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert [o.si for o in run.client.my_orders()] == [int(sid)]


def test_dry_run_prints_the_request_with_secrets_redacted(run: Cli, tmp_path: Path) -> None:
    """--dry-run shows exactly what would be sent, hides secrets and sends nothing."""
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsecretkeymaterial me@host\n")
    args = [
        "rent", "12345", "--dry-run", "--ssh-key", str(key), "--ssh-password", "hunter2x",
        "--jupyter-token", "tokentoken", "--env", "HF_TOKEN=hf_abc", "--env", "MODE=fast",
        "--ports", "22:tcp,8888:http", "--command", "echo hi", "--currency", "clore",
    ]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    for secret in ("hunter2x", "tokentoken", "hf_abc", "secretkeymaterial"):
        assert secret not in result.output
    assert "POST /v1/create_order" in result.stdout
    doc = run.json(*args)
    body = doc["body"]
    assert doc["dry_run"] is True and doc["endpoint"] == "create_order"
    assert body["renting_server"] == 12345 and body["currency"] == "CLORE-Blockchain"
    assert body["ports"] == {"22": "tcp", "8888": "http"}
    assert body["ssh_password"] == "<redacted>" and body["jupyter_token"] == "<redacted>"
    assert body["ssh_key"].startswith("<redacted: ")
    assert body["env"] == {"HF_TOKEN": "<redacted>", "MODE": "fast"}
    assert body["command"] == "echo hi" and body["type"] == "on-demand"
    assert run.client.my_orders() == []


def test_default_ssh_key_is_found_in_home(run: Cli, tmp_path: Path) -> None:
    """Without --ssh-key or --ssh-password, ~/.ssh/id_ed25519.pub is sent when present."""
    ssh = Path.home() / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "id_ed25519.pub").write_text("ssh-ed25519 AAAA me@host\n")
    body = run.json("rent", "1", "--dry-run")["body"]
    assert body["ssh_key"] == "<redacted: 24 characters>"
    without = run.json("rent", "1", "--dry-run", "--ssh-password", "abc123")["body"]
    assert "ssh_key" not in without


def test_lock_price_sends_the_listed_price(run: Cli) -> None:
    """--lock-price puts the listed price per day in required_price."""
    server = _cheapest(run)[0]
    body = run.json("rent", str(server["id"]), "--lock-price", "--dry-run")["body"]
    assert body["required_price"] == server["price"]["on_demand"]["bitcoin"]


def test_cheapest_moves_on_when_the_server_is_taken_meanwhile(run: Cli) -> None:
    """A server rented by someone else between listing and ordering: the next one is tried."""
    first, second = (s["id"] for s in _cheapest(run)[:2])
    racing = Racing(run.client, lambda sid: run.sandbox.set_server(sid, rented=True))
    result = run("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", client=racing)
    assert result.exit_code == 0, result.output
    assert racing.attempted == [first, second]
    assert f"server {first} was not rented (server-already-rented); trying server {second}" in (
        result.stderr
    )
    assert [o.si for o in run.client.my_orders()] == [second]


def test_cheapest_with_locked_price_moves_on_after_a_price_change(run: Cli) -> None:
    """--lock-price: a price change just before ordering refuses it and the next is tried."""
    first, second = (s["id"] for s in _cheapest(run)[:2])

    def reprice(sid: int) -> None:
        run.sandbox.set_server(sid, price={"on_demand": {"bitcoin": 0.001}})

    racing = Racing(run.client, reprice)
    doc = run.json(
        "rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", "--lock-price", client=racing
    )
    assert doc["skipped"] == [{"server_id": first, "error": "price-changed"}]
    assert doc["order"]["si"] == second


def test_cheapest_gives_up_after_tries(run: Cli) -> None:
    """Every candidate taken: after --tries servers the API error is reported (exit 1)."""
    racing = Racing(run.client, lambda sid: run.sandbox.set_server(sid, rented=True), times=5)
    result = run("rent", "--cheapest", "gpu=4090", "--yes", "--tries", "2", client=racing)
    assert result.exit_code == 1
    assert len(racing.attempted) == 2
    assert result.stderr.strip().splitlines()[-1].endswith("server-already-rented")


def test_renting_by_id_a_taken_server_is_an_api_error(run: Cli) -> None:
    """A rented server refuses the order: exit 1 with the API's error string."""
    server = run.json("market", "--all", "--limit", "0")["servers"]
    taken = next(s for s in server if s["rented"])
    result = run("rent", str(taken["id"]), "--yes")
    assert result.exit_code == 1
    assert "server-already-rented" in result.stderr


@pytest.mark.parametrize("spot", [["--spot"], []], ids=["--spot --bid", "--bid alone"])
def test_spot_rent_places_a_bid(run: Cli, spot: list[str]) -> None:
    """rent --bid creates a spot order at the bid, with or without --spot (--bid implies it)."""
    server = _cheapest(run)[0]
    bid = server["price"]["spot"]["bitcoin"] * 2
    doc = run.json("rent", str(server["id"]), *spot, "--bid", f"{bid:.8f}", "--yes")
    assert doc["order"]["spot"] is True
    assert doc["order"]["price"] == pytest.approx(bid)


def test_no_matching_server_is_not_found(run: Cli) -> None:
    """--cheapest with filters nothing matches exits 4."""
    result = run("rent", "--cheapest", "gpu=4090", "gpus>=64", "--yes")
    assert result.exit_code == 4
    assert "no available server matches gpu=4090 gpus>=64" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rent", "1", "--ports", "22:tcp,80:http,8888:http"], "at most one http port"),
        (["rent", "1", "--ports", "22:ftp"], "protocol must be one of"),
        (["rent", "1", "--ports", "99999:tcp"], "out of range"),
        (["rent", "1", "--env", "NOVALUE"], "expected NAME=VALUE"),
        (["rent", "1", "--ssh-key", "/no/such/key.pub"], "does not exist"),
        (["rent", "1", "--ssh-password", "not ok!", "--yes"], "only letters and digits"),
        (["rent", "1", "--spot", "--yes"], "--spot needs --bid"),
        (["rent", "1", "--bid", "0.1", "--lock-price", "--yes"], "not spot bids (--bid"),
        (["rent", "1", "--spot", "--bid", "0.1usd", "--yes"], "use --currency usd"),
        (["rent", "--yes"], "give one server ID"),
        (["rent", "--cheapest", "gpu>4090", "--yes"], "bad filter 'gpu>4090'"),
        (["rent", "1", "--currency", "eur", "--yes"], "unknown currency"),
    ],
)
def test_bad_input_exits_2_with_one_line(run: Cli, args: list[str], message: str) -> None:
    """Bad ports, env words, key files, passwords and bids: exit 2, one line, nothing sent."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert run.client.my_orders() == []


def test_missing_api_key_exits_3(tmp_path: Path) -> None:
    """Outside the sandbox, a command needing a key without one is exit 3 and sends nothing."""
    from click.testing import CliRunner

    from clore.cli import cli

    result = CliRunner().invoke(cli, ["rent", "1", "--yes"])
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "clore: error: no API key configured: run `clore config set-key` or set CLORE_API_KEY"
    )
    assert json.dumps(result.stdout) == '""'


def test_rent_without_wait_shows_the_generated_jupyter_token(run: Cli) -> None:
    """The token is generated locally and never returned by the API: rent shows it once."""
    result = run("rent", "18811", "--yes")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("jupyter token: "))
    token = line.removeprefix("jupyter token: ")
    assert len(token) == 24
    doc = run.json("rent", "16020", "--yes", "--wait")
    assert doc["jupyter_url"].endswith(f"?token={doc['jupyter_token']}")
    no_http = run.json("rent", "21317", "--yes", "--ports", "22:tcp")
    assert no_http["jupyter_token"] is None


def test_renting_an_unknown_server_with_yes_is_not_found(run: Cli) -> None:
    """rent ID --yes skips the listing; an ID the API does not know is still exit 4."""
    result = run("rent", "99999999", "--yes")
    assert result.exit_code == 4
    assert result.stderr.strip() == "clore: error: server 99999999 is not on the marketplace"


def test_cheapest_stops_after_a_may_exist_outcome_and_says_how_to_check(run: Cli) -> None:
    """The first server's create_order commits late and its resend is refused (server-offline
    meanwhile): the order may exist, so no other server is rented; stderr says how to check."""
    first, second = (s["id"] for s in _cheapest(run)[:2])
    wire = Wire(run.sandbox)
    # The first send is held (it lands a minute later); the server goes offline before the
    # resend arrives, so the resend is refused: the order may exist.
    run.sandbox.inject_fault("create_order", "late_commit", seconds=60)
    wire.before("create_order", lambda: run.sandbox.set_server(first, online=False), nth=2)
    sdk = Clore(
        run.sandbox.demo_key, base_url=BASE_URL, transport=wire.transport(), clock=run.clock
    )
    result = run("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", client=sdk)
    assert result.exit_code == 1, result.output
    assert [s.body["renting_server"] for s in wire.sent("create_order")] == [first, first]
    assert f"trying server {second}" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("clore: error: ") and "may exist" in last
    assert "not tried on another server" in last and "`clore orders`" in last
    run.sandbox.set_server(first, online=True)
    run.sandbox.advance(60)  # the first send lands: the order the error warned about
    assert [o.si for o in run.client.my_orders()] == [first]
