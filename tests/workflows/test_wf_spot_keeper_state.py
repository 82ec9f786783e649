"""The spot keeper's state file across runs, through ``clore spot keep``: a plain keep that
saw its order end leaves state behind, and a later ``--recover`` still recovers; recovery
places bids only with ``--yes``; the cap message says what happened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from wf_sandbox import GPU_3090, World, record

from clore.cli import cli
from clore.cli._context import AppContext
from clore.workflows import workflows_dir


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(
        tmp_path,
        [
            record(1, 0.0004, 0.00005, mrl=24),
            record(2, 0.0004, 0.00006, mrl=24),
            record(3, 0.0004, 0.00004, GPU_3090, mrl=24),
        ],
    )
    yield w
    w.close()


def invoke(world: World, *args: str, client: Any = None) -> Result:
    app = AppContext(client_instance=client or world.client(), clock_instance=world.clock)
    return CliRunner().invoke(cli, list(args), obj=app)


def events(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _spot_order(world: World) -> int:
    client = world.client()
    order = client.create_order(1, "img", order_type="spot", spotprice=0.0001, ssh_password="pw1")
    client.close()
    return order.id


KEEP = ("--max-bid", "0.0002btc", "--jsonl")


def test_recover_after_a_plain_keep_that_saw_the_order_end(world: World) -> None:
    """A plain keep reports the order lost and stops, leaving its state file; a keep with
    --recover --yes afterwards bids on the cheapest matching 4090 and keeps it."""
    oid = _spot_order(world)
    world.at(40, lambda: world.end(oid))
    plain = invoke(world, "spot", "keep", str(oid), *KEEP, "--for", "10m")
    assert plain.exit_code == 0, plain.output
    assert [e["kind"] for e in events(plain)][-1] == "lost"
    assert (workflows_dir() / f"spot-{oid}.json").exists()

    again = invoke(world, "spot", "keep", str(oid), *KEEP, "--recover", "--yes", "--for", "2m")
    assert again.exit_code == 0, again.output
    kinds = [e["kind"] for e in events(again)]
    assert "recovery_failed" not in kinds, again.output
    assert kinds[:2] == ["recovering", "recovered"]
    # The lost order's server is free again and still the cheapest matching 4090.
    live = [(o.id, o.server_id, o.spot) for o in world.orders() if not o.ended]
    assert [(sid, spot) for _, sid, spot in live] == [(1, True)] and live[0][0] != oid
    assert events(again)[1]["order_id"] == live[0][0]


def test_recover_without_yes_is_refused_before_any_request(world: World) -> None:
    """--recover places new bids unattended: without --yes, one stderr line, exit 2,
    nothing sent (not even the order's lookup)."""
    oid = _spot_order(world)
    before = len(world.wire.seen)
    result = invoke(world, "spot", "keep", str(oid), *KEEP, "--recover", "--for", "2m")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clore: error: --recover"), result.stderr
    assert "--yes" in lines[0]
    assert result.stdout == ""
    assert len(world.wire.seen) == before


def test_a_bid_under_the_raised_minimum_says_so_not_outbid_at_zero(world: World) -> None:
    """The host raises the spot minimum above the cap: cap_exceeded says the bid is under
    the server's minimum and names it; no 'outbid at 0'."""
    oid = _spot_order(world)
    world.sandbox.set_server(1, price={"spot": {"bitcoin": 0.0003}})
    result = invoke(world, "spot", "keep", str(oid), *KEEP, "--for", "1m")
    assert result.exit_code == 0, result.output
    (capped,) = [e for e in events(result) if e["kind"] == "cap_exceeded"]
    message = capped["message"]
    assert "outbid" not in message, message
    assert "under the server's minimum 0.0003" in message, message
    assert "cap 0.0002000 BTC/day" in message, message


def test_a_plain_keep_after_the_loss_does_not_recover(world: World) -> None:
    """The state says the order was lost: a second plain keep is exit 1 saying so, and
    places no bid."""
    oid = _spot_order(world)
    world.at(40, lambda: world.end(oid))
    assert invoke(world, "spot", "keep", str(oid), *KEEP, "--for", "10m").exit_code == 0
    sent = len(world.wire.sent("create_order"))
    again = invoke(world, "spot", "keep", str(oid), *KEEP, "--for", "2m")
    assert again.exit_code == 1, again.output
    assert again.stderr.strip() == (
        f"clore: error: order {oid} has already ended (--recover bids on another)"
    )
    assert len(world.wire.sent("create_order")) == sent


def test_a_recovered_order_s_login_is_remembered_as_rent_remembers_it(world: World) -> None:
    """The recovery's password and Jupyter token are kept for the new order (0600), so
    `clore ssh`/`open`/`order` know them; neither is printed."""
    from clore.rentals import RentalLogins

    oid = _spot_order(world)
    world.at(40, lambda: world.end(oid))
    result = invoke(world, "spot", "keep", str(oid), *KEEP, "--recover", "--yes", "--for", "2m",
                    "--ssh-password", "Pw55555", "--ports", "22:tcp,8888:http",
                    "--jupyter-token", "JupTok9")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Pw55555" not in result.output and "JupTok9" not in result.output
    new = next(e for e in events(result) if e["kind"] == "recovered")["order_id"]
    client = world.client()
    saved = RentalLogins().get(client.get_order(new))
    client.close()
    assert saved is not None
    assert (saved.password, saved.jupyter_token) == ("Pw55555", "JupTok9")
