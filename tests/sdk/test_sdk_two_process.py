"""Real processes sharing one key: zero 429s against a 1 req/s server, and a process
restarted after a kill -9 mid-request is not held back by the dead one's request."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _stub.stub_server import serve
from clore._pacing import state_file
from clore._paths import cache_dir

CALLS = 4  # per process: 8 requests need at least 7 s

# One request to a server that never answers, with a 30 s timeout: the key stays held.
HANGING = """
import sys
from clore import Clore
Clore(sys.argv[2], base_url=sys.argv[1], max_retries=0, timeout=30).wallets()
"""


def worker_env() -> dict[str, str]:
    tests_dir = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }


def wait_for_hold(path: Path, proc: subprocess.Popen[str], limit: float = 30.0) -> None:
    """Return once the pacing file at ``path`` shows a request in flight."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(path.read_text()).get("inflight_until") is not None:
                return
        except (OSError, ValueError):
            pass  # not written yet, or caught mid-rewrite
        time.sleep(0.02)
    pytest.fail(f"no request in flight in {path} (exit {proc.poll()})")


@pytest.mark.slow
def test_two_processes_on_one_key_never_trip_the_rate_limit() -> None:
    """Both processes pace through the shared file: every request is accepted, ~1 s apart."""
    env = worker_env()
    key = "two-process-key-0123456789"
    with serve(interval=1.0) as (base_url, stats):
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "_stub.worker", base_url, key, str(CALLS)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=30) for w in workers]
        elapsed = time.monotonic() - started
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert results == [{"ok": CALLS, "errors": []}] * 2, outputs
    assert (stats.accepted, stats.rejected) == (2 * CALLS, 0)
    times = [t for t, _, _ in stats.requests]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0
    assert elapsed < 15


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
def test_a_process_restarted_after_kill_9_mid_request_starts_at_once() -> None:
    """kill -9 during a request with a 30 s timeout: the restarted process's first request
    is sent within a couple of seconds, not after the dead request's timeout."""
    env = worker_env()
    key = "restart-after-kill-key-0123"
    path = state_file(key, cache_dir() / "pacing")
    with socket.create_server(("127.0.0.1", 0)) as silent, serve(interval=1.0) as (url, stats):
        host, port = silent.getsockname()[:2]
        hanging = subprocess.Popen(
            [sys.executable, "-c", HANGING, f"http://{host}:{port}/v1", key],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_hold(path, hanging)
        finally:
            hanging.send_signal(signal.SIGKILL)
            hanging.communicate(timeout=30)
        started = time.monotonic()
        restarted = subprocess.run(
            [sys.executable, "-m", "_stub.worker", url, key, "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert json.loads(restarted.stdout.strip().splitlines()[-1]) == {"ok": 1, "errors": []}
    assert (stats.accepted, stats.rejected) == (1, 0)
    assert elapsed < 10, f"the restarted process waited {elapsed:.1f} s"
