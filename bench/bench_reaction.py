"""Reaction time: from a price drop in the sandbox to the order being placed, over 20 trials.

Two approaches watch the same in-process sandbox (simulated time on a ManualClock, so
a trial takes milliseconds) for an RTX 4090 at or under a price cap:

* ``clore watch``: ``clore.workflows.Watcher`` polling every 10 s, renting the first match
  with the price locked (the SDK's exactly-once ``create_order`` and pacing included);
* ``guide script``: the vendor guide's loop: poll the marketplace, rent the cheapest match
  if there is one, else ``sleep(120)`` and poll again (same SDK client underneath).

In each trial the watched server's price drops under the cap at a random moment within
the approach's poll interval, after a few polls; the reaction is the simulated time from
the drop to the sandbox receiving ``create_order``. Printed: median and worst, in seconds
and as multiples of the watcher's poll interval (and of the script's own 120 s).
Goal: the watcher's worst reaction <= one interval plus the pacing delay (< 1.3 × 10 s).

    python bench/bench_reaction.py [--trials 20] [--interval 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clore._client import Clore
from clore._clock import ManualClock
from clore._wire import Server
from clore.sandbox import BASE_URL, Sandbox
from clore.sandbox.dispatch import SandboxRequest, SandboxResponse
from clore.sandbox.transport import SandboxTransport
from clore.workflows import RentSpec, Watcher

CAP = 0.0002  # BTC per day
GUIDE_SLEEP = 120.0
WARMUP_POLLS = 3
TARGET = 12


def _record(sid: int, price: float, gpu: str) -> dict[str, Any]:
    return {
        "id": sid,
        "owner": 9000 + sid,
        "mrl": 72,
        "price": {"on_demand": {"bitcoin": price}, "spot": {"bitcoin": price / 5}},
        "rented": False,
        "specs": {"gpu": gpu, "gpuram": 24, "cpus": "8/16", "ram": 64, "net": {"cc": "US"}},
        "reliability": 0.99,
        "allowed_coins": ["bitcoin"],
    }


SEED = [
    _record(11, 0.0005, "1x NVIDIA GeForce RTX 4090"),
    _record(TARGET, 0.0004, "1x NVIDIA GeForce RTX 4090"),
    _record(13, 0.00015, "1x NVIDIA GeForce RTX 3090"),
]


class _ScheduledClock(ManualClock):
    """A ManualClock that runs one action when a sleep passes its time (the price drop)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: tuple[float, Callable[[], None]] | None = None

    def sleep(self, seconds: float) -> None:
        target = self.time() + max(0.0, seconds)
        if self.pending is not None and self.pending[0] <= target:
            when, action = self.pending
            self.pending = None
            self.set(when)
            action()
        self.slept.append(seconds)
        self.set(target)


class _Trial:
    """One fresh sandbox and client; records when create_order reaches the sandbox."""

    def __init__(self, seed_path: Path) -> None:
        self.clock = _ScheduledClock()
        self.sandbox = Sandbox(db=":memory:", seed=str(seed_path), clock=self.clock)
        self.created_at: float | None = None
        self.client = Clore(
            api_key=self.sandbox.demo_key,
            base_url=BASE_URL,
            transport=SandboxTransport(self._handle),
            clock=self.clock,
        )

    def _handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.path.endswith("/create_order") and self.created_at is None:
            self.created_at = self.sandbox.now()
        return self.sandbox.handle(request)

    def drop_at(self, when: float) -> None:
        def drop() -> None:
            self.sandbox.set_server(TARGET, price={"on_demand": {"bitcoin": CAP * 0.9}})

        self.clock.pending = (when, drop)

    def close(self) -> None:
        self.client.close()
        self.sandbox.close()


def _is_match(server: Server) -> bool:
    price = server.price_per_day("bitcoin")
    return (
        server.gpu_model.endswith("4090")
        and not server.rented
        and price is not None
        and price <= CAP
    )


def run_watcher(trial: _Trial, interval: float, offset: float) -> float:
    start = trial.clock.time()
    drop = start + WARMUP_POLLS * interval + offset
    trial.drop_at(drop)
    watcher = Watcher(
        trial.client,
        trial.clock,
        match=_is_match,
        max_price=CAP,
        rent=RentSpec(image="cloreai/ubuntu22.04-jupyter", ssh_password="bench1"),
        interval=interval,
    )
    for event in watcher.run():
        if event.kind == "done":
            break
    assert trial.created_at is not None, "the watcher never rented"
    return trial.created_at - drop


def run_guide(trial: _Trial, offset: float) -> float:
    """The guide's loop: poll, rent the cheapest match, else sleep a fixed 120 s."""
    start = trial.clock.time()
    drop = start + WARMUP_POLLS * GUIDE_SLEEP + offset
    trial.drop_at(drop)
    while True:
        matches = [s for s in trial.client.marketplace() if _is_match(s)]
        if matches:
            best = min(matches, key=lambda s: s.price_per_day("bitcoin") or 0.0)
            trial.client.create_order(best.id, "cloreai/ubuntu22.04-jupyter", ssh_password="bench1")
            break
        trial.clock.sleep(GUIDE_SLEEP)
    assert trial.created_at is not None
    return trial.created_at - drop


def _row(name: str, own: float, interval: float, values: list[float]) -> str:
    median, worst = statistics.median(values), max(values)
    return (
        f"{name:<26}{own:>7.0f} s{median:>10.1f}{worst:>9.1f}"
        f"{median / interval:>11.2f}{worst / interval:>10.2f}"
        f"{median / own:>13.2f}{worst / own:>12.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", type=float, default=10.0, help="watcher poll interval (s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        # Keep pacing files and workflow state out of the user's directories.
        for name in ("CLORE_CACHE_DIR", "CLORE_DATA_DIR", "CLORE_CONFIG_DIR"):
            os.environ[name] = str(Path(tmp) / name.lower())
        os.environ.pop("CLORE_API_KEY", None)
        seed_path = Path(tmp) / "seed.json"
        seed_path.write_text(json.dumps({"servers": SEED}))
        watch_times: list[float] = []
        guide_times: list[float] = []
        for _ in range(args.trials):
            trial = _Trial(seed_path)
            try:
                watch_times.append(run_watcher(trial, args.interval, rng.uniform(0, args.interval)))
            finally:
                trial.close()
            trial = _Trial(seed_path)
            try:
                guide_times.append(run_guide(trial, rng.uniform(0, GUIDE_SLEEP)))
            finally:
                trial.close()
    interval = args.interval
    print(
        f"reaction from a price drop to create_order, {args.trials} trials (simulated time, "
        f"drop at a random moment within the poll interval)"
    )
    print(
        f"{'approach':<26}{'interval':>9}{'median s':>10}{'worst s':>9}"
        f"{'median ×I':>11}{'worst ×I':>10}{'median ×own':>13}{'worst ×own':>12}"
    )
    print(_row("clore watch", interval, interval, watch_times))
    print(_row(f"guide script (sleep {GUIDE_SLEEP:.0f})", GUIDE_SLEEP, interval, guide_times))
    print(
        f"(×I = multiples of the watcher's {interval:.0f} s poll interval; ×own = of the "
        "approach's own interval)"
    )
    worst = max(watch_times)
    ratio = statistics.median(guide_times) / statistics.median(watch_times)
    print(
        f"guide/watch median ratio: {ratio:.1f}x; watcher worst {worst / interval:.2f} × interval"
    )
    goal = worst <= 1.3 * interval
    print(f"goal (watcher worst <= 1.3 × interval): {'met' if goal else 'NOT met'}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
