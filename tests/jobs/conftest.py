"""What the job runner's tests share: a sandbox whose orders are real machines (SSH on
127.0.0.1), quick runner options, specs, and a sandbox server as a subprocess for the
tests that kill the runner (SIGKILL, SIGINT) and resume it from another process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clore import Clore, Order, Pacing
from clore.jobs import JobEvent, JobResult, RunOptions, resolve
from clore.rentals.verify import VerifyOptions
from clore.sandbox import Sandbox

#: Runner knobs for tests: everything polled often, every wait short.
FAST = RunOptions(
    check_interval=0.3,
    poll=0.05,
    heartbeat_timeout=30,
    reconnect_budget=20,
    connect_timeout=5,
    wait_timeout=60,
    stop_poll=0.1,
    idle_interval=0.3,
    checkpoint_interval=None,
    stop_grace=1.0,
    verify_options=VerifyOptions(load_seconds=1, disk_mb=8),
)

SINGLE_4090 = {"gpu": "4090", "gpus": 1}


def job_spec(command: str, **overrides: Any) -> Any:
    """A ``JobSpec`` for ``command`` on a single RTX 4090 (no verification unless asked)."""
    options: dict[str, Any] = {**SINGLE_4090, "verify": False}
    options.update(overrides)
    return resolve(None, command=command, **options)


@dataclass
class Seen:
    """What a job told its callbacks."""

    events: list[JobEvent] = field(default_factory=list)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    def names(self) -> list[str]:
        return [e.event for e in self.events]

    def first(self, name: str) -> JobEvent:
        return next(e for e in self.events if e.event == name)

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_event": self.events.append,
            "on_stdout": self.stdout.extend,
            "on_stderr": self.stderr.extend,
        }


def orders_of(client: Clore, result: JobResult) -> list[Order]:
    """The job's orders as ``my_orders`` shows them now."""
    listed = {o.id: o for o in client.my_orders(include_completed=True)}
    return [listed[i] for i in result.orders]


def assert_all_ended(client: Clore, result: JobResult) -> None:
    """Every order of the job has ended (cancelled), and the result says so."""
    ended = orders_of(client, result)
    assert ended and all(o.expired for o in ended)
    assert result.cancelled and not result.kept


@pytest.fixture
def job_client(sandbox: Sandbox) -> Iterator[Clore]:
    """The demo user's client of the in-process ``sandbox`` (shared ManualClock)."""
    client = sandbox.client()
    with client:
        yield client


@pytest.fixture
def job_workdir(tmp_path: Path) -> Path:
    """A small working directory to upload."""
    root = tmp_path / "work"
    root.mkdir()
    (root / "hello.txt").write_text("hello from the laptop\n")
    (root / "ignored.log").write_text("not uploaded\n")
    (root / ".gitignore").write_text("*.log\n")
    return root


# ---- a sandbox server and runners in other processes -------------------------------------

RUNNER = r"""
import json, sys
from pathlib import Path
from clore import Clore, Pacing
from clore.jobs import RunOptions, resolve, run_job
args = json.loads(sys.argv[1])
client = Clore(args["key"], base_url=args["base"], pacing=Pacing(min_interval=0.01,
               create_interval=0.01, shared=False))
spec = resolve(None, **args["spec"])
options = RunOptions(**args["options"])
def event(e):
    print(e.to_json_line(), flush=True)
result = run_job(client, spec, options=options, on_event=event, job_id=args.get("job_id"),
                 output_dir=args.get("output_dir"))
sys.exit(result.exit_code)
"""


@dataclass
class LiveSandbox:
    """``python -m clore.sandbox serve`` on 127.0.0.1 (its machines in that process)."""

    proc: subprocess.Popen[str]
    base: str
    key: str

    def client(self) -> Clore:
        pacing = Pacing(min_interval=0.01, create_interval=0.01, shared=False)
        return Clore(self.key, base_url=self.base, pacing=pacing)

    def runner(self, spec: dict[str, Any], options: dict[str, Any], **extra: Any) -> Runner:
        """A runner process for ``spec`` (``resolve`` keywords) and ``options``."""
        payload = {"key": self.key, "base": self.base, "spec": spec, "options": options}
        payload.update(extra)
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, json.dumps(payload)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        return Runner(proc)


@dataclass
class Runner:
    """A runner subprocess printing its events as JSON Lines."""

    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
        """Read events until one satisfies ``predicate``; that event."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"the runner ended early: {err[-2000:]}")
            event = json.loads(line)
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError("the runner did not get there in time")

    def rest(self, timeout: float = 60.0) -> int:
        """Read the remaining events; the exit code."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.events.extend(json.loads(line) for line in out.splitlines() if line.strip())
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)


@pytest.fixture
def live_sandbox(tmp_path: Path) -> Iterator[LiveSandbox]:
    """A sandbox server at time scale 10 (provisioning in a second), rate limits off,
    sharing this test's data directories with the runners it starts."""
    args = [sys.executable, "-m", "clore.sandbox", "serve", "--port", "0", "--db", ":memory:"]
    args += ["--time-scale", "10", "--no-rate-limit"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+/v1", proc.stdout.readline())
        key = proc.stdout.readline().split(": ", 1)[-1].strip()
        assert url is not None, "unexpected banner"
        live = LiveSandbox(proc, url.group(0), key)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(live.base + "/marketplace", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield live
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
