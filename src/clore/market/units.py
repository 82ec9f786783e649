"""The text forms of amounts and durations, one rule each (docs/cli.md, *Output rules*),
for every face and every loop's messages.

* **Amounts** (prices, balances, spend, fees, bids) have a fixed number of significant
  digits per currency (``SIGNIFICANT``): 4 for BTC (at most 8 decimals, a satoshi), 4 for
  CLORE, 3 for USD, 4 for any other or an unnamed one; the integer part is never cut
  (``1234567``) and there is no exponent: ``0.00005800``, ``0.00000029``, ``12.35``,
  ``0.0975``, ``146``.
* **Durations** are human: ``45 s`` (up to 90 s), ``12 min`` (under an hour),
  ``3 h 20 min`` (under a day), ``1 d 22 h``; JSON carries the exact seconds instead.

Pure: no I/O, no click, rich nor msgspec (``clore --help`` stays fast).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_DECIMALS", "SIGNIFICANT", "amount", "duration"]

#: Significant digits of an amount, per currency (any other currency, or none named: 4).
SIGNIFICANT: Final[Mapping[str, int]] = {
    "bitcoin": 4,
    "CLORE-Blockchain": 4,
    "USD-Blockchain": 3,
}
#: The most decimals an amount shows: a satoshi for BTC; no limit for the others.
MAX_DECIMALS: Final[Mapping[str, int]] = {"bitcoin": 8}


def amount(value: float | None, currency: str | None = None) -> str:
    """``value`` with the currency's significant digits, no exponent; ``—`` when unknown.

    ``amount(0.000058, "bitcoin") == "0.00005800"``, ``amount(1234567.8,
    "CLORE-Blockchain") == "1234568"``, ``amount(0.0975, "USD-Blockchain") == "0.0975"``.
    """
    if value is None:
        return "—"
    number = float(value)
    if not math.isfinite(number):
        return "—"
    if number == 0:
        return "0"
    digits = SIGNIFICANT.get(currency or "", 4)
    # Rounded to the digits first, so a carry (9.9996 -> 10.00) sets the magnitude.
    rounded = float(f"{number:.{digits - 1}e}")
    magnitude = math.floor(math.log10(abs(rounded)))
    decimals = max(0, digits - 1 - magnitude)
    cap = MAX_DECIMALS.get(currency or "")
    if cap is not None:
        decimals = min(decimals, cap)
    text = f"{number:.{decimals}f}"
    return "0" if float(text) == 0 else text


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``, ``1 d 22 h`` (rounded to the last unit
    shown); ``—`` when unknown. Never fractional, never seconds past 90."""
    if seconds is None or not math.isfinite(float(seconds)):
        return "—"
    total = max(0.0, float(seconds))
    if round(total) <= 90:
        return f"{round(total)} s"
    minutes = round(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(round(total / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
