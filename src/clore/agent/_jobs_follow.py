"""Following the agent's jobs: what ``job_status``, ``job_logs`` and ``stop_job`` do.

The job's record (``clore.jobs.JobStore``, ``data_dir()/jobs``) is the truth about where
it is; a job started a moment ago has none yet (``starting``). The cost so far is the
order's: its ``spend``, the renter fee on it and the creation fee once it has run 10
minutes (the agent created the order, so the fee is the job's), from the agent's ledger
figures. Everything that can carry the machine's words — the output, the events'
messages (exit reasons, errors) — goes through ``clore.agent.untrusted.untrusted``.

Stopping asks the job's runner (``clore.jobs.stop_job``: a stop request it sees within
``stop_poll``, or, when no runner lives, this process ends the job itself) and waits for
the ending; then any order of the job still running is cancelled here, so the money
stops even when the runner does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from clore.agent._jobs_runner import AgentJob, agent_jobs, jobs_dir
from clore.agent.renting import FREE_WINDOW, refresh_usage
from clore.agent.spec import ToolError, ToolResult
from clore.agent.untrusted import untrusted
from clore.agent.views import num, sig

if TYPE_CHECKING:
    from clore.agent.context import AgentContext
    from clore.jobs import JobRecord

__all__ = ["listing", "logs", "status", "stop"]

T = TypeVar("T")


def _blocking(fn: Callable[[], T]) -> T:
    """``fn()``, on a thread of its own when called on an event loop's thread (the job
    runner's sync calls refuse to run inside a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _record(ctx: AgentContext, job_id: str, *, stopping: bool = False) -> JobRecord | None:
    """The agent's job ``job_id`` (None: started here a moment ago, no record yet);
    ``ToolError`` for a job that does not exist or is not the agent's."""
    from clore.jobs import JobNotFoundError, JobStore

    runner = agent_jobs(ctx)
    try:
        record = JobStore().get(job_id)
    except JobNotFoundError:
        if runner.get(job_id) is not None:
            return None
        raise ToolError(
            f"no job {job_id}: job_status without job_id lists the agent's jobs",
            error="not_found",
        ) from None
    if runner.is_agents(ctx, record):
        return record
    if stopping and ctx.policy.cancel_foreign:
        return record
    if stopping:
        raise ToolError(
            f"job {job_id} was not started by this agent server, and the person allows "
            "stopping only those (cancel_foreign is off)",
            error="refused",
            refused=[{"cap": "cancel_foreign", "job_id": job_id}],
        )
    raise ToolError(
        f"job {job_id} was not started by this agent server (the person's own jobs are not shown)",
        error="refused",
    )


def cost_so_far(ctx: AgentContext, order_id: int | None) -> dict[str, Any] | None:
    """What the job's order has cost (see the module docstring); None when unknown."""
    from clore import CloreError
    from clore.market import label

    if order_id is None:
        return None
    try:
        order = ctx.client.get_order(order_id)
    except CloreError:
        return None
    entry = ctx.ledger.created(order_id)
    spend = float(order.spend)
    fee = 0.0 if entry is None else entry.fee_percent
    total = spend * (1 + fee / 100)
    if entry is not None and ctx.server_time() - float(order.ct) >= FREE_WINDOW:
        total += entry.creation_fee
    rate = None if entry is None else entry.usd_rate
    return {
        "currency": label(order.currency or "bitcoin"),
        "spend": sig(spend),
        "cost": sig(total),
        "cost_usd": sig(None if rate is None else total * rate),
        "order_ended": bool(order.expired),
    }


def _events_block(job: AgentJob | None, job_id: str, count: int) -> str | None:
    """The last ``count`` events as untrusted data (their messages can carry the
    machine's words); None when there are none in this process."""
    if job is None or count <= 0:
        return None
    recent = list(job.events)[-count:]
    if not recent:
        return None
    text = "\n".join(f"{e.event}: {e.message}" for e in recent)
    return untrusted(text, source=f"job {job_id} events", max_chars=4000)


def _runner_word(record: JobRecord | None, job: AgentJob | None) -> str:
    from clore.jobs import runner_alive

    if job is not None and job.alive and (record is None or not record.final):
        return "this server process"
    if record is None or record.final:
        return "none (ended)" if record is not None else "this server process"
    alive = runner_alive(record)
    if alive is True:
        return "another process on this machine"
    if alive is None:
        return "another machine"
    return "gone: stop_job ends the job and cancels its order"


def status(ctx: AgentContext, job_id: str, *, events: int) -> ToolResult:
    """``job_status`` of one job."""
    from clore.jobs import JobStore

    record = _record(ctx, job_id)
    job = agent_jobs(ctx).get(job_id)
    store = JobStore()
    if record is not None:
        spec, state, final = record.spec, record.state, record.final
        order_id = record.order_id or (job.order_id if job is not None else None)
        began, ended = record.created_at, record.ended_at
    else:
        assert job is not None  # _record returns None only for a job started here
        spec, state, final = job.spec.to_json(), "starting", False
        order_id, began, ended = job.order_id, job.started_at, None
    max_time = spec.get("max_time")
    cost = cost_so_far(ctx, order_id)
    data: dict[str, Any] = {
        "job_id": job_id,
        "name": spec.get("name"),
        "state": state,
        "running": not final,
        "runner": _runner_word(record, job),
        "order_id": order_id,
        "server_id": None if record is None else record.server_id,
        "elapsed_seconds": round(max(0.0, (ended or time.time()) - began)),
        "cost": cost,
        "limits": {
            "max_hours": sig(max_time / 3600) if isinstance(max_time, int | float) else None,
            "max_spend": spec.get("max_spend"),
        },
        "stdout_bytes": store.log_size(job_id, "stdout"),
        "stderr_bytes": store.log_size(job_id, "stderr"),
        "output_dir": str(jobs_dir(job_id)),
    }
    lines = []
    money = (
        "cost unknown"
        if cost is None
        else f"cost so far {num(cost['cost'])} {cost['currency']} ({num(cost['cost_usd'])} USD)"
    )
    if record is not None and final:
        data.update(
            reason=record.reason,
            exit_code=record.exit_code,
            command_exit_code=record.command_exit_code,
            order_cancelled=record.cancelled,
            outputs=list(record.outputs),
            summary=record.summary,
        )
        lines.append(
            f"job {job_id} ({data['name']}): {state}, {record.reason} (exit {record.exit_code}); "
            f"order {order_id}; {money}"
        )
        lines.append(record.summary or "")
        lines.append("outputs: " + (", ".join(record.outputs) or "none"))
    else:
        lines.append(
            f"job {job_id} ({data['name']}): {state}; order {order_id}; "
            f"{data['elapsed_seconds']} s; {money}"
        )
        lines.append(
            f"runner: {data['runner']}; output so far {data['stdout_bytes']} bytes stdout, "
            f"{data['stderr_bytes']} bytes stderr (job_logs reads them)"
        )
    if job is not None and job.error:
        data["runner_error"] = job.error
        lines.append(f"the runner failed: {job.error}")
    block = _events_block(job, job_id, events)
    if block is not None:
        data["events_untrusted"] = block
        lines.append(block)
    return ToolResult(data=data, text="\n".join(line for line in lines if line))


def listing(ctx: AgentContext) -> ToolResult:
    """``job_status`` without a job: the agent's jobs, newest first (at most 20)."""
    from clore.jobs import JobStore

    runner = agent_jobs(ctx)
    records = [r for r in JobStore().list() if runner.is_agents(ctx, r)]
    known = {r.id for r in records}
    rows: list[list[Any]] = [
        [r.id, r.name, r.state, r.order_id, r.reason, r.exit_code] for r in records
    ]
    rows += [
        [j.job_id, j.spec.name, "starting", j.order_id, None, None]
        for j in runner.started()
        if j.job_id not in known
    ]
    rows = rows[-20:][::-1]
    columns = ["id", "name", "state", "order", "reason", "exit_code"]
    lines = [f"{len(rows)} job(s) of this agent, newest first", "|".join(columns)]
    lines += ["|".join("-" if c is None else str(c) for c in row) for row in rows]
    return ToolResult(data={"columns": columns, "rows": rows}, text="\n".join(lines))


def logs(
    ctx: AgentContext, job_id: str, stream: str, *, offset: int | None, limit: int
) -> ToolResult:
    """``job_logs``: ``limit`` bytes of ``stream`` from ``offset`` (None: the tail)."""
    from clore.jobs import JobError, JobStore, job_logs

    record = _record(ctx, job_id)
    if record is None:
        return ToolResult(
            data={"job_id": job_id, "stream": stream, "bytes": 0, "next_offset": 0},
            text=f"job {job_id} is starting: no output yet",
        )
    start = max(0, JobStore().log_size(job_id, stream) - limit) if offset is None else offset
    try:
        chunk = _blocking(lambda: job_logs(ctx.client, job_id, stream, offset=start))
    except JobError as exc:
        raise ToolError(f"the job's output cannot be read: {exc}", error="unavailable") from None
    more = False
    if offset is None and len(chunk) > limit:
        start += len(chunk) - limit
        chunk = chunk[-limit:]
    elif len(chunk) > limit:
        more = True
        chunk = chunk[:limit]
    next_offset = start + len(chunk)
    block = untrusted(chunk, source=f"job {job_id} {stream}")
    head = f"job {job_id} {stream}, bytes {start} to {next_offset}" + (
        "; more after next_offset"
        if more
        else ("" if record.final else "; the job runs on: call again from next_offset")
    )
    data = {
        "job_id": job_id,
        "stream": stream,
        "from_offset": start,
        "bytes": len(chunk),
        "next_offset": next_offset,
        "more": more,
        "running": not record.final,
        "output_untrusted": block,
    }
    return ToolResult(data=data, text=f"{head}\n{block}")


def stop(ctx: AgentContext, job_id: str, *, wait: float) -> ToolResult:
    """``stop_job`` (see the module docstring)."""
    from clore.jobs import JobError, JobRunningError, JobStore, stop_job

    runner = agent_jobs(ctx)
    job = runner.get(job_id)
    record = _record(ctx, job_id, stopping=True)
    if record is None:
        runner.wait_for_record(job_id)
        record = _record(ctx, job_id, stopping=True)
        if record is None:
            raise ToolError(
                f"job {job_id} is still starting: call stop_job again in a few seconds",
                error="not_ready",
                retry_after_seconds=5.0,
            )
    already = record.final
    forced = False
    if not already:
        try:
            _blocking(
                lambda: stop_job(
                    ctx.client,
                    job_id,
                    reason="stopped by the agent (stop_job)",
                    wait=wait,
                    options=runner.options,
                )
            )
        except JobRunningError as exc:
            raise ToolError(
                f"{exc}; the person can stop it there (`clore jobs stop {job_id}`)",
                error="elsewhere",
            ) from None
        except JobError:
            forced = True  # the runner did not end it in time: the money stops below
    if job is not None and not forced:
        job.settled.wait(30.0)
    record = JobStore().get(job_id)
    orders = sorted({*record.orders, *([job.order_id] if job is not None else [])})
    cancelled_here = _end_orders(ctx, orders)
    refresh_usage(ctx)
    ctx.invalidate_market()
    order_id = record.order_id or (job.order_id if job is not None else None)
    cost = cost_so_far(ctx, order_id)
    data: dict[str, Any] = {
        "stopped": not already,
        "already_ended": already,
        "job_id": job_id,
        "state": record.state,
        "reason": record.reason,
        "order_id": order_id,
        "order_cancelled": cost is not None and bool(cost["order_ended"]),
        "cancelled_directly": cancelled_here,
        "outputs": list(record.outputs),
        "summary": record.summary,
        "cost": cost,
    }
    if already:
        text = f"job {job_id} had already ended ({record.reason}): {record.summary}"
    elif forced:
        text = (
            f"job {job_id}: its runner did not stop it within {wait:g} s, so its order was "
            f"cancelled directly ({', '.join(map(str, cancelled_here)) or 'none running'}); "
            "the runner then ends the job as order_lost"
        )
    else:
        text = f"job {job_id} stopped: {record.summary}"
    if not data["order_cancelled"]:
        text += (
            f"\nwarning: order {order_id} does not show as ended yet: call cancel_order {order_id}"
        )
    if record.outputs:
        text += "\noutputs: " + ", ".join(record.outputs)
    return ToolResult(data=data, text=text)


def _end_orders(ctx: AgentContext, order_ids: list[int]) -> list[int]:
    """Cancel those of ``order_ids`` still running (their job is over); those cancelled."""
    from clore import CloreError
    from clore.rentals import cancel_orders
    from clore.workflows import forget_limits

    done: list[int] = []
    with ctx.mutation_lock:
        for order_id in order_ids:
            try:
                if not ctx.client.get_order(order_id).expired:
                    cancel_orders(ctx.client, [order_id])
                    done.append(order_id)
            except CloreError:
                continue
            forget_limits(order_id)
    return done
