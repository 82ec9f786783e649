"""Shared pieces of the wire schema: currency keys, number and GPU-string parsing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

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


#: The three currency keys the API knows, in the order the API lists them.
CURRENCIES: Final = ("bitcoin", "CLORE-Blockchain", "USD-Blockchain")

#: Short names people type, mapped to the API's currency keys (case-insensitive lookup).
CURRENCY_ALIASES: Final[Mapping[str, str]] = {
    "btc": "bitcoin",
    "bitcoin": "bitcoin",
    "clore": "CLORE-Blockchain",
    "clore-blockchain": "CLORE-Blockchain",
    "usd": "USD-Blockchain",
    "usd-blockchain": "USD-Blockchain",
}

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


def normalize_currency(name: str) -> str:
    """Return the API's currency key for ``name`` (``btc``, ``clore``, ``usd`` or a full key).

    Raises ``ValueError`` naming the known currencies when ``name`` is not one of them.
    """
    key = CURRENCY_ALIASES.get(name.strip().lower())
    if key is None:
        known = ", ".join(CURRENCIES)
        raise ValueError(f"unknown currency {name!r}: expected one of {known} (or btc, clore, usd)")
    return key


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
