"""Field checks shared by the backend's entry points; each failure is code 2."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

from clore.sandbox.backend.errors import invalid_input
from clore.sandbox.backend.rules import CURRENCIES, MAX_PRICE

__all__ = [
    "check_currency",
    "check_env",
    "check_id",
    "check_ports",
    "check_price",
    "check_text",
    "require",
]

MAX_ID: Final = 2**53
_ALNUM: Final = re.compile(r"[A-Za-z0-9]+")
# str.isdigit() accepts "²" and other digits int() refuses; ids and ports are ASCII.
# Matched with fullmatch: "$" would also match before a trailing newline.
_DIGITS: Final = re.compile(r"[0-9]{1,18}")


def require(condition: bool, detail: str) -> None:
    """Raise code 2 with ``detail`` unless ``condition`` holds."""
    if not condition:
        raise invalid_input(detail)


def check_id(value: int, name: str) -> int:
    """A positive integer id that fits in a database integer."""
    require(0 < value <= MAX_ID, f"{name}: out of range")
    return value


def check_price(value: float, name: str) -> float:
    """A finite price above zero."""
    number = float(value)
    require(math.isfinite(number) and number > 0, f"{name}: must be a positive number")
    require(number < MAX_PRICE, f"{name}: too large")
    return number


def check_currency(value: str, name: str = "currency") -> str:
    """One of the API's currency keys, spelled exactly."""
    require(value in CURRENCIES, f"{name}: unknown currency {value!r}")
    return value


def check_text(
    value: str | None, name: str, *, max_len: int, alnum: bool = False, empty: bool = True
) -> str | None:
    """An optional string no longer than ``max_len`` (alphanumeric when ``alnum``)."""
    if value is None:
        return None
    require(len(value) <= max_len, f"{name}: longer than {max_len} characters")
    require(empty or bool(value), f"{name}: empty")
    if alnum and value:
        require(bool(_ALNUM.fullmatch(value)), f"{name}: must be alphanumeric")
    return value


def check_ports(ports: Mapping[str, str] | None) -> dict[str, str]:
    """``{"22": "tcp", "8888": "http"}``: port numbers to tcp/http, at most one http."""
    if ports is None:
        return {}
    require(len(ports) <= 32, "ports: more than 32 ports")
    out: dict[str, str] = {}
    for key, proto in ports.items():
        require(
            _DIGITS.fullmatch(key) is not None and 0 < int(key) < 65536, f"ports: bad port {key!r}"
        )
        require(proto in ("tcp", "http"), f"ports: {key} must be 'tcp' or 'http'")
        out[str(int(key))] = proto
    require(list(out.values()).count("http") <= 1, "ports: at most one http port")
    return out


def check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Environment variables: at most 256, names up to 256 and values up to 16384 chars."""
    if env is None:
        return {}
    require(len(env) <= 256, "env: more than 256 variables")
    for key, value in env.items():
        require(0 < len(key) <= 256, "env: bad variable name")
        require(len(value) <= 16384, f"env: value of {key} too long")
    return dict(env)
