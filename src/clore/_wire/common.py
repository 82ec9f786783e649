"""Shared pieces of the wire schema: number and GPU-string parsing, USD amounts.

The currency keys, aliases and ``normalize_currency`` are ``clore._facts``'s (re-exported).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from clore._facts import CURRENCIES, CURRENCY_ALIASES, normalize_currency

__all__ = [
    "CURRENCIES",
    "CURRENCY_ALIASES",
    "Number",
    "ascii_int",
    "flatten_strings",
    "normalize_currency",
    "parse_gpu",
    "usd_amount",
]


Number = int | float

_GPU_RE: Final = re.compile(r"^\s*([0-9]{1,6})\s*[xX×]\s*(.+?)\s*$")
_ASCII_INT: Final = re.compile(r"\s*([0-9]{1,18})\s*")


def ascii_int(text: str) -> int | None:
    """The whole number ``text`` spells in ASCII digits (surrounding spaces allowed), else None.

    ``str.isdigit`` is not enough: it accepts "²" and other digits ``int`` refuses, and
    ``int`` refuses strings of more than 4,300 digits.
    """
    match = _ASCII_INT.fullmatch(text)
    return int(match.group(1)) if match else None


def parse_gpu(text: str) -> tuple[int, str]:
    """Split a ``specs.gpu`` string like ``"8x NVIDIA GeForce RTX 3090"`` into (8, model).

    A string without a count prefix is one GPU; an empty string is zero GPUs.
    """
    match = _GPU_RE.match(text)
    if match:
        return int(match.group(1)), match.group(2)
    model = text.strip()
    return (1, model) if model else (0, "")


def flatten_strings(value: Any) -> list[str]:
    """Flatten arbitrarily nested lists of strings, stripping stray whitespace."""
    out: list[str] = []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped:
            out.append(stripped)
    elif isinstance(value, list | tuple):
        for item in value:
            out.extend(flatten_strings(item))
    return out


def usd_amount(
    amount: float | None, currency: str, rates: Mapping[str, float] | None
) -> float | None:
    """``amount`` of ``currency`` in USD at ``rates`` (None when it cannot be converted)."""
    if amount is None:
        return None
    if currency == "USD-Blockchain":
        return float(amount)
    if rates is None or currency not in rates:
        return None
    return float(amount) * float(rates[currency])
