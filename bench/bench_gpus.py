"""``clore gpus`` beside ``clore market`` on the same cached listing, in one run.

Both commands run in-process (click's runner, a plain table as when piped) against the
same marketplace cache file, so neither makes a request: each reads and decodes the
cache, then ``gpus`` summarizes every server per model (``clore.market.gpus.summarize``)
where ``market`` filters, sorts and prints its first 20. Inputs: the real 3,500-server
capture and the capture repeated 10 times (35,000 servers); rounds interleaved, best
time of each compared. A second table compares the library calls alone (``summarize``
beside ``select`` sorted by price). Goal: command ratio gpus / market <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from click.testing import CliRunner

from clore._wire import MarketplaceResponse, Server
from clore.cli import cli
from clore.market import PriceContext, parse_sort, select
from clore.market.cache import CacheFile, cache_path
from clore.market.gpus import summarize
from clore.sandbox import snapshot_bytes

GOAL = 1.2
URL = "http://127.0.0.1:9/v1"  # never contacted: the cache is fresh
RATES = {"bitcoin": 68_022.87, "CLORE-Blockchain": 0.0027}


def write_cache(servers: list[Server]) -> None:
    """The listing as the CLI's cache of ``URL``, fresh for an hour."""
    path = cache_path(URL)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    document = CacheFile(endpoint=URL, fetched_at=now, servers=servers, rates=RATES, rates_at=now)
    path.write_bytes(msgspec.json.encode(document))


def command(*args: str) -> Callable[[], None]:
    runner = CliRunner()
    env = {"CLORE_MARKET_TTL": "3600"}

    def run() -> None:
        result = runner.invoke(cli, ["--base-url", URL, *args], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"clore {' '.join(args)} failed: {result.output}")

    return run


def best_pair(a: Callable[[], object], b: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Best times of ``a`` and ``b`` over interleaved rounds."""
    best_a = best_b = float("inf")
    for _ in range(rounds):
        for fn, which in ((a, "a"), (b, "b")):
            started = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - started
            if which == "a":
                best_a = min(best_a, elapsed)
            else:
                best_b = min(best_b, elapsed)
    return best_a, best_b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    capture = msgspec.json.decode(snapshot_bytes(), type=MarketplaceResponse, strict=False)
    inputs = {"capture": capture.servers, "capture x10": capture.servers * 10}
    worst = 0.0
    with tempfile.TemporaryDirectory() as home:
        for name in ("CONFIG", "CACHE", "DATA"):
            os.environ[f"CLORE_{name}_DIR"] = str(Path(home) / name.lower())
        os.environ.pop("CLORE_API_KEY", None)
        print("clore gpus vs clore market, same cached listing (in-process, plain table)")
        print(f"  {'input':<12} {'servers':>8} {'gpus':>10} {'market':>10} {'ratio':>7}")
        for name, servers in inputs.items():
            write_cache(servers)
            rounds = args.rounds if name == "capture" else max(3, args.rounds // 3)
            gpus, market = best_pair(command("gpus"), command("market"), rounds)
            ratio = gpus / market
            worst = max(worst, ratio)
            print(
                f"  {name:<12} {len(servers):>8} {gpus * 1e3:>8.1f}ms "
                f"{market * 1e3:>8.1f}ms {ratio:>6.2f}x"
            )
        ctx = PriceContext("bitcoin", RATES)
        price = parse_sort("price")
        print("library alone: summarize(servers) vs select(servers, sort=price)")
        for name, servers in inputs.items():
            rounds = args.rounds if name == "capture" else max(3, args.rounds // 3)
            lib, sel = best_pair(
                lambda s=servers: summarize(s, ctx),  # type: ignore[misc]
                lambda s=servers: select(s, [], ctx, sort=price),  # type: ignore[misc]
                rounds,
            )
            print(
                f"  {name:<12} {len(servers):>8} {lib * 1e3:>8.1f}ms "
                f"{sel * 1e3:>8.1f}ms {lib / sel:>6.2f}x"
            )
    verdict = "ok" if worst <= GOAL else "OVER GOAL"
    print(f"worst command ratio {worst:.2f}x (goal <= {GOAL:.1f}x): {verdict}")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
