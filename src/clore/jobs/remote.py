"""The machine side of a job, over one asyncssh connection: files in, the job started
detached, its output followed live, files out.

```python
from clore.jobs.remote import Session, default_workdir

async with await Session.open(target, credentials, known_hosts=path) as session:
    await session.upload(selection.root, selection.files, default_workdir(job_id))
    paths = await session.start(job_id, command="python train.py", setup=None, env={},
                                workdir=default_workdir(job_id), heartbeat_timeout=60)
    offsets = [0, 0]                                       # the caller's bookkeeping
    def out(b): offsets[0] += len(b); sys.stdout.buffer.write(b)
    def err(b): offsets[1] += len(b); sys.stderr.buffer.write(b)
    code = await session.follow(paths, tuple(offsets), out, err, heartbeat_interval=20)
    await session.download(paths.workdir, ["out"], Path("results"))
```

The job runs in a session of its own (``setsid nohup``), so a dropped connection leaves it
running; its stdout and stderr go to two files, its exit code to a third once it ended
(the setup's code when the setup failed), the why of an ending that was not its own in
``reason``. ``follow`` streams both files from byte offsets, so after a reconnect (a new
``Session``, the same ``JobPaths``) it resumes exactly where the callbacks stopped: no
byte lost or repeated. With ``heartbeat_timeout`` a watchdog beside the job ends it
(TERM, then KILL after the grace; exit code 137) once ``heartbeat`` has not been called
for that long: a runner that vanished does not leave a GPU busy and billing.

Every remote step is one exec of a POSIX ``sh`` program (``clore.jobs._remote_scripts``);
files move as one tar stream each way (``clore.jobs._tarstream``), never file by file.
Errors are ``RemoteError`` (one line, no secrets); ``ConnectionLost`` (a subclass) means
the connection is gone and the caller should reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clore.jobs import _remote_scripts as scripts
from clore.jobs import _tarstream
from clore.rentals.verify.ssh import Credentials, SshFailure, Target, connect

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "KILLED_EXIT_CODE",
    "ConnectionLost",
    "Download",
    "JobPaths",
    "RemoteError",
    "RemoteStatus",
    "Session",
    "default_workdir",
    "job_root",
]

#: The exit code of a job the watchdog or ``stop`` killed.
KILLED_EXIT_CODE = scripts.KILLED
#: How long one short remote step (status, heartbeat, a log read) may take.
STEP_TIMEOUT = 60.0


class RemoteError(Exception):
    """A remote step failed; the message is one line and holds no secret."""


class ConnectionLost(RemoteError):
    """The SSH connection is gone (dropped, closed, timed out): reconnect and go on."""


def job_root(job_id: str) -> str:
    """The job's directory on the machine, as ``start`` makes it (``~/.clore-jobs/ID``)."""
    return f"~/{scripts.JOBS_DIR}/{scripts.check_job_id(job_id)}"


def default_workdir(job_id: str) -> str:
    """A working directory of the job's own: ``~/.clore-jobs/ID/work``."""
    return f"{job_root(job_id)}/work"


@dataclass(frozen=True)
class JobPaths:
    """Where one job keeps its files on the machine (absolute paths)."""

    root: str
    workdir: str
    stdout: str
    stderr: str
    exit_code: str
    pid: str
    heartbeat: str

    @classmethod
    def of(cls, root: str, workdir: str) -> JobPaths:
        """The paths of the job whose directory is ``root``."""
        return cls(
            root=root,
            workdir=workdir,
            stdout=f"{root}/stdout",
            stderr=f"{root}/stderr",
            exit_code=f"{root}/exit_code",
            pid=f"{root}/pid",
            heartbeat=f"{root}/heartbeat",
        )

    @property
    def reason(self) -> str:
        """The file saying why the job ended when it did not end by itself."""
        return f"{self.root}/reason"

    def to_dict(self) -> dict[str, str]:
        """For a job record (JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> JobPaths:
        """Back from ``to_dict`` (``ValueError`` when a path is missing)."""
        try:
            return cls.of(str(data["root"]), str(data["workdir"]))
        except KeyError as exc:
            raise ValueError(f"job paths: {exc.args[0]} is missing") from None


@dataclass(frozen=True)
class RemoteStatus:
    """A job as its machine sees it: still ``running``, its ``exit_code`` once it ended,
    and ``reason`` when it did not end by itself (``"watchdog: no heartbeat for 60 s"``,
    ``"stopped"``, ``"setup failed with exit code 2"``). ``found`` is False when the
    machine has no such job (a fresh machine after a restart)."""

    running: bool
    exit_code: int | None
    reason: str | None
    found: bool = True


@dataclass(frozen=True)
class Download:
    """What came back: the local ``paths`` of the outputs found, those ``missing`` on the
    machine, members ``refused`` (name, why: outside the directory, links pointing out),
    the tar stream's size, and tar's complaints (``warnings``)."""

    paths: tuple[Path, ...]
    missing: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    bytes: int
    warnings: tuple[str, ...] = ()


def _one_line(data: bytes | str, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "")[:limit]


def _check_output(path: str) -> str:
    norm = posixpath.normpath(path.strip())
    if (
        not path.strip()
        or "\0" in path
        or "\n" in path
        or norm.startswith("/")
        or norm == "."
        or norm == ".."
        or norm.startswith("../")
    ):
        raise ValueError(f"output {path!r}: give a path relative to the working directory")
    return norm


class Session:
    """One logged-in SSH connection to a rental; every method is one or two execs."""

    def __init__(self, conn: asyncssh.SSHClientConnection, target: Target) -> None:
        self._conn = conn
        self._target = target
        self._beats = 0

    @classmethod
    async def open(
        cls,
        target: Target,
        credentials: Credentials,
        *,
        known_hosts: Path | None = None,
        connect_timeout: float = 20.0,
        keepalive_interval: float | None = 15.0,
    ) -> Session:
        """Log in (the host-key rules of ``clore.rentals.verify.ssh.connect``);
        ``ConnectionLost`` when the machine cannot be reached or refuses the login."""
        try:
            conn = await connect(
                target,
                credentials,
                known_hosts=known_hosts,
                connect_timeout=connect_timeout,
                keepalive_interval=keepalive_interval,
            )
        except SshFailure as exc:
            raise ConnectionLost(str(exc)) from None
        return cls(conn, target)

    @property
    def target(self) -> Target:
        return self._target

    async def close(self) -> None:
        """Close the connection (the job keeps running)."""
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), timeout=2.0)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- plumbing ---------------------------------------------------------------------

    def _lost(self, exc: BaseException | None, doing: str) -> RemoteError:
        import asyncssh

        where = f"{self._target.host}:{self._target.port}"
        if isinstance(exc, asyncio.TimeoutError | TimeoutError):
            return ConnectionLost(f"{doing}: no answer from {where} in time")
        if exc is None or isinstance(
            exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError | OSError | EOFError
        ):
            return ConnectionLost(f"{doing}: the SSH connection to {where} was lost")
        return RemoteError(f"{doing} on {where} failed: {type(exc).__name__}")

    async def _process(self, command: str, doing: str) -> asyncssh.SSHClientProcess[bytes]:
        import asyncssh

        try:
            return await self._conn.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise self._lost(exc, doing) from None

    async def _run(
        self,
        command: str,
        doing: str,
        *,
        stdin: bytes | None = None,
        timeout: float = STEP_TIMEOUT,
    ) -> tuple[int, bytes, bytes]:
        """Run one command to its end: (exit status, stdout, stderr)."""
        import asyncssh

        try:
            result = await asyncio.wait_for(
                self._conn.run(
                    command,
                    input=stdin,
                    stdin=asyncssh.DEVNULL if stdin is None else asyncssh.PIPE,
                    encoding=None,
                ),
                timeout=timeout,
            )
        except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
            raise self._lost(exc, doing) from None
        if result.exit_status is None and result.exit_signal is None:
            raise self._lost(None, doing)
        out = result.stdout if isinstance(result.stdout, bytes) else b""
        err = result.stderr if isinstance(result.stderr, bytes) else b""
        status = result.exit_status if result.exit_status is not None else 255
        return status, out, err

    # ---- files ------------------------------------------------------------------------

    async def upload(
        self,
        local_root: Path,
        files: Sequence[Path],
        remote_dir: str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Send ``files`` (paths relative to ``local_root``; symbolic links stay links)
        into ``remote_dir`` (created; relative paths and ``~/`` are under the login's
        home) as one tar stream over one exec; the stream's size in bytes.
        ``progress(done, total)`` follows the files' bytes."""
        import asyncssh

        local_root = Path(local_root)
        total = _tarstream.content_bytes(local_root, files)
        doing = f"upload to {remote_dir}"
        proc = await self._process(scripts.upload_command(remote_dir), doing)
        errors = asyncio.ensure_future(proc.stderr.read())
        sent = 0
        try:
            try:
                for chunk in _tarstream.tar_chunks(local_root, files):
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
                    sent += len(chunk)
                    if progress is not None:
                        progress(min(sent, total), total)
                proc.stdin.write_eof()
                await asyncio.wait_for(proc.wait(), timeout=STEP_TIMEOUT)
            except OSError as exc:
                if exc.filename is None:
                    raise self._lost(exc, doing) from None
                raise RemoteError(
                    f"{doing}: cannot read {exc.filename}: {exc.strerror or type(exc).__name__}"
                ) from None
            except (asyncssh.Error, asyncio.TimeoutError) as exc:
                raise self._lost(exc, doing) from None
            status = proc.exit_status
            stderr = await errors if errors.done() else b""
        finally:
            errors.cancel()
            proc.close()
        if status is None and proc.exit_signal is None:
            raise self._lost(None, doing)
        if status != 0:
            detail = _one_line(stderr) or f"tar exited with {status}"
            raise RemoteError(f"{doing} failed: {detail}")
        if progress is not None:
            progress(total, total)
        return sent

    async def download(
        self,
        remote_dir: str,
        outputs: Sequence[str],
        local_dir: Path,
        *,
        on_missing: Callable[[str], None] | None = None,
    ) -> list[Path]:
        """Bring ``outputs`` (paths relative to ``remote_dir``; files or directories) back
        into ``local_dir`` as one tar stream; the local paths of those found. A missing
        output is not an error (``on_missing(path)`` is told); nothing is written outside
        ``local_dir``. ``fetch`` gives the whole account."""
        got = await self.fetch(remote_dir, outputs, local_dir)
        if on_missing is not None:
            for name in got.missing:
                on_missing(name)
        return list(got.paths)

    async def fetch(self, remote_dir: str, outputs: Sequence[str], local_dir: Path) -> Download:
        """``download`` with everything it found out: missing, refused, bytes, warnings."""
        import asyncssh

        wanted = list(dict.fromkeys(_check_output(o) for o in outputs))
        local_dir = Path(local_dir)
        if not wanted:
            return Download((), (), (), 0)
        doing = f"download from {remote_dir}"
        proc = await self._process(scripts.download_command(remote_dir, wanted), doing)
        errors = asyncio.ensure_future(proc.stderr.read())
        loop = asyncio.get_running_loop()
        extractor: asyncio.Future[_tarstream.Extracted] | None = None
        writer: asyncio.StreamWriter | None = None
        received = 0
        try:
            try:
                extracting = True
                while True:
                    data = await asyncio.wait_for(proc.stdout.read(_tarstream.CHUNK), STEP_TIMEOUT)
                    if not data:
                        break
                    received += len(data)
                    if not extracting:
                        continue
                    if writer is None:
                        extractor, writer = await self._extractor(loop, local_dir, wanted)
                    try:
                        writer.write(data)
                        await writer.drain()
                    except (BrokenPipeError, ConnectionResetError):
                        # The extraction ended early (its error says why, below): the
                        # rest is read and dropped, so the exec ends with its status.
                        extracting = False
                await asyncio.wait_for(proc.wait(), timeout=STEP_TIMEOUT)
            except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
                raise self._lost(exc, doing) from None
            finally:
                if writer is not None:
                    writer.close()
            stderr = await errors if errors.done() else b""
            status = proc.exit_status
            extracted = _tarstream.Extracted()
            if extractor is not None:
                try:
                    extracted = await extractor
                except (OSError, EOFError, ValueError, tarfile.TarError) as exc:
                    if status is None and proc.exit_signal is None:
                        raise self._lost(None, doing) from None
                    raise RemoteError(
                        f"{doing}: the archive could not be extracted: {_one_line(str(exc))}"
                    ) from None
        finally:
            errors.cancel()
            proc.close()
        if status is None and proc.exit_signal is None:
            raise self._lost(None, doing)
        text = stderr.decode("utf-8", "replace")
        missing = tuple(
            line[len(scripts.MISSING_MARK) :]
            for line in text.splitlines()
            if line.startswith(scripts.MISSING_MARK)
        )
        warnings = tuple(
            " ".join(line.split())[:200]
            for line in text.splitlines()
            if line.strip() and not line.startswith(scripts.MISSING_MARK)
        )
        if status != 0 and not extracted.outputs:
            raise RemoteError(f"{doing} failed: {warnings[0] if warnings else f'exit {status}'}")
        found = [o for o in wanted if o in extracted.outputs]
        return Download(
            paths=tuple(local_dir / o for o in found),
            missing=missing,
            refused=tuple(extracted.refused),
            bytes=received,
            warnings=warnings,
        )

    @staticmethod
    async def _extractor(
        loop: asyncio.AbstractEventLoop, local_dir: Path, wanted: list[str]
    ) -> tuple[asyncio.Future[_tarstream.Extracted], asyncio.StreamWriter]:
        """A thread extracting what is written to the returned pipe."""
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb")

        def extract() -> _tarstream.Extracted:
            with reader:
                done = _tarstream.extract_stream(reader, local_dir, wanted)
                while reader.read(_tarstream.CHUNK):
                    pass  # tar's padding after the end of the archive
                return done

        future = loop.run_in_executor(None, extract)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), os.fdopen(write_fd, "wb")
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return future, writer

    # ---- the job ----------------------------------------------------------------------

    async def start(
        self,
        job_id: str,
        *,
        command: str,
        setup: str | None,
        env: Mapping[str, str],
        workdir: str,
        heartbeat_timeout: float | None,
        grace: float = 5.0,
    ) -> JobPaths:
        """Start the job detached from this connection (``setsid nohup``): ``setup``
        first (its failure is the job's, with its exit code), then ``command``, both with
        ``env`` in ``workdir`` (created), stdout and stderr to two files. With
        ``heartbeat_timeout`` (seconds, whole) a watchdog ends the job when ``heartbeat``
        was not called for that long (``grace`` between TERM and KILL). Starting a job
        id that runs already is a ``RemoteError``; one that ended is started afresh."""
        try:
            script = scripts.launch_script(
                job_id,
                command=command,
                setup=setup,
                env=env,
                workdir=workdir,
                heartbeat_timeout=heartbeat_timeout,
                grace=grace,
            )
        except ValueError as exc:
            raise RemoteError(f"job {job_id}: {exc}") from None
        doing = f"start of job {job_id}"
        status, out, err = await self._run(
            scripts.launch_command(job_id), doing, stdin=script.encode()
        )
        if status != 0:
            raise RemoteError(f"{doing} failed: {_one_line(err) or f'exit {status}'}")
        fields = _fields(out)
        if "root" not in fields or "work" not in fields:
            raise RemoteError(f"{doing}: the machine did not say where the job lives")
        return JobPaths.of(fields["root"], fields["work"])

    async def heartbeat(self, paths: JobPaths) -> None:
        """Tell the watchdog the runner is alive (rewrite the heartbeat file)."""
        self._beats += 1
        token = f"{time.time():.3f}-{os.getpid()}-{self._beats}"
        status, _, err = await self._run(
            scripts.heartbeat_command(paths.root, token), "heartbeat", timeout=STEP_TIMEOUT
        )
        if status != 0:
            raise RemoteError(f"heartbeat failed: {_one_line(err) or f'exit {status}'}")

    async def status(self, paths: JobPaths) -> RemoteStatus:
        """Whether the job runs, its exit code once it ended, and why it ended."""
        status, out, err = await self._run(scripts.status_command(paths.root), "status")
        if status != 0:
            raise RemoteError(f"status failed: {_one_line(err) or f'exit {status}'}")
        fields = _fields(out)
        if fields.get("found") != "1":
            return RemoteStatus(False, None, "no such job on this machine", found=False)
        code_text = fields.get("exit", "").strip()
        reason = fields.get("reason", "").strip() or None
        code = int(code_text) if code_text.lstrip("-").isdigit() else None
        if code is not None:
            return RemoteStatus(False, code, reason)
        if fields.get("alive") == "1" or fields.get("stopping") == "1":
            return RemoteStatus(True, None, None)
        return RemoteStatus(False, None, "the job's processes ended without an exit code")

    async def follow(
        self,
        paths: JobPaths,
        offsets: tuple[int, int],
        on_stdout: Callable[[bytes], None],
        on_stderr: Callable[[bytes], None],
        *,
        poll: float = 0.2,
        heartbeat_interval: float | None = None,
    ) -> int | None:
        """Stream the job's stdout and stderr from byte ``offsets`` to the callbacks
        (each byte once, in order, the two apart) until the job ended; its exit code, or
        None when its processes are gone without one. Output reaches the callbacks about
        ``poll`` seconds after it was written. ``ConnectionLost`` when the connection
        drops: reconnect and call again with the offsets the callbacks reached.
        ``heartbeat_interval``: also heart-beat that often meanwhile."""
        try:
            command = scripts.follow_command(paths.stdout, paths.stderr, paths.root, offsets, poll)
        except ValueError as exc:
            raise RemoteError(f"follow: {exc}") from None
        doing = "following the job's output"
        proc = await self._process(command, doing)
        beat = (
            asyncio.ensure_future(self._beat(paths, heartbeat_interval))
            if heartbeat_interval
            else None
        )
        try:
            await asyncio.gather(
                _pump(proc.stdout, on_stdout, self, doing),
                _pump(proc.stderr, on_stderr, self, doing),
            )
            try:
                await asyncio.wait_for(proc.wait(), timeout=STEP_TIMEOUT)
            except Exception as exc:
                raise self._lost(exc, doing) from None
        finally:
            if beat is not None:
                beat.cancel()
                await asyncio.wait([beat])
            proc.close()
        status = proc.exit_status
        if status is None and proc.exit_signal is None:
            raise self._lost(None, doing)
        if status == scripts.FOLLOW_GONE:
            return None
        if status != 0:
            raise RemoteError(f"{doing} failed: exit {status}")
        return (await self.status(paths)).exit_code

    async def _beat(self, paths: JobPaths, interval: float) -> None:
        while True:
            with contextlib.suppress(RemoteError):
                await self.heartbeat(paths)
            await asyncio.sleep(interval)

    async def read_log(
        self, paths: JobPaths, which: str, offset: int = 0, *, limit: int | None = None
    ) -> bytes:
        """The bytes of the job's ``"stdout"`` or ``"stderr"`` from ``offset`` on (at most
        ``limit``)."""
        if which not in ("stdout", "stderr"):
            raise ValueError(f"which: 'stdout' or 'stderr', not {which!r}")
        path = paths.stdout if which == "stdout" else paths.stderr
        command = scripts.read_log_command(path, offset)
        if limit is not None:
            command += f" | head -c {int(limit)}"
        status, out, err = await self._run(command, f"reading the job's {which}")
        if status != 0:
            raise RemoteError(f"reading the job's {which} failed: {_one_line(err)}")
        return out

    async def stop(self, paths: JobPaths, *, grace: float = 5.0, reason: str = "stopped") -> None:
        """End the job's whole process group: TERM, then KILL after ``grace`` seconds;
        its exit code becomes 137 and ``reason`` is recorded (nothing when it ended)."""
        status, _, err = await self._run(
            scripts.stop_command(paths.root, grace=grace, reason=reason),
            "stop",
            timeout=grace + STEP_TIMEOUT,
        )
        if status != 0:
            raise RemoteError(f"stop failed: {_one_line(err) or f'exit {status}'}")

    # ---- the machine ------------------------------------------------------------------

    async def gpu_utilization(self, *, nvidia_smi: str = "nvidia-smi") -> list[float] | None:
        """Each GPU's utilization in percent (``nvidia-smi --query-gpu=utilization.gpu``);
        None when the machine has no ``nvidia-smi``, it fails, or reads no GPU. A GPU whose
        reading is not a number (``[N/A]``, an error) is left out."""
        import shlex

        tool = shlex.quote(nvidia_smi)
        command = (
            f"command -v {tool} >/dev/null 2>&1 || exit 127\n"
            f"exec {tool} --query-gpu=utilization.gpu --format=csv,noheader,nounits"
        )
        status, out, _ = await self._run(command, "reading GPU utilization")
        if status != 0:
            return None
        values: list[float] = []
        for line in out.decode("utf-8", "replace").splitlines():
            text = line.strip().removesuffix("%").strip()
            try:
                values.append(float(text))
            except ValueError:
                continue
        return values or None


def _fields(out: bytes) -> dict[str, str]:
    """``key=value`` lines."""
    lines = out.decode("utf-8", "replace").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


async def _pump(
    stream: asyncssh.SSHReader[bytes],
    deliver: Callable[[bytes], None],
    session: Session,
    doing: str,
) -> None:
    import asyncssh

    while True:
        try:
            data = await stream.read(65536)
        except (asyncssh.Error, OSError) as exc:
            raise session._lost(exc, doing) from None
        if not data:
            return
        deliver(data)
