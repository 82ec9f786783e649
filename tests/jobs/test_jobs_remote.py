"""The machine side of a job over real SSH: sandbox orders rented through the SDK (each a
real machine: its own SSH server, bubblewrap where usable), logged in to with the order's
password. A job outlives a cut connection and ``follow`` resumes from the offsets the
callbacks reached; output arrives live, stdout and stderr apart; exit codes (the setup's
too) are written and read back; the watchdog and ``stop`` end the whole process group;
files go up and come back as tar streams, nothing written outside the destination."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clore import Clore, Order
from clore.jobs import _tarstream
from clore.jobs.remote import (
    KILLED_EXIT_CODE,
    ConnectionLost,
    JobPaths,
    RemoteError,
    Session,
    default_workdir,
)
from clore.rentals.verify import Credentials, Target, target_of
from clore.sandbox import Sandbox
from clore.sandbox.fleet import MachineOptions

pytestmark = pytest.mark.slow

PASSWORD = "Jobs12345"
CREDS = Credentials(password=PASSWORD)
#: A real record of the bundled capture: 2x RTX 4090, free in the snapshot.
TWO_GPUS = 25718


@dataclass
class Rental:
    sandbox: Sandbox
    client: Clore
    order: Order
    target: Target

    async def session(self) -> Session:
        return await Session.open(self.target, CREDS, connect_timeout=10)


@pytest.fixture(params=["auto", "none"], ids=["isolated", "unconfined"])
def rental(
    sandbox_factory: Callable[..., Sandbox], request: pytest.FixtureRequest
) -> Iterator[Rental]:
    """A running order of the sandbox (its machine started), cancelled afterwards; its
    machine in bubblewrap where usable (a container's view), and unconfined (HOME not
    /root, processes on the host: what the scripts must also survive)."""
    options = MachineOptions(mode="local", isolation=request.param)
    sandbox = sandbox_factory(db=":memory:", seed="snapshot", rate_limit=False, machines=options)
    client = sandbox.client()
    order = client.create_order(TWO_GPUS, "ubuntu:22.04", ssh_password=PASSWORD)
    order = client.wait_for_order(order.id, timeout=600)
    yield Rental(sandbox, client, order, target_of(order))
    client.cancel_order(order.id)
    client.close()


class Collector:
    """Callbacks that keep the bytes and the offsets they reached, as the runner does."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.arrivals: list[tuple[float, str, bytes]] = []
        self.first = asyncio.Event()

    def on_stdout(self, data: bytes) -> None:
        self.out += data
        self.arrivals.append((time.time(), "out", data))
        self.first.set()

    def on_stderr(self, data: bytes) -> None:
        self.err += data
        self.arrivals.append((time.time(), "err", data))

    @property
    def offsets(self) -> tuple[int, int]:
        return len(self.out), len(self.err)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Await until ``check()`` is true (polling, real time); the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def run_once(session: Session, command: str) -> bytes:
    """The stdout of a short job (a way to look at the machine)."""
    job = f"look-{time.monotonic_ns()}"
    paths = await session.start(
        job, command=command, setup=None, env={}, workdir="~", heartbeat_timeout=None
    )
    sink = Collector()
    assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr, poll=0.05) == 0
    return bytes(sink.out)


# ---- running, reconnecting, following ---------------------------------------------------

TICKS = "for i in 1 2 3 4 5 6 7 8; do echo out $i; echo err $i >&2; sleep 0.3; done; exit 4"
EXPECTED_OUT = b"".join(b"out %d\n" % i for i in range(1, 9))
EXPECTED_ERR = b"".join(b"err %d\n" % i for i in range(1, 9))


async def test_a_job_outlives_a_dropped_connection_and_follow_resumes_exactly(
    rental: Rental,
) -> None:
    """The sandbox cuts every SSH connection mid-stream: follow raises ConnectionLost, the
    job keeps running, and a new session's follow from the saved offsets (and the paths
    saved as a record would) delivers the rest: each stream whole, once, apart."""
    session = await rental.session()
    paths = await session.start(
        "drop1", command=TICKS, setup=None, env={}, workdir=default_workdir("drop1"),
        heartbeat_timeout=None,
    )  # fmt: skip
    saved = paths.to_dict()
    sink = Collector()

    async def cut() -> None:
        await sink.first.wait()
        while b"out 2" not in sink.out:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(rental.sandbox.set_access_fault, rental.order.id, "drop")

    cutter = asyncio.ensure_future(cut())
    with pytest.raises(ConnectionLost, match=r"connection .* was lost"):
        await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr, poll=0.05)
    await cutter
    await session.close()
    assert 0 < len(sink.out) < len(EXPECTED_OUT)
    again = await rental.session()
    restored = JobPaths.from_dict(saved)
    assert (await again.status(restored)).running
    code = await again.follow(restored, sink.offsets, sink.on_stdout, sink.on_stderr, poll=0.05)
    await again.close()
    assert (code, bytes(sink.out), bytes(sink.err)) == (4, EXPECTED_OUT, EXPECTED_ERR)


async def test_follow_delivers_output_live_and_keeps_the_streams_apart(rental: Rental) -> None:
    """Lines printed two seconds apart reach the callbacks well under a second after the
    machine wrote them (each carries its own write time), stdout and stderr apart."""
    command = (
        'echo "o1 $(date +%s.%N)"; echo "e1 $(date +%s.%N)" >&2; sleep 2; '
        'echo "o2 $(date +%s.%N)"; sleep 2; echo "e2 $(date +%s.%N)" >&2'
    )
    async with await rental.session() as session:
        paths = await session.start(
            "live", command=command, setup=None, env={}, workdir="~", heartbeat_timeout=None
        )
        sink = Collector()
        assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr) == 0
    lags = {}
    for arrived, stream, data in sink.arrivals:
        for line in data.decode().splitlines():
            name, written = line.split()
            lags[name] = (stream, arrived - float(written))
    assert sorted(lags) == ["e1", "e2", "o1", "o2"]
    assert {n: s for n, (s, _) in lags.items()} == {
        "o1": "out",
        "o2": "out",
        "e1": "err",
        "e2": "err",
    }
    assert max(lag for _, lag in lags.values()) < 0.75, lags


async def test_exit_codes_env_and_workdir_reach_the_runner(rental: Rental) -> None:
    """A command's exit code (0 and not) comes back from follow and status; it ran with the
    env given, in the working directory given (created), after the setup."""
    async with await rental.session() as session:
        ok = await session.start(
            "ok", command='echo "$GREETING from $(pwd)"; cat made-by-setup',
            setup="echo s > made-by-setup", env={"GREETING": "hello 'world'"},
            workdir="~/jobs/ok", heartbeat_timeout=None,
        )  # fmt: skip
        sink = Collector()
        assert await session.follow(ok, (0, 0), sink.on_stdout, sink.on_stderr) == 0
        assert bytes(sink.out) == f"hello 'world' from {ok.workdir}\ns\n".encode()
        assert ok.workdir.endswith("/jobs/ok")
        bad = await session.start(
            "bad", command="echo no >&2; exit 3", setup=None, env={}, workdir="~",
            heartbeat_timeout=None,
        )  # fmt: skip
        sink = Collector()
        assert await session.follow(bad, (0, 0), sink.on_stdout, sink.on_stderr) == 3
        status = await session.status(bad)
        assert (status.running, status.exit_code, status.reason) == (False, 3, None)
        assert bytes(sink.err) == b"no\n"


async def test_a_failed_setup_is_the_jobs_failure_with_its_code(rental: Rental) -> None:
    """The setup exits 7: the command never runs, the exit code file says 7, and status
    says why."""
    async with await rental.session() as session:
        paths = await session.start(
            "setupfail", command="touch ran", setup="echo preparing; exit 7", env={},
            workdir="~/sf", heartbeat_timeout=None,
        )  # fmt: skip
        sink = Collector()
        assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr) == 7
        status = await session.status(paths)
        assert (status.exit_code, status.reason) == (7, "setup failed with exit code 7")
        assert bytes(sink.out) == b"preparing\n"
        assert (
            await run_once(session, f"test -e {paths.workdir}/ran && echo yes || echo no")
            == b"no\n"
        )
        assert await session.read_log(paths, "stdout", 3) == b"paring\n"


async def test_a_running_job_is_not_started_twice_and_an_unknown_one_is_not_found(
    rental: Rental,
) -> None:
    """Starting a job id that runs is refused; one the machine never saw is not found."""
    async with await rental.session() as session:
        paths = await session.start(
            "twice", command="sleep 30", setup=None, env={}, workdir="~", heartbeat_timeout=None
        )
        with pytest.raises(RemoteError, match="already runs"):
            await session.start(
                "twice", command="true", setup=None, env={}, workdir="~", heartbeat_timeout=None
            )
        await session.stop(paths, grace=1)
        gone = await session.status(JobPaths.of("/root/.clore-jobs/never", "/root"))
        assert (gone.found, gone.running, gone.exit_code) == (False, False, None)


# ---- ending it: watchdog and stop -----------------------------------------------------

CHILD = "sleep 300 & echo $! > child.pid; wait"


async def test_the_watchdog_ends_a_job_whose_runner_stopped_heart_beating(
    rental: Rental,
) -> None:
    """heartbeat_timeout=2: while heartbeats come the job runs on (past the timeout);
    once they stop, the job and its child are killed within seconds, exit 137, and the
    reason names the watchdog."""
    async with await rental.session() as session:
        paths = await session.start(
            "wd", command=CHILD, setup=None, env={}, workdir="~/wd", heartbeat_timeout=2
        )
        started = time.monotonic()
        while time.monotonic() - started < 4:
            await session.heartbeat(paths)
            await asyncio.sleep(0.5)
        assert (await session.status(paths)).running
        stopped_beating = time.monotonic()

        async def ended() -> bool:
            return not (await session.status(paths)).running

        await wait_until(ended, timeout=15)
        took = time.monotonic() - stopped_beating
        status = await session.status(paths)
        assert (
            status.exit_code,
            status.reason,
        ) == (KILLED_EXIT_CODE, "watchdog: no heartbeat for 2 s")
        assert 1.5 < took < 10
        child = await run_once(
            session, f"kill -s 0 $(cat {paths.workdir}/child.pid) && echo alive || echo gone"
        )
        assert child == b"gone\n"


async def test_follow_with_heartbeats_keeps_a_watched_job_alive(rental: Rental) -> None:
    """follow(heartbeat_interval=...) heart-beats meanwhile: a 4 s job under a 2 s
    watchdog ends by itself."""
    async with await rental.session() as session:
        paths = await session.start(
            "hb", command="sleep 4; echo done", setup=None, env={}, workdir="~",
            heartbeat_timeout=2,
        )  # fmt: skip
        sink = Collector()
        code = await session.follow(
            paths, (0, 0), sink.on_stdout, sink.on_stderr, heartbeat_interval=0.5
        )
        assert (code, bytes(sink.out), (await session.status(paths)).reason) == (0, b"done\n", None)


async def test_stop_terms_the_group_then_kills_what_ignores_it(rental: Rental) -> None:
    """stop: a group that ignores TERM is killed after the grace, its background child
    too; follow (elsewhere) ends with 137; a job that ended is left alone."""
    async with await rental.session() as session:
        paths = await session.start(
            "stubborn", command=f"trap '' TERM; {CHILD}", setup=None, env={}, workdir="~/st",
            heartbeat_timeout=None,
        )  # fmt: skip
        sink = Collector()
        follower = asyncio.ensure_future(
            session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr)
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await session.stop(paths, grace=1.5)
        took = time.monotonic() - started
        assert 1.4 < took < 10
        assert await asyncio.wait_for(follower, 10) == KILLED_EXIT_CODE
        status = await session.status(paths)
        assert (
            status.running,
            status.exit_code,
            status.reason,
        ) == (False, KILLED_EXIT_CODE, "stopped")
        child = await run_once(
            session, f"kill -s 0 $(cat {paths.workdir}/child.pid) && echo alive || echo gone"
        )
        assert child == b"gone\n"
        await session.stop(paths, grace=1, reason="again")
        assert (await session.status(paths)).reason == "stopped"


async def test_stop_of_a_job_that_heeds_term_is_quick(rental: Rental) -> None:
    """A plain command dies on TERM: stop returns well before the grace."""
    async with await rental.session() as session:
        paths = await session.start(
            "quick", command=CHILD, setup=None, env={}, workdir="~/q", heartbeat_timeout=None
        )
        started = time.monotonic()
        await session.stop(paths, grace=20)
        assert time.monotonic() - started < 5
        assert (await session.status(paths)).exit_code == KILLED_EXIT_CODE


# ---- files ------------------------------------------------------------------------------


def _tree(root: Path) -> list[Path]:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "src" / "deep" / "data é.bin").write_bytes(os.urandom(300_000))
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho run\n")
    run.chmod(0o755)
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to("src/main.py")
    (root / "secret.env").write_text("not selected\n")
    return sorted(
        Path(p) for p in ("src/main.py", "src/deep/data é.bin", "run.sh", "empty", "link")
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_upload_sends_exactly_the_listed_files_as_one_tar_stream(
    rental: Rental, tmp_path: Path
) -> None:
    """The files listed arrive with their bytes and modes, the symlink as a symlink, the
    file not listed does not; progress reaches the total."""
    local = tmp_path / "work"
    files = _tree(local)
    seen: list[tuple[int, int]] = []
    async with await rental.session() as session:
        sent = await session.upload(local, files, "~/up", progress=lambda d, t: seen.append((d, t)))
        listing = await run_once(
            session,
            "cd ~/up && find . -type f -exec sha256sum {} + | sort -k2 && "
            "readlink link && ls -l run.sh | cut -c1-10 && ls",
        )
    lines = listing.decode().splitlines()
    sums = {line.split("  ", 1)[1]: line.split()[0] for line in lines if "  ./" in line}
    expected = {f"./{p}": _digest(local / p) for p in files if not (local / p).is_symlink()}
    assert expected == sums
    assert lines[len(sums) :] == ["src/main.py", "-rwxr-xr-x", "empty", "link", "run.sh", "src"]
    total = sum((local / p).lstat().st_size for p in files if not (local / p).is_symlink())
    assert seen[-1] == (total, total) and sent > total


async def test_download_brings_outputs_back_and_reports_the_missing(
    rental: Rental, tmp_path: Path
) -> None:
    """The job's out/ directory (nested, with an inner symlink) and a single file come
    back byte for byte; an output that does not exist is reported, not fatal."""
    command = (
        "mkdir -p out/sub && head -c 200000 /dev/urandom > out/sub/model.bin && "
        "echo 42 > out/result.txt && ln -s result.txt out/latest && echo log > train.log"
    )
    async with await rental.session() as session:
        paths = await session.start(
            "dl", command=command, setup=None, env={}, workdir="~/dl", heartbeat_timeout=None
        )
        sink = Collector()
        assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr) == 0
        missing: list[str] = []
        got = await session.download(
            paths.workdir, ["out", "train.log", "checkpoints/"], tmp_path / "results",
            on_missing=missing.append,
        )  # fmt: skip
        remote_sum = await run_once(session, f"sha256sum {paths.workdir}/out/sub/model.bin")
    results = tmp_path / "results"
    assert [results / "out", results / "train.log"] == got
    assert missing == ["checkpoints"]
    assert (results / "out" / "result.txt").read_text() == "42\n"
    assert os.readlink(results / "out" / "latest") == "result.txt"
    assert remote_sum.split()[0].decode() == _digest(results / "out" / "sub" / "model.bin")
    assert (results / "train.log").read_text() == "log\n"


async def test_download_never_writes_outside_the_local_directory(
    rental: Rental, tmp_path: Path
) -> None:
    """Links in the outputs that point out of the destination (absolute, or up with ..)
    are refused and reported; the rest comes back; nothing appears outside."""
    command = (
        "mkdir -p out && echo fine > out/ok.txt && ln -s /etc/passwd out/abs && "
        "ln -s ../../../../../../escape out/up"
    )
    async with await rental.session() as session:
        paths = await session.start(
            "evil", command=command, setup=None, env={}, workdir="~/evil", heartbeat_timeout=None
        )
        sink = Collector()
        assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr) == 0
        dest = tmp_path / "a" / "b" / "dest"
        got = await session.fetch(paths.workdir, ["out"], dest)
    assert got.paths == (dest / "out",)
    assert sorted(name for name, _ in got.refused) == ["out/abs", "out/up"]
    assert (dest / "out" / "ok.txt").read_text() == "fine\n"
    assert not (dest / "out" / "abs").exists() and not (dest / "out" / "up").is_symlink()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "dest", "ok.txt", "out"]


async def test_download_of_nothing_present_reports_all_missing(
    rental: Rental, tmp_path: Path
) -> None:
    """No output exists: nothing is written, each is reported missing."""
    async with await rental.session() as session:
        got = await session.fetch("~", ["a", "b/c"], tmp_path / "none")
    assert (got.paths, got.missing, got.bytes) == ((), ("a", "b/c"), 0)


async def test_outputs_that_escape_are_refused_before_anything_is_sent(
    rental: Rental, tmp_path: Path
) -> None:
    """An output path that is absolute or climbs with .. is a ValueError at once."""
    async with await rental.session() as session:
        for bad in ("/etc", "../x", "a/../../b", "", "."):
            with pytest.raises(ValueError, match="relative to the working directory"):
                await session.fetch("~", [bad], tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def _crafted() -> bytes:
    """A hostile archive: good members and members that try to get out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def add(
            name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.mode = 0o4755
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("out/good.txt", data=b"good")
        add("/tmp/abs-escape")
        add("out/../../dotdot-escape")
        add("out/sym", tarfile.SYMTYPE, link="../../outside")
        add("out/abs", tarfile.SYMTYPE, link="/etc/passwd")
        add("out/hard", tarfile.LNKTYPE, link="/etc/passwd")
        add("out/dev", tarfile.CHRTYPE)
        add("other/not-asked")
        add("out/fine-link", tarfile.SYMTYPE, link="good.txt")
    return buffer.getvalue()


@pytest.mark.parametrize("data_filter", [True, False], ids=["data_filter", "own_checks"])
def test_extraction_refuses_every_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_filter: bool
) -> None:
    """With tarfile's data filter and with the checks used where Python lacks it (3.10
    before .12): only the safe members under the asked outputs are written, setuid
    dropped."""
    if data_filter and not _tarstream.HAS_DATA_FILTER:
        pytest.skip("this Python has no tarfile.data_filter")
    monkeypatch.setattr(_tarstream, "HAS_DATA_FILTER", data_filter)
    dest = tmp_path / "dest"
    done = _tarstream.extract_stream(io.BytesIO(_crafted()), dest, ["out"])
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["dest", "dest/out", "dest/out/fine-link", "dest/out/good.txt"]
    assert (dest / "out" / "good.txt").stat().st_mode & 0o7000 == 0
    refused = sorted(name for name, _ in done.refused)
    assert refused == sorted(
        ["/tmp/abs-escape", "out/../../dotdot-escape", "out/sym", "out/abs", "out/hard",
         "out/dev", "other/not-asked"]
    )  # fmt: skip
    assert done.outputs == ["out"]


# ---- the GPU --------------------------------------------------------------------------


async def test_gpu_utilization_follows_load_and_is_none_without_a_gpu_tool(
    rental: Rental,
) -> None:
    """Idle the two GPUs read 0 %; under gpu_burn 100 %; idle again once it ends; None
    when nvidia-smi is not there or finds no GPU."""
    async with await rental.session() as session:
        assert await session.gpu_utilization() == [0.0, 0.0]
        paths = await session.start(
            "burn", command="gpu_burn 3", setup=None, env={}, workdir="~", heartbeat_timeout=None
        )

        async def busy() -> bool:
            return await session.gpu_utilization() == [100.0, 100.0]

        await wait_until(busy, timeout=10)
        sink = Collector()
        assert await session.follow(paths, (0, 0), sink.on_stdout, sink.on_stderr) == 0
        assert await session.gpu_utilization() == [0.0, 0.0]
        assert await session.gpu_utilization(nvidia_smi="nvidia-smi-not-installed") is None
        rental.sandbox.set_server(TWO_GPUS, delivers={"gpu_count": 0})
        assert await session.gpu_utilization() is None


async def test_a_closed_session_raises_connection_lost(rental: Rental) -> None:
    """Every step on a connection that is gone says so as ConnectionLost."""
    session = await rental.session()
    paths = await session.start(
        "closed", command="true", setup=None, env={}, workdir="~", heartbeat_timeout=None
    )
    await session.close()
    with pytest.raises(ConnectionLost):
        await session.status(paths)
    with pytest.raises(ConnectionLost):
        await session.heartbeat(paths)


async def test_a_wrong_password_is_a_one_line_connection_lost(rental: Rental) -> None:
    """A refused login is ConnectionLost, one line, the password nowhere in it."""
    with pytest.raises(ConnectionLost) as caught:
        await Session.open(rental.target, Credentials(password="WrongPass999"), connect_timeout=10)
    assert "login refused" in str(caught.value)
    assert "WrongPass999" not in str(caught.value) and "\n" not in str(caught.value)
