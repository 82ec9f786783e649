"""Fleet pacing on Redis: the rate three machines achieve on one key, and what pacing costs.

1. **Rate.** Three "machines" (processes with their own cache, data and home directories)
   of four threads each call ``wallets``/``my_orders`` on one key for ``--seconds`` (60 by
   default) against a sandbox server with its rate limiter on (1 request/s), paced through
   one redis-server on 127.0.0.1, with ``max_retries=0`` so any code-5 answer shows.
   Printed: the answers per second from the first answer to the last, beside the API's
   ceiling of 1 request/s, and the code-5 answers the sandbox gave (counted by the server).
   Goal: >= 0.95 of the ceiling, 0 code-5.
2. **Overhead.** One pacer decision pair per request (``reserve`` then ``complete``) with
   every interval at 0, so nothing waits: what the pacing itself costs per request, on the
   Redis backend (loopback, one Lua call each) beside the local file backend (a locked
   file), in the same run. Goal: Redis under 2 ms per request.
3. **Claim.** What create_order's claim on its server adds in a fleet, once per call:
   take it, check it before the send and before the order found is returned, release it
   (four script calls; the renewals run on a thread meanwhile).

Needs the redis-server binary (apt-get install redis-server) and the redis package.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fleet"))

from fleet_support import REDIS_SERVER, CountingSandbox, Machine, RedisServer, results

from clore._pacing import Pacer, Pacing
from clore._pacing_redis import RedisPacer
from clore._pacing_store import FileStore, state_file
from clore._redis import Lease

RATE_GOAL = 0.95
OVERHEAD_GOAL_MS = 2.0
CEILING = 1.0  # requests per second per key (clore._facts.MIN_INTERVAL)


def fleet_rate(redis_url: str, seconds: float, work: Path) -> tuple[float, int, int, int]:
    """(answers per second, answers, client-side code 5, sandbox code 5) of 3 x 4 threads."""
    sandbox = CountingSandbox(work / "sandbox").start()
    try:
        env = {"CLORE_API_KEY": sandbox.demo_key, "CLORE_BASE_URL": sandbox.base,
               "CLORE_PACING_URL": redis_url}  # fmt: skip
        procs = [Machine(work, f"m{i}").start("load", "4", str(seconds), **env) for i in range(3)]
        outs = [results(p, seconds + 120)[-1] for p in procs]
        errors = [e for o in outs for e in o["errors"]]
        if errors:
            print(f"  errors: {errors[:3]}")
        answered = sum(o["ok"] + o["rate_limited"] for o in outs)
        span = max(o["last"] for o in outs) - min(o["first"] for o in outs)
        limited = sum(o["rate_limited"] for o in outs)
        return (answered - 1) / span, answered, limited, sandbox.refusals()
    finally:
        sandbox.stop()


def overhead(pacer: Pacer, rounds: int) -> list[float]:
    """Milliseconds of one reserve + complete, ``rounds`` times (after a warm-up)."""
    for _ in range(50):
        pacer.reserve("request", time.time())
        pacer.complete("request", time.time())
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        wait = pacer.reserve("request", time.time())
        pacer.complete("request", time.time())
        samples.append((time.perf_counter() - started) * 1000)
        assert wait == 0.0, wait
    return samples


def claim_overhead(pacer: RedisPacer, rounds: int) -> list[float]:
    """Milliseconds of one claim's life in create_order (take, check twice, release)."""
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        claim = pacer.claim(f"server-{i}")
        assert isinstance(claim, Lease), claim
        claim.check()
        claim.check()
        claim.release()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the fleet run")
    parser.add_argument("--rounds", type=int, default=3000, help="decision pairs per backend")
    args = parser.parse_args(argv)
    if REDIS_SERVER is None:
        print("bench_fleet: no redis-server binary (apt-get install redis-server); skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["CLORE_CACHE_DIR"] = str(work / "cache")
        server = RedisServer(work / "redis").start()
        try:
            rate, answered, limited, refused = fleet_rate(server.url, args.seconds, work)
            zero = Pacing(0.0, 0.0, 0.0, 0.0)
            redis_pacer = RedisPacer(zero, server.url, "bench-key")
            redis_ms = overhead(redis_pacer, args.rounds)
            claim_ms = claim_overhead(redis_pacer, args.rounds)
            path = state_file("bench-key", work / "cache" / "pacing")
            file_ms = overhead(Pacer(zero, FileStore(path)), args.rounds)
        finally:
            server.stop()

    ratio = rate / CEILING
    print(f"fleet: 3 machines x 4 threads, one key, {args.seconds:g} s + the queue draining")
    print(f"  {answered} answers, {rate:.3f} requests/s = {ratio:.3f} of the 1 request/s ceiling")
    print(f"  code 5: {refused} at the sandbox, {limited} seen by the clients")
    print(f"pacing overhead per request (reserve + complete, {args.rounds} rounds, nothing waits)")
    print(f"  {'backend':<22} {'mean ms':>8} {'median':>8} {'p99':>8}")
    for name, samples in (("redis (loopback, Lua)", redis_ms), ("local file (flock)", file_ms)):
        p99 = sorted(samples)[int(len(samples) * 0.99) - 1]
        mean, median = statistics.fmean(samples), statistics.median(samples)
        print(f"  {name:<22} {mean:>8.3f} {median:>8.3f} {p99:>8.3f}")
    print(f"  redis / file: {statistics.fmean(redis_ms) / statistics.fmean(file_ms):.2f}x")
    claim_p99 = sorted(claim_ms)[int(len(claim_ms) * 0.99) - 1]
    print(
        f"create_order's claim (take, 2 checks, release), once per call: "
        f"{statistics.fmean(claim_ms):.3f} ms mean, {statistics.median(claim_ms):.3f} median, "
        f"{claim_p99:.3f} p99"
    )
    rate_ok = ratio >= RATE_GOAL and refused == 0 and limited == 0
    cost_ok = statistics.fmean(redis_ms) < OVERHEAD_GOAL_MS
    print(f"goal rate >= {RATE_GOAL} of the ceiling with 0 code 5: {'ok' if rate_ok else 'MISSED'}")
    print(f"goal redis overhead < {OVERHEAD_GOAL_MS} ms: {'ok' if cost_ok else 'MISSED'}")
    return 0 if rate_ok and cost_ok else 1


if __name__ == "__main__":
    sys.exit(main())
