"""Pacing efficiency: 12 calls against a local server that enforces 1 request/second.

Three clients make the same 12 ``wallets`` calls with one key against a stub on
127.0.0.1 that accepts a request only when 1 s has passed since the key's last accepted
one (429 ``{"code": 5}`` otherwise):

* ``clore``: ``Clore`` with its default pacing (shared state file, no retries so that a
  429 would show);
* ``guide``: the vendor guide's way, ``time.sleep(1.1)`` before every call but the first;
* ``unpaced``: back-to-back calls, to show what the server does to them.

Printed per client: wall time from the first call to the last answer (the client is
built before the clock starts), its ratio to the 11 s that 12 requests need at least,
and the number of code-5 answers the server gave. Goal for ``clore``: ratio <= 1.02 and
zero code-5 answers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _stub.stub_server import serve
from clore import Clore, CloreError

GOAL = 1.02
KEY = "bench-pacing-key-0123456789"


Result = tuple[int, float]  # (failed calls, seconds from the first call to the last answer)


def run_clore(base_url: str, calls: int) -> Result:
    errors = 0
    with Clore(KEY, base_url=base_url, max_retries=0) as client:
        started = time.perf_counter()
        for _ in range(calls):
            try:
                client.wallets()
            except CloreError:
                errors += 1
        return errors, time.perf_counter() - started


def _raw_calls(base_url: str, calls: int, pause: float) -> Result:
    errors = 0
    with httpx.Client(headers={"auth": KEY}) as http:
        started = time.perf_counter()
        for index in range(calls):
            if index and pause:
                time.sleep(pause)
            body = http.get(f"{base_url}/wallets").json()
            errors += body.get("code") != 0
        return errors, time.perf_counter() - started


def run_guide(base_url: str, calls: int) -> Result:
    return _raw_calls(base_url, calls, 1.1)


def run_unpaced(base_url: str, calls: int) -> Result:
    return _raw_calls(base_url, calls, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    args = parser.parse_args(argv)
    calls, floor = args.calls, float(args.calls - 1)
    subjects: dict[str, Callable[[str, int], Result]] = {
        "clore": run_clore,
        "guide sleep(1.1)": run_guide,
        "unpaced": run_unpaced,
    }
    print(f"{calls} calls, one key, server enforcing 1 req/s (minimum {floor:.0f} s)")
    print(f"  {'client':<18} {'total':>8} {'ratio':>7} {'code 5':>7} {'errors':>7}")
    verdict_ok = True
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CLORE_CACHE_DIR"] = cache  # a fresh pacing history for the run
        for name, run in subjects.items():
            with serve(interval=1.0) as (base_url, stats):
                errors, total = run(base_url, calls)
                ratio = total / floor
                print(f"  {name:<18} {total:>7.3f}s {ratio:>6.3f}x {stats.rejected:>7} {errors:>7}")
                if name == "clore":
                    verdict_ok = ratio <= GOAL and stats.rejected == 0 and errors == 0
            time.sleep(1.1)  # let the previous key window pass before the next subject
    verdict = "ok" if verdict_ok else "MISSED GOAL"
    print(f"clore: goal ratio <= {GOAL} with zero code-5 answers: {verdict}")
    return 0 if verdict_ok else 1


if __name__ == "__main__":
    sys.exit(main())
