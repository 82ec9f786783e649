"""What a well-formed value on the command line is: one rule per kind, for every command.

Python's ``int`` and ``float`` accept more than a person means: ``int("١٢")``,
``int("１２")`` and ``int("1_2")`` are 12, ``float("nan")`` and ``float("1e999")`` are not
numbers anyone can wait for, pay or count with, and a duration of ``99999999999999999999d``
overflows every clock it touches. Here numbers are spelt in ASCII digits, finite, and
within what the value is for; anything else is a usage error (exit 2) raised while the
command line is parsed, so nothing is sent.

- ``Id()``: an order or server id, digits ``0-9`` only, at most ``2**63 - 1``.
- ``Integer(min, max)``: a whole number in ASCII digits (a leading ``-`` only when the
  range goes below zero), within 64 bits and the range.
- ``Number(min, max, min_open=, max_open=)``: a finite decimal number (``1``, ``0.5``,
  ``1e3``), within the range.
- ``Duration(zero=)``: ``3600``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, ``1h30m`` in
  seconds, more than zero unless ``zero``, at most ``MAX_DURATION`` (100 years).
- ``ProfileName()``: a profile name: not empty, no control characters.

``Id`` and ``ProfileName`` complete in the shell (``clore.cli._completion``: the order ids
of the last ``clore orders``, the profiles of config.toml).

The same rules for values checked outside click's parsing, raising ``CliError`` (exit 2)
with the option's name: ``parse_id`` (``ORDER:path``), ``parse_number`` (environment
variables), ``parse_duration``,
``parse_until`` (``--until``, against the loop's clock) and ``parse_price`` (a price whose
currency is settled later). Only click and the standard library are imported here.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Final

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from clore.market import Amount

    # click 8.2 made ParamType generic (output, input); click 8.1 cannot subscript it.
    _IdType = click.ParamType[int, Any]
    _SecondsType = click.ParamType[float, Any]
    _TextType = click.ParamType[str, Any]
else:
    _IdType = _SecondsType = _TextType = click.ParamType

__all__ = [
    "MAX_DURATION",
    "MAX_INT",
    "Duration",
    "Id",
    "Integer",
    "Number",
    "ProfileName",
    "parse_duration",
    "parse_id",
    "parse_number",
    "parse_price",
    "parse_until",
]

EXIT_USAGE: Final = 2

#: Ids and counts are 64-bit integers on the wire and in the sandbox's database.
MAX_INT: Final = 2**63 - 1
#: The longest duration (and the farthest ``--until``) anything here waits for: 100 years.
MAX_DURATION: Final = 100 * 365.25 * 86400.0

_DIGITS: Final = re.compile(r"[0-9]+")
_INTEGER: Final = re.compile(r"-?[0-9]+")
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# More digits than any 64-bit number has: refused before ``int`` sees them (``int``
# refuses strings of more than 4,300 digits with a ValueError of its own).
_MAX_DIGITS: Final = len(str(MAX_INT))


def _shown(text: str) -> str:
    """``text`` quoted for an error line (control characters escaped, long text cut)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _spell_id(text: str) -> int | str:
    """The id ``text`` spells, else why it is not one."""
    word = text.strip()
    if not (word.isascii() and _DIGITS.fullmatch(word)):
        return f"{_shown(text)} is not an id (digits 0-9 only)"
    if len(word.lstrip("0")) > _MAX_DIGITS or int(word) > MAX_INT:
        return f"{_shown(text)} is too large for an id (at most {MAX_INT})"
    return int(word)


def _spell_integer(text: str, signed: bool) -> int | str:
    """The whole number ``text`` spells (64-bit), else why it is not one."""
    word = text.strip()
    pattern = _INTEGER if signed else _DIGITS
    if not (word.isascii() and pattern.fullmatch(word)):
        kind = "a whole number" if signed else "a whole number >= 0"
        return f"{_shown(text)} is not {kind} (digits 0-9 only)"
    digits = word.lstrip("-").lstrip("0")
    if len(digits) > _MAX_DIGITS or not -MAX_INT - 1 <= int(word) <= MAX_INT:
        return f"{_shown(text)} is too large (at most {MAX_INT})"
    return int(word)


def _spell_number(text: str) -> float | str:
    """The finite number ``text`` spells, else why it is not one."""
    word = text.strip()
    if not (word.isascii() and _DECIMAL.fullmatch(word)):
        return f"{_shown(text)} is not a number (e.g. 2, 0.5 or 1e3)"
    value = float(word)
    if not math.isfinite(value):
        return f"{_shown(text)} is too large"
    return value


class Id(_IdType):
    """An order or server id: ASCII digits only, at most ``MAX_INT``."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
            return value
        spelt = _spell_id(str(value))
        if isinstance(spelt, str):
            self.fail(spelt, param, ctx)
        return spelt

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """An order argument completes the ids of the last ``clore orders``."""
        from clore.cli._completion import complete_id

        return complete_id(ctx, param, incomplete)


class Integer(click.IntRange):
    """A whole number in ASCII digits within 64 bits and ``[min, max]`` (``click.IntRange``)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            signed = self.min is None or self.min < 0
            spelt = _spell_integer(value, signed)
            if isinstance(spelt, str):
                self.fail(spelt, param, ctx)
            value = spelt
        return super().convert(value, param, ctx)


class Number(click.FloatRange):
    """A finite decimal number in ASCII within the range (``click.FloatRange``, which
    takes ``nan``, ``inf``, ``1_0`` and other scripts' digits)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            spelt = _spell_number(value)
            if isinstance(spelt, str):
                self.fail(spelt, param, ctx)
            value = spelt
        elif isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(value, param, ctx)


def _seconds(text: str, zero: bool) -> float | str:
    """The seconds of DURATION ``text``, else why it is not one."""
    from clore.workflows.render import parse_duration as parse

    if not text.isascii():
        return f"bad duration {_shown(text)}: digits 0-9 only (e.g. 90s, 15m, 2h, 1d or 1h30m)"
    try:
        seconds = parse(text)
    except (ValueError, OverflowError) as exc:
        return str(exc)
    return _bounded(seconds, text, zero)


def _bounded(seconds: float, text: str, zero: bool) -> float | str:
    """``seconds`` when finite, at most ``MAX_DURATION`` and more than zero (or zero when
    ``zero``), else why not."""
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        return f"duration {_shown(text)} is too long (at most 100 years)"
    if seconds < 0 or (seconds == 0 and not zero):
        return "must be greater than zero"
    return seconds


class Duration(_SecondsType):
    """A duration in seconds (``90s``, ``15m``, ``1h30m``): ASCII, finite, at most 100
    years, and more than zero unless ``zero``."""

    name = "duration"

    def __init__(self, *, zero: bool = False) -> None:
        self.zero = zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = _bounded(float(value), str(value), self.zero)  # a default, not typed
        else:
            seconds = _seconds(str(value), self.zero)
        if isinstance(seconds, str):
            self.fail(seconds, param, ctx)
        return seconds


class ProfileName(_TextType):
    """A profile name of ``config.toml``: not empty, no control characters, no
    surrounding spaces."""

    name = "profile"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not text.strip():
            self.fail("a profile name cannot be empty", param, ctx)
        if not text.isprintable() or text != text.strip():
            self.fail(
                f"{_shown(text)} is not a profile name (no control characters or "
                "surrounding spaces)",
                param,
                ctx,
            )
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """The profiles of config.toml."""
        from clore.cli._completion import complete_profiles

        return complete_profiles(incomplete)


# ---- the same rules outside click's parsing ----------------------------------------------


def _usage(message: str) -> Exception:
    # Imported here: ``clore --help`` loads this module and nothing but click.
    from clore.cli._context import CliError

    return CliError(message, EXIT_USAGE)


def parse_id(text: str, what: str = "ORDER") -> int:
    """An id typed inside another word (``1234:/root``); exit 2 naming ``what``."""
    spelt = _spell_id(text)
    if isinstance(spelt, str):
        raise _usage(f"{what}: {spelt}")
    return spelt


def parse_number(text: str, what: str, *, minimum: float | None = None) -> float:
    """A finite number in ASCII (an environment variable, say), at least ``minimum``;
    exit 2 naming ``what`` otherwise."""
    spelt = _spell_number(text)
    if isinstance(spelt, str):
        raise _usage(f"{what}: {spelt}")
    if minimum is not None and spelt < minimum:
        raise _usage(f"{what}: must be at least {minimum:g}, got {_shown(text)}")
    return spelt


def parse_duration(text: str, option: str, *, zero: bool = False) -> float:
    """The seconds of a DURATION (``90s``, ``15m``, ``1h30m``); exit 2 naming ``option``
    when it is malformed, not finite, over 100 years, or zero unless ``zero``."""
    seconds = _seconds(text, zero)
    if isinstance(seconds, str):
        raise _usage(f"{option}: {seconds}")
    return seconds


def parse_until(text: str, now: float, option: str = "--until") -> float:
    """Unix time of a TIME (``HH:MM``, ISO date-time, unix time) after ``now``'s clock;
    exit 2 naming ``option`` when it is malformed or not between 1970 and 100 years on."""
    from clore.workflows.render import parse_until as parse

    if not text.isascii():
        raise _usage(
            f"{option}: bad time {_shown(text)}: digits 0-9 only (HH:MM, an ISO date-time "
            "or a unix time)"
        )
    try:
        stamp = parse(text, now)
    except (ValueError, OverflowError, OSError) as exc:
        raise _usage(f"{option}: {exc}") from None
    if not math.isfinite(stamp) or not 0 <= stamp <= now + MAX_DURATION:
        raise _usage(f"{option}: {_shown(text)} is out of range (1970 to 100 years from now)")
    return stamp


def parse_price(text: str, option: str) -> Amount:
    """A price's form (``0.0001``, ``0.0001btc``, ``0.2usd/h``) checked before anything is
    sent: exit 2 naming ``option`` unless it is finite and more than zero. The currency
    is the caller's to settle."""
    from clore.market import parse_amount

    if not text.isascii():
        raise _usage(f"{option}: bad price {_shown(text)}: digits 0-9 only")
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise _usage(f"{option}: {exc}") from None
    if not math.isfinite(amount.per_day):
        raise _usage(f"{option}: {_shown(text)} is too large")
    if amount.per_day <= 0:
        raise _usage(f"{option}: must be greater than zero")
    return amount
