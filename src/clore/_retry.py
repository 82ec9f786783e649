"""Retry decisions: should a failed attempt be repeated, and after how long. Pure.

Reads are repeated on every transient outcome. Writes are repeated only when the server
certainly did not act on them: it refused them for the rate limit, or the connection
was never made. A write whose outcome is unknown (timeout, dropped connection, 5xx) is
never repeated here; ``create_order`` reconciles through ``my_orders`` instead.

Backoff is ``0.5 * 2**(attempt-1)`` seconds capped at 8, with equal jitter (half fixed,
half random) so that several clients spread out; a server's ``Retry-After`` is a floor,
itself capped at ``MAX_RETRY_AFTER``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "BASE_DELAY",
    "MAX_DELAY",
    "MAX_RETRY_AFTER",
    "Decision",
    "Outcome",
    "backoff",
    "decide",
]

BASE_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0


class Outcome(enum.Enum):
    """How an attempt failed."""

    DATABASE = "database"  # code 1: the API asks to retry later
    RATE_LIMITED = "rate_limited"  # code 5 or HTTP 429: refused, nothing done
    SERVER_ERROR = "server_error"  # HTTP 5xx without an API code: outcome unknown
    NOT_CONNECTED = "not_connected"  # the connection was never made: nothing sent
    TIMEOUT = "timeout"  # sent, no answer in time: outcome unknown
    DROPPED = "dropped"  # the connection broke after sending: outcome unknown
    FATAL = "fatal"  # anything else: retrying cannot help


# Outcomes after which the server has certainly not acted on the request.
_NOTHING_DONE: Final = frozenset({Outcome.RATE_LIMITED, Outcome.NOT_CONNECTED})
_TRANSIENT: Final = frozenset(
    {
        Outcome.DATABASE,
        Outcome.RATE_LIMITED,
        Outcome.SERVER_ERROR,
        Outcome.NOT_CONNECTED,
        Outcome.TIMEOUT,
        Outcome.DROPPED,
    }
)


class Rng(Protocol):
    """The part of ``random.Random`` that jitter needs."""

    def uniform(self, a: float, b: float) -> float: ...


_RANDOM: Final[Rng] = random.Random()


@dataclass(frozen=True)
class Decision:
    """Retry or not, and the pause before the retry in seconds."""

    retry: bool
    delay: float = 0.0


def backoff(attempt: int, rng: Rng | None = None) -> float:
    """The pause after failed attempt number ``attempt`` (1-based), with equal jitter."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2.0 ** min(max(0, attempt - 1), 32))
    jitter = float((rng or _RANDOM).uniform(0.0, ceiling / 2))
    return ceiling / 2 + jitter


def is_uncertain(outcome: Outcome) -> bool:
    """True when the server may have acted on the request although no success came back."""
    return outcome in _TRANSIENT and outcome not in _NOTHING_DONE


def decide(
    attempt: int,
    outcome: Outcome,
    *,
    idempotent: bool,
    max_retries: int,
    retry_after: float | None = None,
    rng: Rng | None = None,
) -> Decision:
    """Whether failed attempt number ``attempt`` (1-based) is retried, and after how long."""
    if attempt > max_retries or outcome not in _TRANSIENT:
        return Decision(False)
    if not idempotent and outcome not in _NOTHING_DONE:
        return Decision(False)
    pause = backoff(attempt, rng)
    if retry_after is not None and retry_after > 0:
        pause = max(pause, min(retry_after, MAX_RETRY_AFTER))
    return Decision(True, pause)
