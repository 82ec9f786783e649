"""The test bed: a fresh seeded sandbox copied from a template beside one seeded for real.

Builds the ``clore.testing`` fixture's sandbox (in-memory, the 3,500-server snapshot,
rate limits on, a ``ManualClock``) both ways, alternating, in one process, and prints the
median and p90 of each, their ratio, and the one-off cost of building the template.

Goal: a sandbox from the fixture in at most 10 ms.

With ``--suite BEFORE_CHECKOUT`` it also runs ``pytest -q -p no:cacheprovider`` (``-m "not
slow"`` unless ``--full``) in that checkout (its ``src`` first on ``PYTHONPATH``) and in
this one, alternately, ``--rounds`` times each, and prints wall and CPU seconds of each run
and the ratio of the medians. Goal: at most 0.6 of the checkout's wall time.

    python bench/bench_testbed.py [--count 40] [--suite /tmp/before [--full] [--rounds 1]]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
GOAL_MS = 10.0
GOAL_SUITE = 0.6


def _fixture_times(count: int) -> tuple[list[float], list[float], float]:
    from clore._clock import ManualClock
    from clore.sandbox import Sandbox
    from clore.sandbox.template import Templates

    def build(template: Templates | None) -> float:
        started = time.perf_counter()
        sb = Sandbox(
            db=":memory:", seed="snapshot", rate_limit=True, clock=ManualClock(), template=template
        )
        elapsed = time.perf_counter() - started
        sb.close()
        return elapsed * 1000

    build(None)  # decodes the snapshot once (cached for both ways alike)
    templates = Templates()
    first = build(templates)  # seeds the template, then copies it
    seeded: list[float] = []
    copied: list[float] = []
    for _ in range(count):
        seeded.append(build(None))
        copied.append(build(templates))
    templates.close()
    return seeded, copied, first


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


def _pytest(tree: Path, full: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one pytest run in ``tree``."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if not full:
        args += ["-m", "not slow"]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
    print(f"  {tree}: {summary}")
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="sandboxes built each way")
    parser.add_argument("--suite", type=Path, help="a checkout of the code before (its tests)")
    parser.add_argument("--full", action="store_true", help="the whole suite, slow tests too")
    parser.add_argument("--rounds", type=int, default=1, help="suite runs in each tree")
    opts = parser.parse_args()

    seeded, copied, first = _fixture_times(opts.count)
    s50, c50 = statistics.median(seeded), statistics.median(copied)
    print(f"fresh sandbox, seeded       : median {s50:6.1f} ms  p90 {_p90(seeded):6.1f} ms")
    print(f"fresh sandbox, from template: median {c50:6.1f} ms  p90 {_p90(copied):6.1f} ms")
    print(f"template built once in {first:.1f} ms; copy/seed = {c50 / s50:.3f}")
    ok = c50 <= GOAL_MS
    print(f"goal: <= {GOAL_MS:.0f} ms from the fixture: {'met' if ok else 'MISSED'}")

    if opts.suite is not None:
        which = "full" if opts.full else '-m "not slow"'
        print(f"\npytest {which}, {opts.rounds} round(s), alternating:")
        runs: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        for _ in range(opts.rounds):
            runs["before"].append(_pytest(opts.suite.resolve(), opts.full))
            runs["after"].append(_pytest(HERE, opts.full))
        for name, results in runs.items():
            walls = ", ".join(f"{w:.1f}" for w, _ in results)
            cpus = ", ".join(f"{c:.1f}" for _, c in results)
            print(f"  {name:6}: wall {walls} s; CPU {cpus} s")
        ratio = statistics.median(w for w, _ in runs["after"]) / statistics.median(
            w for w, _ in runs["before"]
        )
        cpu_ratio = statistics.median(c for _, c in runs["after"]) / statistics.median(
            c for _, c in runs["before"]
        )
        print(f"  after/before: wall {ratio:.2f}, CPU {cpu_ratio:.2f}")
        suite_ok = ratio <= GOAL_SUITE
        print(f"goal: <= {GOAL_SUITE} of the wall time: {'met' if suite_ok else 'MISSED'}")
        ok = ok and suite_ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
