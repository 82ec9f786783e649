"""A job from start to end: the order (rented, adopted or found again), the machine
(upload, start, supervise), recovery after a lost order, and the ending every path goes
through (``finish``): stop the command when it still runs, bring the outputs back, cancel
the order unless ``keep``, count the money, write the record, say ``finished``.

``execute`` never leaves an order billing on the way out: a ``Stop`` (limit, idle, stop
request, Ctrl-C, lost connection or order, a failure to rent), a runner error and a
cancelled task all end in ``finish``. Only a second Ctrl-C during the ending itself can cut
it short; the record then still names the order for ``resume_job``/``stop_job``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from clore._errors import CloreError
from clore.jobs._ledger import Ledger
from clore.jobs._money import account, ensure_fee, prepare_money
from clore.jobs._rent import acquire, adopt, wait_ready
from clore.jobs._result import JobResult, exit_code_for
from clore.jobs._run import Finish, Run, Stop
from clore.jobs._watch import checkpoint_dir, connect, start, supervise, upload

if TYPE_CHECKING:
    from clore._wire import Order
    from clore.jobs._proposal import Confirm

__all__ = ["execute", "stop_here"]

log = logging.getLogger("clore.jobs")

#: Seconds the ending may spend stopping the command (beyond the stop grace).
_STOP_TIMEOUT = 60.0
#: Seconds between looks at an unsettled rental intent on resume (the runner's clock).
_SETTLE_POLL = 5.0
#: Seconds the ending waits for the renter fee read while the job ran.
_FEE_TIMEOUT = 30.0


async def execute(run: Run, *, resumed: bool = False, confirm: Confirm | None = None) -> JobResult:
    """Run the job to its end (see the module docstring); ``confirm`` is asked before it
    rents (``clore.jobs._proposal``)."""
    spec = run.spec
    run.emit(
        "job_started",
        ("resuming" if resumed else "starting") + f" job {run.job_id} ({spec.name}): "
        f"`{spec.command}`",
        name=spec.name,
        command=spec.command,
        resumed=resumed,
        keep=spec.keep,
        recover=spec.recover,
        verify=spec.verify,
    )
    try:
        finish = await _attempts(run, resumed, confirm)
    except asyncio.CancelledError:
        run.request(Finish("interrupted", "the job's task was cancelled"))
        assert run.stopping is not None
        await finish_job(run, _stopped(run.stopping))
        raise
    except Exception as exc:
        log.exception("job %s: runner error", run.job_id)
        finish = Finish("error", f"runner error: {type(exc).__name__}: {exc}")
    return await finish_job(run, finish)


def _stopped(finish: Finish) -> Finish:
    if finish.reason in ("interrupted", "stopped"):
        finish.stop_remote = True
        finish.download = finish.reason == "stopped"
    return finish


def _select(run: Run) -> None:
    """The files to upload, read before anything is rented (a bad workdir stops here)."""
    from clore.jobs.workdir import select_files

    workdir = run.spec.workdir
    if workdir is None:
        return
    try:
        run.selection = select_files(Path(workdir), run.spec.excludes)
    except (CloreError, OSError) as exc:
        raise Stop(Finish("error", f"workdir: {exc}")) from None


async def _attempts(run: Run, resumed: bool, confirm: Confirm | None) -> Finish:
    spec = run.spec
    try:
        _select(run)
        if resumed:
            await _find_again(run)
    except Stop as stop:
        if not _recoverable(run, stop.finish):
            return _stopped(stop.finish)
        await _recover(run, stop.finish)
    fee: asyncio.Future[float] | None = None
    try:
        while True:
            try:
                if run.order is None:
                    await acquire(run, confirm)
                if fee is None and run.fee_percent is None:
                    # The cost needs the renter fee only at the end: read it while the
                    # machine works, not on the way to it (one request, ~1 s of pacing).
                    fee = asyncio.ensure_future(ensure_fee(run))
                session = run.session or await connect(run)
                if run.paths is None:
                    remote_dir = await upload(run, session)
                    await start(run, session, remote_dir)
                finish = await supervise(run)
            except Stop as stop:
                finish = _stopped(stop.finish)
            if not _recoverable(run, finish):
                if finish.reason == "order_lost" and spec.recover:
                    finish.message += (
                        f"; no recovery left (max_recoveries {run.options.max_recoveries})"
                    )
                await _settle_fee(fee)
                return finish
            await _recover(run, finish)
    finally:
        if fee is not None and not fee.done():
            fee.cancel()  # a runner error or a cancelled task: the ending reads it again


async def _settle_fee(fee: asyncio.Future[float] | None) -> None:
    """Let the fee read in flight finish (bounded), so the ending does not send another."""
    if fee is None or fee.done():
        return
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(fee), _FEE_TIMEOUT)


def _recoverable(run: Run, finish: Finish) -> bool:
    return (
        finish.reason == "order_lost"
        and run.spec.recover
        and bool(run.record.orders)
        and run.record.attempt <= run.options.max_recoveries
        and run.stopping is None
    )


async def _recover(run: Run, finish: Finish) -> None:
    """After a lost order: let it go (cancelled if it still bills or may resume), and
    start over on another server."""
    from clore.jobs.workdir import select_files
    from clore.workflows.guard import forget_limits

    lost = run.order
    await _close(run)
    attempt = run.record.attempt + 1
    carried = Path(str(checkpoint_dir(run)))
    run.carried = []
    if carried.is_dir():
        with contextlib.suppress(CloreError, OSError):
            run.carried = list(select_files(carried).files)
    outputs = ", ".join(run.spec.outputs)
    note = (
        f"; {len(run.carried)} output file(s) copied during the run are uploaded first"
        if run.carried
        else (
            f"; only what it checkpoints into its outputs ({outputs}) is carried over"
            if outputs
            else ""
        )
    )
    run.emit(
        "recovering",
        f"{finish.message}: renting another server; the job restarts from scratch{note}",
        attempt=attempt,
        reason=finish.message,
        carried=len(run.carried),
    )
    if lost is not None:
        run.lost_servers.add(lost.si)
        _, final = await _cancel(run, lost, why="lost to the market", quiet=True)
        await account(run, lost.id, final)
        with contextlib.suppress(OSError):
            forget_limits(lost.id)
    run.order = None
    run.paths = None
    run.offsets[:] = [0, 0]
    run.save(order_id=None, order_ct=None, remote=None, attempt=attempt, state="renting")


async def _find_again(run: Run) -> None:
    """On resume: the order of the record (or of its rental intent), and the remote job."""
    from clore.jobs.remote import JobPaths

    record = run.record
    order_id = record.order_id
    if order_id is None and record.rental_intent is not None:
        order_id = await _settle_intent(run, record.rental_intent)
    if order_id is None:
        return
    try:
        order = await adopt(run, order_id, created=record.created_order)
    except Stop:
        if record.server_id is not None:
            run.lost_servers.add(record.server_id)
        raise
    await prepare_money(run, server_id=order.si)
    await wait_ready(run, order)
    if record.remote:
        run.paths = JobPaths.from_dict(record.remote)
        run.offsets[:] = [
            max(0, run.store.log_size(run.job_id, "stdout") - record.log_base[0]),
            max(0, run.store.log_size(run.job_id, "stderr") - record.log_base[1]),
        ]


async def _settle_intent(run: Run, rental_id: str) -> int | None:
    """The order a rental intent of a killed runner made, once the ledger can tell (an
    order on its server created since, or none after the grace period)."""
    ledger = Ledger(run.store.root / "ledger.json", run.client)
    while True:
        rental = ledger.get(rental_id)
        if rental is None or rental.status == "void":
            run.save(rental_intent=None)
            return None
        if rental.status == "rented" and rental.order_id is not None:
            _found_order(run, rental.order_id)
            return rental.order_id
        orders = await run.race(run.api.my_orders(include_completed=True))
        rental = ledger.settle(rental_id, orders, run.clock.time())
        if rental is not None and rental.status in ("rented", "void"):
            continue
        await run.sleep(_SETTLE_POLL)


def _found_order(run: Run, order_id: int) -> None:
    orders = run.record.orders if order_id in run.record.orders else [*run.record.orders, order_id]
    run.save(order_id=order_id, created_order=True, orders=orders, rental_intent=None)


async def _close(run: Run) -> None:
    session, run.session = run.session, None
    if session is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.close(), timeout=3.0)


async def _cancel(
    run: Run, order: Order, *, why: str, quiet: bool = False
) -> tuple[bool, Order | None]:
    """Cancel ``order`` unless the last read found it ended; (True when it is not running
    afterwards, the order as read after the cancel, or None when not read).

    One ``cancel_order`` and one ``my_orders`` read: the read confirms the cancel and
    gives the final spend (``account`` takes it). A refused cancel, or an order that
    still runs after it, is tried again (three times in all), then reported."""
    if order.expired:
        return True, order  # ended before: nothing to cancel, its figures are final
    if not quiet:
        run.emit(
            "cancelling",
            f"cancelling order {order.id} ({why})",
            reason=why,
            order_id=order.id,
            server_id=order.si,
        )
    error: str = ""
    found: Order | None = None
    for attempt in range(3):
        if attempt:
            await asyncio.sleep(min(1.0, run.options.stop_poll))
        try:
            await run.api.cancel_order(order.id)
            sent = True
        except CloreError as exc:
            sent, error = False, str(exc)
        try:
            found = await run.api.find_order(order.id)
        except CloreError:
            if sent:
                return True, None  # the API said cancelled; its figures are not known
            continue
        if found is None or found.expired:
            return True, found
        if sent:
            error = "it still runs after cancel_order answered"
    run.emit(
        "warning",
        f"cancelling order {order.id} failed ({error}): it may still be running and billing; "
        f"`clore cancel {order.id}` stops it",
        warning=error,
    )
    return False, found


async def finish_job(run: Run, finish: Finish) -> JobResult:
    """The ending every job goes through (module docstring)."""
    spec = run.spec
    session, paths = run.session, run.paths
    if session is not None and paths is not None:
        await _wind_down(run, finish)
    await _close(run)
    order = run.order
    cancelled = True
    if order is not None:
        if spec.keep:
            cancelled = False
            run.kept = True
            ssh = order.ssh_command()
            run.emit(
                "kept",
                f"order {order.id} keeps running (and billing): "
                + (f"`{ssh}`; " if ssh else "")
                + f"`clore cancel {order.id}` stops it",
                ssh=ssh,
                cancel=f"clore cancel {order.id}",
            )
            final = await account(run, order.id)
        else:
            cancelled, read = await _cancel(run, order, why=finish.reason)
            final = await account(run, order.id, read)
        if cancelled and not spec.keep:
            from clore.workflows.guard import forget_limits

            with contextlib.suppress(OSError):
                forget_limits(order.id)
            if final is not None:
                cost = run.cost_of(final)
                run.emit(
                    "cancelled",
                    f"order {order.id} cancelled: spend {run.money(cost.spend)} + fees "
                    f"{run.money(cost.fees)}",
                    spend=cost.spend,
                    fees=cost.fees,
                    currency=run.currency,
                )
    return _result(run, finish, cancelled)


async def _wind_down(run: Run, finish: Finish) -> None:
    """Stop the command if it must, then bring the outputs back (both bounded)."""
    from clore.jobs.remote import RemoteError

    session, paths = run.session, run.paths
    assert session is not None and paths is not None
    if finish.stop_remote:
        try:
            await asyncio.wait_for(
                session.stop(paths, grace=run.options.stop_grace, reason=finish.reason),
                timeout=run.options.stop_grace + _STOP_TIMEOUT,
            )
        except (RemoteError, asyncio.TimeoutError) as exc:
            run.emit("warning", f"could not stop the command: {exc}", warning=str(exc))
    if not finish.download or not run.spec.outputs:
        return
    outputs = list(run.spec.outputs)
    run.emit(
        "downloading", f"bringing back {', '.join(outputs)} into {run.output_dir}", outputs=outputs
    )
    run.save(state="downloading")
    try:
        got = await asyncio.wait_for(
            session.fetch(paths.workdir, outputs, run.output_dir),
            timeout=run.options.download_timeout,
        )
    except (RemoteError, OSError, asyncio.TimeoutError) as exc:
        run.emit("warning", f"the outputs could not be brought back: {exc}", warning=str(exc))
        return
    run.outputs = list(got.paths)
    missing = list(got.missing)
    run.emit(
        "downloaded",
        f"brought back {len(got.paths)} output(s), {got.bytes / 1e6:.1f} MB"
        + (f"; not on the machine: {', '.join(missing)}" if missing else ""),
        files=[str(p) for p in got.paths],
        bytes=got.bytes,
        missing=missing,
    )
    for name, why in got.refused:
        run.emit("warning", f"refused to write {name}: {why}", warning=why)


def _result(run: Run, finish: Finish, cancelled: bool) -> JobResult:
    from clore.jobs._result import summary_line

    spend, fees = run.totals(None)
    rented = bool(run.record.orders)
    cost = spend + fees if rented else None
    exit_code = exit_code_for(finish.reason, finish.command_exit_code)
    seconds = run.elapsed()
    result = JobResult(
        job_id=run.job_id,
        name=run.spec.name,
        exit_code=exit_code,
        reason=finish.reason,
        message=finish.message,
        command_exit_code=finish.command_exit_code,
        order_id=run.record.orders[-1] if run.record.orders else None,
        orders=tuple(run.record.orders),
        cancelled=cancelled,
        kept=run.kept,
        seconds=seconds,
        cost=cost,
        spend=spend if rented else None,
        fees=fees if rented else None,
        currency=run.currency if rented else None,
        outputs=tuple(run.outputs),
        events=(),
    )
    summary = summary_line(result)
    run.save(
        state=finish.state,
        reason=finish.reason,
        exit_code=exit_code,
        command_exit_code=finish.command_exit_code,
        cost=cost,
        fees=fees if rented else None,
        spent=spend,
        currency=result.currency,
        cancelled=cancelled,
        kept=run.kept,
        outputs=[str(p) for p in run.outputs],
        summary=summary,
        ended_at=run.clock.time(),
        runner=None,
    )
    run.store.clear_stop(run.job_id)
    run.emit(
        "finished",
        summary,
        order_id=result.order_id,
        reason=finish.reason,
        exit_code=exit_code,
        command_exit_code=finish.command_exit_code,
        seconds=round(seconds, 3),
        cost=cost,
        fees=result.fees,
        currency=result.currency,
        cancelled=cancelled,
        summary=summary,
    )
    from dataclasses import replace

    return replace(result, events=tuple(run.events))


async def stop_here(run: Run, reason: str) -> JobResult:
    """End a job whose runner is gone: find its order, stop the command (one login try),
    bring the outputs back, cancel the order unless ``keep``."""
    from clore.jobs.remote import RemoteError

    finish = Finish("stopped", reason, stop_remote=True, download=True)
    try:
        await _find_again(run)
        if run.order is not None and run.paths is not None:
            await connect(run, budget=run.options.connect_timeout)
    except Stop as stop:
        if stop.finish.reason not in ("connection_lost", "order_lost"):
            finish.message += f" ({stop.finish.message})"
    except RemoteError as exc:
        finish.message += f" ({exc})"
    return await finish_job(run, finish)
