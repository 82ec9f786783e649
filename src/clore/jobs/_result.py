"""The runner's public value types: ``RunOptions`` (its knobs), ``JobResult`` (how a job
ended), the endings and their exit codes, and ``summary_line``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from clore.jobs.events import JobEvent
from clore.jobs.records import JobRecord

if TYPE_CHECKING:
    from clore._clock import Clock
    from clore.rentals.choice import Floors
    from clore.rentals.verify import Credentials, VerifyOptions

__all__ = [
    "ENDINGS",
    "ENDING_STATES",
    "EXIT_CODES",
    "Ending",
    "JobResult",
    "RunOptions",
    "summary_line",
]

Ending = Literal[
    "succeeded",
    "failed",
    "max_spend",
    "max_time",
    "idle",
    "stopped",
    "interrupted",
    "connection_lost",
    "order_lost",
    "declined",
    "error",
]

#: Every way a job ends, with what it means (docs/jobs.md has the whole table).
ENDINGS: Final[Mapping[str, str]] = {
    "succeeded": "the command exited with 0",
    "failed": "the command (or its setup) exited with another code",
    "max_spend": "spend plus fees reached max_spend",
    "max_time": "the job ran for max_time",
    "idle": "the GPUs stayed below the idle threshold for the idle time",
    "stopped": "a stop request (stop_job, `clore jobs stop`) ended it",
    "interrupted": "Ctrl-C (or the task was cancelled)",
    "connection_lost": "SSH did not come back within the reconnect budget, or the "
    "machine's watchdog ended the command while the runner was away",
    "order_lost": "the order ended or was outbid and was not (or could not be) recovered",
    "declined": "confirm did not say yes: nothing was rented",
    "error": "the job could not run: no server, renting failed, a verification that "
    "cannot be settled, a runner error",
}

#: The job's state in its record after each ending.
ENDING_STATES: Final[Mapping[str, str]] = {
    "succeeded": "done",
    "failed": "failed",
    "error": "failed",
    "max_spend": "stopped",
    "max_time": "stopped",
    "idle": "stopped",
    "stopped": "stopped",
    "interrupted": "stopped",
    "connection_lost": "lost",
    "order_lost": "lost",
    "declined": "stopped",
}

#: The job's exit code for endings without the command's own (``succeeded`` is 0 and
#: ``failed`` the command's code).
EXIT_CODES: Final[Mapping[str, int]] = {
    "max_spend": 124,
    "max_time": 124,
    "idle": 124,
    "stopped": 143,
    "interrupted": 130,
    "connection_lost": 255,
    "order_lost": 75,
    "declined": 1,
    "error": 1,
}


@dataclass(frozen=True)
class RunOptions:
    """How the runner runs a job, beyond the ``JobSpec`` (all waits bounded).

    - ``clock``: the runner's clock for polling, sleeping and budgets (default the real
      one); limits and idle are measured on the API server's clock (``server_time``).
    - ``check_interval``: seconds between order checks (state, spend, age);
      ``poll``: seconds between reads of the remote logs while streaming.
    - ``heartbeat_timeout``: the machine's watchdog ends the command when the runner's
      heartbeat is older than this (None: no watchdog); heartbeats every
      ``heartbeat_timeout / 4`` (at most 60 s). Keep it above ``reconnect_budget``.
    - ``reconnect_budget``: seconds a dropped connection may take to come back.
    - ``connect_timeout``: one SSH login; ``wait_timeout``: provisioning of an order.
    - ``tries``: candidates tried when servers are taken meanwhile; ``verify_tries``:
      orders made when machines fail verification; ``max_recoveries``: re-rentals after
      lost orders (with ``recover``).
    - ``checkpoint_interval``: with ``recover`` and outputs, seconds between copies of
      the outputs taken during the run (carried to the next machine); None: never.
    - ``download_timeout``, ``stop_grace`` (TERM to KILL on the machine).
    - ``verify_options``, ``floors`` (quality floors of the choice, default the
      library's), ``ssh_key`` (public key file sent with a new order, default the
      renter's own key; a random password is always sent too and remembered),
      ``credentials`` (how to log in to an existing ``order_id``; default what
      ``clore.rentals.credentials_for`` finds).
    - ``stop_poll``: seconds between looks for a stop request; ``idle_interval``:
      between GPU readings (default a sixth of the idle time, 0.5 to 60 s).
    """

    clock: Clock | None = None
    check_interval: float = 30.0
    poll: float = 0.2
    heartbeat_timeout: float | None = 600.0
    reconnect_budget: float = 300.0
    connect_timeout: float = 20.0
    wait_timeout: float = 600.0
    tries: int = 5
    verify_tries: int = 3
    max_recoveries: int = 3
    checkpoint_interval: float | None = 600.0
    download_timeout: float = 900.0
    stop_grace: float = 5.0
    stop_poll: float = 1.0
    idle_interval: float | None = None
    verify_options: VerifyOptions | None = None
    floors: Floors | None = None
    ssh_key: Path | None = None
    credentials: Credentials | None = None

    def __post_init__(self) -> None:
        for name in (
            "check_interval",
            "poll",
            "reconnect_budget",
            "connect_timeout",
            "wait_timeout",
            "download_timeout",
            "stop_poll",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be seconds > 0, got {value!r}")
        for name in ("heartbeat_timeout", "checkpoint_interval", "idle_interval"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value <= 0):
                raise ValueError(f"{name} must be seconds > 0 or None, got {value!r}")
        if self.stop_grace < 0:
            raise ValueError("stop_grace must be seconds >= 0")
        for name in ("tries", "verify_tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more")
        if self.max_recoveries < 0:
            raise ValueError("max_recoveries must be 0 or more")

    @property
    def heartbeat_interval(self) -> float | None:
        """Seconds between heartbeats (None without a watchdog)."""
        if self.heartbeat_timeout is None:
            return None
        return max(0.2, min(60.0, self.heartbeat_timeout / 4.0))


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    ``exit_code``: the job's (``succeeded`` 0, ``failed`` the command's, else
    ``EXIT_CODES[reason]``); ``command_exit_code``: the command's own, None when it did
    not finish by itself. ``reason``: one of ``ENDINGS``; ``message``: why, in words.
    ``order_id``: the last order (``orders``: all, in turn); ``cancelled``: no order of the
    job is left running (False with ``kept``, or when a cancel failed: see the events).
    ``seconds``: wall time on the runner's clock. ``cost`` = ``spend`` + ``fees`` in
    ``currency`` over every order (None when no order was made or read). ``outputs``:
    the local files brought back. ``events``: everything that happened, in order.
    """

    job_id: str
    name: str
    exit_code: int
    reason: str
    message: str
    command_exit_code: int | None
    order_id: int | None
    orders: tuple[int, ...]
    cancelled: bool
    kept: bool
    seconds: float
    cost: float | None
    spend: float | None
    fees: float | None
    currency: str | None
    outputs: tuple[Path, ...]
    events: tuple[JobEvent, ...]

    @property
    def succeeded(self) -> bool:
        """True when the command exited with 0."""
        return self.reason == "succeeded"

    @property
    def summary(self) -> str:
        """The one-line summary (``summary_line``)."""
        return summary_line(self)

    @classmethod
    def from_record(cls, record: JobRecord, events: tuple[JobEvent, ...] = ()) -> JobResult:
        """The result a finished record describes (``resume_job`` of an ended job)."""
        reason = record.reason or "error"
        return cls(
            job_id=record.id,
            name=record.name,
            exit_code=exit_code_for(reason, record.command_exit_code)
            if record.exit_code is None
            else record.exit_code,
            reason=reason,
            message=record.summary or reason,
            command_exit_code=record.command_exit_code,
            order_id=record.order_id,
            orders=tuple(record.orders),
            cancelled=record.cancelled,
            kept=record.kept,
            seconds=max(0.0, (record.ended_at or record.updated_at) - record.created_at),
            cost=record.cost,
            spend=None if record.cost is None else record.spent,
            fees=record.fees,
            currency=record.currency,
            outputs=tuple(Path(p) for p in record.outputs),
            events=events,
        )


def exit_code_for(reason: str, command_exit_code: int | None) -> int:
    """The job's exit code for ``reason`` (see ``JobResult.exit_code``)."""
    if reason == "succeeded":
        return 0
    if reason == "failed":
        return command_exit_code if command_exit_code not in (None, 0) else 1
    return EXIT_CODES.get(reason, 1)


def _money(value: float | None, currency: str | None, *, labelled: bool = True) -> str:
    """``value`` with ``currency``'s digits (docs/cli.md, *Output rules*), its unit only
    when ``labelled``."""
    from clore.market.pricing import label
    from clore.market.units import amount

    unit = f" {label(currency)}" if labelled and currency else ""
    return f"{amount(value, currency)}{unit}"


_WHY: Final[Mapping[str, str]] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "max_spend": "stopped at max_spend",
    "max_time": "stopped at max_time",
    "idle": "stopped: idle",
    "stopped": "stopped on request",
    "interrupted": "interrupted",
    "connection_lost": "lost its connection",
    "order_lost": "lost its order",
    "declined": "was not confirmed",
    "error": "could not run",
}


def summary_line(result: JobResult | JobRecord) -> str:
    """``job a1b2c3d4 succeeded (exit 0) in 3 min; cost 0.00001230 BTC (spend 0.00001120
    + fees 0.00000110); order 12 cancelled`` — how long, what it cost, why it ended."""
    if isinstance(result, JobRecord):
        result = JobResult.from_record(result)
    why = _WHY.get(result.reason, result.reason)
    from clore.market.units import duration

    head = f"job {result.job_id} {why} (exit {result.exit_code}) in {duration(result.seconds)}"
    if result.cost is None:
        money = "cost unknown" if result.orders else "nothing rented, no cost"
    else:
        money = (
            f"cost {_money(result.cost, result.currency)} (spend "
            f"{_money(result.spend, result.currency, labelled=False)} + fees "
            f"{_money(result.fees, result.currency, labelled=False)})"
        )
    if result.order_id is None:
        tail = ""
    elif result.kept:
        tail = f"; order {result.order_id} kept running (`clore cancel {result.order_id}`)"
    elif result.cancelled:
        tail = f"; order {result.order_id} cancelled"
    else:
        tail = f"; order {result.order_id} may still be running (`clore cancel {result.order_id}`)"
    return f"{head}; {money}{tail}"
