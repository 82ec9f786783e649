"""Typed marketplace decode + filter + sort, beside ``orjson.loads`` of the same bytes.

The subject is what ``Clore.marketplace()`` does with a response body (the SDK's own
decode path, tolerant msgspec Structs), followed by the work a caller does next: keep
the available RTX 4090 servers and sort them by per-day bitcoin price. The baseline is
``orjson.loads`` alone, which builds untyped dicts and filters nothing. Both run on the
real 3,500-server snapshot and on a 10x replicated one (35,000 servers), interleaved
round by round; the best time of each is compared. Goal: ratio <= 1.0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from clore._core import ENDPOINTS, decode_response
from clore._wire import Server
from clore.sandbox import snapshot_bytes

GOAL = 1.0


def typed_pipeline(data: bytes) -> list[Server]:
    """The SDK's decode, then available RTX 4090s sorted by per-day BTC price."""
    servers = decode_response(ENDPOINTS["marketplace"], 200, {}, data).servers
    wanted = [s for s in servers if not s.rented and "RTX 4090" in s.specs.gpu]
    wanted.sort(key=lambda s: s.price.on_demand.get("bitcoin", float("inf")))
    return wanted


def orjson_baseline(data: bytes) -> Any:
    """Parsing alone, into dicts."""
    return orjson.loads(data)


def replicate(data: bytes, times: int) -> bytes:
    """The snapshot with its server list repeated ``times`` times."""
    body = json.loads(data)
    body["servers"] = body["servers"] * times
    return json.dumps(body, separators=(",", ":")).encode()


def best_of(fn: Callable[[bytes], object], data: bytes, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn(data)
        best = min(best, time.perf_counter() - started)
    return best


def measure(data: bytes, rounds: int) -> tuple[float, float]:
    """Best times (typed pipeline, orjson) over interleaved rounds."""
    typed = base = float("inf")
    for _ in range(rounds):
        typed = min(typed, best_of(typed_pipeline, data, 1))
        base = min(base, best_of(orjson_baseline, data, 1))
    return typed, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--snapshot", type=Path, default=None, help="a marketplace JSON (default: the bundled one)"
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    data = args.snapshot.read_bytes() if args.snapshot else snapshot_bytes()
    inputs = {"snapshot": data, "snapshot x10": replicate(data, 10)}
    found = len(typed_pipeline(data))
    print(f"typed decode + filter (available RTX 4090, {found} found) + sort vs orjson.loads")
    print(f"  {'input':<14} {'servers':>8} {'MB':>6} {'clore':>10} {'orjson':>10} {'ratio':>7}")
    worst = 0.0
    for name, body in inputs.items():
        typed, base = measure(body, max(3, args.rounds if name == "snapshot" else args.rounds // 5))
        count = len(orjson.loads(body)["servers"])
        ratio = typed / base
        worst = max(worst, ratio)
        print(
            f"  {name:<14} {count:>8} {len(body) / 1e6:>6.1f} {typed * 1e3:>8.2f}ms "
            f"{base * 1e3:>8.2f}ms {ratio:>6.2f}x"
        )
    verdict = "ok" if worst <= GOAL else "OVER GOAL"
    print(f"worst ratio {worst:.2f}x (goal <= {GOAL:.1f}x): {verdict}")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
