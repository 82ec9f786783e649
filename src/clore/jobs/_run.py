"""One job's state while it runs, and what every step shares: events, the record, the
clock, stopping.

``Run`` holds everything the steps (``_rent``, ``_watch``, ``_core``) read and change:
the spec, the API face, the store and the job's record, the current order and its SSH
session, the remote job's paths and how far its output was streamed, the money so far.
Each step tells the world through ``emit`` (an event to the callback and the result) and
``save`` (the record, written at once: a killed runner leaves exactly this behind).

Stopping is cooperative: ``request`` (a stop file, Ctrl-C, a limit) sets ``stopping``
with the ending; long waits run through ``race``, which gives up the wait (the thing
waited on is cancelled) and raises ``Stop`` carrying that ending. What must not be given
up — a ``create_order`` in flight, a cancel — is awaited whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from clore._clock import Clock, SystemClock
from clore.jobs._api import Api
from clore.jobs._limits import OrderCost, order_cost
from clore.jobs._result import ENDING_STATES, RunOptions
from clore.jobs.events import JobEvent, make_job_event
from clore.jobs.records import JobRecord, JobStore
from clore.workflows._time import TimeBase

if TYPE_CHECKING:
    from clore._wire import Order, Server
    from clore.jobs.remote import JobPaths, Session
    from clore.jobs.task import JobSpec
    from clore.jobs.workdir import Selection
    from clore.rentals.verify import Credentials

__all__ = ["Finish", "Run", "Stop"]

log = logging.getLogger("clore.jobs")
T = TypeVar("T")

OutputCallback = Callable[[bytes], None]
EventCallback = Callable[[JobEvent], None]


@dataclass
class Finish:
    """How the job ends: ``reason`` (an ``ENDINGS`` key), why in words, the command's exit
    code when it finished, and what is still to do (stop the command, bring outputs)."""

    reason: str
    message: str
    command_exit_code: int | None = None
    stop_remote: bool = False
    download: bool = False

    @property
    def state(self) -> str:
        return ENDING_STATES.get(self.reason, "failed")


class Stop(Exception):
    """Raised out of any step to end the job with ``finish``."""

    def __init__(self, finish: Finish) -> None:
        super().__init__(finish.message)
        self.finish = finish


class Run:
    """One job in progress (see the module docstring)."""

    def __init__(
        self,
        api: Api,
        client: object,
        spec: JobSpec,
        record: JobRecord,
        store: JobStore,
        options: RunOptions,
        *,
        on_event: EventCallback | None,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
        output_dir: Path,
    ) -> None:
        self.api = api
        self.client = client
        self.spec = spec
        self.record = record
        self.store = store
        self.options = options
        self.clock: Clock = options.clock or SystemClock()
        self.server = TimeBase(api, self.clock)
        self.on_event = on_event
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.output_dir = output_dir
        self.events: list[JobEvent] = []
        self.started = self.clock.monotonic()
        # The current order and how to reach it.
        self.order: Order | None = None
        self.listing: Server | None = None
        self.created = record.created_order
        self.credentials: Credentials | None = None
        self.ssh_key_file: Path | None = None
        self.session: Session | None = None
        self.paths: JobPaths | None = None
        self.offsets: list[int] = list(record.offsets)
        self.currency: str = record.currency or "bitcoin"
        self.rates: dict[str, float] | None = None
        self.fee_percent: float | None = None
        self.max_spend: float | None = None
        self.lost_servers: set[int] = set()
        self.outputs: list[Path] = []
        self.carried: list[Path] = []
        self.kept = False
        # Money of the orders the job has finished with (recoveries rent again).
        self.past_spend = record.spent
        self.past_fees = record.fees or 0.0
        self.costed: set[int] = set()
        self.selection: Selection | None = None
        self.last_error: str | None = None
        self.stopping: Finish | None = None
        self._stop_event = asyncio.Event()
        self._callback_failed = False

    # ---- identity -------------------------------------------------------------------
    @property
    def job_id(self) -> str:
        return self.record.id

    @property
    def order_id(self) -> int | None:
        return None if self.order is None else self.order.id

    # ---- events and the record --------------------------------------------------------
    def emit(self, event: str, message: str, **fields: Any) -> JobEvent:
        """Record and deliver one event (order and server from the current order unless
        given)."""
        order_id = fields.pop("order_id", self.order_id)
        server_id = fields.pop(
            "server_id", self.order.si if self.order is not None else self.record.server_id
        )
        made = make_job_event(
            self.job_id,
            event,
            self.clock.time(),
            message,
            order_id=order_id,
            server_id=server_id,
            **fields,
        )
        self.events.append(made)
        self._deliver(self.on_event, made)
        return made

    def _deliver(self, callback: Callable[[Any], None] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:
            # A failing callback must not leave an order billing: log it once, go on.
            if not self._callback_failed:
                log.exception("job %s: a callback failed (later failures not logged)", self.job_id)
            self._callback_failed = True

    def save(self, **changes: Any) -> None:
        """Change the job's record and write it now."""

        def apply(record: JobRecord) -> None:
            for name, value in changes.items():
                setattr(record, name, value)
            record.offsets = (self.offsets[0], self.offsets[1])

        self.record = self.store.update(self.job_id, apply)

    def stdout(self, data: bytes) -> None:
        """A chunk of the command's stdout: kept locally, counted, delivered."""
        self.store.append_log(self.job_id, "stdout", data)
        self.offsets[0] += len(data)
        self._deliver(self.on_stdout, data)

    def stderr(self, data: bytes) -> None:
        self.store.append_log(self.job_id, "stderr", data)
        self.offsets[1] += len(data)
        self._deliver(self.on_stderr, data)

    # ---- money --------------------------------------------------------------------------
    def money(self, value: float | None) -> str:
        """``0.00001234 BTC``: an amount in the job's currency, for messages."""
        from clore.market.pricing import label
        from clore.market.units import amount

        return f"{amount(value, self.currency)} {label(self.currency)}"

    def cost_of(self, order: Order) -> OrderCost:
        """What the current ``order`` has cost the job so far."""
        return order_cost(
            order,
            self.now(),
            fee_percent=self.fee_percent or 0.0,
            created=self.created,
            spend_base=self.record.spend_base,
        )

    def totals(self, order: Order | None = None) -> tuple[float, float]:
        """(spend, fees) of every order of the job, the current ``order`` included."""
        spend, fees = self.past_spend, self.past_fees
        if order is not None and order.id not in self.costed:
            cost = self.cost_of(order)
            spend, fees = spend + cost.spend, fees + cost.fees
        return spend, fees

    def register_limits(self) -> None:
        """Register the job's limits for its new order with ``clore guard`` (so ``clore
        guard --all`` enforces them if this runner dies): the spend cap left for this
        order, before fees, and the time left, as an order age."""
        from clore.workflows.guard import register_limits
        from clore.workflows.plan import Limits

        order = self.order
        if order is None or not self.created:
            return
        cap: float | None = None
        if self.max_spend is not None:
            left = self.max_spend - self.past_spend - self.past_fees - float(order.creation_fee)
            cap = max(left, 1e-8) / (1.0 + (self.fee_percent or 0.0) / 100.0)
        age: float | None = None
        if self.spec.max_time is not None:
            began = self.record.started_at or float(order.ct)
            age = max(1.0, self.spec.max_time - (float(order.ct) - began))
        limits = Limits(max_spend=cap, max_time=age)
        if limits:
            try:
                register_limits(order.id, limits)
            except OSError as exc:
                self.emit(
                    "warning",
                    f"could not register the limits of order {order.id}: {exc}",
                    warning=str(exc),
                )

    # ---- time ---------------------------------------------------------------------------
    def now(self) -> float:
        """The API server's time (limits, order ages)."""
        return self.server.now()

    def elapsed(self) -> float:
        """Seconds on the runner's clock since the job started here."""
        return self.clock.monotonic() - self.started

    # ---- stopping -----------------------------------------------------------------------
    def request(self, finish: Finish) -> None:
        """End the job as ``finish`` says at the next chance (the first request wins)."""
        if self.stopping is None:
            self.stopping = finish
        self._stop_event.set()

    def check(self) -> None:
        """Raise ``Stop`` when a stop was requested."""
        if self.stopping is not None:
            raise Stop(self.stopping)

    async def wait_stop(self) -> None:
        """Return once a stop was requested."""
        await self._stop_event.wait()

    async def race(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``awaitable`` unless a stop comes first (then it is cancelled and ``Stop``
        raised) or ``timeout`` seconds of the event loop pass (``TimeoutError``)."""
        self.check()
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            done, _ = await asyncio.wait(
                {task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        finally:
            stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if self.stopping is not None:
            raise Stop(self.stopping)
        raise TimeoutError

    async def sleep(self, seconds: float) -> None:
        """Sleep on the runner's clock, woken by a stop (``Stop``)."""
        await self.race(self.clock.asleep(seconds))
