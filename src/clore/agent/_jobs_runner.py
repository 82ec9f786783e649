"""The agent server's jobs in this process: ``AgentJobs`` runs each in a thread of its
own (``clore.jobs.run_job`` on the order the agent rented for it) and tells which jobs
are the agent's.

**Threads.** ``start`` returns at once; the job's thread runs ``run_job`` (an event loop
of its own) with the context's client, the runner's knobs in ``AgentJobs.options``, its
events kept in memory (the last ``EVENTS_KEPT``), its outputs brought back into
``data_dir()/agent/jobs/<id>/``. When ``run_job`` returns — or raises — the thread
makes sure the job's order has ended (cancelled if the runner left it running), drops
its registered maximum time and settles the ledger, so no order of a job outlives it.
The threads are daemons, and the jobs live no longer than the server process: when its
main thread ends, every job still running is asked to stop (the runner then stops the
command, brings the outputs back and cancels the order) and waited for, at most
``EXIT_WAIT`` seconds. That runs among the threading module's exit hooks, before the
thread pools the runner's event loops use are shut down (an ``atexit`` hook would
run after them, when the runner can no longer end the job).

**Whose job.** A job is the agent's when this process started it, or when its output
directory ``data_dir()/agent/jobs/<id>/`` exists and its order is in the agent's ledger
(a job of an earlier run of the server). ``clore run`` jobs are the person's.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from clore._paths import data_dir

if TYPE_CHECKING:
    from clore.agent.context import AgentContext
    from clore.jobs import JobEvent, JobRecord, JobResult, JobSpec, RunOptions

__all__ = ["EVENTS_KEPT", "EXIT_WAIT", "AgentJob", "AgentJobs", "agent_jobs", "jobs_dir"]

#: Events of each job kept in memory for ``job_status``.
EVENTS_KEPT: Final = 100
#: Seconds the interpreter's exit waits for the jobs it asked to stop.
EXIT_WAIT: Final = 60.0
#: Seconds a stop waits for a job's record to be written by its just-started thread.
_RECORD_WAIT: Final = 10.0

_log = logging.getLogger("clore.agent")


def jobs_dir(job_id: str | None = None) -> Path:
    """``data_dir()/agent/jobs`` (or one job's output directory in it)."""
    root = data_dir() / "agent" / "jobs"
    return root if job_id is None else root / job_id


@dataclass
class AgentJob:
    """One job this process started: its id, order, output directory, thread, events,
    and how it ended (``result``; ``error`` when the runner itself raised)."""

    job_id: str
    order_id: int
    output_dir: Path
    spec: JobSpec
    started_at: float = field(default_factory=time.time)
    events: deque[JobEvent] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    thread: threading.Thread | None = None
    result: JobResult | None = None
    error: str | None = None
    settled: threading.Event = field(default_factory=threading.Event)

    @property
    def alive(self) -> bool:
        """True while the job's thread runs (the runner, then the settling)."""
        return self.thread is not None and self.thread.is_alive()


class AgentJobs:
    """The jobs of one ``AgentContext`` in this process (``agent_jobs(ctx)``)."""

    def __init__(self, ctx: AgentContext) -> None:
        from clore.jobs import RunOptions

        self._ctx = weakref.ref(ctx)
        #: The runner's knobs for every job started from now on.
        self.options: RunOptions = RunOptions()
        self._jobs: dict[str, AgentJob] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the jobs

    def get(self, job_id: str) -> AgentJob | None:
        """The job ``job_id`` if this process started it."""
        with self._lock:
            return self._jobs.get(job_id)

    def started(self) -> list[AgentJob]:
        """Every job this process started, oldest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started_at)

    def is_agents(self, ctx: AgentContext, record: JobRecord) -> bool:
        """True when ``record`` is a job of the agent (see the module docstring)."""
        if self.get(record.id) is not None:
            return True
        if not jobs_dir(record.id).is_dir():
            return False
        spec_order = record.spec.get("order_id") if isinstance(record.spec, dict) else None
        orders = {*record.orders, *([spec_order] if isinstance(spec_order, int) else [])}
        return any(ctx.ledger.created(order_id) is not None for order_id in orders)

    # ------------------------------------------------------------------ running

    def start(self, job_id: str, order_id: int, spec: JobSpec) -> AgentJob:
        """Run ``spec`` (whose ``order_id`` is ``order_id``) as job ``job_id`` in a
        thread of its own; the job at once."""
        ctx = self._ctx()
        if ctx is None:  # pragma: no cover - the context owns this object
            raise RuntimeError("the agent context is gone")
        where = jobs_dir(job_id)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        job = AgentJob(job_id=job_id, order_id=order_id, output_dir=where, spec=spec)
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"clore-agent-job-{job_id}", daemon=True
        )
        job.thread = thread
        with self._lock:
            self._jobs[job_id] = job
        _LIVE.add(self)
        _hook_exit()
        thread.start()
        return job

    def _run(self, job: AgentJob) -> None:
        from clore.jobs import run_job

        ctx = self._ctx()
        try:
            if ctx is None:  # pragma: no cover - the context owns this object
                raise RuntimeError("the agent context is gone")
            job.result = run_job(
                ctx.client,
                job.spec,
                job_id=job.job_id,
                output_dir=job.output_dir,
                options=self.options,
                on_event=job.events.append,
            )
        except Exception as exc:  # the thread must settle the order whatever happened
            _log.debug("agent job %s: the runner raised", job.job_id, exc_info=True)
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                if ctx is not None:
                    self._settle(ctx, job)
            finally:
                job.settled.set()

    def _settle(self, ctx: AgentContext, job: AgentJob) -> None:
        """The job's order ended (cancelled here if the runner left it running), its
        maximum time forgotten, the ledger brought up to date."""
        from clore import CloreError, OrderExpiredError
        from clore.agent.renting import refresh_usage
        from clore.rentals import cancel_orders
        from clore.workflows import forget_limits

        orders = {job.order_id, *(job.result.orders if job.result is not None else ())}
        with ctx.mutation_lock:
            for order_id in sorted(orders):
                try:
                    order = ctx.client.get_order(order_id)
                    if not order.expired:
                        _log.warning(
                            "agent job %s left order %s running: cancelling it",
                            job.job_id,
                            order_id,
                        )
                        cancel_orders(ctx.client, [order_id])
                    forget_limits(order_id)
                except OrderExpiredError:
                    forget_limits(order_id)
                except (CloreError, OSError):
                    _log.warning(
                        "agent job %s: could not make sure order %s ended",
                        job.job_id,
                        order_id,
                        exc_info=True,
                    )
            try:
                refresh_usage(ctx)
                ctx.invalidate_market()
            except Exception:
                _log.debug("agent job %s: the ledger was not settled", job.job_id, exc_info=True)

    def wait_for_record(self, job_id: str) -> None:
        """Wait (at most a few seconds) until a just-started job's record exists."""
        from clore.jobs import JobNotFoundError, JobStore

        job = self.get(job_id)
        if job is None:
            return
        deadline = time.monotonic() + _RECORD_WAIT
        store = JobStore()
        while time.monotonic() < deadline and job.alive:
            try:
                store.get(job_id)
                return
            except JobNotFoundError:
                time.sleep(0.05)

    def stop_all(self, wait: float = EXIT_WAIT) -> None:
        """Ask every running job to stop and wait for them, at most ``wait`` seconds."""
        from clore.jobs import JobError, JobStore

        running = [j for j in self.started() if j.alive]
        store = JobStore()
        for job in running:
            self.wait_for_record(job.job_id)
            try:
                store.request_stop(job.job_id, by="agent server exit", reason="server exit")
            except (JobError, OSError):
                _log.debug("agent job %s: no stop request", job.job_id, exc_info=True)
        deadline = time.monotonic() + wait
        for job in running:
            job.settled.wait(max(0.0, deadline - time.monotonic()))


_REGISTRIES: weakref.WeakKeyDictionary[AgentContext, AgentJobs] = weakref.WeakKeyDictionary()
_LIVE: weakref.WeakSet[AgentJobs] = weakref.WeakSet()
_REGISTRY_LOCK = threading.Lock()


def agent_jobs(ctx: AgentContext) -> AgentJobs:
    """The jobs of ``ctx`` in this process (made on first use)."""
    with _REGISTRY_LOCK:
        found = _REGISTRIES.get(ctx)
        if found is None:
            found = _REGISTRIES[ctx] = AgentJobs(ctx)
        return found


def _stop_at_exit() -> None:
    """When the process ends, no job of the agent is left billing (module docstring)."""
    for registry in list(_LIVE):
        if any(j.alive for j in registry.started()):
            registry.stop_all()


_hooked = False


def _hook_exit() -> None:
    """Register ``_stop_at_exit`` once, to run before the thread pools shut down."""
    global _hooked
    with _REGISTRY_LOCK:
        if _hooked:
            return
        _hooked = True
    # The thread pools' own hook is registered when concurrent.futures.thread is first
    # imported; the threading module calls its hooks in reverse order, so this one,
    # registered after it, runs while the pools still take work.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - not CPython
        atexit.register(_stop_at_exit)
        return
    with contextlib.suppress(RuntimeError):  # the interpreter is already shutting down
        register(_stop_at_exit)
