"""No silent billing: every way a command that created an order stops before the user has
it ends in one stderr line saying the order is still running and billing, with the exact
commands to cancel it or to wait again; `order --wait` and `ssh --wait` resume the wait;
cancelled, expired and budget-stopped orders are told apart."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import Cli

import clore.cli.access as access
from clore import Clore


def billing(order_id: int) -> str:
    return (
        f"order {order_id} is still running and billing: `clore cancel {order_id}` stops it, "
        f"`clore order {order_id} --wait` waits for it again"
    )


class Interrupting:
    """A client whose ``wait_for_order`` (or ``create_order``) is interrupted by Ctrl-C."""

    def __init__(self, client: Clore, during: str) -> None:
        self._client = client
        self._during = during

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        if self._during == "create_order":
            raise KeyboardInterrupt
        return self._client.create_order(*args, **kwargs)

    def wait_for_order(self, *args: Any, **kwargs: Any) -> Any:
        if self._during == "wait_for_order":
            raise KeyboardInterrupt
        return self._client.wait_for_order(*args, **kwargs)


def _one_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("clore: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_a_wait_that_times_out_says_the_order_is_billing(run: Cli) -> None:
    """rent --wait --timeout 1 (provisioning takes longer): exit 1, one error line naming
    the timeout and the still-billing line; the order is indeed running."""
    result = run("rent", "--cheapest", "gpu=4090", "--yes", "--wait", "--timeout", "1")
    assert result.exit_code == 1, result.output
    (order,) = run.client.my_orders()
    line = _one_line(result.stderr)
    assert f"order {order.id} not ready after 1 s" in line
    assert line.endswith(billing(order.id))
    assert result.stdout == ""


def test_ctrl_c_during_the_wait_exits_130_with_the_billing_line(run: Cli) -> None:
    """Ctrl-C while waiting: exit 130, `interrupted; order N is still running and billing`."""
    result = run(
        "rent", "--cheapest", "gpu=4090", "--yes", "--wait",
        client=Interrupting(run.client, "wait_for_order"),
    )  # fmt: skip
    assert result.exit_code == 130, result.output
    (order,) = run.client.my_orders()
    assert _one_line(result.stderr) == f"clore: error: interrupted; {billing(order.id)}"


def test_ctrl_c_during_create_order_says_the_order_may_exist(run: Cli) -> None:
    """Ctrl-C while create_order runs: exit 130, the order may exist, `clore orders`."""
    result = run(
        "rent", "--cheapest", "gpu=4090", "--yes", client=Interrupting(run.client, "create_order")
    )
    assert result.exit_code == 130, result.output
    line = _one_line(result.stderr)
    assert "interrupted while creating the order on server" in line
    assert "it may exist and be billing; `clore orders` lists it" in line


def test_an_error_while_waiting_says_the_order_is_billing(run: Cli) -> None:
    """The API failing during the wait (every retry a 500): the error's own line and exit
    code, with the still-billing line."""
    result = run("rent", "--cheapest", "gpu=4090", "--yes")
    order = run.client.my_orders()[0]
    run.sandbox.inject_fault("my_orders", "http_500", count=20)
    waited = run("order", str(order.id), "--wait")
    assert waited.exit_code == 1, waited.output
    assert _one_line(waited.stderr).endswith(billing(order.id))
    assert result.exit_code == 0


def test_order_wait_resumes_an_interrupted_wait(run: Cli) -> None:
    """After a timed-out rent --wait, `order N --wait` waits until it is ready."""
    run("rent", "--cheapest", "gpu=4090", "--yes", "--wait", "--timeout", "1")
    (order,) = run.client.my_orders()
    doc = run.json("order", str(order.id), "--wait")
    assert doc["order"]["derived"]["state"] == "ready"
    assert doc["order"]["derived"]["ssh_command"].startswith("ssh root@127.0.0.1 -p ")


def test_ssh_wait_resumes_the_wait_then_runs_ssh(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ssh N --wait` on a provisioning order waits, then hands over to ssh."""
    calls: list[list[str]] = []
    monkeypatch.setattr(access.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(access.os, "execvp", lambda file, argv: calls.append(list(argv)))
    run("rent", "--cheapest", "gpu=4090", "--yes")
    (order,) = run.client.my_orders()
    assert run("ssh", str(order.id)).exit_code == 1  # still provisioning
    result = run("ssh", str(order.id), "--wait", "--", "true")
    assert result.exit_code == 0, result.output
    assert calls[0][0] == "ssh" and calls[0][-2:] == ["root@127.0.0.1", "true"]


def test_cancelled_expired_and_budget_stopped_are_told_apart(run: Cli) -> None:
    """One order cancelled by hand, one stopped by the budget guard, one run to its end:
    `orders --all` and `order ID` say cancelled, budget_stopped and expired."""
    cancelled = run.json("rent", "--cheapest", "gpu=4090", "--yes")["order"]["id"]
    assert run("cancel", str(cancelled)).exit_code == 0
    stopped = run.json("rent", "--cheapest", "gpu=4090", "--yes", "--max-time", "2m")
    run.sandbox.advance(150)
    assert run("guard", "--all", "--once").exit_code == 0
    states = {o["id"]: o["derived"]["state"] for o in run.json("orders", "--all")["orders"]}
    assert states == {cancelled: "cancelled", stopped["order"]["id"]: "budget_stopped"}
    assert "budget_stopped" in run("order", str(stopped["order"]["id"])).stdout
    short = run.client.create_order(
        run.client.my_orders(include_completed=True)[0].si, "img", ssh_password="Pass1234"
    )
    mrl = float(run.client.get_order(short.id).mrl)
    run.sandbox.advance(mrl + 120)
    assert run.json("order", str(short.id))["order"]["derived"]["state"] == "expired"
