"""A hold on the key whose process died is released at once; a live one is still respected."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clore import Pacing
from clore._pacing import INFLIGHT_POLL, FileStore, Pacer, state_file

T0 = 1_700_000_000.0
CFG = Pacing()
LINUX = Path("/proc/self/stat").exists() and Path("/proc/sys/kernel/random/boot_id").exists()

# Reserves the key in a real process at an injected time, says so, then dies without
# completing (os._exit) or waits to be killed.
HOLDER = """
import os, sys, time
from pathlib import Path
from clore import Pacing
from clore._pacing import FileStore, Pacer
path, kind, now, end = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
assert Pacer(Pacing(), FileStore(path)).reserve(kind, now, hold=30.0) == 0.0
print("held", flush=True)
if end == "exit":
    os._exit(0)
time.sleep(60)
"""


def start_holder(path: Path, kind: str = "request", end: str = "wait") -> subprocess.Popen[str]:
    """A real process holding the key of ``path`` since T0 (a 30 s hold)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), kind, str(T0), end],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "held":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the holder process did not take the key: {err}")
    return proc


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return state_file("holder-test-key", tmp_path / "pacing")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data))


def gone_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def polls(wait: float) -> bool:
    """True when ``wait`` is the short poll behind a request in flight."""
    return 0 < wait <= INFLIGHT_POLL


# --------------------------------------------------------------------------- dead holders


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
@pytest.mark.parametrize("death", ["sigkill", "os._exit", "sigkill, not yet reaped"])
def test_a_dead_processes_hold_is_released_at_once(
    path: Path, procs: list[subprocess.Popen[str]], death: str
) -> None:
    """After the holder dies mid-request, the next request waits one interval, not ~30 s."""
    proc = start_holder(path, end="exit" if death == "os._exit" else "wait")
    procs.append(proc)
    if death.startswith("sigkill"):
        proc.send_signal(signal.SIGKILL)
    if death == "sigkill, not yet reaped":
        # Wait for the exit but leave the zombie: its PID still answers kill(pid, 0).
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    else:
        proc.wait(timeout=30)
    pacer = Pacer(CFG, FileStore(path))
    # The dead request may have been counted until now: the interval counts from here.
    assert pacer.reserve("request", T0 + 0.5) == pytest.approx(1.01)
    assert pacer.reserve("request", T0 + 1.5) == pytest.approx(0.01)
    assert pacer.reserve("request", T0 + 1.51) == 0.0


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
def test_a_dead_create_keeps_the_create_interval_from_its_release(
    path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """A create_order that died in flight still spaces the next create 5 s from its release."""
    proc = start_holder(path, kind="create", end="exit")
    procs.append(proc)
    proc.wait(timeout=30)
    pacer = Pacer(CFG, FileStore(path))
    assert pacer.reserve("create", T0 + 2.0) == pytest.approx(5.01)
    assert pacer.reserve("request", T0 + 2.0) == pytest.approx(1.01)
    assert pacer.reserve("create", T0 + 7.01) == 0.0


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
def test_releasing_a_dead_hold_keeps_the_429_penalty(
    path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """A penalty in force still widens the interval after a dead hold is released."""
    proc = start_holder(path, end="exit")
    procs.append(proc)
    proc.wait(timeout=30)
    data = read(path)
    data["penalty"], data["penalty_at"] = 0.5, T0 + 1.0
    write(path, data)
    wait = Pacer(CFG, FileStore(path)).reserve("request", T0 + 1.0)
    assert wait == pytest.approx(1.51, abs=0.01)


# --------------------------------------------------------------------------- live holders


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
def test_a_live_holder_in_another_process_is_still_respected(
    path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """While the holding process runs, others poll behind its request until it ends."""
    proc = start_holder(path)
    procs.append(proc)
    pacer = Pacer(CFG, FileStore(path))
    assert polls(pacer.reserve("request", T0 + 5.0))
    assert polls(pacer.reserve("create", T0 + 29.0))
    proc.kill()
    proc.wait(timeout=30)
    assert pacer.reserve("request", T0 + 29.0) == pytest.approx(1.01)


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
def test_a_late_answer_does_not_release_another_processes_hold(
    path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """An answer arriving after its hold expired leaves the hold another process took since."""
    late = Pacer(CFG, FileStore(path))
    assert late.reserve("request", T0 - 10.0, hold=5.0) == 0.0  # expired by T0
    procs.append(start_holder(path))  # takes the key at T0
    late.complete("request", T0 + 0.5)
    assert polls(Pacer(CFG, FileStore(path)).reserve("request", T0 + 2.0))


def test_a_hold_of_this_process_is_respected_by_another_client(path: Path) -> None:
    """Two clients of one process share the key: one's request in flight holds the other."""
    first, second = Pacer(CFG, FileStore(path)), Pacer(CFG, FileStore(path))
    assert first.reserve("request", T0) == 0.0
    assert polls(second.reserve("request", T0 + 10.0))
    first.complete("request", T0 + 10.5)
    assert second.reserve("request", T0 + 11.51) == 0.0


# --------------------------------------------------------------------------- identity


@pytest.mark.skipif(not LINUX, reason="boot id and start times come from /proc")
def test_the_file_names_the_holder_by_pid_boot_and_start_time(path: Path) -> None:
    """The shared file records who holds the key: PID, host, boot id, start time, kind."""
    Pacer(CFG, FileStore(path)).reserve("create", T0)
    holder = read(path)["holder"]
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    stat = Path("/proc/self/stat").read_text()
    started = int(stat[stat.rindex(")") + 2 :].split()[19])
    assert (holder["pid"], holder["boot"], holder["started"], holder["kind"]) == (
        os.getpid(),
        boot,
        started,
        "create",
    )
    assert holder["host"]


@pytest.mark.skipif(not LINUX, reason="boot id comes from /proc")
def test_a_hold_from_another_boot_is_released(path: Path) -> None:
    """A hold written before a reboot is released even when its PID now runs again."""
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    data = read(path)
    data["holder"]["boot"] = "00000000-0000-0000-0000-000000000000"  # this very PID, live
    write(path, data)
    assert Pacer(CFG, FileStore(path)).reserve("request", T0 + 0.5) == pytest.approx(1.01)


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_a_reused_pid_does_not_keep_a_dead_hold(path: Path) -> None:
    """A live process that got the dead holder's PID (another start time) holds nothing."""
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    data = read(path)
    data["holder"]["started"] -= 1
    write(path, data)
    assert Pacer(CFG, FileStore(path)).reserve("request", T0 + 0.5) == pytest.approx(1.01)


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
@pytest.mark.parametrize(
    "change",
    [
        {"host": "another-machine"},  # a home directory shared between machines
        {"pidns": "pid:[1]"},  # another container's PIDs are not ours
    ],
    ids=["another host", "another pid namespace"],
)
def test_a_holder_that_cannot_be_checked_from_here_keeps_its_hold(
    path: Path, change: dict[str, str]
) -> None:
    """A hold by a PID from another machine or container is kept until it expires."""
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    data = read(path)
    data["holder"].update(change, pid=gone_pid())
    write(path, data)
    pacer = Pacer(CFG, FileStore(path))
    assert polls(pacer.reserve("request", T0 + 5.0))
    assert pacer.reserve("request", T0 + 30.0) == 0.0


@pytest.mark.skipif(sys.platform == "win32", reason="the shared file is POSIX only")
@pytest.mark.parametrize("pid", [0, -1, "12", True, None, 2**70])
def test_a_malformed_holder_keeps_its_hold_and_signals_nobody(path: Path, pid: object) -> None:
    """A holder PID that is not a positive int is unknown: its hold expires by time only."""
    Pacer(CFG, FileStore(path)).reserve("request", T0)
    data = read(path)
    data["holder"]["pid"] = pid
    write(path, data)
    pacer = Pacer(CFG, FileStore(path))
    assert polls(pacer.reserve("request", T0 + 5.0))
    assert pacer.reserve("request", T0 + 30.0) == 0.0


# --------------------------------------------------------------------------- the file format


def test_a_file_in_the_old_format_still_works(path: Path) -> None:
    """A state file written before holders were recorded is read: its history and its hold
    (which expires by time, as before) are kept."""
    old = {
        "last_request": T0,
        "last_create": T0,
        "inflight_until": T0 + 30,
        "penalty": 0.0,
        "penalty_at": 0.0,
        "spot": {"5": {"bid": 0.002, "lowered_at_server": T0, "seen_at_server": T0}},
    }
    path.parent.mkdir(parents=True)
    write(path, old)
    pacer = Pacer(CFG, FileStore(path))
    assert polls(pacer.reserve("request", T0 + 2.0))
    assert pacer.spot_wait(5, 0.001, T0 + 100) == pytest.approx(500)
    assert pacer.reserve("create", T0 + 30.0) == 0.0
    write(path, {"last_request": T0, "inflight_until": None})
    assert pacer.reserve("request", T0 + 0.5) == pytest.approx(0.51)


def test_the_new_file_keeps_every_field_an_older_reader_needs(path: Path) -> None:
    """The old top-level fields stay as they were, so an older clore on the same file
    still paces behind a new one's requests."""
    pacer = Pacer(CFG, FileStore(path))
    pacer.reserve("create", T0, hold=30.0)
    data = read(path)
    assert (data["last_request"], data["last_create"], data["inflight_until"]) == (
        T0,
        T0,
        T0 + 30,
    )
    pacer.complete("create", T0 + 0.5, rate_limited=True)
    data = read(path)
    assert (data["inflight_until"], data["penalty_at"]) == (None, T0 + 0.5)
    assert "holder" not in data or data["holder"] is None
