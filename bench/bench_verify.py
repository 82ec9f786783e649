"""Verification wall time on a healthy sandbox machine, beside a bare ``ssh host true``.

A ``Machines`` (bubblewrap when usable) runs one machine per listing of the bundled
capture (1x RTX 4090 and 8x RTX 3090), logged in to with a generated key. Each round
interleaves, on the same machine:

- ``ssh``: OpenSSH's ``ssh -i KEY root@127.0.0.1 true`` (a login and nothing else);
- ``verify bare``: ``clore.rentals.verify.verify`` with no load and no disk test (the
  login, nvidia-smi, nproc, meminfo, the checks: verification's own overhead);
- ``verify``: the default run (3 s of GPU load with the link read under it, 128 MiB
  written with fsync, throughput), what ``clore verify`` does.

Medians over the rounds are printed, with the default run's split into login and probes.
Goals (exit 1 when missed): the bare verification's overhead over ``ssh true`` under
10 s, and the default run under 60 s (the renter's budget inside the 600 s free window).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import asyncssh

from clore.rentals.verify import Credentials, Target, VerifyOptions, verify
from clore.sandbox import snapshot_bytes
from clore.sandbox.machines import Machines, MachineSpec

#: Captured listings: 1x RTX 4090 (PCIe 4 x16) and 8x RTX 3090 (PCIe 2 x1).
ONE_GPU, EIGHT_GPUS = 25756, 25769
ROUNDS = 5
OVERHEAD_GOAL = 10.0
TOTAL_GOAL = 60.0

_SSH = [
    "ssh",
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
]


@cache
def _records() -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in json.loads(snapshot_bytes())["servers"]}


def snapshot_server(server_id: int) -> dict[str, Any]:
    return _records()[server_id]


def bare_ssh(key: Path, port: int) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [*_SSH, "-i", str(key), "-p", str(port), "root@127.0.0.1", "true"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ssh true failed: {result.stderr.decode().strip()}")
    return time.perf_counter() - started


def timed(target: Target, creds: Credentials, server_id: int, options: VerifyOptions) -> float:
    started = time.perf_counter()
    report = verify(target, creds, listing=snapshot_server(server_id), options=options)
    elapsed = time.perf_counter() - started
    if report.verdict == "fail":
        failed = ", ".join(f"{c.name}: {c.reason}" for c in report.failed())
        raise RuntimeError(f"a healthy machine failed verification: {failed}")
    return elapsed


def main() -> int:
    if subprocess.run(["which", "ssh"], capture_output=True, check=False).returncode != 0:
        print("OpenSSH's ssh is not installed: nothing to compare with", file=sys.stderr)
        return 1
    bare = VerifyOptions(load=False, disk_mb=0)
    full = VerifyOptions()
    missed = False
    with tempfile.TemporaryDirectory() as tmp, Machines(root=Path(tmp) / "m") as machines:
        key = asyncssh.generate_private_key("ssh-ed25519")
        path = Path(tmp) / "id_ed25519"
        path.write_bytes(key.export_private_key())
        path.chmod(0o600)
        public = key.export_public_key().decode().strip()
        creds = Credentials(key_files=(path,))
        print(f"isolation: {machines.isolation_kind}; {ROUNDS} rounds, medians")
        for order_id, server_id in enumerate((ONE_GPU, EIGHT_GPUS), start=1):
            spec = MachineSpec.from_server(order_id, snapshot_server(server_id), ssh_key=public)
            endpoint = machines.start(spec)
            assert endpoint.ssh_port is not None
            target = Target("127.0.0.1", endpoint.ssh_port, order_id)
            bare_ssh(path, endpoint.ssh_port)  # the first login waits for the boot
            ssh_times, bare_times, full_times = [], [], []
            for _ in range(ROUNDS):
                ssh_times.append(bare_ssh(path, endpoint.ssh_port))
                bare_times.append(timed(target, creds, server_id, bare))
                full_times.append(timed(target, creds, server_id, full))
            ssh_s = statistics.median(ssh_times)
            bare_s = statistics.median(bare_times)
            full_s = statistics.median(full_times)
            gpus = snapshot_server(server_id)["specs"]["gpu"]
            print(
                f"{gpus}: ssh true {ssh_s * 1000:.0f} ms | verify bare {bare_s * 1000:.0f} ms "
                f"(overhead {(bare_s - ssh_s) * 1000:+.0f} ms, {bare_s / ssh_s:.1f}x) | "
                f"verify {full_s:.2f} s (load {full.load_seconds} s, disk {full.disk_mb} MiB; "
                f"{full_s / ssh_s:.0f}x ssh true)"
            )
            if bare_s - ssh_s >= OVERHEAD_GOAL or full_s >= TOTAL_GOAL:
                missed = True
            machines.stop(order_id)
    print(
        f"goals: overhead over ssh true < {OVERHEAD_GOAL:.0f} s, default run < "
        f"{TOTAL_GOAL:.0f} s of the 600 s free window: {'MISSED' if missed else 'met'}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
