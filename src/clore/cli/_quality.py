"""The quality floors of the commands that choose a server (``rent --cheapest``, ``watch``):
``--min-reliability``, ``--min-rating``, ``--min-ratings`` and ``--any-quality``.

The floors themselves, their defaults and why, are ``clore.rentals.choice.Floors``'s; the
help text states the defaults from there, so ``--help`` and the library never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._context import EXIT_USAGE, CliError
from clore.cli._params import Integer

if TYPE_CHECKING:
    from clore.rentals.choice import Floors

    # click 8.2 made ParamType generic (output, input); click 8.1 cannot subscript it.
    _FloatType = click.ParamType[float, Any]
else:
    _FloatType = click.ParamType

__all__ = ["FLOOR_OPTIONS", "Reliability", "floors_from", "quality_options"]

#: The option names (their parameters' names): what ``floors_from`` reads.
FLOOR_OPTIONS: Final = ("min_reliability", "min_rating", "min_ratings", "any_quality")

# The library's defaults, spelt here so that `clore rent --help` imports no msgspec
# (``clore.rentals.choice`` imports the wire schema); a test checks they agree.
DEFAULT_MIN_RELIABILITY: Final = 0.9
DEFAULT_MIN_RATING: Final = 2.5
DEFAULT_MIN_RATINGS: Final = 3


class Reliability(_FloatType):
    """A reliability floor: ``0.9`` or ``90%``, within 0..1."""

    name = "reliability"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        percent = text.endswith("%")
        try:
            number = float(text[:-1] if percent else text)
        except ValueError:
            self.fail(f"{value!r} is not a reliability (0.9 or 90%)", param, ctx)
        if not text.isascii() or not math.isfinite(number):
            self.fail(f"{value!r} is not a reliability (0.9 or 90%)", param, ctx)
        number = number / 100 if percent else number
        if not 0.0 <= number <= 1.0:
            self.fail(f"{value!r} is outside 0..1 (or 0%..100%)", param, ctx)
        return number


class _Rating(_FloatType):
    """A rating floor within 0..5."""

    name = "rating"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            self.fail(f"{value!r} is not a rating (0 to 5)", param, ctx)
        if not text.isascii() or not math.isfinite(number) or not 0.0 <= number <= 5.0:
            self.fail(f"{value!r} is not a rating (0 to 5)", param, ctx)
        return number


def quality_options(what: str) -> Callable[[Callable[..., Any]], Any]:
    """The four floor options; ``what`` says what they apply to (``--cheapest``)."""
    percent = f"{DEFAULT_MIN_RELIABILITY * 100:g}%"
    options = [
        click.option(
            "--min-reliability",
            type=Reliability(),
            default=None,
            metavar="R",
            help=f"{what}: only servers at least this reliable, 0..1 or a percentage "
            f"(default {DEFAULT_MIN_RELIABILITY:g}, i.e. {percent}).",
        ),
        click.option(
            "--min-rating",
            type=_Rating(),
            default=None,
            metavar="STARS",
            help=f"{what}: only servers rated at least this on average, 0..5, once they have "
            f"--min-ratings ratings (default {DEFAULT_MIN_RATING:g}).",
        ),
        click.option(
            "--min-ratings",
            type=Integer(min=0, max=1_000_000),
            default=None,
            metavar="N",
            help=f"{what}: ratings a server needs before --min-rating judges it; fewer are "
            f"judged on reliability alone (default {DEFAULT_MIN_RATINGS}).",
        ),
        click.option(
            "--any-quality",
            is_flag=True,
            help=f"{what}: no reliability or rating floor (servers that do not take the "
            "currency, and hosts on the bad-host list, are still skipped).",
        ),
    ]

    def decorate(fn: Callable[..., Any]) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _given(options: dict[str, Any]) -> list[str]:
    """The floor options given on the command line, as ``--name``."""
    names = [name for name in FLOOR_OPTIONS if options.get(name) not in (None, False)]
    return ["--" + name.replace("_", "-") for name in names]


def floors_from(options: dict[str, Any], *, applies: bool = True, what: str = "") -> Floors:
    """The ``Floors`` the options ask for (pops them from ``options``); exit 2 when
    ``--any-quality`` is given with a floor, or any of them when they do not ``apply``
    (``what`` names what they need)."""
    from clore.rentals.choice import Floors

    values = {name: options.pop(name, None) for name in FLOOR_OPTIONS}
    named = _given(values)
    if named and not applies:
        raise CliError(f"{named[0]} applies to {what} only", EXIT_USAGE)
    if values["any_quality"]:
        if len(named) > 1:
            raise CliError(
                f"--any-quality removes the floors; drop {', '.join(named[:-1])}", EXIT_USAGE
            )
        return Floors.off()
    defaults = Floors()
    return Floors(
        min_reliability=_or(values["min_reliability"], defaults.min_reliability),
        min_rating=_or(values["min_rating"], defaults.min_rating),
        min_ratings=int(_or(values["min_ratings"], defaults.min_ratings)),
    )


def _or(value: Any, default: float) -> float:
    return float(default) if value is None else float(value)
