"""Ending a job from any process (``stop_job``), reading its output (``job_logs``),
listing the jobs: the runner's calls besides running and resuming (``clore.jobs.runner``
re-exports them)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from clore.jobs._api import Api
from clore.jobs._drive import drive, me, runner_alive
from clore.jobs._result import RunOptions
from clore.jobs._run import EventCallback
from clore.jobs.records import JobError, JobRecord, JobRunningError, JobStore

__all__ = ["ajob_logs", "astop_job", "get_job", "job_logs", "list_jobs", "stop_job"]


# ---- stop ---------------------------------------------------------------------------------


async def astop_job(
    client: Any,
    job_id: str,
    *,
    reason: str = "stop requested",
    wait: float = 60.0,
    force: bool = False,
    store: JobStore | None = None,
    options: RunOptions | None = None,
    on_event: EventCallback | None = None,
) -> JobRecord:
    """End job ``job_id`` (any unique prefix); its final record.

    A live runner on this machine is asked (a stop request it polls) and waited for, at
    most ``wait`` seconds. When no runner is alive — or it did not stop in time and
    ``force`` — this process ends the job itself: the command stopped over SSH (one
    login try), the outputs brought back, the order cancelled unless the job keeps it.
    A runner on another machine cannot be checked from here: ``JobRunningError``
    unless ``force``. A job already ended is returned as it is."""
    jobs = store or JobStore()
    record = jobs.find(job_id)
    if record.final:
        return record
    opts = options or RunOptions()
    clock = opts.clock
    alive = runner_alive(record)
    if alive is None and not force:
        raise JobRunningError(
            f"job {record.id} is run by process {record.pid} on {record.host}: stop it there, "
            "or pass force (the order is cancelled from here)"
        )
    jobs.request_stop(record.id, by=me(), reason=reason)
    if alive is True:
        began = time.monotonic()
        while time.monotonic() - began < wait:
            record = jobs.get(record.id)
            if record.final:
                return record
            if runner_alive(record) is False:
                break
            if clock is not None:
                await clock.asleep(0.2)
            else:
                await asyncio.sleep(0.2)
        else:
            if not force:
                raise JobError(
                    f"the runner of job {record.id} (process {record.pid}) did not stop it "
                    f"within {wait:g} s; force stops it from here"
                )
        record = jobs.get(record.id)
        if record.final:
            return record
        # The runner died meanwhile, or is forced aside: end the job from here.
        jobs.update(record.id, lambda r: setattr(r, "runner", None))
    from clore.jobs.runner import _resume

    await _resume(
        client,
        record.id,
        on_event=on_event,
        on_stdout=None,
        on_stderr=None,
        output_dir=None,
        store=jobs,
        options=opts,
        stop_reason=reason,
    )
    return jobs.get(record.id)


def stop_job(
    client: Any,
    job_id: str,
    *,
    reason: str = "stop requested",
    wait: float = 60.0,
    force: bool = False,
    store: JobStore | None = None,
    options: RunOptions | None = None,
    on_event: EventCallback | None = None,
) -> JobRecord:
    """``astop_job`` for code without an event loop."""

    async def go() -> JobRecord:
        return await astop_job(
            client,
            job_id,
            reason=reason,
            wait=wait,
            force=force,
            store=store,
            options=options,
            on_event=on_event,
        )

    return drive(go)


# ---- logs and listing ---------------------------------------------------------------------


def list_jobs(store: JobStore | None = None) -> list[JobRecord]:
    """Every job recorded here, oldest first."""
    return (store or JobStore()).list()


def get_job(job_id: str, store: JobStore | None = None) -> JobRecord:
    """The record of ``job_id`` (or the only job whose id starts with it)."""
    return (store or JobStore()).find(job_id)


async def ajob_logs(
    client: Any,
    job_id: str,
    which: str = "stdout",
    *,
    offset: int = 0,
    store: JobStore | None = None,
    connect_timeout: float = 10.0,
) -> bytes:
    """The job's ``stdout`` or ``stderr`` from byte ``offset``: the local copy while this
    machine's runner appends to it and after the job; from the machine over SSH while
    the job runs without a live runner here (the local copy when that fails)."""
    jobs = store or JobStore()
    record = jobs.find(job_id)
    if which not in ("stdout", "stderr"):
        raise ValueError(f"which: stdout or stderr, not {which!r}")
    local = jobs.read_log(record.id, which)
    if record.final or runner_alive(record) is True or not record.remote or record.order_id is None:
        return local[max(0, offset) :]
    remote = await _remote_log(client, record, which, connect_timeout)
    if remote is None:
        return local[max(0, offset) :]
    # The machine holds the current attempt's output: the local copy's earlier attempts
    # (before log_base) come first.
    base = record.log_base[0 if which == "stdout" else 1]
    return (local[:base] + remote)[max(0, offset) :]


async def _remote_log(client: Any, record: JobRecord, which: str, timeout: float) -> bytes | None:
    from clore._errors import CloreError
    from clore.jobs.remote import JobPaths, RemoteError, Session
    from clore.rentals import credentials_for, known_hosts_path
    from clore.rentals.verify import TargetError, target_of

    api = Api(client)
    assert record.order_id is not None and record.remote is not None
    try:
        order = await api.find_order(record.order_id)
    except CloreError:
        return None
    if order is None or order.expired:
        return None
    credentials = credentials_for(order)
    if credentials is None:
        return None
    try:
        session = await Session.open(
            target_of(order),
            credentials,
            known_hosts=known_hosts_path(order),
            connect_timeout=timeout,
        )
    except (RemoteError, TargetError):
        return None
    try:
        return await session.read_log(JobPaths.from_dict(record.remote), which)
    except (RemoteError, ValueError):
        return None
    finally:
        await session.close()


def job_logs(
    client: Any,
    job_id: str,
    which: str = "stdout",
    *,
    offset: int = 0,
    store: JobStore | None = None,
    connect_timeout: float = 10.0,
) -> bytes:
    """``ajob_logs`` for code without an event loop."""

    async def go() -> bytes:
        return await ajob_logs(
            client, job_id, which, offset=offset, store=store, connect_timeout=connect_timeout
        )

    return drive(go)
