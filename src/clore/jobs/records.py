"""The local record of each job: one JSON file per job in ``data_dir()/"jobs"``.

``JobStore`` keeps ``<job_id>.json`` (a ``JobRecord``, replaced atomically with mode 0600
under the job's lock, ``clore._files``) and beside it:

- ``<job_id>.stdout`` / ``<job_id>.stderr``: the command's output as it arrives (appended
  live, mode 0600), so ``job_logs`` works after the machine is gone and a resumed runner
  knows how many bytes it already has (its streaming offsets);
- ``<job_id>.stop``: a stop request (``request_stop``) that the live runner polls;
- ``<job_id>.lock``: the lock every change of the record holds.

A record is written at each step that matters (renting, rented, started, running, each
ending), so a runner killed at any point leaves enough for ``resume_job``: the order
(or the ledger intent that finds it), the remote job's paths, how far it streamed. It
holds no secret: the SSH login of an order is ``clore.rentals.RentalLogins``' business.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from clore._errors import CloreError
from clore._files import locked, write_atomic
from clore._paths import data_dir

__all__ = [
    "FINAL_STATES",
    "JOBS_DIR",
    "JOB_STATES",
    "JobError",
    "JobNotFoundError",
    "JobRecord",
    "JobRecordError",
    "JobRunningError",
    "JobState",
    "JobStore",
    "StopRequest",
    "new_job_id",
]

JOBS_DIR: Final = "jobs"
_VERSION: Final = 1

JobState = Literal[
    "pending",  # accepted, nothing rented yet
    "renting",  # choosing and renting (an intent may be in the ledger)
    "starting",  # an order is ours: waiting, verifying, uploading, starting the command
    "running",  # the command runs on the machine
    "downloading",  # bringing the outputs back
    "done",  # the command ended with exit code 0
    "failed",  # it ended otherwise, or the job could not run
    "stopped",  # ended by a limit, idle, a stop request or an interrupt
    "lost",  # the order or the connection was lost for good
]
#: Every state, in the order a job goes through them.
JOB_STATES: Final[tuple[str, ...]] = (
    "pending",
    "renting",
    "starting",
    "running",
    "downloading",
    "done",
    "failed",
    "stopped",
    "lost",
)
#: The states a job never leaves.
FINAL_STATES: Final = frozenset({"done", "failed", "stopped", "lost"})

_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class JobError(CloreError):
    """A job cannot be found, read, resumed or stopped; the message is one line."""


class JobNotFoundError(JobError, LookupError):
    """No job has this id (or no unique one starts with it)."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobRecordError(JobError):
    """A record file cannot be read (not JSON, or not this schema)."""


class JobRunningError(JobError):
    """The job's runner is alive (on this machine or another): it is not resumed twice."""


def new_job_id() -> str:
    """A fresh job id: 8 lowercase hex digits (``clore jobs`` takes any unique prefix)."""
    return secrets.token_hex(4)


class JobRecord(msgspec.Struct, kw_only=True):
    """One job as the store keeps it (see the module docstring).

    ``spec``: the ``JobSpec`` as JSON. ``order_id``/``order_ct``: the order running the
    job now (``ct`` tells it from another API's order of the same id); ``orders``: every
    order the job used, in turn; ``created_order``: the job rented the current one (it was
    not given with ``order_id``). ``rental_intent``: the ledger entry of a rental in
    progress (``clore.workflows.state``). ``remote``: the job's paths on the machine
    (``clore.jobs.remote.JobPaths`` as a dict); ``offsets``: bytes of stdout and stderr
    received from the current remote job; ``log_base``: the sizes of the local copies when
    it started (a recovery restarts the command; the copies keep every attempt).
    ``runner``: the process running the job (``clore._holder.Holder`` as JSON), None
    once it ended. ``spend_base``: an adopted order's spend when the job took it
    (what it cost before is not the job's). Money is in ``currency``; ``cost`` is spend
    plus ``fees``.
    """

    v: int = _VERSION
    id: str
    name: str
    state: JobState = "pending"
    created_at: float
    updated_at: float
    spec: dict[str, Any] = {}
    base_url: str | None = None
    order_id: int | None = None
    order_ct: float | None = None
    server_id: int | None = None
    created_order: bool = False
    orders: list[int] = []
    rental_intent: str | None = None
    remote: dict[str, str] | None = None
    offsets: tuple[int, int] = (0, 0)
    log_base: tuple[int, int] = (0, 0)
    attempt: int = 1
    started_at: float | None = None
    spend_base: float = 0.0
    exit_code: int | None = None
    command_exit_code: int | None = None
    reason: str | None = None
    cost: float | None = None
    fees: float | None = None
    spent: float = 0.0
    currency: str | None = None
    cancelled: bool = False
    kept: bool = False
    output_dir: str | None = None
    outputs: list[str] = []
    summary: str | None = None
    ended_at: float | None = None
    host: str = ""
    pid: int = 0
    runner: dict[str, Any] | None = None

    @property
    def final(self) -> bool:
        """True once the job has ended (``FINAL_STATES``)."""
        return self.state in FINAL_STATES


class StopRequest(msgspec.Struct, kw_only=True):
    """A request to end a job: when (unix time), by which process, why."""

    at: float
    by: str
    reason: str = "stop requested"


class JobStore:
    """The jobs directory (default ``data_dir()/"jobs"``)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir() / JOBS_DIR

    # ---- paths ----------------------------------------------------------------------
    def _check(self, job_id: str) -> str:
        if not isinstance(job_id, str) or not _ID_RE.fullmatch(job_id):
            raise JobNotFoundError(f"{job_id!r} is not a job id", str(job_id))
        return job_id

    def path(self, job_id: str) -> Path:
        """The record file of ``job_id``."""
        return self.root / f"{self._check(job_id)}.json"

    def log_path(self, job_id: str, which: str = "stdout") -> Path:
        """The local copy of the job's ``stdout`` or ``stderr``."""
        if which not in ("stdout", "stderr"):
            raise ValueError(f"which: stdout or stderr, not {which!r}")
        return self.root / f"{self._check(job_id)}.{which}"

    def _lock(self, job_id: str) -> Path:
        return self.root / f"{self._check(job_id)}.lock"

    def _stop_path(self, job_id: str) -> Path:
        return self.root / f"{self._check(job_id)}.stop"

    # ---- records --------------------------------------------------------------------
    def _read(self, path: Path) -> JobRecord:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            name = path.stem
            raise JobNotFoundError(f"no job {name} (`clore jobs` lists them)", name) from None
        except OSError as exc:
            raise JobRecordError(f"cannot read {path}: {exc.strerror}") from None
        try:
            record = msgspec.json.decode(data, type=JobRecord)
        except msgspec.DecodeError:
            raise JobRecordError(f"{path} is damaged; fix or remove it") from None
        if record.v != _VERSION:
            raise JobRecordError(f"{path} has version {record.v}, not {_VERSION}")
        return record

    def get(self, job_id: str) -> JobRecord:
        """The record of ``job_id`` (``JobNotFoundError`` when there is none)."""
        return self._read(self.path(job_id))

    def find(self, prefix: str) -> JobRecord:
        """The job whose id is ``prefix`` or the only one starting with it."""
        text = prefix.strip().lower()
        if not text:
            raise JobNotFoundError("give a job id (`clore jobs` lists them)", prefix)
        exact = self.root / f"{text}.json"
        if _ID_RE.fullmatch(text) and exact.is_file():
            return self._read(exact)
        found = sorted(p for p in self._files() if p.stem.startswith(text))
        if not found:
            raise JobNotFoundError(f"no job {prefix} (`clore jobs` lists them)", prefix)
        if len(found) > 1:
            named = ", ".join(p.stem for p in found[:5])
            raise JobNotFoundError(f"{prefix!r} names several jobs: {named}", prefix)
        return self._read(found[0])

    def _files(self) -> list[Path]:
        try:
            return [
                p for p in self.root.iterdir() if p.suffix == ".json" and _ID_RE.fullmatch(p.stem)
            ]
        except FileNotFoundError:
            return []

    def list(self) -> list[JobRecord]:
        """Every readable record, oldest first (damaged files are skipped)."""
        records = []
        for path in self._files():
            with contextlib.suppress(JobError):
                records.append(self._read(path))
        records.sort(key=lambda r: (r.created_at, r.id))
        return records

    def put(self, record: JobRecord) -> JobRecord:
        """Write ``record`` (``updated_at`` set now), replacing the file atomically."""
        with locked(self._lock(record.id)):
            return self._write(record)

    def _write(self, record: JobRecord) -> JobRecord:
        record.updated_at = time.time()
        blob = msgspec.json.format(msgspec.json.encode(record), indent=2)
        write_atomic(self.path(record.id), blob + b"\n", mode=0o600)
        return record

    def update(self, job_id: str, change: Callable[[JobRecord], Any]) -> JobRecord:
        """Read, ``change`` in place and write the record, all under its lock."""
        with locked(self._lock(job_id)):
            record = self.get(job_id)
            change(record)
            return self._write(record)

    @contextlib.contextmanager
    def holding(self, job_id: str) -> Iterator[None]:
        """Hold the job's lock (not re-entrant: use ``_write`` style calls inside)."""
        with locked(self._lock(job_id)):
            yield

    # ---- output copies ----------------------------------------------------------------
    def append_log(self, job_id: str, which: str, data: bytes) -> None:
        """Append ``data`` to the local copy of the job's ``which`` stream (0600)."""
        if not data:
            return
        path = self.log_path(job_id, which)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)

    def log_size(self, job_id: str, which: str) -> int:
        """Bytes in the local copy of ``which`` (0 when there is none)."""
        try:
            return self.log_path(job_id, which).stat().st_size
        except FileNotFoundError:
            return 0

    def read_log(self, job_id: str, which: str = "stdout", offset: int = 0) -> bytes:
        """The local copy of ``which`` from byte ``offset`` (empty when there is none)."""
        try:
            with self.log_path(job_id, which).open("rb") as handle:
                handle.seek(max(0, offset))
                return handle.read()
        except FileNotFoundError:
            return b""

    # ---- stop requests ----------------------------------------------------------------
    def request_stop(self, job_id: str, *, by: str, reason: str = "stop requested") -> StopRequest:
        """Ask the job's runner to end it (it polls for this file)."""
        self.get(job_id)  # a stop for a job that does not exist is a mistake
        request = StopRequest(at=time.time(), by=by, reason=reason)
        write_atomic(self._stop_path(job_id), msgspec.json.encode(request), mode=0o600)
        return request

    def stop_requested(self, job_id: str) -> StopRequest | None:
        """The pending stop request of ``job_id``, or None."""
        try:
            data = self._stop_path(job_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(data, type=StopRequest)
        except msgspec.DecodeError:
            return StopRequest(at=time.time(), by="?", reason="stop requested")

    def clear_stop(self, job_id: str) -> None:
        """Forget the stop request of ``job_id`` (the job ended)."""
        with contextlib.suppress(FileNotFoundError):
            self._stop_path(job_id).unlink()
