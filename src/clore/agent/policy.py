"""The person's guards for the agent server: ``AgentPolicy``, from a file and the
environment, never from a tool's arguments.

**Where.** ``config_dir()/agent.toml`` (``CLORE_AGENT_CONFIG`` names another file), then
``CLORE_AGENT_*`` environment variables, which win. A file of its own rather than a table
in ``config.toml``: ``clore config`` rewrites that file from the profiles it knows, and a
guard must not vanish when a key is set. Top-level keys apply to every profile; a
``[profiles.NAME]`` table overrides them for the profile of that name (the one
``CLORE_PROFILE`` or ``config.toml``'s ``active`` names)::

    max_price_per_hour_usd = 1.5      # listed price per hour, in USD
    max_spend_per_day_usd = 20        # committed cost of the orders made in 24 h
    max_spend_per_order_usd = 6       # price x max time + renter fee + creation fee
    max_live_orders = 2               # the agent's own orders still running
    allowed_gpus = ["RTX 4090", "A100 80GB"]   # exact models, as the gpu= filter
    read_only = false                 # true: no tool that rents or cancels exists
    order_max_time = "4h"             # every order gets one (seconds or 90m, 4h, 1d)
    cancel_foreign = false            # may cancel orders the agent did not create
    quote_ttl = 120                   # seconds a quote's token lives
    price_tolerance = 0.02            # a quoted price may move 2 % before rent refuses
    currency = "btc"                  # the default currency of the tools (btc|clore|usd)

    [profiles.sandbox]
    max_spend_per_day_usd = 100

Environment: ``CLORE_AGENT_MAX_PRICE_PER_HOUR_USD``, ``..._MAX_SPEND_PER_DAY_USD``,
``..._MAX_SPEND_PER_ORDER_USD``, ``..._MAX_LIVE_ORDERS``, ``..._ALLOWED_GPUS`` (comma
separated), ``..._READ_ONLY``, ``..._ORDER_MAX_TIME``, ``..._CANCEL_FOREIGN``,
``..._QUOTE_TTL``, ``..._PRICE_TOLERANCE``, ``..._CURRENCY``. ``none`` (or an empty
value) lifts a cap the file set. An unknown key, a bad value or an unknown GPU model is a
``ConfigError`` of one line naming where it came from: a mistyped guard never silently
means "no guard".
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from clore._errors import ConfigError
from clore._paths import config_dir

__all__ = [
    "DEFAULT_ORDER_MAX_TIME",
    "ENV_PREFIX",
    "POLICY_FILE",
    "AgentPolicy",
    "policy_path",
]

POLICY_FILE: Final = "agent.toml"
ENV_PREFIX: Final = "CLORE_AGENT_"
#: Seconds: the running time every order the agent makes is limited to by default.
DEFAULT_ORDER_MAX_TIME: Final = 4 * 3600.0
_NONE: Final = frozenset({"", "none", "null", "off", "unlimited"})
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def policy_path(env: Mapping[str, str] | None = None) -> Path:
    """The policy file: ``CLORE_AGENT_CONFIG``, else ``config_dir()/agent.toml``."""
    source = os.environ if env is None else env
    named = (source.get(ENV_PREFIX + "CONFIG") or "").strip()
    return Path(named).expanduser() if named else config_dir() / POLICY_FILE


@dataclass(frozen=True)
class AgentPolicy:
    """The guards (see the module docstring). Amounts are USD, times seconds; None is
    no cap."""

    max_price_per_hour_usd: float | None = None
    max_spend_per_day_usd: float | None = None
    max_spend_per_order_usd: float | None = None
    max_live_orders: int | None = None
    allowed_gpus: tuple[str, ...] | None = None
    read_only: bool = False
    order_max_time: float = DEFAULT_ORDER_MAX_TIME
    cancel_foreign: bool = False
    quote_ttl: float = 120.0
    price_tolerance: float = 0.02
    currency: str = "bitcoin"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            checked = _CHECKS[item.name](value, item.name) if item.name in _CHECKS else value
            object.__setattr__(self, item.name, checked)

    @classmethod
    def load(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        path: Path | None = None,
        profile: str | None = None,
    ) -> AgentPolicy:
        """The policy of ``path`` (default ``policy_path(env)``; a missing file is no
        guard but the defaults) with the ``CLORE_AGENT_*`` variables of ``env`` (default
        ``os.environ``) over it; ``profile`` picks a ``[profiles.NAME]`` table (default
        ``CLORE_PROFILE``, else config.toml's active profile). ``ConfigError`` when bad."""
        source = os.environ if env is None else env
        target = path if path is not None else policy_path(source)
        values: dict[str, Any] = {}
        table = _read(target)
        profiles = table.pop("profiles", None)
        values.update(_from_table(table, str(target)))
        if profiles is not None:
            if not isinstance(profiles, dict):
                raise ConfigError(f"{target}: 'profiles' must be a table of tables")
            name = profile or source.get("CLORE_PROFILE") or _active_profile()
            chosen = profiles.get(name) if name else None
            if chosen is not None:
                if not isinstance(chosen, dict):
                    raise ConfigError(f"{target}: profiles.{name} must be a table")
                values.update(_from_table(chosen, f"{target}: profiles.{name}"))
        for item in fields(cls):
            raw = source.get(ENV_PREFIX + item.name.upper())
            if raw is not None:
                values[item.name] = _from_env(item.name, raw)
        try:
            return replace(cls(), **values)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        """The guards as a JSON-able mapping (what the tools report as the caps)."""
        return {
            "max_price_per_hour_usd": self.max_price_per_hour_usd,
            "max_spend_per_day_usd": self.max_spend_per_day_usd,
            "max_spend_per_order_usd": self.max_spend_per_order_usd,
            "max_live_orders": self.max_live_orders,
            "allowed_gpus": None if self.allowed_gpus is None else list(self.allowed_gpus),
            "read_only": self.read_only,
            "order_max_hours": round(self.order_max_time / 3600.0, 3),
            "cancel_foreign": self.cancel_foreign,
        }


# --------------------------------------------------------------------------- checks


def _amount(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected an amount in USD, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}: expected a finite amount of at least 0, got {value!r}")
    return number


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a whole number of at least 0, got {value!r}")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, str):
        from clore.workflows.plan import LimitError, Limits

        try:
            seconds = Limits.parse(None, value, "bitcoin").max_time
        except LimitError as exc:
            raise ValueError(f"{name}: {exc.reason}") from None
        assert seconds is not None
        return seconds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected seconds or a duration like 4h, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}: expected a duration greater than zero, got {value!r}")
    return seconds


def _ratio(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a fraction like 0.02, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number < 1:
        raise ValueError(f"{name}: expected a fraction in [0, 1), got {value!r}")
    return number


def _gpus(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{name}: expected a list of GPU models, got {value!r}")
    from clore.market import FilterError, parse_filter

    models: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{name}: expected GPU model names, got {item!r}")
        model = " ".join(item.split())
        if "," in model:
            raise ValueError(f"{name}: one model per entry, got {item!r}")
        try:
            parse_filter(f"gpu={model}")
        except FilterError as exc:
            raise ValueError(f"{name}: {exc.reason}") from None
        models.append(model)
    return tuple(models)


def _currency(value: Any, name: str) -> str:
    from clore.market import parse_currency

    if not isinstance(value, str):
        raise ValueError(f"{name}: expected btc, clore or usd, got {value!r}")
    try:
        return parse_currency(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


_CHECKS: Final[dict[str, Callable[[Any, str], Any]]] = {
    "max_price_per_hour_usd": _amount,
    "max_spend_per_day_usd": _amount,
    "max_spend_per_order_usd": _amount,
    "max_live_orders": _count,
    "allowed_gpus": _gpus,
    "read_only": _flag,
    "order_max_time": _seconds,
    "cancel_foreign": _flag,
    "quote_ttl": _seconds,
    "price_tolerance": _ratio,
    "currency": _currency,
}
_NULLABLE: Final = frozenset(
    {
        "max_price_per_hour_usd",
        "max_spend_per_day_usd",
        "max_spend_per_order_usd",
        "max_live_orders",
        "allowed_gpus",
    }
)


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return data


def _from_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {item.name for item in fields(AgentPolicy)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(
                f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})"
            )
        try:
            values[key] = _CHECKS[key](value, key)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return values


def _from_env(name: str, raw: str) -> Any:
    variable = ENV_PREFIX + name.upper()
    text = raw.strip()
    try:
        if text.lower() in _NONE and name in _NULLABLE:
            return None
        check = _CHECKS[name]
        if check is _flag:
            lowered = text.lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(f"expected 1/0, true/false, yes/no, got {raw!r}")
            return lowered in _TRUE
        if check is _gpus:
            return _gpus([part for part in text.split(",") if part.strip()], name)
        if check in (_amount, _ratio):
            return check(_number(text, raw), name)
        if check is _count:
            if not text.isdigit():
                raise ValueError(f"expected a whole number, got {raw!r}")
            return _count(int(text), name)
        if check is _seconds:
            return _seconds(text, name)
        return check(text, name)
    except ValueError as exc:
        raise ConfigError(f"{variable}: {exc}") from None


def _number(text: str, raw: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def _active_profile() -> str | None:
    from clore import config

    try:
        return config.load().active
    except ConfigError:
        return None
