"""Hooks cannot hold up the loops that protect money: deadlines, the queue, process groups.

Real parts only: a webhook server on 127.0.0.1 that trickles its answer, real shell
commands, the real CLI. Every real-time wait is bounded; a loop that hangs fails its
assertion instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from wf_sandbox import World, record

from clore._clock import SystemClock
from clore._wire import Order
from clore.cli import cli
from clore.cli._context import AppContext
from clore.workflows.events import DETAILS, Event, make_event
from clore.workflows.hook_queue import HookQueue
from clore.workflows.hooks import CommandHook, Hooks, WebhookHook

AT = 1_700_000_000.0
#: A shell command whose background child outlives the shell unless its group is killed.
FORKS = "sh -c 'sleep 30 & echo $! > {pidfile}; sleep 30'"


def sample(kind: str = "expiring") -> Event:
    order = Order(id=5, si=9, price=0.0001, currency="bitcoin")
    return make_event("monitor", kind, AT, "order 5 expires", order=order)  # type: ignore[arg-type]


class _Trickle(BaseHTTPRequestHandler):
    """Answers a POST one byte every ``gap`` seconds, never finishing until ``stop`` is set:
    each read gets a byte well within any per-read timeout."""

    gap = 0.3
    stop = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        answer = b"HTTP/1.1 200 OK\r\nx-slow: " + b"." * 100_000
        for byte in answer:
            if self.stop.wait(self.gap):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client gave up: the point of the test

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def trickle_url() -> Iterator[str]:
    stop = threading.Event()
    handler = type("Trickle", (_Trickle,), {"stop": stop})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    finally:
        stop.set()  # releases a client still stuck on the old code
        httpd.shutdown()
        httpd.server_close()


def bounded(fn: Callable[[], Any], limit: float) -> tuple[Any, float]:
    """Run ``fn`` in a thread; (its result, seconds taken); fail if it takes over ``limit``."""
    box: list[Any] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(limit)
    elapsed = time.monotonic() - started
    assert not worker.is_alive(), f"still running after {limit} s"
    return box[0], elapsed


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def read_pid(pidfile: Path, seconds: float = 5.0) -> int:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("the hook never wrote its child's pid")


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, 9)


# ---- deadlines ----------------------------------------------------------------------------


def test_a_trickling_webhook_is_abandoned_at_its_deadline(trickle_url: str) -> None:
    """A server sending a byte every 0.3 s never trips a per-read timeout; the hook's
    overall deadline of 1 s ends the POST anyway and reports it."""
    hook = WebhookHook(trickle_url, timeout=1.0, retries=3)
    failed, elapsed = bounded(lambda: hook(sample()), 6.0)
    assert failed is not None and failed.kind == "hook_failed"
    assert "deadline" in failed.details["error"]
    assert elapsed < 2.0


def test_a_timed_out_command_hook_leaves_no_child_running(tmp_path: Path) -> None:
    """`sh -c 'sleep 30 & sleep 30'` with a 1 s timeout: the whole process group is
    killed, the background sleep too, and the hook returns at its deadline."""
    pidfile = tmp_path / "child.pid"
    hook = CommandHook(FORKS.format(pidfile=pidfile), timeout=1.0)
    pid = 0
    try:
        failed, elapsed = bounded(lambda: hook(sample()), 6.0)
        pid = read_pid(pidfile)
        assert failed is not None and "timed out after 1 s" in failed.details["error"]
        assert elapsed < 2.5
        assert gone_within(pid, 2.0), f"child {pid} still running"
    finally:
        if pid:
            kill_quietly(pid)


# ---- the queue ----------------------------------------------------------------------------


class _Blocking:
    """A hook that blocks until released, noting each event it gets."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []

    def __call__(self, event: Event) -> Event | None:
        self.seen.append(event.kind)
        self.started.set()
        self.release.wait(5.0)
        return None


def test_a_full_queue_drops_the_event_and_reports_hook_dropped() -> None:
    """With one event running and the queue (size 1) full, the next event is not queued:
    a hook_dropped event says so, and the loop is not held up."""
    hooks = Hooks(commands=["true"])
    blocking = _Blocking()
    hooks.commands = [blocking]  # type: ignore[list-item]
    reported: list[Event] = []
    queue = HookQueue(hooks, reported.append, size=1)
    queue.submit(sample("created"))
    assert blocking.started.wait(5.0)
    queue.submit(sample("ready"))
    queue.submit(sample("expiring"))  # returns while the hook still blocks: nothing waits
    assert blocking.seen == ["created"] and not blocking.release.is_set()
    assert [(e.kind, e.details["event_kind"]) for e in reported] == [("hook_dropped", "expiring")]
    assert set(reported[0].details) <= set(DETAILS["hook_dropped"])
    blocking.release.set()
    queue.close(grace=5.0)
    assert blocking.seen == ["created", "ready"]


def test_closing_the_queue_kills_a_running_command_hook_group(tmp_path: Path) -> None:
    """When the loop ends and the grace is spent, the running hook's process group is
    killed and the events still queued are reported dropped."""
    pidfile = tmp_path / "child.pid"
    hooks = Hooks(commands=[FORKS.format(pidfile=pidfile)], command_timeout=30.0)
    reported: list[Event] = []
    queue = HookQueue(hooks, reported.append)
    pid = 0
    try:
        queue.submit(sample("created"))
        queue.submit(sample("ready"))
        pid = read_pid(pidfile)
        _, elapsed = bounded(lambda: queue.close(grace=0.2), 6.0)
        assert elapsed < 2.5
        assert gone_within(pid, 2.0), f"child {pid} still running"
        kinds = sorted((e.kind, e.details["event_kind"]) for e in reported)
        assert kinds == [("hook_dropped", "ready"), ("hook_failed", "created")]
    finally:
        if pid:
            kill_quietly(pid)


# ---- the loops ----------------------------------------------------------------------------


def invoke(app: AppContext, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=app)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, [record(1, 0.0001, mrl=24), record(2, 0.01, mrl=24)])
    yield w
    w.close()


@pytest.mark.slow
def test_monitor_with_a_trickling_webhook_ends_on_time_and_keeps_polling(
    trickle_url: str, tmp_path: Path
) -> None:
    """`monitor --for 3s --interval 1` with a webhook that never finishes answering ends
    within --for plus one --hook-timeout, and polls on schedule meanwhile."""
    clock = SystemClock()
    world = World(tmp_path, [record(1, 0.0001, mrl=24)], clock=clock, rate_limit=False)
    client = world.scripted()
    client.create_order(1, "img")
    app = AppContext(client_instance=client, clock_instance=clock)  # type: ignore[arg-type]
    args = ["monitor", "--webhook", trickle_url, "--hook-timeout", "1", "--interval", "1",
            "--for", "3s", "--jsonl"]  # fmt: skip
    result, elapsed = bounded(lambda: invoke(app, *args), 12.0)
    assert result.exit_code == 0, result.stderr
    assert elapsed < 3.0 + 1.0 + 1.5
    assert client.count("my_orders") >= 3  # polls at +0, +1, +2 s
    kinds = [json.loads(line)["kind"] for line in result.stdout.splitlines()]
    assert kinds == ["tracking", "hook_failed"]
    world.close()


@pytest.mark.slow
def test_the_guard_cancels_on_time_while_a_hook_hangs(world: World) -> None:
    """A hook that hangs on the first event (low_runway) does not delay the cancel: it is
    sent as soon as the loop reaches it, not after the hook's timeout."""
    client = world.scripted(world.user("tight", 0.005))  # half a day: low_runway at once
    order = client.create_order(2, "img")
    cancelled_at: list[float] = []
    world.wire.before("cancel_order", lambda: cancelled_at.append(time.monotonic()))
    app = AppContext(client_instance=client, clock_instance=world.clock)  # type: ignore[arg-type]
    started = time.monotonic()
    args = ["guard", "--order", str(order.id), "--max-time", "10m", "--on-event", "sleep 5",
            "--hook-timeout", "2"]  # fmt: skip
    result, elapsed = bounded(lambda: invoke(app, *args), 12.0)
    assert result.exit_code == 0, result.stderr
    assert len(cancelled_at) == 1 and cancelled_at[0] - started < 1.0
    assert world.order(order.id).ended
    assert "guard_cancelled" in result.stdout  # an event is a result
    assert elapsed < 2.0 + 1.5  # the loop, then at most one --hook-timeout for the hooks


def test_ctrl_c_stops_the_loop_and_kills_a_running_hook_group(tmp_path: Path, world: World) -> None:
    """Hooks run in sessions of their own, out of reach of the terminal's Ctrl-C: the
    interrupted loop exits 130 at once and kills the running hook's process group."""
    pidfile = tmp_path / "child.pid"
    client = world.scripted()
    client.create_order(1, "img")

    def interrupt() -> None:
        read_pid(pidfile)  # the hook for 'tracking' is running
        raise KeyboardInterrupt

    world.at(45, interrupt)
    app = AppContext(client_instance=client, clock_instance=world.clock)  # type: ignore[arg-type]
    args = ["monitor", "--on-event", FORKS.format(pidfile=pidfile), "--hook-timeout", "30"]
    pid = 0
    try:
        result, elapsed = bounded(lambda: invoke(app, *args), 12.0)
        pid = read_pid(pidfile)
        assert result.exit_code == 130, result.stderr
        assert elapsed < 3.0
        assert gone_within(pid, 2.0), f"child {pid} still running"
        assert "aborted: the loop ended" in result.stdout  # the hook_dropped event
        assert "Traceback" not in result.output
    finally:
        if pid:
            kill_quietly(pid)
