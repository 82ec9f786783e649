"""The job on its machine: log in, upload, start, then follow it to its end while
watching the order, the money, the clock and the GPUs; reconnect when SSH drops.

``supervise`` streams the command's output (``Session.follow``, which also heart-beats
the machine's watchdog) and, every ``check_interval``, looks at the order: ended or no
longer listed (``order_lost``), a spot bid not winning (``outbid``), spend plus fees one
poll ahead of ``max_spend``, the job's age one poll ahead of ``max_time``; GPU
utilization for the idle stop is sampled over SSH. A stop request (file, Ctrl-C) ends it
at once. Every ending but the command's own asks ``_core`` to stop the command first.

A dropped connection (``ConnectionLost``) is followed by reconnecting for at most
``reconnect_budget`` seconds, looking at the order between attempts (a machine gone with
its order is not waited for); streaming resumes at the byte offsets reached, so nothing
is lost or shown twice. The command keeps running meanwhile, and its watchdog ends it if
the runner stays away longer than ``heartbeat_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING

from clore._errors import CloreError
from clore.jobs._limits import IdleTracker, projected_cost, reached
from clore.jobs._run import Finish, Run, Stop

if TYPE_CHECKING:
    from clore._wire import Order
    from clore.jobs.remote import JobPaths, Session

__all__ = ["checkpoint_dir", "connect", "look_at_order", "start", "supervise", "upload"]

#: Seconds between writes of the streaming offsets to the record.
_SAVE_EVERY = 5.0


def checkpoint_dir(run: Run) -> object:
    """Where outputs copied during the run are kept (``<job>.checkpoint``)."""
    return run.store.root / f"{run.job_id}.checkpoint"


def _login_refused(message: str) -> bool:
    return "login refused" in message or "host key" in message


async def connect(run: Run, *, budget: float | None = None) -> Session:
    """An SSH session to the current order, retried for ``budget`` seconds (default
    ``reconnect_budget``); ``Stop`` (``connection_lost``) when it does not come."""
    from clore.jobs.remote import ConnectionLost, Session
    from clore.rentals import known_hosts_path
    from clore.rentals.verify import TargetError, target_of

    order = run.order
    assert order is not None and run.credentials is not None
    limit = run.options.reconnect_budget if budget is None else budget
    start = run.clock.monotonic()
    delay = 0.5
    while True:
        try:
            target = target_of(order)
        except TargetError as exc:
            raise Stop(Finish("error", str(exc))) from None
        left = limit - (run.clock.monotonic() - start)
        timeout = max(1.0, min(run.options.connect_timeout, left))
        try:
            session = await run.race(
                Session.open(
                    target,
                    run.credentials,
                    known_hosts=known_hosts_path(order),
                    connect_timeout=timeout,
                )
            )
        except ConnectionLost as exc:
            if _login_refused(str(exc)):
                raise Stop(Finish("error", f"order {order.id}: {exc}")) from None
            left = limit - (run.clock.monotonic() - start)
            if left <= 0:
                raise Stop(
                    Finish(
                        "connection_lost",
                        f"order {order.id} did not answer over SSH within {limit:g} s ({exc})",
                    )
                ) from None
            await run.sleep(min(delay, left))
            delay = min(delay * 2, 10.0)
            finish = await look_at_order(run, limits=False)
            if finish is not None:
                raise Stop(finish) from None
            order = run.order
            assert order is not None
            continue
        run.session = session
        return session


async def upload(run: Run, session: Session) -> str:
    """Send the working directory (and outputs carried from a lost machine) into the
    job's remote working directory; that directory."""
    from clore.jobs.remote import RemoteError, default_workdir
    from clore.jobs.workdir import SIZE_WARNING_BYTES, select_files

    remote_dir = default_workdir(run.job_id)
    selection = run.selection
    carried = None
    if run.carried:
        carried = select_files(checkpoint_dir(run))  # type: ignore[arg-type]
    files = 0 if selection is None else len(selection.files)
    size = 0 if selection is None else selection.total_bytes
    large = size > SIZE_WARNING_BYTES
    restored = 0 if carried is None else len(carried.files)
    run.emit(
        "uploading",
        f"uploading {files} file(s), {size / 1e6:.1f} MB"
        + (f", and {restored} output file(s) carried over" if restored else ""),
        files=files,
        bytes=size,
        large=large,
        restored=restored,
    )
    if large:
        run.emit(
            "warning",
            f"the working directory holds {size / 1e6:.0f} MB (more than "
            f"{SIZE_WARNING_BYTES / 1e6:.0f} MB): exclude what the job does not need "
            "(.gitignore, .cloreignore, excludes)",
            warning="large upload",
        )
    began = run.clock.monotonic()
    sent = 0
    try:
        if selection is not None and selection.files:
            sent += await run.race(session.upload(selection.root, selection.files, remote_dir))
        if carried is not None and carried.files:
            sent += await run.race(session.upload(carried.root, carried.files, remote_dir))
    except RemoteError as exc:
        raise _dropped(exc) from None
    seconds = run.clock.monotonic() - began
    run.emit(
        "uploaded",
        f"uploaded {sent / 1e6:.1f} MB in {seconds:.1f} s",
        bytes=sent,
        seconds=round(seconds, 3),
    )
    return remote_dir


def _dropped(exc: Exception) -> Stop:
    from clore.jobs.remote import ConnectionLost

    if isinstance(exc, ConnectionLost):
        return Stop(Finish("connection_lost", f"the connection dropped: {exc}"))
    return Stop(Finish("error", str(exc)))


async def start(run: Run, session: Session, remote_dir: str) -> JobPaths:
    """Start the command (after its setup) detached on the machine, with its watchdog."""
    from clore.jobs.remote import RemoteError

    spec = run.spec
    timeout = run.options.heartbeat_timeout
    try:
        # Awaited whole: a start given up half way could leave a job nobody follows.
        paths = await session.start(
            run.job_id,
            command=spec.command,
            setup=spec.setup,
            env=spec.env,
            workdir=remote_dir,
            heartbeat_timeout=None if timeout is None else float(math.ceil(timeout)),
            grace=run.options.stop_grace,
        )
    except RemoteError as exc:
        raise _dropped(exc) from None
    run.paths = paths
    run.offsets[:] = [0, 0]
    base = (run.store.log_size(run.job_id, "stdout"), run.store.log_size(run.job_id, "stderr"))
    run.save(state="running", remote=paths.to_dict(), log_base=base)
    if spec.setup:
        run.emit("setup_started", "running the setup first", setup=spec.setup)
    watchdog = (
        "" if timeout is None else f"; its watchdog ends it {timeout:g} s after the runner goes"
    )
    run.emit(
        "running",
        f"running `{spec.command}` on order {run.order_id}{watchdog}",
        attempt=run.record.attempt,
        remote=paths.root,
    )
    return paths


async def look_at_order(run: Run, *, limits: bool = True) -> Finish | None:
    """The order as the API shows it now: an ending when it is lost or (with ``limits``)
    crosses a limit by the next check; None when all is well or it cannot be read."""
    order = run.order
    assert order is not None
    try:
        found = await run.race(run.api.find_order(order.id))
    except CloreError:
        return None
    now = run.now()
    if found is None:
        run.emit(
            "order_lost",
            f"order {order.id} is no longer among your orders",
            state="missing",
            reason="not in my_orders",
        )
        return Finish("order_lost", f"order {order.id} disappeared")
    run.order = _keep_endpoint(found, order)
    if found.expired:
        state = found.state_at(now)
        why = "it ran to its end" if state == "expired" else "it was ended outside this job"
        run.emit(
            "order_lost", f"order {found.id} has ended ({state}: {why})", state=state, reason=why
        )
        return Finish("order_lost", f"order {found.id} ended ({state})")
    if found.spot:
        lost = await _outbid(run, found)
        if lost is not None:
            return lost
    if limits:
        return _limits(run, found, now)
    return None


def _keep_endpoint(found: Order, known: Order) -> Order:
    """``found``, or ``known`` when ``found`` lost its ports meanwhile (a paused order)."""
    return found if found.ssh_endpoint is not None or known.ssh_endpoint is None else known


async def _outbid(run: Run, order: Order) -> Finish | None:
    from clore._errors import ServerNotFoundError

    try:
        market = await run.race(run.api.spot_marketplace(order.si))
    except ServerNotFoundError:
        return None
    except CloreError:
        return None
    mine = next((o for o in market.offers if o.offer_id == order.id), None)
    if mine is not None and mine.active:
        return None
    winning = market.winning
    top = None if winning is None else float(winning.bid)
    run.emit(
        "outbid",
        f"the spot bid of order {order.id} is not winning any more"
        + (f" (highest bid {run.money(top)}/day)" if top is not None else ""),
        bid=float(order.price),
        winning_bid=top,
    )
    return Finish("order_lost", f"order {order.id} was outbid")


def _limits(run: Run, order: Order, now: float) -> Finish | None:
    spec = run.spec
    lookahead = run.server.to_server(run.options.check_interval)
    if run.max_spend is not None:
        value = run.past_spend + run.past_fees
        value += projected_cost(
            order,
            now,
            lookahead,
            fee_percent=run.fee_percent or 0.0,
            created=run.created,
            spend_base=run.record.spend_base,
        )
        if reached(value, run.max_spend):
            run.emit(
                "limit_reached",
                f"spend plus fees reach {run.money(value)} by the next check "
                f"(max_spend {run.money(run.max_spend)})",
                limit="max_spend",
                value=value,
                max=run.max_spend,
                currency=run.currency,
            )
            return Finish("max_spend", "max_spend reached", stop_remote=True, download=True)
    if spec.max_time is not None:
        began = run.record.started_at or float(order.ct)
        age = now - began + lookahead
        if reached(age, spec.max_time):
            run.emit(
                "limit_reached",
                f"the job reaches {age:.0f} s by the next check (max_time {spec.max_time:g} s)",
                limit="max_time",
                value=age,
                max=spec.max_time,
                currency=None,
            )
            return Finish("max_time", "max_time reached", stop_remote=True, download=True)
    return None


class _Ticks:
    """When each periodic look is next due (the runner's clock)."""

    def __init__(self, run: Run) -> None:
        now = run.clock.monotonic()
        opts = run.options
        self.check = now + opts.check_interval
        self.save = now + _SAVE_EVERY
        spec = run.spec
        self.idle_every: float | None = None
        if spec.idle is not None:
            derived = max(0.5, min(60.0, run.server.to_client(spec.idle) / 6.0))
            self.idle_every = opts.idle_interval or derived
        self.idle = now + (self.idle_every or 0.0)
        self.checkpoint_every = opts.checkpoint_interval if spec.recover and spec.outputs else None
        self.checkpoint = now + (self.checkpoint_every or 0.0)


async def supervise(run: Run) -> Finish:
    """Follow the command to its end (or another ending); reconnects in between."""
    idle = None
    if run.spec.idle is not None:
        idle = IdleTracker(run.spec.idle, run.spec.idle_threshold)
    ticks = _Ticks(run)
    while True:
        finish = await _stream(run, ticks, idle)
        if finish is not None:
            return finish
        await _reconnect(run)


async def _stream(run: Run, ticks: _Ticks, idle: IdleTracker | None) -> Finish | None:
    """Stream until an ending (returned) or a dropped connection (None)."""
    from clore.jobs.remote import RemoteError

    session, paths = run.session, run.paths
    assert session is not None and paths is not None
    follow = asyncio.ensure_future(
        session.follow(
            paths,
            (run.offsets[0], run.offsets[1]),
            run.stdout,
            run.stderr,
            poll=run.options.poll,
            heartbeat_interval=run.options.heartbeat_interval,
        )
    )
    try:
        while True:
            step = min(run.options.stop_poll, run.options.check_interval)
            tick = asyncio.ensure_future(run.clock.asleep(step))
            stopper = asyncio.ensure_future(run.wait_stop())
            try:
                await asyncio.wait({follow, tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                tick.cancel()
                stopper.cancel()
            if follow.done():
                error = follow.exception()
                if isinstance(error, RemoteError):
                    from clore.jobs.remote import ConnectionLost

                    if isinstance(error, ConnectionLost):
                        run.last_error = str(error)
                        return None
                    return Finish("error", f"following the command failed: {error}")
                if error is not None:
                    raise error
                return await _ended(run, session, paths, follow.result())
            if run.stopping is not None:
                return _stopped(run.stopping)
            finish = await _periodic(run, session, ticks, idle)
            if finish is not None:
                return finish
    finally:
        if not follow.done():
            follow.cancel()
            with contextlib.suppress(BaseException):
                await follow


def _stopped(finish: Finish) -> Finish:
    if finish.reason in ("interrupted", "stopped"):
        finish.stop_remote = True
        finish.download = finish.reason == "stopped"
    return finish


async def _ended(run: Run, session: Session, paths: JobPaths, code: int | None) -> Finish:
    """The command ended by itself (or its watchdog ended it)."""
    from clore.jobs.remote import KILLED_EXIT_CODE, RemoteError

    if code is None:
        return Finish(
            "failed",
            "the command's processes ended without an exit code (the machine restarted?)",
            download=True,
        )
    if code == KILLED_EXIT_CODE:
        try:
            status = await session.status(paths)
        except RemoteError:
            status = None
        if status is not None and status.reason and status.reason.startswith("watchdog"):
            return Finish(
                "connection_lost",
                f"the machine's watchdog ended the command ({status.reason})",
                command_exit_code=code,
                download=True,
            )
    if code == 0:
        return Finish("succeeded", "the command exited with 0", command_exit_code=0, download=True)
    return Finish(
        "failed", f"the command exited with {code}", command_exit_code=code, download=True
    )


async def _periodic(
    run: Run, session: Session, ticks: _Ticks, idle: IdleTracker | None
) -> Finish | None:
    from clore.jobs.remote import RemoteError

    now = run.clock.monotonic()
    if now >= ticks.save:
        ticks.save = now + _SAVE_EVERY
        run.save()
    if now >= ticks.check:
        ticks.check = now + run.options.check_interval
        finish = await look_at_order(run)
        if finish is not None:
            if finish.reason == "order_lost":
                return finish
            finish.stop_remote, finish.download = True, True
            return finish
    if idle is not None and ticks.idle_every is not None and now >= ticks.idle:
        ticks.idle = now + ticks.idle_every
        try:
            readings = await run.race(session.gpu_utilization())
        except RemoteError:
            readings = None  # follow notices a dropped connection
        if readings is not None:
            seconds = idle.sample(readings, run.now())
            if seconds is not None:
                run.emit(
                    "idle",
                    f"GPU utilization stayed below {idle.threshold:g}% for {seconds:.0f} s",
                    seconds=seconds,
                    threshold=idle.threshold,
                    utilization=idle.last,
                )
                return Finish("idle", "the GPUs were idle", stop_remote=True, download=True)
    if ticks.checkpoint_every is not None and now >= ticks.checkpoint:
        ticks.checkpoint = now + ticks.checkpoint_every
        await _checkpoint(run, session)
    return None


async def _checkpoint(run: Run, session: Session) -> None:
    """Copy the outputs as they are now beside the record, for a recovery to carry."""
    from pathlib import Path

    from clore.jobs.remote import RemoteError

    paths = run.paths
    assert paths is not None
    target = Path(str(checkpoint_dir(run)))
    try:
        got = await run.race(session.fetch(paths.workdir, list(run.spec.outputs), target))
    except (RemoteError, OSError):
        return
    if got.paths:
        run.emit(
            "checkpointed",
            f"copied {len(got.paths)} output(s) for a recovery",
            files=len(got.paths),
            bytes=got.bytes,
        )


async def _reconnect(run: Run) -> None:
    """Log in again within ``reconnect_budget`` (``Stop`` when it does not come back)."""
    old = run.session
    run.session = None
    if old is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.close(), timeout=3.0)
    budget = run.options.reconnect_budget
    error = getattr(run, "last_error", None) or "the connection dropped"
    run.emit(
        "reconnecting",
        f"{error}; reconnecting (for at most {budget:g} s)",
        error=error,
        budget=budget,
    )
    began = run.clock.monotonic()
    finish = await look_at_order(run, limits=True)
    if finish is not None:
        if finish.reason != "order_lost":
            finish.stop_remote, finish.download = True, True
        raise Stop(finish)
    await connect(run, budget=budget)
    seconds = run.clock.monotonic() - began
    run.emit(
        "reconnected",
        f"reconnected after {seconds:.1f} s; streaming resumes",
        seconds=round(seconds, 3),
        stdout_offset=run.offsets[0],
        stderr_offset=run.offsets[1],
    )
