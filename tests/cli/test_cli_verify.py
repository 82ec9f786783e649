"""`clore verify ORDER`, `rent --verify` and `clore hosts bad`, on the in-process sandbox's
real machines (SSH on 127.0.0.1, the sandbox's `delivers` lies): the report as a table or
JSON (exit 0 ok/warn, 1 fail), never cancelling an order not created here unless told,
cancelling a liar inside the free window with its findings (no creation fee, host on the
bad-host list) and moving on to the next candidate, asking past the window, and the
still-billing line whenever a failing order is left running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli

from clore import Clore
from clore.rentals.verify import BadHosts, Report
from clore.sandbox import Sandbox
from clore.sandbox.backend.rules import CREATION_FEE_AFTER

FEWER = {"gpu_count": 0}


def recorded_issue(sandbox: Sandbox, order_id: int) -> str | None:
    """The issue text the sandbox stored with the order's cancel."""
    user = sandbox.backend.authenticate(sandbox.demo_key)
    assert user is not None
    views = [v for v in sandbox.backend.my_orders(user, True) if v.order.id == order_id]
    return views[0].order.issue


def creation_fee_charged(sandbox: Sandbox, order_id: int) -> float:
    from clore.sandbox.backend.billing import creation_fee_charged as charged

    record = sandbox.backend.order_record(order_id)
    assert record is not None
    return charged(record)


def running(client: Clore, order_id: int) -> bool:
    return any(o.id == order_id for o in client.my_orders())


def first_candidate(run: Cli, *words: str) -> int:
    """The server `rent --cheapest WORDS` would try first (its dry run's body)."""
    doc = run.json("rent", "--cheapest", *words, "--dry-run")
    server: int = doc["body"]["renting_server"]
    return server


def _rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines()[2:-1]}


def test_verify_prints_the_table_and_exits_0_on_an_honest_machine(run: Cli) -> None:
    """An honest machine: one row per check, the verdict line, exit 0; --json is the
    report, schema version 1."""
    order = run.rent_cheapest_4090()
    result = run("verify", str(order["id"]), "--no-load")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "verdict", "listed", "measured", "reason"]
    assert _rows(result.stdout)["gpu_count"][1:4] == ["ok", "1", "1"]
    assert lines[-1].startswith(f"verdict: ok (order {order['id']}") or lines[-1].startswith(
        f"verdict: warn (order {order['id']}"
    )
    doc = run("verify", str(order["id"]), "--no-load", "--json")
    assert doc.exit_code == 0, doc.output
    report = Report.from_json(doc.stdout)
    assert (report.v, report.order_id, report.passed) == (1, order["id"], True)
    assert report.check("throughput").verdict == "skip"  # type: ignore[union-attr]


def test_a_failing_order_not_created_here_is_reported_not_cancelled(run: Cli) -> None:
    """A machine with fewer GPUs: exit 1, gpu_count fails with listed and measured values,
    a hint how to cancel; the order still runs and no host is listed."""
    order = run.rent_cheapest_4090()
    run.sandbox.set_server(order["si"], delivers=FEWER)
    result = run("verify", str(order["id"]), "--no-load")
    assert result.exit_code == 1, result.output
    assert _rows(result.stdout)["gpu_count"][1:3] == ["fail", "1"]
    assert "1 fewer than listed" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verdict: fail")
    assert f"`clore verify {order['id']} --cancel-if-bad` cancels it" in result.stderr
    assert running(run.client, order["id"])
    assert BadHosts().load().servers == ()


def test_cancel_if_bad_cancels_inside_the_window_with_the_findings(run: Cli) -> None:
    """--cancel-if-bad on a failing order 15 s old: cancelled with the findings as the
    issue (recorded by the sandbox), the host on the bad-host list, no creation fee."""
    order = run.rent_cheapest_4090()
    run.sandbox.set_server(order["si"], delivers=FEWER)
    result = run("verify", str(order["id"]), "--no-load", "--cancel-if-bad", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "fail" and doc["settlement"]["outcome"] == "cancelled"
    issue = recorded_issue(run.sandbox, order["id"])
    assert issue == doc["settlement"]["issue"]
    assert "gpu_count fail: listed 1, measured none readable, 1 fewer than listed" in issue
    assert "inside the free window (no creation fee)" in result.stderr
    assert not running(run.client, order["id"])
    run.sandbox.advance(CREATION_FEE_AFTER + 60)
    assert creation_fee_charged(run.sandbox, order["id"]) == 0.0
    found = BadHosts().is_bad(order["si"])
    assert found is not None and found.entry.order_id == order["id"]


def test_past_the_window_it_asks_and_a_no_leaves_it_billing(run: Cli) -> None:
    """Past the free window --cancel-if-bad asks; no: the still-billing line, the order
    runs; --yes with a GPU check failed: cancelled as asked."""
    order = run.rent_cheapest_4090()
    run.sandbox.set_server(order["si"], delivers=FEWER)
    run.sandbox.advance(600)
    declined = run("verify", str(order["id"]), "--no-load", "--cancel-if-bad", input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "past the free window" in declined.stderr
    assert (
        f"not cancelled: order {order['id']} is still running and billing: "
        f"`clore cancel {order['id']}` stops it" in declined.stderr
    )
    assert running(run.client, order["id"])
    done = run("verify", str(order["id"]), "--no-load", "--cancel-if-bad", "--yes")
    assert done.exit_code == 1, done.output
    assert "cancelled as asked (past the free window: the creation fee is charged)" in (done.stderr)
    assert not running(run.client, order["id"])


@pytest.mark.no_default_key
def test_verify_without_any_way_to_log_in_exits_2(run: Cli) -> None:
    """An order rented elsewhere (its password unknown here), no key, no agent: exit 2
    saying what to give; --ssh-password then logs in."""
    server = run.client.marketplace()
    free = next(
        s for s in server if not s.rented and s.specs.gpu_count == 1 and s.accepts("bitcoin")
    )
    made = run.client.create_order(free.id, "img", ports={"22": "tcp"}, ssh_password="Pass1234")
    run.client.wait_for_order(made.id, timeout=120)
    refused = run("verify", str(made.id))
    assert refused.exit_code == 2
    assert "no way to log in to order" in refused.stderr and "--ssh-password" in refused.stderr
    logged_in = run("verify", str(made.id), "--no-load", "--ssh-password", "Pass1234")
    assert logged_in.exit_code == 0, logged_in.output


def test_rent_verify_needs_a_way_to_log_in_before_anything_is_sent(run: Cli) -> None:
    """--verify with a key given inline (no private half known, no agent) or without
    port 22: exit 2, no order."""
    public = (Path.home() / ".ssh" / "id_ed25519.pub").read_text().strip()
    inline = run("rent", "--cheapest", "gpu=4090", "--verify", "--yes", "--ssh-key", public)
    assert inline.exit_code == 2 and "--verify must log in" in inline.stderr
    no_ssh = run("rent", "--cheapest", "gpu=4090", "--verify", "--yes", "--ports", "8888:http")
    assert no_ssh.exit_code == 2 and "forward port 22" in no_ssh.stderr
    assert run.client.my_orders() == []


@pytest.mark.slow
def test_rent_cheapest_verify_moves_past_a_liar_to_an_honest_server(run: Cli) -> None:
    """The cheapest candidate lies (another GPU model): its order is cancelled inside the
    free window with the findings (no creation fee), its host listed, and the next one is
    rented, verified and kept; `hosts bad` lists the liar and --cheapest skips it."""
    words = ("gpu=4090", "gpus=1")
    liar = first_candidate(run, *words)
    run.sandbox.set_server(liar, delivers={"gpu": "NVIDIA GeForce RTX 3060"})
    result = run("rent", "--cheapest", *words, "--verify", "--yes", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (rejected,) = doc["rejected"]
    assert rejected["server_id"] == liar and rejected["bad_host"] is True
    assert doc["order"]["si"] != liar and doc["verification"]["verdict"] in ("ok", "warn")
    assert doc["verification"]["order_id"] == doc["order"]["id"]
    assert "gpu_model fail" in rejected["issue"]
    assert recorded_issue(run.sandbox, rejected["order_id"]) == rejected["issue"]
    assert "inside the free window (no creation fee)" in result.stderr
    assert f"trying server {doc['order']['si']} next" in result.stderr
    run.sandbox.advance(CREATION_FEE_AFTER + 60)
    assert creation_fee_charged(run.sandbox, rejected["order_id"]) == 0.0
    listed = run.json("hosts", "bad")
    assert [e["id"] for e in listed["servers"]] == [liar]
    assert "gpu_model" in listed["servers"][0]["checks"]
    assert first_candidate(run, *words) != liar


def test_rent_id_verify_on_a_liar_cancels_and_exits_1(run: Cli) -> None:
    """rent ID --verify on a server with fewer GPUs: cancelled in the window, exit 1, no
    order left running (so no still-billing line)."""
    server = first_candidate(run, "gpu=4090", "gpus=1")
    run.sandbox.set_server(server, delivers=FEWER)
    result = run("rent", str(server), "--verify", "--yes")
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("clore: error: 1 machine(s) failed verification and were cancelled")
    assert "still running" not in result.stderr
    assert run.client.my_orders() == []


class LateReady:
    """A client whose orders become ready only after the free window (a slow boot)."""

    def __init__(self, client: Clore, sandbox: Sandbox) -> None:
        self._client = client
        self._sandbox = sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def wait_for_order(self, order_id: int, **kwargs: Any) -> Any:
        self._client.wait_for_order(order_id, **kwargs)
        self._sandbox.advance(600)
        return self._client.get_order(order_id)


def test_rent_verify_past_the_window_asks_and_leaves_a_kept_order_billing(run: Cli) -> None:
    """Ready only after the free window and failing: rent --verify asks; no: exit 1 with
    the still-billing line, the order runs."""
    server = first_candidate(run, "gpu=4090", "gpus=1")
    run.sandbox.set_server(server, delivers=FEWER)
    slow = LateReady(run.client, run.sandbox)
    result = run("rent", str(server), "--verify", client=slow, input="y\nn\n")
    assert result.exit_code == 1, result.output
    (order,) = run.client.my_orders()
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"clore: error: order {order.id} failed verification (gpu_count")
    assert line.endswith(
        f"order {order.id} is still running and billing: `clore cancel {order.id}` stops it, "
        f"`clore order {order.id}` shows it"
    )


def test_rent_verify_yes_past_the_window_cancels_a_gpu_failure(run: Cli) -> None:
    """Past the window with --yes: the rule cancels when a GPU check failed; exit 1 says
    the creation fee was charged, nothing is left running."""
    server = first_candidate(run, "gpu=4090", "gpus=1")
    run.sandbox.set_server(server, delivers=FEWER)
    result = run(
        "rent", str(server), "--verify", "--yes", client=LateReady(run.client, run.sandbox)
    )
    assert result.exit_code == 1, result.output
    assert (
        "cancelled as asked (past the free window: the creation fee is charged)"
        in (result.stderr.strip().splitlines()[-1])
    )
    assert run.client.my_orders() == []


def test_rent_verify_says_billing_when_the_cancel_is_refused(run: Cli) -> None:
    """Failing inside the window but the API refuses the cancel: exit 1, the cancel's
    error and the still-billing line."""
    server = first_candidate(run, "gpu=4090", "gpus=1")
    run.sandbox.set_server(server, delivers=FEWER)
    run.sandbox.inject_fault("cancel_order", "db_error", count=5)
    result = run("rent", str(server), "--verify", "--yes")
    assert result.exit_code == 1, result.output
    (order,) = run.client.my_orders()
    line = result.stderr.strip().splitlines()[-1]
    assert f"order {order.id} failed verification and cancelling it failed" in line
    assert f"order {order.id} is still running and billing" in line


def test_hosts_bad_lists_forgets_and_clears(run: Cli) -> None:
    """hosts bad lists servers and owners; --forget, --forget-owner and --clear remove
    them; an id not on the list is exit 4; two actions at once exit 2."""
    hosts = BadHosts()
    hosts.add_server(11, reason="gpu_count: 1 fewer than listed", owner=7, order_id=3,
                     checks=["gpu_count"])  # fmt: skip
    hosts.add_server(12, reason="pcie_width: x4", owner=8)
    hosts.add_owner(9, reason="every server lies")
    table = run("hosts", "bad")
    assert table.exit_code == 0, table.output
    assert [line.split()[:3] for line in table.stdout.splitlines()[1:]] == [
        ["server", "11", "7"], ["server", "12", "8"], ["owner", "9", "—"],
    ]  # fmt: skip
    forgot = run.json("hosts", "bad", "--forget", "11")
    assert forgot["removed"] == [{"id": 11, "owner": 7, "reason": "gpu_count: 1 fewer than listed"}]
    assert [e["id"] for e in forgot["servers"]] == [12]
    assert run("hosts", "bad", "--forget", "11").exit_code == 4
    assert [e["id"] for e in run.json("hosts", "bad", "--forget-owner", "8")["servers"]] == []
    assert run("hosts", "bad", "--forget", "12", "--clear").exit_code == 2
    cleared = run.json("hosts", "bad", "--clear")
    assert (cleared["servers"], cleared["owners"]) == ([], [])
    assert run("hosts", "bad").stdout.strip() == "The bad-host list is empty."
