"""The marketplace filter language: ``field OP value`` words as predicates over ``Server``.

``OP`` is one of ``=  !=  ~  !~  >  >=  <  <=``. ``=`` and ``!=`` (and ``~``, ``!~``) take
comma lists meaning *any of* / *none of* (``cc=US,DE``). ``gpu=`` names an exact GPU model
(``clore.market.models.matches_model``: ``gpu=4090`` is the RTX 4090, not the ``RTX 4090
D`` nor the ``RTX 4090 Laptop GPU``), ``gpu!=`` any other model; ``~`` is a
case-insensitive substring of the listing's text (``gpu~4090`` matches all three, ``gpu!~
laptop`` no laptop part). ``cpu`` is matched as a substring with ``=`` and ``~`` alike.
``spot`` alone means "has a spot price". A server whose value is unknown never matches.
See ``FIELDS`` for every field, its unit and its accepted suffixes.

Pure: no I/O, no click, no msgspec import.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from clore.market.models import FAMILY_WORDS, canonical_model, matches_model, model_words
from clore.market.pricing import Amount, PriceContext, parse_amount, server_price

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = [
    "ALIASES",
    "FIELDS",
    "Field",
    "Filter",
    "FilterError",
    "compile_filters",
    "describe_fields",
    "parse_filter",
    "parse_filters",
]

Kind = Literal["number", "text", "choice", "version", "price", "duration", "flag"]
Getter = Callable[["Server", PriceContext], Any]

_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_WORD_RE: Final = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|!~|==|=|~|<|>)\s*(.*?)\s*$")
_OP_LIST: Final = "= != ~ !~ > >= < <="
_NUMBER_RE: Final = re.compile(r"^([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z%/]*)$", re.IGNORECASE)
_TRUE: Final = frozenset({"", "1", "true", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "n", "off"})


class FilterError(ValueError):
    """A filter word cannot be parsed; the message names the word and the known fields."""

    def __init__(self, word: str, reason: str) -> None:
        self.word = word
        self.reason = reason
        super().__init__(f"bad filter {word!r}: {reason}. Known fields: {', '.join(FIELDS)}")


@dataclass(frozen=True)
class Field:
    """One filterable (and sortable) field."""

    name: str
    kind: Kind
    help: str
    getter: Getter
    units: dict[str, float] | None = None  # number suffix -> multiplier
    #: A text field whose ``=``/``!=`` name an exact GPU model (``~``/``!~``: substrings).
    model: bool = False


def _disk(server: Server, _: PriceContext) -> float | None:
    return server.specs.disk_size_gb


def _cuda(server: Server, _: PriceContext) -> tuple[int, ...] | None:
    return _version(server.cuda)


def _price(spot: bool, per_gpu: bool) -> Getter:
    # The price getter's value depends on the currency it is compared in; ``Filter`` passes
    # the wanted currency through ``_PriceGetter`` instead of calling this directly.
    def get(server: Server, ctx: PriceContext) -> float | None:
        return _price_in(server, ctx, None, spot=spot, per_gpu=per_gpu)

    return get


def _price_in(
    server: Server, ctx: PriceContext, target: str | None, *, spot: bool, per_gpu: bool
) -> float | None:
    value = server_price(server, ctx, target, spot=spot)
    if value is None or not per_gpu:
        return value
    count = server.gpu_count
    return value / count if count else None


_GB: Final = {"": 1.0, "g": 1.0, "gb": 1.0, "t": 1000.0, "tb": 1000.0}
_MBIT: Final = {"": 1.0, "m": 1.0, "mbit": 1.0, "mbps": 1.0, "g": 1000.0, "gbit": 1000.0}
_MBIT["gbps"] = 1000.0
_RATIO: Final = {"": 1.0, "%": 0.01}
_PLAIN: Final = {"": 1.0}

#: Every field of the language, in the order ``--help`` lists them.
FIELDS: Final[dict[str, Field]] = {
    f.name: f
    for f in (
        Field("id", "number", "server id", lambda s, _: s.id, _PLAIN),
        Field(
            "gpu",
            "text",
            "exact GPU model (gpu=4090: not 4090 D, not a laptop); gpu~TEXT: a substring",
            lambda s, _: s.gpu_model,
            model=True,
        ),
        Field("gpus", "number", "number of GPUs", lambda s, _: s.gpu_count, _PLAIN),
        Field("gpuram", "number", "VRAM per GPU in GB", lambda s, _: s.specs.gpuram, _GB),
        Field("price", "price", "on-demand price per day (3usd, 0.2usd/h)", _price(False, False)),
        Field("gpu_price", "price", "on-demand price per GPU per day", _price(False, True)),
        Field("spot_price", "price", "minimum spot price per day", _price(True, False)),
        Field("reliability", "number", "0..1 (or 90%)", lambda s, _: s.reliability, _RATIO),
        Field("rating", "number", "average rating, 0..5", lambda s, _: s.rating.avg, _PLAIN),
        Field("cc", "choice", "country code, lists allowed (cc=US,DE)", lambda s, _: s.country),
        Field("cuda", "version", "CUDA version (cuda>=12.2)", _cuda),
        Field(
            "cpu",
            "text",
            "CPU model, case-insensitive substring (cpu=epyc)",
            lambda s, _: s.specs.cpu,
        ),
        Field("threads", "number", "CPU threads", lambda s, _: s.specs.cpu_threads, _PLAIN),
        Field("ram", "number", "RAM in GB", lambda s, _: s.specs.ram, _GB),
        Field("disk", "number", "disk size in GB", _disk, _GB),
        Field("down", "number", "download Mbit/s", lambda s, _: s.specs.net.down, _MBIT),
        Field("up", "number", "upload Mbit/s", lambda s, _: s.specs.net.up, _MBIT),
        Field(
            "mrl",
            "duration",
            "maximum rental length (48h, 2d, 1w; bare = hours)",
            lambda s, _: s.mrl,
        ),
        Field("spot", "flag", "has a spot price (spot, spot=no)", lambda s, _: bool(s.price.spot)),
    )
}

#: Other spellings people type for the same fields.
ALIASES: Final[dict[str, str]] = {
    "country": "cc",
    "vram": "gpuram",
    "gpu_count": "gpus",
    "mem": "ram",
    "cuda_version": "cuda",
    "ondemand": "price",
}

_DURATION: Final = {"": 1.0, "h": 1.0, "hr": 1.0, "hours": 1.0, "d": 24.0, "day": 24.0}
_DURATION.update(
    {"days": 24.0, "w": 168.0, "week": 168.0, "weeks": 168.0, "m": 1 / 60, "min": 1 / 60}
)


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.strip().split(".")
    # ``isdigit`` alone accepts other scripts' digits (``１２``), which ``int`` reads as 12.
    if not text.strip() or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    numbers = [int(part) for part in parts]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def _lookup(name: str, word: str) -> Field:
    key = name.lower()
    key = ALIASES.get(key, key)
    found = FIELDS.get(key)
    if found is None:
        raise FilterError(word, f"unknown field {name!r}")
    return found


def _number(text: str, units: dict[str, float], word: str) -> float:
    match = _NUMBER_RE.match(text.strip())
    if match is None:
        raise FilterError(word, f"{text!r} is not a number")
    suffix = match.group(2).lower()
    if suffix not in units:
        known = ", ".join(unit for unit in units if unit) or "none"
        raise FilterError(word, f"unknown unit {match.group(2)!r} (units: {known})")
    value = float(match.group(1)) * units[suffix]
    if not math.isfinite(value):
        raise FilterError(word, f"{text!r} is too large")
    return value


def _model_value(text: str, op: str, word: str) -> str:
    """A ``gpu`` value: a substring for ``~``/``!~``, else a model query that names a model."""
    value = text.lower()
    if op in ("~", "!~"):
        return value
    _family, core, _qualifiers = model_words(value)
    # "RTX" or "80GB" alone name a family or a size, never a model: say so, not match nothing.
    if not [w for w in core if w not in FAMILY_WORDS]:
        raise FilterError(
            word,
            f"{text!r} names no GPU model (e.g. 4090, 3060 Ti, A100 80GB); "
            f"gpu~{text} matches a substring",
        )
    return value


def _value(field: Field, text: str, word: str, op: str = "=") -> Any:
    if not text:
        raise FilterError(word, "missing value")
    if field.model:
        return _model_value(text, op, word)
    if field.kind == "text":
        return text.lower()
    if field.kind == "choice":
        return text.upper()
    if field.kind == "version":
        version = _version(text)
        if version is None:
            raise FilterError(word, f"{text!r} is not a version like 12.2")
        return version
    if field.kind == "duration":
        return _number(text, _DURATION, word)
    if field.kind == "price":
        try:
            return parse_amount(text)
        except ValueError as exc:
            raise FilterError(word, str(exc)) from None
    return _number(text, field.units or _PLAIN, word)


@dataclass(frozen=True)
class Filter:
    """One parsed word: ``field OP values``; call it with a server and a ``PriceContext``."""

    word: str
    field: Field
    op: str
    values: tuple[Any, ...]

    def __call__(self, server: Server, ctx: PriceContext) -> bool:
        kind = self.field.kind
        if kind == "flag":
            return bool(self.field.getter(server, ctx)) is self.values[0]
        if kind == "price":
            amount: Amount = self.values[0]
            spot = self.field.name == "spot_price"
            per_gpu = self.field.name == "gpu_price"
            target = amount.in_currency(ctx.currency)
            actual = _price_in(server, ctx, target, spot=spot, per_gpu=per_gpu)
            return actual is not None and _OPS[self.op](actual, amount.per_day)
        actual = self.field.getter(server, ctx)
        if actual is None or (kind == "version" and actual == ()):
            return False
        if self.field.model and self.op in ("=", "!="):
            canonical = canonical_model(str(actual))
            hit = any(matches_model(value, canonical) for value in self.values)
            return hit if self.op == "=" else not hit
        if kind == "text":
            hit = any(value in str(actual).lower() for value in self.values)
            return hit if self.op in ("=", "~") else not hit
        if self.op in ("=", "!="):
            hit = any(actual == value for value in self.values)
            return hit if self.op == "=" else not hit
        return bool(_OPS[self.op](actual, self.values[0]))


def parse_filter(word: str) -> Filter:
    """Parse one ``field OP value`` word (or the bare flag ``spot``); raises ``FilterError``."""
    match = _WORD_RE.match(word)
    if match is None:
        bare = word.strip()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", bare):
            field = _lookup(bare, word)
            if field.kind == "flag":
                return Filter(word, field, "=", (True,))
            raise FilterError(word, f"expected {bare} OP value with OP one of {_OP_LIST}")
        raise FilterError(word, f"expected field OP value with OP one of {_OP_LIST}")
    name, op, raw = match.groups()
    op = "=" if op == "==" else op
    field = _lookup(name, word)
    if op in ("~", "!~") and field.kind != "text":
        raise FilterError(word, f"{op} (a substring) is for the text fields gpu and cpu only")
    if field.kind == "flag":
        flag = raw.strip().lower()
        if op not in ("=", "!=") or flag not in _TRUE | _FALSE:
            raise FilterError(
                word, f"{field.name} is a yes/no flag ({field.name}, {field.name}=no)"
            )
        return Filter(word, field, "=", ((flag in _TRUE) is (op == "="),))
    if field.kind == "text" and op not in ("=", "!=", "~", "!~"):
        raise FilterError(word, f"{field.name} compares with = != ~ !~ only")
    if field.kind == "choice" and op not in ("=", "!="):
        raise FilterError(word, f"{field.name} compares with = or != only")
    listed = op in ("=", "!=", "~", "!~")
    parts = [part.strip() for part in raw.split(",")] if listed else [raw]
    if len(parts) > 1 and field.kind == "price":
        raise FilterError(word, "a price takes one value, not a list")
    values = tuple(_value(field, part, word, op) for part in parts)
    return Filter(word, field, op, values)


def parse_filters(words: Iterable[str]) -> list[Filter]:
    """Parse every word; the first bad one raises ``FilterError``."""
    return [parse_filter(word) for word in words]


def compile_filters(filters: Sequence[Filter], ctx: PriceContext) -> Callable[[Server], bool]:
    """One predicate that is true when a server matches every filter."""

    def predicate(server: Server) -> bool:
        return all(flt(server, ctx) for flt in filters)

    return predicate


def describe_fields() -> str:
    """The field table for ``--help``: one ``name  description`` line per field."""
    width = max(len(name) for name in FIELDS)
    return "\n".join(f"{name.ljust(width)}  {f.help}" for name, f in FIELDS.items())
