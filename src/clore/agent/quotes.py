"""Quotes: a rent (or a job) needs a token that a quote issued for exactly its arguments.

``QuoteBook.issue(kind, arguments, price)`` returns a ``Quote`` whose ``token`` is random
(``secrets.token_urlsafe``), lives ``ttl`` seconds and is bound to a hash of the
normalised arguments and the quoted price. ``redeem(token, kind, arguments)`` is the only
way to use one, and uses it up whatever the outcome (single use): it raises
``QuoteRefused`` — ``missing``, ``unknown``, ``expired``, ``used``, ``declined``,
``arguments_changed`` — and otherwise returns the quote, whose price the caller then
compares with the current one (``price_moved``). ``decline(token)`` burns a token the
person refused. Tokens live in this process's memory only: a restarted server knows none.
Thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["Quote", "QuoteBook", "QuoteRefused", "binding", "price_moved"]

Reason = Literal["missing", "unknown", "expired", "used", "declined", "arguments_changed"]
_FORGET_AFTER: Final = 3600.0


def binding(kind: str, arguments: Mapping[str, Any], price: float) -> str:
    """The hash a quote binds: the kind, the normalised arguments (canonical JSON) and the
    price (rounded to the API's 8 decimals)."""
    blob = json.dumps(
        {"kind": kind, "arguments": arguments, "price": round(float(price), 8)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def price_moved(quoted: float, current: float, tolerance: float) -> bool:
    """True when ``current`` differs from ``quoted`` by more than ``tolerance`` (a fraction
    of the quoted price), either way."""
    if quoted <= 0:
        return current != quoted
    return abs(current - quoted) > tolerance * quoted * (1 + 1e-9)


@dataclass
class Quote:
    """An issued quote: its token, what it is for, the bound hash and price, its times,
    and the figures shown with it (``details``)."""

    token: str
    kind: str
    digest: str
    price: float
    issued_at: float
    expires_at: float
    details: dict[str, Any] = field(default_factory=dict)
    state: Literal["open", "used", "declined"] = "open"


class QuoteRefused(Exception):
    """A token that cannot be used: ``reason`` and a message saying what to do."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


class QuoteBook:
    """The quotes of one server process (times from ``clock``)."""

    def __init__(self, clock: Callable[[], float], ttl: float) -> None:
        self.clock = clock
        self.ttl = ttl
        self._quotes: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        kind: str,
        arguments: Mapping[str, Any],
        price: float,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> Quote:
        """A new open quote for ``arguments`` at ``price``."""
        now = self.clock()
        quote = Quote(
            token=secrets.token_urlsafe(18),
            kind=kind,
            digest=binding(kind, arguments, price),
            price=float(price),
            issued_at=now,
            expires_at=now + self.ttl,
            details=dict(details or {}),
        )
        with self._lock:
            self._forget_old(now)
            self._quotes[quote.token] = quote
        return quote

    def redeem(self, token: str | None, kind: str, arguments: Mapping[str, Any]) -> Quote:
        """The open quote ``token`` names for exactly ``arguments``, used up now;
        ``QuoteRefused`` otherwise (and the token is used up too)."""
        what = "quote_rental" if kind == "rent" else f"the {kind} quote"
        if not token:
            raise QuoteRefused(
                "missing", f"a quote token is required: call {what} first with these arguments"
            )
        now = self.clock()
        with self._lock:
            quote = self._quotes.get(token)
            if quote is None or quote.kind != kind:
                raise QuoteRefused(
                    "unknown",
                    f"unknown quote token: call {what} again (tokens do not survive "
                    "a restart of the server)",
                )
            if quote.state == "used":
                raise QuoteRefused("used", f"this quote was already used: call {what} again")
            if quote.state == "declined":
                raise QuoteRefused(
                    "declined", "the person declined this quote; do not retry it without asking"
                )
            quote.state = "used"
        if now > quote.expires_at:
            late = now - quote.expires_at
            raise QuoteRefused(
                "expired",
                f"the quote expired {late:.0f} s ago (quotes live {self.ttl:.0f} s): "
                f"call {what} again",
            )
        if binding(kind, arguments, quote.price) != quote.digest:
            raise QuoteRefused(
                "arguments_changed",
                "the arguments differ from the quoted ones: pass exactly the arguments of "
                f"the quote, or call {what} again for the new ones",
            )
        return quote

    def decline(self, token: str) -> None:
        """Burn ``token``: the person declined it."""
        with self._lock:
            quote = self._quotes.get(token)
            if quote is not None:
                quote.state = "declined"

    def get(self, token: str) -> Quote | None:
        """The quote ``token`` names (any state), if this process issued it."""
        with self._lock:
            return self._quotes.get(token)

    def _forget_old(self, now: float) -> None:
        old = [t for t, q in self._quotes.items() if now - q.expires_at > _FORGET_AFTER]
        for token in old:
            del self._quotes[token]
