"""``clore run`` beside the same steps by hand, on a sandbox server at time scale 10.

A sandbox server (``python -m clore.sandbox serve --time-scale 10``, rate limits on, as
the API has them) runs in a child process with its machines; every client is a real
``clore`` process with the default pacing, in a temporary home with its own SSH key.
Each round, alternating which goes first, does one job twice:

- ``clore run``: ``clore --json run gpu=4090 gpus=1 --workdir W --output out
  --output-dir D --no-verify --yes -- CMD`` (rent, wait, upload, run, bring ``out``
  back, cancel), timed from its start to its exit;
- by hand: ``clore --json rent --cheapest gpu=4090 gpus=1 --yes --wait``, ``scp -r W``,
  ``ssh ... CMD``, ``scp -r`` of ``out`` back, ``clore cancel ID``, timed the same way.

CMD sleeps 2 s and writes ``out/result.txt``; it prints when it started and ended on the
machine, its own run time. The overhead of each way is its wall time minus the command's
own run time minus the sandbox's provisioning time (10 sandbox seconds, 1 s at scale
10). Medians are printed, with ``clore run``'s time split by its events. Goals (exit 1
when missed): ``clore run`` no slower than by hand, and its overhead under 5 s.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncssh

ROUNDS = 3
TIME_SCALE = 10.0
PROVISIONING = 10.0 / TIME_SCALE  # clore.sandbox's PROVISIONING_DELAY, in real seconds
OVERHEAD_GOAL = 5.0
FILTERS = ["gpu=4090", "gpus=1"]
COMMAND = (
    "s=$(date +%s.%N); sleep 2; mkdir -p out; echo ok > out/result.txt; "
    'echo "own $s $(date +%s.%N)"'
)

#: ``clore`` with ``run`` added when the group does not list it yet.
_CLORE = r"""
import importlib, sys
from clore.cli import cli
from clore.cli._group import COMMANDS
if "run" not in COMMANDS:
    cli.add_command(importlib.import_module("clore.cli.run_cmd").run, "run")
cli.main(sys.argv[1:], prog_name="clore")
"""

_SSH_OPTIONS = [
    "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
]  # fmt: skip


class Bench:
    """The sandbox, the environment of the clients, and the two ways of running a job.

    ``embedded``: every ``clore`` is ``clore --sandbox`` (the sandbox in the process,
    unpaced, time scale 1, its machines in a background host); else a sandbox server at
    ``TIME_SCALE`` with rate limits, the clients paced as against the API.
    """

    def __init__(self, base: Path, *, embedded: bool = False) -> None:
        self.base = base
        self.embedded = embedded
        self.provisioning = 10.0 if embedded else PROVISIONING
        home = base / "home"
        (home / ".ssh").mkdir(parents=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.key = home / ".ssh" / "id_ed25519"
        self.key.write_bytes(key.export_private_key())
        self.key.chmod(0o600)
        (home / ".ssh" / "id_ed25519.pub").write_bytes(key.export_public_key())
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLORE_")}
        self.env.update(
            HOME=str(home),
            CLORE_CONFIG_DIR=str(base / "config"),
            CLORE_CACHE_DIR=str(base / "cache"),
            CLORE_DATA_DIR=str(base / "data"),
        )
        self.env.pop("SSH_AUTH_SOCK", None)
        self.workdir = base / "work"
        self.workdir.mkdir()
        for i in range(20):
            (self.workdir / f"file{i}.py").write_text(f"print({i})\n" * 200)
        self.server: subprocess.Popen[str] | None = None
        self.url = ""

    def start_server(self) -> None:
        if self.embedded:
            return
        args = [sys.executable, "-m", "clore.sandbox", "serve", "--port", "0", "--db"]
        args += [":memory:", "--time-scale", str(TIME_SCALE)]
        self.server = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env
        )
        assert self.server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+/v1", self.server.stdout.readline())
        key = self.server.stdout.readline().split(": ", 1)[-1].strip()
        assert found is not None, "unexpected banner"
        self.url = found.group(0)
        self.env["CLORE_API_KEY"] = key
        self.env["CLORE_BASE_URL"] = self.url

    def stop_server(self) -> None:
        if self.embedded:
            _stop_machines_host(self.base / "data")
        if self.server is None:
            return
        self.server.send_signal(signal.SIGINT)
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=15)

    def clore(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", _CLORE, *(["--sandbox"] if self.embedded else []), *args],
            env=self.env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"clore {' '.join(args[:2])} failed: {done.stderr.strip()[-800:]}")
        return done

    def run(self, back: Path) -> tuple[float, float, list[dict[str, Any]]]:
        """``clore run``: (wall seconds, the command's own seconds, events)."""
        started = time.perf_counter()
        done = self.clore(
            "--json", "run", *FILTERS, "--workdir", str(self.workdir), "--output", "out",
            "--output-dir", str(back), "--no-verify", "--yes", "--", COMMAND,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if (back / "out" / "result.txt").read_text() != "ok\n":
            raise RuntimeError("clore run did not bring out/result.txt back")
        events = [json.loads(line) for line in done.stdout.splitlines()]
        return wall, _own(done.stderr), events

    def by_hand(self, back: Path) -> tuple[float, float]:
        """rent --wait, scp, ssh, scp back, cancel: (wall seconds, the command's own)."""
        started = time.perf_counter()
        rented = json.loads(
            self.clore("--json", "rent", "--cheapest", *FILTERS, "--yes", "--wait").stdout
        )
        order = rented["order"]
        port = re.search(r"-p (\d+)", order["derived"]["ssh_command"])
        host = re.search(r"root@([\w.\-]+)", order["derived"]["ssh_command"])
        assert port is not None and host is not None, order["derived"]["ssh_command"]
        where = f"root@{host.group(1)}"
        keyed = [*_SSH_OPTIONS, "-i", str(self.key)]
        _check(["scp", *keyed, "-P", port.group(1), "-r", "-q", str(self.workdir), f"{where}:work"])
        ran = _check(["ssh", *keyed, "-p", port.group(1), where, f"cd work && {COMMAND}"])
        back.mkdir(parents=True, exist_ok=True)
        _check(["scp", *keyed, "-P", port.group(1), "-r", "-q", f"{where}:work/out", str(back)])
        self.clore("cancel", str(order["id"]))
        wall = time.perf_counter() - started
        if (back / "out" / "result.txt").read_text() != "ok\n":
            raise RuntimeError("scp did not bring out/result.txt back")
        return wall, _own(ran.stdout)


def _stop_machines_host(data: Path) -> None:
    """The --sandbox machines' background host leaves with its database."""
    lock = data / "sandbox.machines" / "host.lock"
    pid = int(lock.read_text().split()[0]) if lock.is_file() else None
    shutil.rmtree(data, ignore_errors=True)
    deadline = time.monotonic() + 15
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def _check(args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}")
    return done


def _own(text: str) -> float:
    """The command's own run time, from the line it printed."""
    found = re.search(r"own (\d+\.\d+) (\d+\.\d+)", text)
    if found is None:
        raise RuntimeError("the command's timing line is missing")
    return float(found.group(2)) - float(found.group(1))


def _phases(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds between the job's steps, from its events' times."""
    at: dict[str, float] = {}
    for event in events:
        at.setdefault(event["event"], event["t"])
    marks = ["job_started", "renting", "rented", "ready", "running", "downloading", "finished"]
    return {f"{a}->{b}": at[b] - at[a] for a, b in itertools.pairwise(marks) if a in at and b in at}


def measure(tmp: Path, *, embedded: bool) -> bool:
    """Both ways, ``ROUNDS`` times, on one sandbox; prints the medians; goals met?"""
    base = tmp / ("embedded" if embedded else "server")
    base.mkdir()
    bench = Bench(base, embedded=embedded)
    bench.start_server()
    runs: list[tuple[float, float]] = []
    hands: list[tuple[float, float]] = []
    phases: list[dict[str, float]] = []
    try:
        for i in range(ROUNDS):
            for way in ("run", "hand") if i % 2 == 0 else ("hand", "run"):
                back = base / f"back-{way}-{i}"
                if way == "run":
                    wall, own, events = bench.run(back)
                    runs.append((wall, own))
                    phases.append(_phases(events))
                else:
                    hands.append(bench.by_hand(back))
    finally:
        bench.stop_server()
    provisioning = bench.provisioning
    run_wall = statistics.median(w for w, _ in runs)
    hand_wall = statistics.median(w for w, _ in hands)
    run_over = statistics.median(w - own - provisioning for w, own in runs)
    hand_over = statistics.median(w - own - provisioning for w, own in hands)
    own = statistics.median(o for _, o in runs + hands)
    where = (
        "embedded sandbox (clore --sandbox: unpaced, time scale 1)"
        if embedded
        else f"sandbox server at time scale {TIME_SCALE:g}, rate limits on, default pacing"
    )
    print(f"{where}; provisioning {provisioning:g} s; {ROUNDS} rounds, medians")
    print(f"  the command's own run time {own:.2f} s")
    print(f"  clore run   wall {run_wall:6.2f} s   overhead {run_over:5.2f} s")
    print(f"  by hand     wall {hand_wall:6.2f} s   overhead {hand_over:5.2f} s")
    print(f"  ratio run/by hand (wall): {run_wall / hand_wall:.2f}x")
    keys = list(phases[0])
    split = ", ".join(f"{k} {statistics.median(p.get(k, 0.0) for p in phases):.2f}" for k in keys)
    print(f"  clore run's steps (s): {split}")
    return run_over < OVERHEAD_GOAL and run_wall <= hand_wall


def main() -> int:
    for tool in ("ssh", "scp"):
        if shutil.which(tool) is None:
            print(f"OpenSSH's {tool} is not installed: nothing to compare with", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(Path(tmp), embedded=embedded) for embedded in (False, True)]
    print(
        f"goals: overhead < {OVERHEAD_GOAL:g} s and clore run no slower than by hand: "
        + ", ".join("met" if ok else "missed" for ok in results)
        + " (server, embedded)"
    )
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
