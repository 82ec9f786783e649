"""Field checks shared by the backend's entry points; each failure is code 2.

The limits are ``clore._facts``'s. A request Struct carries them as ``msgspec.Meta``
constraints, which decoding a body already enforced; ``check_request`` enforces them for
a Struct built any other way, so that every entry point refuses the same requests.
What a constraint cannot say (a whole-string match, a port's range, one ``http`` port, an
environment value's length, named in the message) is checked here by hand.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, TypeVar

import msgspec

from clore._facts import (
    CURRENCIES,
    MAX_ENV_NAME,
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_ID,
    MAX_PORTS,
    MAX_PRICE,
    PORT_PATTERN,
    PROTOCOLS,
    SSH_PASSWORD_PATTERN,
)
from clore.sandbox.backend.errors import invalid_input

__all__ = [
    "check_currency",
    "check_env",
    "check_id",
    "check_ports",
    "check_price",
    "check_request",
    "check_ssh_password",
    "require",
]

R = TypeVar("R", bound=msgspec.Struct)

# Python's "$" also matches before a final newline: every pattern is matched whole.
_PORT: Final = re.compile(PORT_PATTERN)
_SSH_PASSWORD: Final = re.compile(SSH_PASSWORD_PATTERN)


def require(condition: bool, detail: str) -> None:
    """Raise code 2 with ``detail`` unless ``condition`` holds."""
    if not condition:
        raise invalid_input(detail)


def check_request(request: R, what: str) -> R:
    """``request`` when it keeps its Struct's constraints (the API's field limits)."""
    try:
        return msgspec.convert(msgspec.to_builtins(request), type(request))
    except msgspec.ValidationError as exc:
        raise invalid_input(f"{what}: {exc}") from None


def check_id(value: int, name: str) -> int:
    """A positive integer id that fits the wire's 64 bits."""
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


def check_ssh_password(value: str | None) -> str | None:
    """Letters and digits only, the whole string (``"abc\\n"`` is refused)."""
    if value is not None:
        require(_SSH_PASSWORD.fullmatch(value) is not None, "ssh_password: must be alphanumeric")
    return value


def check_ports(ports: Mapping[str, str] | None) -> dict[str, str]:
    """``{"22": "tcp", "8888": "http"}``: port numbers to tcp/http, at most one http."""
    if ports is None:
        return {}
    require(len(ports) <= MAX_PORTS, f"ports: more than {MAX_PORTS} ports")
    out: dict[str, str] = {}
    for key, proto in ports.items():
        require(
            _PORT.fullmatch(key) is not None and 0 < int(key) < 65536, f"ports: bad port {key!r}"
        )
        require(proto in PROTOCOLS, f"ports: {key} must be 'tcp' or 'http'")
        out[str(int(key))] = proto
    require(list(out.values()).count("http") <= 1, "ports: at most one http port")
    return out


def check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Environment variables: at most 256, names of 1 to 256 characters, values up to
    16,384."""
    if env is None:
        return {}
    require(len(env) <= MAX_ENV_VARS, f"env: more than {MAX_ENV_VARS} variables")
    for key, value in env.items():
        require(0 < len(key) <= MAX_ENV_NAME, "env: bad variable name")
        require(len(value) <= MAX_ENV_VALUE, f"env: value of {key} too long")
    return dict(env)
