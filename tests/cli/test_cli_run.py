"""``clore run``: a job start to finish through the command line, on sandbox machines
reached over real SSH on 127.0.0.1.

In-process (click's runner, the sandbox on a ManualClock) for what needs no second
process: the options reaching the job, task-file and option errors (exit 2, not one
request sent), the refusal to rent unattended without --yes, --dry-run. Real processes
for the rest: the example task on the embedded sandbox (``clore --sandbox``), and a
sandbox server at time scale 10 for exit codes, --json, the question on a terminal (a
pty), Ctrl-C (SIGINT) and --keep. Until ``run`` and ``jobs`` are rows of the ``clore``
group, the processes add them to it (``HARNESS``).
"""

from __future__ import annotations

import copy
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from clore import Clore, Pacing
from clore.cli import cli
from clore.cli._context import AppContext
from clore.cli._group import COMMANDS
from clore.cli.jobs_cmd import jobs
from clore.cli.run_cmd import EXIT_EPILOG, run
from clore.jobs import EVENT_NAMES, EXIT_CODES, FIELDS
from clore.sandbox import BASE_URL, Sandbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "train.yaml"
ON_A_4090 = ("gpu=4090", "gpus=1")

# ---- the command line, in-process and as processes ----------------------------------------


def group() -> click.Group:
    """``clore`` with ``run`` and ``jobs`` (a copy: the real group is left as it is)."""
    made = copy.copy(cli)
    assert isinstance(made, click.Group)
    made.commands = dict(cli.commands)
    for name, command in (("run", run), ("jobs", jobs)):
        if name not in COMMANDS:
            made.add_command(command, name)
    return made


class Counting(httpx.BaseTransport):
    """A transport that counts the requests it passes on to the sandbox."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return self.inner.handle_request(request)


@dataclass
class InProcess:
    """``clore ARGS`` through click's runner against the in-process sandbox."""

    sandbox: Sandbox
    transport: Counting
    client: Clore

    def __call__(self, *args: str, input: str | None = None) -> Result:
        app = AppContext(
            client_instance=self.client,
            clock_instance=self.sandbox.clock,
            sandbox_instance=self.sandbox,
        )
        return CliRunner().invoke(group(), list(args), obj=app, input=input)

    def orders(self) -> list[Any]:
        with self.sandbox.client() as other:
            return other.my_orders(include_completed=True)


@pytest.fixture
def clore_cli(sandbox: Sandbox) -> Iterator[InProcess]:
    """The CLI on the in-process ``sandbox`` (its clock), every request counted."""
    transport = Counting(sandbox.transport())
    client = Clore(
        api_key=sandbox.demo_key, base_url=BASE_URL, transport=transport, clock=sandbox.clock
    )
    with client:
        yield InProcess(sandbox, transport, client)


#: A process running ``clore``: with ``CLORE_TEST_QUICK_BASE`` set, its client talks to
#: that sandbox server unpaced (as the embedded sandbox's is), with ``CLORE_API_KEY``.
HARNESS = r"""
import importlib, os, sys
from clore.cli import cli
from clore.cli._group import COMMANDS
for name, target in (("run", "clore.cli.run_cmd:run"), ("jobs", "clore.cli.jobs_cmd:jobs")):
    if name not in COMMANDS:
        module, _, attr = target.partition(":")
        cli.add_command(getattr(importlib.import_module(module), attr), name)
obj = None
base = os.environ.get("CLORE_TEST_QUICK_BASE")
if base:
    from clore import Clore, Pacing
    from clore.cli._context import AppContext
    pacing = Pacing(min_interval=0.01, create_interval=0.01, shared=False)
    client = Clore(os.environ["CLORE_API_KEY"], base_url=base, pacing=pacing)
    obj = AppContext(client_instance=client)
cli.main(sys.argv[1:], prog_name="clore", obj=obj)
"""


@dataclass
class LiveServer:
    """``python -m clore.sandbox serve`` on 127.0.0.1 at time scale 10, no rate limits."""

    proc: subprocess.Popen[str]
    base: str
    key: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CLORE_API_KEY", "CLORE_BASE_URL")}
        env.update(CLORE_API_KEY=self.key, CLORE_TEST_QUICK_BASE=self.base)
        return env

    def client(self) -> Clore:
        pacing = Pacing(min_interval=0.01, create_interval=0.01, shared=False)
        return Clore(self.key, base_url=self.base, pacing=pacing)

    def order_ids(self) -> set[int]:
        with self.client() as client:
            return {o.id for o in client.my_orders(include_completed=True)}

    def new_orders(self, before: set[int]) -> list[Any]:
        with self.client() as client:
            return [o for o in client.my_orders(include_completed=True) if o.id not in before]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """A sandbox server sharing this test's data directories with the CLI processes."""
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
        server = LiveServer(proc, url.group(0), key)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(server.base + "/marketplace", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def clore(*args: str, server: LiveServer | None = None, timeout: float = 120) -> Any:
    """``clore ARGS`` in a process of its own; the completed process (text)."""
    env = server.env() if server is not None else _plain_env()
    return subprocess.run(
        [sys.executable, "-c", HARNESS, *args],
        env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("CLORE_API_KEY", "CLORE_BASE_URL")}


@dataclass
class Running:
    """``clore --json run ...`` as a live process: its events read as they come."""

    proc: subprocess.Popen[str]
    events: list[dict[str, Any]]

    def wait_for(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"clore run ended early: {err[-2000:]}")
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == name:
                return event
        raise AssertionError(f"no {name} event in time")

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """The exit code and stderr, the remaining events read."""
        out, err = self.proc.communicate(timeout=timeout)
        self.events.extend(json.loads(line) for line in out.splitlines() if line.strip())
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)


def start(server: LiveServer, *args: str) -> Running:
    """``clore --json run ARGS`` started (events on stdout, output on stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "--json", "run", *args],
        env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return Running(proc, [])


def summary_of(stderr: str) -> str:
    """The last line on stderr: the job's summary."""
    return stderr.rstrip("\n").splitlines()[-1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_embedded_machines() -> None:
    """The background host of the --sandbox machines leaves with its data directory."""
    data = Path(os.environ["CLORE_DATA_DIR"])
    lock = data / "sandbox.machines" / "host.lock"
    pid = int(lock.read_text().split()[0]) if lock.is_file() else None
    shutil.rmtree(data, ignore_errors=True)
    deadline = time.monotonic() + 15
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# ---- the example on the embedded sandbox ----------------------------------------------


@pytest.mark.slow
def test_the_example_task_runs_on_the_embedded_sandbox(tmp_path: Path) -> None:
    """`clore --sandbox run examples/train.yaml --yes` streams the epochs (stdout and
    stderr apart), brings out/result.txt back, cancels its order, exits 0 and ends with
    the summary; every line keeps the output rules."""
    from test_cli_output_rules import violations

    try:
        done = clore(
            "--sandbox", "run", str(EXAMPLE), "--yes", "--output-dir", str(tmp_path), timeout=150
        )
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / "result.txt").read_text() == "trained for 3 epochs\n"
        assert [line for line in done.stdout.splitlines() if line.startswith("epoch")] == [
            "epoch 1 of 3",
            "epoch 2 of 3",
            "epoch 3 of 3",
        ]
        assert "epoch 1: loss 100" in done.stderr and "epoch 1 of 3" not in done.stderr
        last = summary_of(done.stderr)
        assert re.match(r"job [0-9a-f]{8} succeeded \(exit 0\) in \d+ s; cost ", last), last
        order_id = int(re.search(r"order (\d+) cancelled$", last).group(1))  # type: ignore[union-attr]
        assert violations(done.stderr) == []
        listed = subprocess.run(
            [sys.executable, "-m", "clore", "--sandbox", "--json", "orders", "--all"],
            env=_plain_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        (order,) = [o for o in json.loads(listed.stdout)["orders"] if o["id"] == order_id]
        assert order["derived"]["state"] in ("cancelled", "expired")
        assert order["derived"]["time_left_seconds"] == 0
    finally:
        stop_embedded_machines()


# ---- exit codes, streams, --json -------------------------------------------------------


@pytest.mark.slow
def test_a_failing_command_s_exit_code_is_the_run_s(live: LiveServer) -> None:
    """Exit 3 from the command is clore run's exit code; its stdout is on stdout, its
    stderr on stderr, the order is cancelled and the summary says failed."""
    before = live.order_ids()
    command = "echo $((6*7))-out; echo $((6*7))-err >&2; exit 3"  # the words are not the lines
    done = clore("run", *ON_A_4090, "--no-verify", "--yes", "--", command, server=live)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "42-out\n"
    assert "42-err\n" in done.stderr and "42-out" not in done.stderr
    assert " failed (exit 3) in " in summary_of(done.stderr)
    (order,) = live.new_orders(before)
    assert order.expired


@pytest.mark.slow
def test_json_gives_events_of_schema_v1_on_stdout_and_the_output_on_stderr(
    live: LiveServer,
) -> None:
    """--json: every stdout line is one event (v 1, the fields of its kind, in order from
    job_started to finished); the command's stdout and stderr are both on stderr."""
    before = live.order_ids()
    command = ["sh", "-c", "echo $((6*7))-out; echo $((6*7))-err >&2"]
    done = clore("--json", "run", *ON_A_4090, "--no-verify", "--yes", "--", *command, server=live)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "job_started" and names[-1] == "finished"
    for wanted in ("server_chosen", "rented", "ready", "running", "cancelled"):
        assert wanted in names
    for event in events:
        assert event["v"] == 1 and event["event"] in EVENT_NAMES
        common = {"v", "job", "t", "event", "message", "order_id", "server_id"}
        assert common | set(FIELDS[event["event"]]) <= set(event)
    assert len({e["job"] for e in events}) == 1
    finished = events[-1]
    assert (finished["reason"], finished["exit_code"], finished["cancelled"]) == (
        "succeeded",
        0,
        True,
    )
    assert "42-out\n" in done.stderr and "42-err\n" in done.stderr
    assert "42-out" not in done.stdout
    (order,) = live.new_orders(before)
    assert order.expired and order.id == finished["order_id"]


@pytest.mark.slow
def test_options_reach_the_job(clore_cli: InProcess, tmp_path: Path) -> None:
    """--env, --workdir, --exclude, --output and --output-dir: the variable is set, the
    excluded file stays home, the output comes back where asked."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("kept\n")
    (work / "skip.bin").write_text("not sent\n")
    command = "mkdir -p out; echo $GREETING > out/env.txt; ls > out/files.txt"
    result = clore_cli(
        "run", *ON_A_4090, "--no-verify", "--yes", "--env", "GREETING=hello",
        "--workdir", str(work), "--exclude", "*.bin", "--output", "out",
        "--output-dir", str(tmp_path / "back"), "--", command,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "back" / "out" / "env.txt").read_text() == "hello\n"
    assert (tmp_path / "back" / "out" / "files.txt").read_text().split() == ["keep.txt", "out"]
    assert all(o.expired for o in clore_cli.orders())


# ---- nothing is sent on bad input ----------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "options", "named"),
    [
        ("resources:\n  gpus: x\nrun: echo\n", [], "resources.gpus: expected an integer"),
        ("resourcs:\n  gpus: 1\nrun: echo\n", [], "resourcs: unknown field"),
        ("run: echo\nlimits:\n  max_time: soon\n", [], "limits.max_time"),
        ("name: nothing-to-run\n", [], "a command is required"),
        ("run: echo\n", ["--max-time", "soon"], "--max-time"),
        ("run: echo\n", ["--max-spend", "0.1usd/h"], "--max-spend: a total amount"),
        ("run: echo\n", ["--ports", "22:http"], "--ports"),
        ("run: echo\n", ["--order", "1", "--server", "2"], "--order"),
        ("run: echo\n", ["--gpus", "0"], "--gpus"),
        ("run: echo\noutputs: [../up]\n", [], "outputs[0]"),
        ("run: [echo\n", [], "invalid YAML"),
    ],
)
def test_bad_task_files_and_options_are_one_line_exit_2_before_any_request(
    clore_cli: InProcess, tmp_path: Path, task: str, options: list[str], named: str
) -> None:
    """A task file or option that cannot be used: exit 2, one line naming the field or
    option, not one request sent, nothing rented."""
    before = len(clore_cli.orders())
    path = tmp_path / "task.yaml"
    path.write_text(task)
    result = clore_cli("run", str(path), *options, "--yes")
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("clore: error:")
    assert named in lines[0]
    assert result.stdout == ""
    assert clore_cli.transport.paths == []
    assert len(clore_cli.orders()) == before


def test_without_yes_and_no_terminal_nothing_is_sent(clore_cli: InProcess) -> None:
    """No terminal to ask on (stdin is not one) and no --yes: exit 2 naming --yes before
    any request."""
    result = clore_cli("run", *ON_A_4090, "--", "echo hi")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "--yes" in line and "spends money" in line
    assert clore_cli.transport.paths == []


def test_dry_run_shows_the_server_and_rents_nothing(clore_cli: InProcess, tmp_path: Path) -> None:
    """--dry-run --json: the checked job, the cheapest matching server now and what would
    be uploaded; no order is made."""
    before = len(clore_cli.orders())
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("12345")
    result = clore_cli(
        "--json", "run", *ON_A_4090, "--workdir", str(work), "--env", "API_KEY=s3cret",
        "--dry-run", "--", "echo hi",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["job"]["command"] == "echo hi"
    assert doc["job"]["env"] == {"API_KEY": "<redacted>"}
    assert doc["upload"]["files"] == 1 and doc["upload"]["bytes"] == 5
    server = doc["server"]
    assert server["derived"]["gpu_count"] >= 1 and "4090" in server["derived"]["gpu_model"]
    with clore_cli.sandbox.client() as other:
        from clore.market import PriceContext, parse_filters
        from clore.rentals.choice import choose

        best = choose(other.marketplace(), parse_filters(ON_A_4090), PriceContext("bitcoin"))
    assert server["id"] == best.candidates[0].id
    assert "s3cret" not in result.stdout + result.stderr
    assert len(clore_cli.orders()) == before
    assert all("create_order" not in p for p in clore_cli.transport.paths)


# ---- a terminal, Ctrl-C, --keep ------------------------------------------------------------


def _on_a_terminal(server: LiveServer, args: list[str], answer: str | None) -> tuple[int, str]:
    """``clore ARGS`` with a pty as stdin (a terminal to ask on); ``answer`` typed when
    the question comes (None: Ctrl-C, a SIGINT, instead). The exit code and stderr."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, *args],
        env=server.env(), stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    os.close(slave)
    try:
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "Proceed?" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096).decode()
                if not chunk:
                    break
                seen += chunk
        assert "Proceed?" in seen, seen
        if answer is None:
            time.sleep(0.2)  # the prompt is up: the process reads the terminal
            proc.send_signal(signal.SIGINT)
        else:
            os.write(master, answer.encode() + b"\n")
        _out, rest = proc.communicate(timeout=90)
        return proc.returncode, seen + rest
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.slow
def test_on_a_terminal_the_job_is_confirmed_once_with_server_price_and_limits(
    live: LiveServer,
) -> None:
    """Without --yes on a terminal: one question showing the server, its price and the
    limits; no rents nothing (exit 1), yes runs the job on the very server the question
    named, at the price it showed."""
    before = live.order_ids()
    args = ["run", *ON_A_4090, "--no-verify", "--max-time", "2h", "--", "echo confirmed"]
    code, err = _on_a_terminal(live, args, "n")
    assert code == 1, err
    assert "not confirmed; nothing was rented" in err
    for label in ("server   server ", "price    ", "BTC/day", "limits   max time 2 h"):
        assert label in err
    assert err.count("Proceed?") == 1
    assert live.new_orders(before) == []
    code, err = _on_a_terminal(live, args, "y")
    assert code == 0, err
    assert " succeeded (exit 0) " in summary_of(err)
    (order,) = live.new_orders(before)
    assert order.expired
    named = re.search(r"server   server (\d+): .*\n.*\n  price    (\S+) BTC/day", err)
    assert named is not None, err
    assert int(named.group(1)) == order.si
    assert float(named.group(2)) == pytest.approx(float(order.price))


@pytest.mark.slow
def test_ctrl_c_at_the_question_is_a_no(live: LiveServer) -> None:
    """Ctrl-C while the question waits: not confirmed, exit 1, nothing rented."""
    before = live.order_ids()
    args = ["run", *ON_A_4090, "--no-verify", "--", "echo never"]
    code, err = _on_a_terminal(live, args, None)
    assert code == 1, err
    assert "not confirmed; nothing was rented" in err
    assert "Traceback" not in err
    assert live.new_orders(before) == []


@pytest.mark.slow
def test_ctrl_c_stops_the_job_cancels_the_order_and_exits_130(live: LiveServer) -> None:
    """SIGINT to a real `clore run` while its command runs: the command is stopped, the
    order cancelled, the finished event says interrupted, the summary too; exit 130,
    within a bounded time."""
    before = live.order_ids()
    running = start(live, *ON_A_4090, "--no-verify", "--yes", "--", "echo up; sleep 300")
    try:
        running.wait_for("running")
        running.proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        code, err = running.finish(timeout=60)
        took = time.monotonic() - began
    finally:
        running.kill()
    assert code == 130, err
    assert took < 45
    finished = running.events[-1]
    assert (finished["event"], finished["reason"], finished["cancelled"]) == (
        "finished",
        "interrupted",
        True,
    )
    assert " interrupted (exit 130) " in summary_of(err)
    (order,) = live.new_orders(before)
    assert order.expired and order.id == finished["order_id"]


@pytest.mark.slow
def test_keep_leaves_the_order_running_and_says_how_to_reach_and_stop_it(
    live: LiveServer,
) -> None:
    """--keep: the order keeps running after the job; the run says `clore ssh ID` and
    `clore cancel ID`."""
    before = live.order_ids()
    done = clore("run", *ON_A_4090, "--no-verify", "--keep", "--yes", "--", "true", server=live)
    assert done.returncode == 0, done.stderr
    (order,) = live.new_orders(before)
    try:
        assert not order.expired
        assert f"clore ssh {order.id}" in done.stderr
        assert f"`clore cancel {order.id}`" in summary_of(done.stderr)
        assert "kept running" in summary_of(done.stderr)
    finally:
        with live.client() as client:
            client.cancel_order(order.id)


# ---- help and events in words ------------------------------------------------------------


def test_the_help_lists_every_ending_s_exit_code() -> None:
    """Every exit code of an ending (clore.jobs.EXIT_CODES) is in `clore run --help`."""
    result = CliRunner().invoke(group(), ["run", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for reason, code in EXIT_CODES.items():
        assert f" {code} " in f" {' '.join(EXIT_EPILOG.split())} ", reason
    assert "Exit codes:" in text and "124 stopped by --max-spend" in text


def test_every_event_is_one_line_by_the_output_rules() -> None:
    """Each event kind has its line (finished: the summary instead), on one line, with
    human durations and the currency's digits, even with fields missing."""
    from test_cli_output_rules import violations

    from clore.cli._jobs import event_line
    from clore.jobs.events import make_job_event

    values = {
        "seconds": 125.4, "budget": 300.0, "price": 0.0000599, "spend": 0.000012345,
        "fees": 0.0000011, "value": 0.00009, "max": 0.0001, "bid": 0.00005,
        "winning_bid": 0.00006, "currency": "bitcoin", "bytes": 12_345_678, "files": 3,
        "threshold": 10.0, "utilization": 2.0, "attempt": 2, "candidates": 12,
        "outputs": ["out"], "failed": ["gpu_count"], "missing": [], "name": "train",
        "command": "python train.py\n--epochs 3", "reason": "outbid", "error": "closed",
        "ssh": "ssh -p 2222 root@127.0.0.1", "host": "127.0.0.1", "port": 2222,
        "limit": "max_spend", "verdict": "fail", "warning": "w", "by": "pid 1",
    }  # fmt: skip
    for name in EVENT_NAMES:
        empty = make_job_event("a1b2c3d4", name, 0.0, "the library's\nwords", order_id=12)
        full = make_job_event(
            "a1b2c3d4",
            name,
            0.0,
            "words",
            order_id=12,
            server_id=7,
            **{k: values.get(k) for k in FIELDS[name]},
        )
        for event in (empty, full):
            line = event_line(event)
            if name == "finished":
                assert line is None
                continue
            assert line and "\n" not in line, (name, line)
            assert violations(line) == [], (name, line)
        assert event_line(full) != "words", name  # its own words, not the fallback
