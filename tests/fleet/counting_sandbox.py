"""``python -m clore.sandbox`` with every code-5 answer of its rate limiter logged.

Usage: python counting_sandbox.py serve [the options of python -m clore.sandbox serve].
The sandbox is unchanged except that ``RateLimiter.allow`` writes one line with
``fleet_support.REFUSAL`` to stderr each time it refuses a request, so a test counts the
code-5 answers the server gave (its own count, not the clients'), and one with ``CREATE``
for each ``create_order`` it lets through (the order is committed right after).
"""

from __future__ import annotations

import sys

from clore.sandbox import __main__ as sandbox_main
from clore.sandbox.ratelimit import RateLimiter

REFUSAL = "clore-fleet: rate-limited"
CREATE = "clore-fleet: create_order accepted"

_allow = RateLimiter.allow


def _counting_allow(self: RateLimiter, key: str, endpoint: str, now: float) -> bool:
    allowed = _allow(self, key, endpoint, now)
    if not allowed:
        sys.stderr.write(f"{REFUSAL} {endpoint} at {now:.6f}\n")
        sys.stderr.flush()
    elif endpoint == "create_order":
        sys.stderr.write(f"{CREATE} at {now:.6f}\n")
        sys.stderr.flush()
    return allowed


RateLimiter.allow = _counting_allow  # type: ignore[method-assign]

if __name__ == "__main__":
    sandbox_main.main(sys.argv[1:])
