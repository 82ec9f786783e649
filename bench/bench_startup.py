"""Startup time of ``clore --help`` beside ``python -c pass`` and ``python -c "import httpx"``.

Each command runs as a fresh subprocess, interleaved round by round so that machine noise
hits all three alike; the median wall time of each is printed with the ratios. The goal
is ``clore --help`` <= 0.08 s: the CLI must not import httpx, msgspec or rich to print
its help (commands are loaded lazily).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 20
GOAL = 0.08


def _clore() -> list[str]:
    """The installed entry point next to this interpreter (the venv's ``clore``)."""
    script = Path(sys.executable).with_name("clore")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "clore"]


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    subjects = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import httpx"': [sys.executable, "-c", "import httpx"],
        "clore --help": [*_clore(), "--help"],
        "clore --version": [*_clore(), "--version"],
    }
    for argv in subjects.values():  # warm the file cache and .pyc files
        _time(argv)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(ROUNDS):
        for name, argv in subjects.items():
            samples[name].append(_time(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["python -c pass"]
    httpx = medians['python -c "import httpx"']
    print(f"median wall time over {ROUNDS} runs each ({sys.executable})")
    for name, value in medians.items():
        print(
            f"  {name:<26} {value:7.4f} s   {value / base:5.2f}x pass   {value / httpx:5.2f}x httpx"
        )
    helped = medians["clore --help"]
    verdict = "ok" if helped <= GOAL else "OVER GOAL"
    print(f"clore --help: {helped:.4f} s (goal <= {GOAL:.2f} s): {verdict}")
    return 0 if helped <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
