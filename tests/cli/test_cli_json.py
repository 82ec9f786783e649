"""Every command, in table and --json form: exit 0, and --json is one JSON document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_helpers import Cli


def _setup(run: Cli) -> dict[str, Any]:
    """A ready on-demand order, a spot bid and a hosted server name to point commands at."""
    order = run.rent_cheapest_4090()
    server = run.json("market", "gpu=3090", "gpus=1", "--limit", "1")["servers"][0]
    bid = round(server["price"]["spot"]["bitcoin"] * 2, 8)
    spot = run.json("spot", "bid", str(server["id"]), "--price", f"{bid:.8f}", "--yes")
    host = run.json("host", "list")["servers"][0]["name"]
    return {
        "order": str(order["id"]),
        "server": str(order["si"]),
        "spot": str(spot["order"]["id"]),
        "raise": f"{bid * 1.2:.8f}",
        "host": host,
    }


COMMANDS = [
    ["market", "gpu=4090", "--limit", "3"],
    ["server", "{server}"],
    ["orders"],
    ["orders", "--all"],
    ["order", "{order}"],
    ["ssh", "{order}", "--print"],
    ["ssh-config"],
    ["open", "{order}", "--no-browser"],
    ["copy", "{order}:/root/x", ".", "--print", "--tool", "scp"],
    ["spot", "price", "{spot}", "{raise}"],
    ["wallets"],
    ["fees"],
    ["spend"],
    ["host", "list"],
    ["host", "config", "{host}"],
    ["host", "set", "{host}", "--mrl", "72"],
    ["config", "show"],
    ["sandbox", "advance", "60"],
    ["sandbox", "fault", "renter_fees", "db_error"],
    ["rent", "{server}", "--dry-run"],
    ["cancel", "{order}"],
    ["sandbox", "reset"],
]


@pytest.mark.parametrize("mode", ["table", "json"])
def test_every_command_in_table_and_json_form(run: Cli, mode: str) -> None:
    """Each command succeeds; with --json stdout holds exactly one JSON document."""
    ids = _setup(run)
    for template in COMMANDS:
        args = [word.format(**ids) for word in template]
        if template[:2] == ["sandbox", "fault"] and mode == "table":
            run.sandbox.clear_faults()
        result = run(*args, *(["--json"] if mode == "json" else []))
        assert result.exit_code == 0, (args, result.output)
        if mode == "json":
            json.loads(result.stdout)  # one document, nothing else
            assert result.stdout.lstrip().startswith("{")
        if args[0] == "cancel" and mode == "table":
            assert "Cancelled" in result.stdout
        if args[:2] == ["sandbox", "fault"]:
            run.sandbox.clear_faults()


def test_config_set_key_and_use_have_json_forms(run: Cli) -> None:
    """config set-key / use with --json describe what changed, with the key masked."""
    saved = run.json("config", "set-key", "--profile", "p1", input="k" * 20 + "\n")
    assert saved["profile"] == "p1" and saved["api_key"] == "kkkk…kkkk"
    assert run.json("config", "use", "p1") == {"active": "p1"}


def test_global_json_flag_works_before_the_command(run: Cli) -> None:
    """clore --json wallets is the same as clore wallets --json."""
    before = run("--json", "wallets")
    after = run("wallets", "--json")
    assert before.exit_code == after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
