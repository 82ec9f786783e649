"""The job runner's public calls: run a job, resume one, stop one, read its logs, list.

```python
from clore import Clore
from clore.jobs import resolve, run_job

spec = resolve("task.yaml", command=None, max_spend="2usd")
with Clore() as client:
    result = run_job(client, spec, on_event=lambda e: print(e.message),
                     on_stdout=sys.stdout.buffer.write, on_stderr=sys.stderr.buffer.write)
print(result.summary)            # job a1b2c3d4 succeeded (exit 0) in 3m12s; cost ...
sys.exit(result.exit_code)
```

``run_job`` and ``arun_job`` are one implementation (``clore.jobs._core``, a coroutine):
``arun_job`` awaits it with either client (``clore.AsyncClore`` awaited, ``clore.Clore``
called in worker threads), ``run_job`` runs it in an event loop of its own (not from
inside a running one) and turns Ctrl-C into the ``interrupted`` ending: the command is
stopped and the order cancelled before it returns (a second Ctrl-C stops at once; the
record still names the order for ``stop_job``). A cancelled ``arun_job`` task ends the
same way, then raises ``CancelledError``.

Every step is written to the job's record (``clore.jobs.records``) before it happens, so
``resume_job`` after a crash or a SIGKILL finds the order (from the record, or from the
ledger's rental intent: never a second rental), reattaches to the command still running
on the machine (streaming from the bytes already received) or collects its result.
``stop_job`` ends a job from any process: the live runner sees the stop request within
``stop_poll``; when no runner is alive it stops the command and cancels the order
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clore._holder import this_process
from clore.jobs._api import Api
from clore.jobs._control import ajob_logs, astop_job, get_job, job_logs, list_jobs, stop_job
from clore.jobs._drive import drive, me, runner_alive
from clore.jobs._proposal import Confirm
from clore.jobs._result import JobResult, RunOptions
from clore.jobs._run import EventCallback, Finish, OutputCallback, Run
from clore.jobs.records import (
    JobError,
    JobRecord,
    JobRunningError,
    JobStore,
    new_job_id,
)

if TYPE_CHECKING:
    from clore.jobs.task import JobSpec

__all__ = [
    "ajob_logs",
    "aresume_job",
    "arun_job",
    "astop_job",
    "get_job",
    "job_logs",
    "list_jobs",
    "resume_job",
    "run_job",
    "runner_alive",
    "stop_job",
]


class _Job:
    """A ``Run`` being prepared, so the sync wrapper can interrupt it once it exists."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.interrupted = False

    def interrupt(self) -> None:
        self.interrupted = True
        if self.run is not None:
            _interrupt(self.run)


def _interrupt(run: Run) -> None:
    if run.stopping is None:
        run.emit(
            "stop_requested",
            "interrupted (Ctrl-C): stopping the job",
            by=me(),
            reason="interrupted",
        )
    run.request(Finish("interrupted", "interrupted (Ctrl-C)"))


async def _watch_stop_file(run: Run) -> None:
    """Poll for a stop request (``stop_job`` from another process)."""
    while run.stopping is None:
        request = run.store.stop_requested(run.job_id)
        if request is not None:
            run.emit(
                "stop_requested",
                f"stop requested by {request.by}: {request.reason}",
                by=request.by,
                reason=request.reason,
            )
            run.request(Finish("stopped", f"stopped on request ({request.reason})"))
            return
        await run.clock.asleep(run.options.stop_poll)


async def _execute(
    run: Run, *, resumed: bool, holder: _Job | None = None, confirm: Confirm | None = None
) -> JobResult:
    from clore.jobs._core import execute

    if holder is not None:
        holder.run = run
        if holder.interrupted:
            _interrupt(run)
    watcher = asyncio.ensure_future(_watch_stop_file(run))
    try:
        return await execute(run, resumed=resumed, confirm=confirm)
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher


def _output_dir(spec: JobSpec, output_dir: Path | str | None) -> Path:
    if output_dir is not None:
        return Path(output_dir).expanduser().absolute()
    if spec.workdir is not None:
        return Path(spec.workdir).expanduser().absolute()
    return Path.cwd()


def _new_record(spec: JobSpec, api: Api, job_id: str | None, output_dir: Path) -> JobRecord:
    now = time.time()
    return JobRecord(
        id=job_id or new_job_id(),
        name=spec.name,
        created_at=now,
        updated_at=now,
        spec=spec.to_json(),
        base_url=api.base_url,
        output_dir=str(output_dir),
        host=socket.gethostname() or "",
        pid=os.getpid(),
        runner=this_process().to_json(),
    )


async def _start(
    client: Any,
    spec: JobSpec,
    *,
    on_event: EventCallback | None,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
    output_dir: Path | str | None,
    store: JobStore | None,
    options: RunOptions | None,
    job_id: str | None,
    confirm: Confirm | None = None,
    holder: _Job | None = None,
) -> JobResult:
    api = Api(client)
    jobs = store or JobStore()
    where = _output_dir(spec, output_dir)
    record = _new_record(spec, api, job_id, where)
    with contextlib.suppress(JobError):
        jobs.get(record.id)
        raise JobError(f"job {record.id} exists already: resume it, or choose another id")
    jobs.put(record)
    run = Run(
        api,
        client,
        spec,
        record,
        jobs,
        options or RunOptions(),
        on_event=on_event,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        output_dir=where,
    )
    return await _execute(run, resumed=False, holder=holder, confirm=confirm)


async def arun_job(
    client: Any,
    spec: JobSpec,
    *,
    on_event: EventCallback | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    output_dir: Path | str | None = None,
    store: JobStore | None = None,
    options: RunOptions | None = None,
    job_id: str | None = None,
    confirm: Confirm | None = None,
) -> JobResult:
    """Run ``spec`` start to finish on a rented machine; how it ended (never raises for
    an ending: see ``JobResult.reason``). ``client`` is a ``clore.AsyncClore`` or a
    ``clore.Clore``. ``on_event`` gets every ``JobEvent``; ``on_stdout``/``on_stderr``
    the command's output as it arrives (bytes). Outputs go to ``output_dir`` (default
    the spec's workdir, else the current directory). ``store``: the jobs directory
    (default ``data_dir()/"jobs"``); ``options``: the runner's knobs; ``job_id``: an id of
    your choice (8 hex digits by default). ``confirm``: called with a ``Proposal`` (the
    server, its price per day in the order's currency, the limits) just before the first
    ``create_order`` (or before an ``order_id`` is used); anything but True ends the job as
    ``declined``, nothing rented (``clore.jobs._proposal``)."""
    return await _start(
        client,
        spec,
        on_event=on_event,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        output_dir=output_dir,
        store=store,
        options=options,
        job_id=job_id,
        confirm=confirm,
    )


def run_job(
    client: Any,
    spec: JobSpec,
    *,
    on_event: EventCallback | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    output_dir: Path | str | None = None,
    store: JobStore | None = None,
    options: RunOptions | None = None,
    job_id: str | None = None,
    confirm: Confirm | None = None,
) -> JobResult:
    """``arun_job`` for code without an event loop (the CLI); Ctrl-C is the
    ``interrupted`` ending, returned like any other."""
    holder = _Job()
    return drive(
        lambda: _start(
            client,
            spec,
            on_event=on_event,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            output_dir=output_dir,
            store=store,
            options=options,
            job_id=job_id,
            confirm=confirm,
            holder=holder,
        ),
        holder.interrupt,
    )


# ---- resume ------------------------------------------------------------------------------


def _take_over(jobs: JobStore, job_id: str, api: Api) -> JobRecord:
    """Make this process the runner of ``job_id`` (under the record's lock)."""

    def claim(record: JobRecord) -> None:
        if record.final:
            return
        alive = runner_alive(record)
        if alive is True:
            raise JobRunningError(
                f"job {record.id} is running in process {record.pid}: stop it "
                f"(`clore jobs stop {record.id}`) or wait for it"
            )
        if alive is None:
            raise JobRunningError(
                f"job {record.id} is run by process {record.pid} on {record.host}: resume it "
                "there, or stop it first"
            )
        if record.base_url and api.base_url and record.base_url != api.base_url:
            raise JobError(
                f"job {record.id} ran against {record.base_url}, not {api.base_url}: use that API"
            )
        record.runner = this_process().to_json()
        record.pid = os.getpid()
        record.host = socket.gethostname() or ""

    found = jobs.find(job_id)
    return jobs.update(found.id, claim)


async def _resume(
    client: Any,
    job_id: str,
    *,
    on_event: EventCallback | None,
    on_stdout: OutputCallback | None,
    on_stderr: OutputCallback | None,
    output_dir: Path | str | None,
    store: JobStore | None,
    options: RunOptions | None,
    holder: _Job | None = None,
    stop_reason: str | None = None,
) -> JobResult:
    from clore.jobs.task import JobSpec

    api = Api(client)
    jobs = store or JobStore()
    record = _take_over(jobs, job_id, api)
    if record.final:
        return JobResult.from_record(record)
    spec = JobSpec.from_json(record.spec)
    if output_dir is not None:
        where = Path(output_dir).expanduser().absolute()
    elif record.output_dir:
        where = Path(record.output_dir)
    else:
        where = _output_dir(spec, None)
    run = Run(
        api,
        client,
        spec,
        record,
        jobs,
        options or RunOptions(),
        on_event=on_event,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        output_dir=where,
    )
    if stop_reason is not None:
        from clore.jobs._core import stop_here

        return await stop_here(run, stop_reason)
    return await _execute(run, resumed=True, holder=holder)


async def aresume_job(
    client: Any,
    job_id: str,
    *,
    on_event: EventCallback | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    output_dir: Path | str | None = None,
    store: JobStore | None = None,
    options: RunOptions | None = None,
) -> JobResult:
    """Take over job ``job_id`` (any unique prefix) whose runner is gone: its order is
    found (never rented twice), the command followed from where the output stopped, or
    its result collected; then the job ends as ``run_job``'s would. A job already ended
    returns its recorded result. ``JobRunningError`` when its runner still runs."""
    return await _resume(
        client,
        job_id,
        on_event=on_event,
        on_stdout=on_stdout,
        on_stderr=on_stderr,
        output_dir=output_dir,
        store=store,
        options=options,
    )


def resume_job(
    client: Any,
    job_id: str,
    *,
    on_event: EventCallback | None = None,
    on_stdout: OutputCallback | None = None,
    on_stderr: OutputCallback | None = None,
    output_dir: Path | str | None = None,
    store: JobStore | None = None,
    options: RunOptions | None = None,
) -> JobResult:
    """``aresume_job`` for code without an event loop (Ctrl-C as in ``run_job``)."""
    holder = _Job()
    return drive(
        lambda: _resume(
            client,
            job_id,
            on_event=on_event,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            output_dir=output_dir,
            store=store,
            options=options,
            holder=holder,
        ),
        holder.interrupt,
    )
