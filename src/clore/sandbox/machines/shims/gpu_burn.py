"""A simulated ``gpu_burn`` (the common GPU stress test) for a sandbox machine.

Standalone (standard library only, Python 3.7+); installed as ``gpu_burn`` and
``gpu-burn``. ``gpu_burn [-i N] [SECONDS]`` (default 10) runs for SECONDS of real time,
declares full load on the tested GPUs while it runs (an flocked file in
``$CLORE_SANDBOX_DIR/load/``, so ``nvidia-smi`` shows them busy), prints progress once a
second and a verdict per GPU. Throughput is the model's figure divided by the host's
``slow`` factor; a GPU with an error counts errors and is reported ``FAULTY``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import Any

GFLOP_PER_ITERATION = 2 * 8192**3 / 1e9


def main(argv: list[str], directory: str | None = None) -> int:
    """Run the burn against the machine in ``directory``; return the exit code."""
    directory = directory or os.environ.get("CLORE_SANDBOX_DIR") or "/run/clore-sandbox"
    seconds = 10.0
    only: int | None = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "-i" and args:
            only = int(args.pop(0))
        elif arg in ("-d", "-tc"):
            continue
        elif arg == "-m" and args:
            args.pop(0)
        elif arg.replace(".", "", 1).isdigit():
            seconds = float(arg)
        else:
            sys.stderr.write(f"Syntax error near {arg}\n")
            return 1
    try:
        with open(os.path.join(directory, "hardware.json"), encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        print("Couldn't init a GPU test: No CUDA-capable device is detected")
        return 1
    gpus = [g for g in doc["gpus"] if only is None or g["index"] == only]
    if not gpus:
        print("Couldn't init a GPU test: No CUDA-capable device is detected")
        return 1
    slow = float(doc.get("slow", 1.0)) or 1.0
    for g in gpus:
        print(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})")
    for g in gpus:
        mem = g["memory_mib"]
        print(
            f"Initialized device {g['index']} with {mem} MB of memory "
            f"({mem * 97 // 100} MB available, using {mem * 87 // 100} MB of it), using FLOATS"
        )
    load_dir = os.path.join(directory, "load")
    os.makedirs(load_dir, exist_ok=True)
    path = os.path.join(load_dir, f"gpu_burn-{os.getpid()}")
    with open(path, "w", encoding="utf-8") as handle:
        try:
            # The lock keeps the declaration live exactly as long as this process runs.
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            indices = ",".join(str(g["index"]) for g in gpus)
            mem = min(g["memory_mib"] for g in gpus) * 87 // 100
            handle.write(f"util=100 mem={mem} gpus={indices} name=./gpu_burn pid={os.getpid()}\n")
            handle.flush()
            return _burn(gpus, seconds, slow)
        finally:
            os.unlink(path)


def _burn(gpus: list[dict[str, Any]], seconds: float, slow: float) -> int:
    started = time.monotonic()
    elapsed = 0.0
    while True:
        step = min(1.0, max(0.0, seconds - elapsed))
        time.sleep(step)
        elapsed = time.monotonic() - started
        done = min(elapsed, seconds)
        procd, errors, temps = [], [], []
        for g in gpus:
            rate = g["gflops"] / slow
            count = int(rate * done / GFLOP_PER_ITERATION)
            procd.append(f"{count} ({round(rate)} Gflop/s)")
            errors.append(str(count // 3 if g["error"] else 0))
            temps.append(f"{60 + g['index'] % 5} C")
        percent = 100.0 * done / seconds if seconds else 100.0
        print(
            f"{percent:.1f}%  proc'd: {' - '.join(procd)}   errors: {' - '.join(errors)}"
            f"   temps: {' - '.join(temps)} ",
            flush=True,
        )
        if elapsed >= seconds:
            break
    print("Killing processes.. Freed memory for dev 0\nUninitted cublas\ndone\n")
    print(f"Tested {len(gpus)} GPUs:")
    for g in gpus:
        print(f"\tGPU {g['index']}: {'FAULTY' if g['error'] else 'OK'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
