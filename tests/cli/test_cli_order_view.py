"""``clore order ID`` says how to connect with what this machine remembers (the ssh
command with -i the key rented with, that a password is remembered, never the password,
that ``clore open`` logs in to Jupyter) and the limits on the order with whether a guard
enforces them right now: a live guard's lease, checked in-process and with a real
``clore guard`` process that is then killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli

from clore.cli._format import duration
from clore.workflows import Limits, registered_limits
from clore.workflows.guard import LEASE_SLACK, guard_leases, new_lease, write_lease


def _fields(text: str) -> dict[str, str]:
    """The ``Label  value`` lines of a detail view."""
    found = {}
    for line in text.splitlines()[1:]:
        label, _, value = line.strip().partition("  ")
        found[label] = value.strip()
    return found


def _rent(run: Cli, *extra: str) -> dict[str, Any]:
    doc = run.json("rent", "--cheapest", "gpu=4090", "gpus=1", "--yes", "--wait", *extra)
    order: dict[str, Any] = doc["order"]
    return order


def test_order_shows_the_ssh_command_with_the_key_it_was_rented_with(
    run: Cli, tmp_path: Path, default_ssh_key: Path
) -> None:
    """Rented with a key outside ~/.ssh: the SSH line carries -i that key's private half,
    Login names it; the JSON access document says the same (the default ports serve
    Jupyter, so the token rent generated is remembered too)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy(default_ssh_key.parent / name, keys / f"work{name[10:]}")
    order = _rent(run, "--ssh-key", str(keys / "work.pub"))
    result = run("order", str(order["id"]))
    assert result.exit_code == 0, result.output
    shown = _fields(result.stdout)
    assert shown["SSH"].startswith("ssh root@127.0.0.1 -p ")
    assert shown["SSH"].endswith(f" -i {keys / 'work'}")
    assert shown["Login"] == f"key {keys / 'work'}"
    access = run.json("order", str(order["id"]))["access"]
    assert access == {
        "ssh_command": shown["SSH"],
        "key_file": str(keys / "work"),
        "password_remembered": False,
        "jupyter_token_remembered": True,
    }


@pytest.mark.no_default_key
def test_order_says_a_password_is_remembered_and_never_shows_it(run: Cli) -> None:
    """Rented with --ssh-password alone: Login says a password is remembered; neither the
    text nor the JSON holds it; the ssh command has no -i."""
    order = _rent(run, "--ssh-password", "Hidden987")
    result = run("order", str(order["id"]))
    assert result.exit_code == 0, result.output
    assert "Hidden987" not in result.output
    shown = _fields(result.stdout)
    assert shown["Login"] == "the password chosen at rent (remembered here, not shown)"
    assert " -i " not in shown["SSH"]
    doc = run("order", str(order["id"]), "--json")
    assert "Hidden987" not in doc.output
    access = json.loads(doc.stdout)["access"]
    assert (access["password_remembered"], access["key_file"]) == (True, None)


def test_order_not_rented_from_here_says_nothing_is_remembered(run: Cli) -> None:
    """An order created elsewhere (straight through the SDK): Login says so."""
    server = run.json("market", "gpu=4090", "gpus=1", "--limit", "1")["servers"][0]["id"]
    made = run.client.create_order(server, "img", ports={"22": "tcp"}, ssh_password="pw12345")
    shown = _fields(run("order", str(made.id)).stdout)
    assert shown["Login"].startswith("not rented from here")


def test_order_says_a_jupyter_token_is_kept_without_showing_it(run: Cli) -> None:
    """A remembered Jupyter token: a Jupyter line points at `clore open`; the token is in
    neither output."""
    from clore.rentals import RentalLogins

    order = _rent(run)
    found = run.client.get_order(order["id"])
    RentalLogins().remember(found, jupyter_token="tok3n4jupyter")
    result = run("order", str(order["id"]))
    assert "tok3n4jupyter" not in result.output
    assert _fields(result.stdout)["Jupyter"].startswith(f"`clore open {order['id']}`")
    doc = run("order", str(order["id"]), "--json")
    assert "tok3n4jupyter" not in doc.output
    assert json.loads(doc.stdout)["access"]["jupyter_token_remembered"] is True


def test_order_shows_its_limits_and_that_no_guard_enforces_them(run: Cli) -> None:
    """Limits registered at rent are shown; with no guard running, Guard says nothing
    enforces them now."""
    order = _rent(run, "--max-time", "8h")
    result = run("order", str(order["id"]))
    shown = _fields(result.stdout)
    assert shown["Limits"] == f"running time up to {duration(28800.0)}"
    assert shown["Guard"].startswith("none running: nothing enforces the limits now")
    doc = run.json("order", str(order["id"]))
    assert (doc["limits"], doc["enforced"], doc["guards"]) == (
        {"max_spend": None, "max_time": 28800.0},
        False,
        [],
    )


def test_order_without_limits_shows_no_limit_lines(run: Cli) -> None:
    """No limits and no guard: neither line; JSON limits null."""
    order = _rent(run)
    shown = _fields(run("order", str(order["id"])).stdout)
    assert "Limits" not in shown and "Guard" not in shown
    assert run.json("order", str(order["id"]))["limits"] is None


def test_a_guard_is_enforcing_while_its_rounds_are_recent(run: Cli) -> None:
    """A lease of this (live) process whose last round is recent counts as enforcing;
    once its last round is older than twice the interval and the slack, it does not."""
    order = _rent(run, "--max-spend", "0.001")
    lease = new_lease("guard", run.clock.time(), 60.0)
    lease.last_round_at = run.clock.time()
    write_lease(lease)
    run.clock.advance(30)
    doc = run.json("order", str(order["id"]))
    assert doc["enforced"] is True
    (found,) = doc["guards"]
    assert (found["pid"], found["source"], found["seconds_since_round"]) == (
        os.getpid(),
        "guard",
        30,
    )
    assert found["limits"] == {"max_spend": 0.001, "max_time": None}
    text = _fields(run("order", str(order["id"])).stdout)["Guard"]
    # The view's own request moved the clock a little (pacing): "last check 31 s ago".
    assert text.startswith(f"enforcing now: clore guard (pid {os.getpid()}, last check ")
    listed = run.json("guard", "--list")["limits"][0]
    assert listed["enforced"] is True and listed["guards"][0]["pid"] == os.getpid()
    run.clock.advance(2 * 60 + LEASE_SLACK)
    assert run.json("order", str(order["id"]))["enforced"] is False


def test_a_guard_with_its_own_limits_is_shown_on_an_order_without_registered_ones(
    run: Cli,
) -> None:
    """A guard given --max-time for this order (nothing registered): Limits says none
    registered, Guard names the guard and its limits."""
    order = _rent(run)
    lease = new_lease("guard", run.clock.time(), 60.0, order_ids=[order["id"]],
                      limits=Limits(max_time=3600))  # fmt: skip
    lease.last_round_at = run.clock.time()
    write_lease(lease)
    shown = _fields(run("order", str(order["id"])).stdout)
    assert shown["Limits"] == "none registered"
    assert shown["Guard"].endswith(f"with its own limits: running time up to {duration(3600)}")
    assert registered_limits() == {}


# ---- a real guard process ---------------------------------------------------------------

CLORE = str(Path(sys.executable).with_name("clore"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    env.update(extra)
    return env


@pytest.fixture
def served() -> Iterator[dict[str, str]]:
    """A sandbox server on a free loopback port (no machines): the env to reach it."""
    proc = subprocess.Popen(
        [CLORE, "sandbox", "serve", "--port", "0", "--db", ":memory:", "--no-rate-limit",
         "--no-machines"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        key = proc.stdout.readline().split()[-1]
        yield {"CLORE_BASE_URL": url, "CLORE_API_KEY": key}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _clore(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([CLORE, *args, "--json"], capture_output=True, text=True,
                          env=_env(**env), timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_running_guard_process_is_seen_and_a_killed_one_is_not(
    served: dict[str, str],
) -> None:
    """`clore guard --all` in its own process: `clore order` names it (its pid) as
    enforcing the limits registered at rent; after kill -9, at once, it does not, and
    the lease it left is removed."""
    rented = _clore(served, "rent", "--cheapest", "gpu=4090", "--yes", "--max-time", "8h",
                    "--ssh-password", "pw12345")  # fmt: skip
    oid = str(rented["order"]["id"])
    # Few requests (one my_orders every 5 s, no wallets): the key is paced for everyone.
    guard = subprocess.Popen([CLORE, "guard", "--all", "--interval", "5", "--runway-below", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=_env(**served))  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        doc = _clore(served, "order", oid)
        while not doc["enforced"] and time.monotonic() < deadline and guard.poll() is None:
            time.sleep(0.2)
            doc = _clore(served, "order", oid)
        assert doc["enforced"] is True, guard.stderr.read() if guard.poll() is not None else doc
        assert [g["pid"] for g in doc["guards"]] == [guard.pid]
        assert doc["guards"][0]["limits"] == {"max_spend": None, "max_time": 28800.0}
    finally:
        guard.send_signal(signal.SIGKILL)
        guard.wait(timeout=10)
    after = _clore(served, "order", oid)
    assert (after["enforced"], after["guards"]) == (False, [])
    assert guard_leases() == []
