"""Two real processes sharing one key against a 1 req/s server: zero 429s."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _stub.stub_server import serve

CALLS = 4  # per process: 8 requests need at least 7 s


@pytest.mark.slow
def test_two_processes_on_one_key_never_trip_the_rate_limit() -> None:
    """Both processes pace through the shared file: every request is accepted, ~1 s apart."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }
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
