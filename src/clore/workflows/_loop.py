"""What every polling loop shares: which errors to ride out, backoff, the poll schedule,
and ``poll_loop``, the loop itself."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Final, Literal, TypeVar

from clore._clock import Clock
from clore._errors import (
    DatabaseError,
    RateLimitError,
    TransportError,
    UnexpectedResponseError,
)
from clore._wire import Order, RenterFees
from clore.market.units import duration
from clore.workflows._protocols import SupportsRenterFees
from clore.workflows.events import Event, Source, make_event

__all__ = [
    "RETRYABLE",
    "UNCERTAIN",
    "Backoff",
    "Schedule",
    "as_event",
    "error_event",
    "poll_loop",
    "renter_fees",
]

T = TypeVar("T")

#: Errors a poll survives: the API or the network will likely answer at a later poll
#: (the SDK has already retried reads). Anything else (authentication, bad parameters)
#: ends the loop.
RETRYABLE: Final = (DatabaseError, RateLimitError, TransportError, UnexpectedResponseError)

#: Failures of a write after which it may have taken effect: it was sent and no answer
#: came back (a timeout, a dropped connection) or the answer was a 5xx without a code.
#: Only ``my_orders`` can tell what happened; a code 1 or 5 answer is a definite refusal.
UNCERTAIN: Final = (TransportError, UnexpectedResponseError)


class Backoff:
    """Delay after ``failures`` failed polls in a row: interval × 2ⁿ⁻¹, capped."""

    def __init__(self, interval: float, *, cap: float | None = None) -> None:
        self.interval = interval
        self.cap = max(interval, 60.0) if cap is None else cap
        self.failures = 0

    def failed(self, error: BaseException | None = None) -> float:
        """Record a failure and return how long to wait before polling again."""
        self.failures += 1
        delay = float(min(self.interval * 2.0 ** (self.failures - 1), self.cap))
        hint = getattr(error, "retry_after", None)
        if isinstance(hint, int | float) and float(hint) > delay:
            delay = float(hint)
        return delay

    def succeeded(self) -> None:
        self.failures = 0


class Schedule:
    """Polls start every ``interval`` seconds from the first, whatever a poll's own duration.

    Anchoring on the start time (not "interval after the last poll ended") keeps the reaction
    time within one interval even when a poll spends seconds in pacing waits.
    """

    def __init__(self, clock: Clock, interval: float) -> None:
        self.clock = clock
        self.interval = interval
        self.next_at = clock.time()

    def started(self) -> None:
        """Mark a poll as starting now; the next is due one interval later (never in the past)."""
        now = self.clock.time()
        self.next_at = max(self.next_at + self.interval, now)
        if self.next_at - now > self.interval:
            self.next_at = now + self.interval

    def delay(self, seconds: float) -> None:
        """Push the next poll to at least ``seconds`` from now (after an error)."""
        self.next_at = max(self.next_at, self.clock.time() + seconds)

    def sooner(self, at: float) -> None:
        """Bring the next poll forward to ``at`` if that is earlier."""
        self.next_at = min(self.next_at, max(at, self.clock.time()))

    def wait(self, until: float | None = None) -> None:
        """Sleep (on the injected clock) until the next poll is due, or ``until`` if sooner."""
        target = self.next_at if until is None else min(self.next_at, until)
        remaining = target - self.clock.time()
        if remaining > 0:
            self.clock.sleep(remaining)


def error_event(
    source: Source,
    at: float,
    error: BaseException,
    retry_in: float | None,
    *,
    order: Order | None = None,
    context: str = "",
    consequence: str = "",
) -> Event:
    """An ``error`` event for a failed call; ``retry_in`` None means the loop stops.

    ``context`` prefixes the message (what was being done), ``consequence`` replaces the
    retry note when the loop stops (what that leaves behind); ``order`` is the order the
    call was about.
    """
    what = f"{context}{type(error).__name__}: {error}"
    if retry_in is not None:
        tail = f"; retrying in {duration(retry_in)}"
    else:
        tail = f"; {consequence}" if consequence else ""
    return make_event(
        source,
        "error",
        at,
        what + tail,
        order=order,
        error=str(error),
        type=type(error).__name__,
        retry_in=retry_in,
        fatal=retry_in is None,
    )


def as_event(event: Event) -> Event:
    """``poll_loop``'s ``wrap`` for loops that yield events one by one."""
    return event


def poll_loop(
    clock: Clock,
    interval: float,
    source: Source,
    poll: Callable[[Schedule], Generator[T, None, bool]],
    *,
    wrap: Callable[[Event], T],
    until: float | None = None,
) -> Generator[T, None, Literal["until", "done"]]:
    """Run ``poll`` every ``interval`` seconds until it returns True ("done") or ``until``.

    ``poll`` yields the loop's items (events; ``wrap`` turns an ``error`` event into one)
    and gets the schedule, to poll sooner or later. A failure the next poll may not see
    again (``RETRYABLE``) becomes an ``error`` event and the loop backs off; anything else
    ends it.
    """
    schedule = Schedule(clock, interval)
    backoff = Backoff(interval)
    while True:
        schedule.wait(until)
        if until is not None and clock.time() >= until:
            return "until"
        schedule.started()
        try:
            finished = yield from poll(schedule)
        except RETRYABLE as exc:
            delay = backoff.failed(exc)
            schedule.delay(delay)
            yield wrap(error_event(source, clock.time(), exc, delay))
            continue
        backoff.succeeded()
        if finished:
            return "done"


def renter_fees(client: SupportsRenterFees) -> RenterFees | None:
    """The renter fees (for burn rates), or None when they cannot be read right now."""
    try:
        return client.renter_fees()
    except RETRYABLE:
        return None
