"""How ``clore.jobs.task.resolve`` lays options over a task file and checks each setting.

Every setting is picked from the command line when given there, else from the file, and
keeps how errors name it (``--gpus`` or ``resources.gpus`` with the file). The rules are
``resolve``'s docstring's and the task module's.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final, NoReturn

from clore.jobs.task import (
    OPTION_NAMES,
    JobSpec,
    TaskError,
    TaskFile,
    _is_number,
    _number_text,
    _shown,
)

if TYPE_CHECKING:
    from clore.market import Amount

__all__ = ["Resolver"]

_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class _Setting:
    """One setting's value and how errors name it: the option, or the file's field."""

    value: Any
    field: str
    source: str | None
    option: bool = False  # given on the command line

    def fail(self, reason: str, *, field: str | None = None) -> NoReturn:
        raise TaskError(reason, field=field or self.field, source=self.source)


class Resolver:
    """``resolve``'s work: each setting picked (option over file), checked, converted."""

    def __init__(
        self, task: TaskFile, base_dir: Path | None, source: str | None, given: dict[str, Any]
    ) -> None:
        self.task = task
        self.base_dir = base_dir
        self.source = source
        self.given = given

    def pick(self, key: str, file_value: Any, field: str) -> _Setting:
        if key in self.given:
            return _Setting(self.given[key], OPTION_NAMES[key], None, option=True)
        return _Setting(file_value, field, self.source)

    def spec(self) -> JobSpec:
        task, res = self.task, self.task.resources
        currency = self.currency()
        spot, bid, max_bid = self.spot(currency)
        order_id, server_id = self.ids()
        return JobSpec(
            name=self.name(),
            command=self.command(),
            setup=task.setup if task.setup and task.setup.strip() else None,
            env=self.env(),
            workdir=self.workdir(),
            excludes=self.excludes(),
            outputs=self.outputs(),
            filters=self.filters(spot),
            server_id=server_id,
            order_id=order_id,
            spot=spot,
            bid=bid,
            max_bid=max_bid,
            image=self.image(res.image),
            ports=self.ports(),
            currency=currency,
            max_spend=self.max_spend(),
            max_time=self.duration("max_time", task.limits.max_time, "limits.max_time"),
            idle=self.duration("idle", task.limits.idle, "limits.idle"),
            idle_threshold=self.idle_threshold(),
            verify=self.flag("verify", True),
            keep=self.flag("keep", False),
            recover=self.flag("recover", False),
        )

    # -- what runs

    def name(self) -> str:
        setting = self.pick("name", self.task.name, "name")
        default = Path(self.source).stem if self.source else "job"
        name = default if setting.value is None else _text(setting)
        if not name.strip() or len(name) > 64 or not name.isprintable():
            setting.fail(f"expected one printable line of 1 to 64 characters, got {_shown(name)}")
        return name.strip()

    def command(self) -> str:
        setting = self.pick("command", self.task.run, "run")
        value = setting.value
        if isinstance(value, Sequence) and not isinstance(value, str):
            if not all(isinstance(word, str) for word in value):
                setting.fail("expected the command's words as strings")
            value = shlex.join(value)
        if value is not None and not isinstance(value, str):
            setting.fail(f"expected a string, got {_shown(value)}")
        if not value or not value.strip():
            raise TaskError(
                "a command is required: write run: in the task file or give -- COMMAND",
                field="run",
                source=self.source,
            )
        if "\0" in value:
            setting.fail("the command holds a NUL character")
        return value

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        layers: list[tuple[Mapping[Any, Any], str, str | None]] = [
            (self.task.env, "env.{}", self.source)
        ]
        if "env" in self.given:
            given = self.given["env"]
            if not isinstance(given, Mapping):
                raise TaskError("expected NAME=VALUE pairs", field="--env")
            layers.append((given, "--env {}", None))
        for values, field, source in layers:
            for name, value in values.items():
                label = field.format(name)
                if not isinstance(name, str) or not _NAME_RE.match(name):
                    raise TaskError(
                        f"{_shown(name)} is not a variable name (letters, digits and _, "
                        "not starting with a digit)",
                        field=label,
                        source=source,
                    )
                if not isinstance(value, str):
                    raise TaskError(
                        f"expected a string, got {_shown(value)}", field=label, source=source
                    )
                if "\0" in value:
                    raise TaskError("the value holds a NUL character", field=label, source=source)
                env[name] = value
        return env

    def workdir(self) -> Path | None:
        setting = self.pick("workdir", self.task.workdir, "workdir")
        if setting.value is None:
            return None
        text = setting.value if isinstance(setting.value, str | Path) else None
        if text is None or not str(text).strip():
            setting.fail(f"expected a directory, got {_shown(setting.value)}")
        base = Path.cwd() if setting.option or self.base_dir is None else self.base_dir
        path = (base / Path(str(text)).expanduser()).resolve()
        if not path.exists():
            setting.fail(f"no such directory: {path}")
        if not path.is_dir():
            setting.fail(f"not a directory: {path}")
        return path

    def excludes(self) -> tuple[str, ...]:
        import pathspec

        patterns: list[str] = []
        file = self.task.excludes
        layers = [_Setting(file, "excludes", self.source)]
        if "excludes" in self.given:
            layers.append(_Setting(self.given["excludes"], "--exclude", None, option=True))
        for setting in layers:
            for index, pattern in enumerate(_words(setting)):
                label = setting.field if setting.option else f"{setting.field}[{index}]"
                try:
                    pathspec.GitIgnoreSpec.from_lines([pattern])
                except (ValueError, TypeError) as exc:
                    setting.fail(f"bad pattern {pattern!r}: {exc}", field=label)
                patterns.append(pattern)
        return tuple(patterns)

    def outputs(self) -> tuple[str, ...]:
        setting = self.pick("outputs", self.task.outputs, "outputs")
        indexed = not setting.option
        outputs: list[str] = []
        for index, raw in enumerate(_words(setting)):
            label = f"{setting.field}[{index}]" if indexed else setting.field
            path = _output(raw)
            if isinstance(path, tuple):
                setting.fail(f"{path[0]}, got {raw!r}", field=label)
            if path not in outputs:
                outputs.append(path)
        return tuple(outputs)

    # -- what to rent

    def currency(self) -> str | None:
        from clore.market import parse_currency

        setting = self.pick("currency", self.task.resources.currency, "resources.currency")
        if setting.value is None:
            return None
        try:
            return parse_currency(_text(setting))
        except ValueError as exc:
            setting.fail(str(exc))

    def spot(self, currency: str | None) -> tuple[bool, str | None, str | None]:
        res = self.task.resources
        bid = self.pick("bid", res.bid, "resources.bid")
        max_bid = self.pick("max_bid", res.max_bid, "resources.max_bid")
        wanted = self.given.get("spot")
        if wanted is not None and not isinstance(wanted, bool):
            raise TaskError("expected true or false", field="--spot")
        if wanted is False:
            for setting in (bid, max_bid):
                if setting.value is not None and setting.option:
                    setting.fail("a bid is for a spot rental, but on-demand was asked for")
            return False, None, None
        amounts = [_amount(s) if s.value is not None else None for s in (bid, max_bid)]
        low, high = amounts
        if low is not None and high is not None:
            pay = currency or "?"
            if low.in_currency(pay) == high.in_currency(pay) and high.per_day < low.per_day:
                max_bid.fail(f"must be at least the bid ({_text(bid)})")
        spot = bool(wanted) or res.spot or low is not None or high is not None
        return (
            spot,
            None if low is None else _text(bid).strip(),
            None if high is None else _text(max_bid).strip(),
        )

    def filters(self, spot: bool) -> tuple[str, ...]:
        from clore.market import FilterError, parse_filter

        res = self.task.resources
        own: list[tuple[str, str]] = []  # (word, field name)

        def add(setting: _Setting, word: str, reason_only: bool) -> None:
            try:
                parsed = parse_filter(word)
            except FilterError as exc:
                setting.fail(exc.reason if reason_only else str(exc))
            own.append((word, parsed.field.name))

        gpu = self.pick("gpu", res.gpu, "resources.gpu")
        if gpu.value is not None:
            add(gpu, f"gpu={_text(gpu).strip()}", True)
        gpus = self.pick("gpus", res.gpus, "resources.gpus")
        if gpus.value is not None:
            if not isinstance(gpus.value, int) or isinstance(gpus.value, bool) or gpus.value < 1:
                gpus.fail(f"expected an integer of at least 1, got {_shown(gpus.value)}")
            add(gpus, f"gpus>={gpus.value}", True)
        gpuram = self.pick("gpuram", res.gpuram, "resources.gpuram")
        if gpuram.value is not None:
            if not _positive(gpuram.value):
                gpuram.fail(f"expected GB more than 0, got {_shown(gpuram.value)}")
            add(gpuram, f"gpuram>={gpuram.value:g}", True)
        price = self.pick("price", res.price, "resources.price")
        if price.value is not None:
            _amount(price)
            add(price, f"{'spot_price' if spot else 'price'}<={_text(price).strip()}", True)
        if spot:
            own.append(("spot", "spot"))
        file_setting = _Setting(res.filters, "resources.filters", self.source)
        for index, word in enumerate(_words(file_setting)):
            add(_Setting(word, f"resources.filters[{index}]", self.source), word, False)
        given: list[tuple[str, str]] = []
        if "filters" in self.given:
            setting = _Setting(self.given["filters"], "FILTER", None)
            for word in _words(setting):
                try:
                    given.append((word, parse_filter(word).field.name))
                except FilterError as exc:
                    setting.fail(str(exc))
        overridden = {field for _word, field in given}
        kept = [word for word, field in own if field not in overridden]
        words = [word for word, _field in given]
        return tuple(dict.fromkeys([*kept, *words]))

    def ids(self) -> tuple[int | None, int | None]:
        found: list[int | None] = []
        for key in ("order_id", "server_id"):
            value = self.given.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise TaskError(
                    f"expected a positive id, got {_shown(value)}", field=OPTION_NAMES[key]
                )
            found.append(value)
        if found[0] is not None and found[1] is not None:
            raise TaskError("give --order or --server, not both", field="--order")
        return found[0], found[1]

    def image(self, default: str) -> str:
        setting = self.pick("image", default, "resources.image")
        image = _text(setting).strip()
        if not image or any(ch.isspace() or not ch.isprintable() for ch in image):
            setting.fail(f"expected an image name without spaces, got {_shown(setting.value)}")
        return image

    def ports(self) -> tuple[str, ...]:
        from clore import ParameterError
        from clore.rentals import parse_ports

        setting = self.pick("ports", self.task.resources.ports, "resources.ports")
        entries = [part.strip() for word in _words(setting) for part in word.split(",")]
        entries = [entry for entry in entries if entry]
        try:
            ports = parse_ports(entries) or {}
        except ParameterError as exc:
            setting.fail(f"{str(exc).removeprefix('ports: ')} (expected e.g. 8888:http, 6006:tcp)")
        if ports.get("22", "tcp") != "tcp":
            setting.fail("port 22 is SSH: it must be 22:tcp")
        ports.pop("22", None)
        return ("22:tcp", *(f"{port}:{proto}" for port, proto in ports.items()))

    # -- when to stop

    def max_spend(self) -> str | None:
        from clore.workflows import LimitError, Limits

        setting = self.pick("max_spend", self.task.limits.max_spend, "limits.max_spend")
        if setting.value is None:
            return None
        text = _number_text(setting.value) if _is_number(setting.value) else _text(setting)
        try:
            Limits.spend_currency(text)
        except LimitError as exc:
            setting.fail(exc.reason)
        amount = _amount(setting, text)
        if amount.per_hour:
            setting.fail("a total amount, not a rate (drop /h)")
        return text.strip()

    def duration(self, key: str, file_value: str | None, field: str) -> float | None:
        from clore.workflows import LimitError, Limits

        setting = self.pick(key, file_value, field)
        value = setting.value
        if value is None:
            return None
        if not isinstance(value, str) and not _is_number(value):
            setting.fail(f"expected a duration (90s, 15m, 2h, 1d), got {_shown(value)}")
        try:
            return Limits.parse(None, value, "bitcoin").max_time
        except LimitError as exc:
            setting.fail(exc.reason)

    def idle_threshold(self) -> float:
        setting = self.pick(
            "idle_threshold", self.task.limits.idle_threshold, "limits.idle_threshold"
        )
        value = setting.value
        if not _positive(value) or value > 100:
            setting.fail(f"expected a percentage above 0, at most 100, got {_shown(value)}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.given.get(key, default)
        if not isinstance(value, bool):
            raise TaskError(f"expected true or false, got {_shown(value)}", field=OPTION_NAMES[key])
        return value


def _text(setting: _Setting) -> str:
    if not isinstance(setting.value, str):
        setting.fail(f"expected a string, got {_shown(setting.value)}")
    return setting.value


def _words(setting: _Setting) -> list[str]:
    """A list option's strings (one string counts as a list of one)."""
    value = setting.value
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        setting.fail(f"expected a list of strings, got {_shown(value)}")
    words = list(items)
    for word in words:
        if not isinstance(word, str):
            setting.fail(f"expected strings, got {_shown(word)}")
    return words


def _positive(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def _amount(setting: _Setting, text: str | None = None) -> Amount:
    from clore.market import parse_amount

    raw = text if text is not None else _text(setting)
    try:
        amount = parse_amount(raw)
    except ValueError as exc:
        setting.fail(str(exc))
    if not math.isfinite(amount.value) or amount.value <= 0:
        setting.fail(f"expected an amount more than 0, got {raw!r}")
    return amount


def _output(raw: str) -> str | tuple[str]:
    """The normalised output path, or (why it is refused,)."""
    text = raw.strip()
    if not text:
        return ("expected a path",)
    if "\0" in text or "\\" in text:
        return ("a path with / between its parts (no NUL, no backslash)",)
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", text):
        return ("a path relative to the working directory, not an absolute one",)
    if ".." in path.parts:
        return ("a path inside the working directory (no ..)",)
    return str(path)
