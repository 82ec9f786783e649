"""End to end through real processes: `clore --sandbox rent --cheapest --verify` on a
market whose cheapest server lies ends on the next honest one, the liar cancelled inside
the free window at no creation fee, the findings recorded by the sandbox as the cancel's
issue, and the host on the bad-host list that `clore --sandbox hosts bad` shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _clore(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLORE_API_KEY", "CLORE_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "clore", "--sandbox", *args],
        env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_the_machines_host(data: Path) -> None:
    """The background host that runs the --sandbox machines goes with its database."""
    lock = data / "sandbox.machines" / "host.lock"
    pid = int(lock.read_text().split()[0]) if lock.is_file() else None
    shutil.rmtree(data, ignore_errors=True)
    deadline = time.monotonic() + 15
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_rent_cheapest_verify_in_real_processes_ends_on_the_honest_server() -> None:
    """The first candidate reports fewer GPUs: cancelled with its findings, no creation
    fee; the next one is kept; `hosts bad` lists the liar; `verify` passes on the kept."""
    data = Path(os.environ["CLORE_DATA_DIR"])
    try:
        words = ["gpu=4090", "gpus=1"]
        dry = _clore("--json", "rent", "--cheapest", *words, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        liar = json.loads(dry.stdout)["body"]["renting_server"]
        lied = _clore("sandbox", "server", str(liar), "--delivers-gpu-count", "0")
        assert lied.returncode == 0, lied.stderr
        rented = _clore("--json", "rent", "--cheapest", *words, "--verify", "--yes")
        assert rented.returncode == 0, rented.stderr
        doc = json.loads(rented.stdout)
        (rejected,) = doc["rejected"]
        assert rejected["server_id"] == liar and doc["order"]["si"] != liar
        assert "gpu_count fail: listed 1" in rejected["issue"]
        assert "inside the free window (no creation fee)" in rented.stderr
        ended = json.loads(_clore("--json", "orders", "--all").stdout)["orders"]
        lost = next(o for o in ended if o["id"] == rejected["order_id"])
        assert lost["derived"]["state"] == "cancelled"
        from clore.sandbox import Sandbox, default_db_path

        with Sandbox(db=default_db_path(), rate_limit=False, machines="off") as sandbox:
            record = sandbox.backend.order_record(rejected["order_id"])
            assert record is not None and record.issue == rejected["issue"]
            from clore.sandbox.backend.billing import creation_fee_charged

            assert creation_fee_charged(record) == 0.0
        listed = json.loads(_clore("--json", "hosts", "bad").stdout)
        assert [e["id"] for e in listed["servers"]] == [liar]
        checked = _clore("verify", str(doc["order"]["id"]), "--no-load")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        _stop_the_machines_host(data)
