"""Ctrl-C through real processes: SIGINT to `clore --base-url ... rent ... --wait` against
a `python -m clore.sandbox serve` on 127.0.0.1 ends with exit 130 and the one line saying
the order is still running and billing, with the commands to cancel it or wait again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

CLORE = [sys.executable, "-m", "clore"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
    for name in ("CLORE_CONFIG_DIR", "CLORE_CACHE_DIR", "CLORE_DATA_DIR"):
        env[name] = os.environ[name]
    env["HOME"] = os.environ["HOME"]
    return env


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    """A sandbox server on a free port of 127.0.0.1 (real time, no rate limit): its base
    URL and demo key."""
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--host", "127.0.0.1"]
    args += ["--port", "0", "--db", ":memory:", "--no-rate-limit"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=_env())  # fmt: skip
    assert proc.stdout is not None
    try:
        url_line, key_line = proc.stdout.readline(), proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", url_line)
        assert match is not None and key_line.startswith("demo key: "), (url_line, key_line)
        yield match.group(1), key_line.split(": ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.slow
def test_sigint_during_rent_wait_exits_130_and_says_the_order_is_billing(
    server: tuple[str, str],
) -> None:
    """The rent process, interrupted while it waits for provisioning, exits 130 with the
    still-billing line on stderr; the order is indeed running afterwards."""
    base, key = server
    env = {**_env(), "CLORE_API_KEY": key}
    rent = [*CLORE, "--base-url", base, "rent", "--cheapest", "gpu=4090", "--yes", "--wait"]
    proc = subprocess.Popen(rent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if line.startswith("Rented server") or not line:
            break
    assert seen[-1].startswith("Rented server"), "".join(seen)
    order_id = int(re.search(r"as order (\d+)", seen[-1]).group(1))  # type: ignore[union-attr]
    time.sleep(0.3)  # into the wait
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130, "".join(seen) + rest
    errors = [line for line in rest.splitlines() if line.startswith("clore: error: ")]
    assert errors == [
        f"clore: error: interrupted; order {order_id} is still running and billing: "
        f"`clore cancel {order_id}` stops it, `clore order {order_id} --wait` waits for it again"
    ]
    assert "Traceback" not in rest
    listed = subprocess.run(
        [*CLORE, "--base-url", base, "--json", "orders"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert [o["id"] for o in json.loads(listed.stdout)["orders"]] == [order_id]
