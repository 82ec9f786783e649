"""The task file of ``clore run`` and the resolved, validated ``JobSpec``.

A task file is YAML in SkyPilot's shape (``resources``, ``workdir``, ``env`` or ``envs``,
``setup``, ``run``) plus what a rental bills by (``outputs`` to bring back, ``limits``)::

    name: train
    resources:
      gpu: RTX 4090          # an exact model, as the filter language's gpu=
      gpus: 1                # at least this many
      gpuram: 24             # GB per GPU, at least
      price: 2usd            # cap per day (0.1usd/h: per hour), any currency
      filters: ["reliability>=0.95"]
    workdir: .               # uploaded, minus .gitignore and .cloreignore matches
    env:
      EPOCHS: 3
    setup: pip install -r requirements.txt
    run: python train.py --epochs "$EPOCHS"
    outputs: [out/]
    limits:
      max_spend: 5usd        # spend plus fees
      max_time: 2h
      idle: 15m              # GPU utilisation under 10 % for that long

``load_task``/``parse_task`` decode it with ``yaml.safe_load`` and ``msgspec.convert``
into ``TaskFile``: an unknown field (a typo), a wrong type, a YAML syntax error (with its
line), a duplicate key, an empty file or a document that is not a mapping raise
``TaskError``, one line naming the file and the field (``train.yaml: resources.gpus:
expected an integer, got 'x'``). Numbers are read as text where text is meant
(``gpu: 4090``, ``price: 2``, ``EPOCHS: 3``); ``envs`` is accepted for ``env``.

``resolve`` lays the command line's options over the file and checks everything before
anything is rented: amounts and currencies (``clore.market.parse_amount``), durations
(as ``--max-time`` reads them), filter words (``clore.market.parse_filter``), ports (as
``rent --ports``), outputs (relative, never leaving the working directory), variable
names, the command (``run`` or ``-- COMMAND``). A bid (or a highest bid) implies spot.
The market filters are built from ``resources``: ``gpu=MODEL``, ``gpus>=N``,
``gpuram>=G``, ``price<=X`` (``spot_price<=X`` and ``spot`` for a spot rental), then
``resources.filters``, then the command line's; a command-line filter on a field drops
the file's filters on that field (the command line wins).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec

from clore._errors import ConfigError

__all__ = [
    "DEFAULT_IMAGE",
    "OPTION_NAMES",
    "JobSpec",
    "Limits",
    "Resources",
    "TaskError",
    "TaskFile",
    "load_task",
    "parse_task",
    "resolve",
]

#: The image ``clore rent`` uses by default: the vendor's Ubuntu 24.04 with Jupyter and sshd.
DEFAULT_IMAGE: Final = "cloreai/jupyter:ubuntu24.04-v2"
#: A task file larger than this is refused before it is parsed.
MAX_TASK_BYTES: Final = 1024 * 1024


class TaskError(ConfigError):
    """A task file or an option that cannot be used; one line: ``<file>: <field>: <reason>``.

    ``field`` is the field path (``resources.gpus``) or the option (``--gpus``), None for
    the file as a whole; ``source`` the file (None for an option); ``reason`` the rest.
    """

    def __init__(self, reason: str, *, field: str | None = None, source: str | None = None):
        self.reason = " ".join(reason.split())
        self.field = field
        self.source = source
        super().__init__(": ".join(part for part in (source, field, self.reason) if part))


class Resources(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to rent: ``resources:`` of the task file."""

    gpu: str | None = None
    gpus: int | None = None
    gpuram: float | None = None
    price: str | None = None
    spot: bool = False
    bid: str | None = None
    max_bid: str | None = None
    image: str = DEFAULT_IMAGE
    ports: list[str] = []
    currency: str | None = None
    filters: list[str] = []


class Limits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When the job is ended early: ``limits:`` of the task file."""

    max_spend: str | None = None
    max_time: str | None = None
    idle: str | None = None
    idle_threshold: float = 10.0


class TaskFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A task file as written (nothing checked beyond the types; ``resolve`` checks)."""

    name: str | None = None
    resources: Resources = msgspec.field(default_factory=Resources)
    workdir: str | None = None
    env: dict[str, str] = {}
    setup: str | None = None
    run: str | None = None
    outputs: list[str] = []
    limits: Limits = msgspec.field(default_factory=Limits)
    excludes: list[str] = []


@dataclass(frozen=True)
class JobSpec:
    """Everything the runner needs, checked, with the command line's options applied.

    ``ports`` always holds ``22:tcp`` first; ``filters`` are filter-language words;
    ``max_spend`` is the amount as written (the runner converts it with market rates);
    ``max_time`` and ``idle`` are seconds. ``order_id`` is an existing rental to use.
    """

    name: str
    command: str
    setup: str | None
    env: dict[str, str]
    workdir: Path | None
    excludes: tuple[str, ...]
    outputs: tuple[str, ...]
    filters: tuple[str, ...]
    server_id: int | None
    order_id: int | None
    spot: bool
    bid: str | None
    max_bid: str | None
    image: str
    ports: tuple[str, ...]
    currency: str | None
    max_spend: str | None
    max_time: float | None
    idle: float | None
    idle_threshold: float
    verify: bool = True
    keep: bool = False
    recover: bool = False

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values (``workdir`` a string, tuples lists); env values included."""
        data = asdict(self)
        data["workdir"] = None if self.workdir is None else str(self.workdir)
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in data.items()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        """The spec ``to_json`` wrote (unknown keys are ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        workdir = known.get("workdir")
        known["workdir"] = None if workdir is None else Path(workdir)
        for name in ("excludes", "outputs", "filters", "ports"):
            known[name] = tuple(known.get(name) or ())
        known["env"] = dict(known.get("env") or {})
        return cls(**known)


#: How ``resolve``'s override keywords are named in errors (the ``clore run`` options).
OPTION_NAMES: Final[Mapping[str, str]] = {
    "command": "COMMAND",
    "name": "--name",
    "workdir": "--workdir",
    "filters": "FILTER",
    "server_id": "--server",
    "order_id": "--order",
    "gpu": "--gpu",
    "gpus": "--gpus",
    "gpuram": "--gpuram",
    "price": "--price",
    "spot": "--spot",
    "bid": "--bid",
    "max_bid": "--max-bid",
    "image": "--image",
    "ports": "--ports",
    "currency": "--currency",
    "env": "--env",
    "max_spend": "--max-spend",
    "max_time": "--max-time",
    "idle": "--idle",
    "idle_threshold": "--idle-threshold",
    "verify": "--no-verify",
    "keep": "--keep",
    "recover": "--recover",
    "outputs": "--output",
    "excludes": "--exclude",
}

# ---------------------------------------------------------------------------- decoding

#: Fields whose YAML numbers are meant as text (``gpu: 4090``, ``price: 2``, ``idle: 900``).
_TEXT_FIELDS: Final = {
    (): ("name",),
    ("resources",): ("gpu", "price", "bid", "max_bid"),
    ("limits",): ("max_spend", "max_time", "idle"),
}
#: List fields that also take one string (``outputs: out/``).
_LIST_FIELDS: Final = {(): ("outputs", "excludes"), ("resources",): ("ports", "filters")}
#: What to write instead of SkyPilot's names that mean something else here.
_HINTS: Final[Mapping[str, str]] = {
    "file_mounts": "not supported: put the files in workdir",
    "num_nodes": "not supported: a job runs on one machine",
    "secrets": "not supported: use env",
    "resources.accelerators": "write gpu: MODEL and gpus: N",
    "resources.use_spot": "write spot: true",
    "resources.image_id": "write image: NAME",
    "resources.cpus": 'write filters: ["threads>=8"]',
    "resources.memory": 'write filters: ["ram>=32"]',
    "resources.disk_size": 'write filters: ["disk>=100"]',
}
_TYPE_WORDS: Final = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
}
# msgspec's messages; the location is left out for the document itself.
_EXPECTED_RE: Final = re.compile(r"^Expected `([^`]*)`, got `([^`]*)`(?: - at `\$([^`]*)`)?$")
_UNKNOWN_RE: Final = re.compile(r"^Object contains unknown field `([^`]*)`(?: - at `\$([^`]*)`)?$")
_STEP_RE: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def load_task(path: str | Path) -> TaskFile:
    """Read and decode the task file at ``path``; ``TaskError`` naming it otherwise."""
    source = str(path)
    file = Path(path)
    try:
        if file.stat().st_size > MAX_TASK_BYTES:
            raise TaskError(f"larger than {MAX_TASK_BYTES // 1024} KiB", source=source)
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskError("no such file", source=source) from None
    except IsADirectoryError:
        raise TaskError("is a directory, not a task file", source=source) from None
    except UnicodeDecodeError:
        raise TaskError("not UTF-8 text", source=source) from None
    except OSError as exc:
        raise TaskError(f"cannot read it: {exc.strerror or exc}", source=source) from None
    return parse_task(text, source=source)


def parse_task(text: str, *, source: str = "<task>") -> TaskFile:
    """Decode a task file's text; ``TaskError`` (naming ``source`` and the field) otherwise."""
    import yaml  # type: ignore[import-untyped]

    try:
        # yaml.safe_load's loader, refusing duplicate keys (see _loader)
        doc = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise TaskError(_yaml_reason(exc), source=source) from None
    if doc is None:
        raise TaskError("the task file is empty (expected fields such as run:)", source=source)
    if not isinstance(doc, dict):
        raise TaskError(
            f"expected a mapping of fields (name, resources, run, ...), got {_shown(doc)}",
            source=source,
        )
    doc = _prepare(doc, source)
    try:
        return msgspec.convert(doc, TaskFile)
    except msgspec.ValidationError as exc:
        field, reason = _translate(str(exc), doc)
        raise TaskError(reason, field=field, source=source) from None


@cache
def _loader() -> Any:
    """``yaml.SafeLoader`` that refuses a key given twice (the second would win silently)."""
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: SafeLoader reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def _yaml_reason(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    tail = f" ({context})" if context else ""
    return f"{where}invalid YAML: {problem}{tail}"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    return repr(value) if isinstance(value, int | float) else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _prepare(doc: dict[Any, Any], source: str) -> dict[Any, Any]:
    """The document with YAML's conveniences settled: ``envs`` for ``env``, numbers where
    text is meant, one string for a list, empty sections as absent."""
    for key in doc:
        if not isinstance(key, str):
            raise TaskError(f"expected field names, got {_shown(key)}", source=source)
    doc = dict(doc)
    if "envs" in doc:
        if "env" in doc:
            raise TaskError("give env or envs, not both", field="envs", source=source)
        doc["env"] = doc.pop("envs")
    sections: dict[tuple[str, ...], dict[Any, Any]] = {(): doc}
    for name in ("resources", "limits"):
        if doc.get(name, {}) is None:
            del doc[name]
        elif isinstance(doc.get(name), dict):
            doc[name] = sections[(name,)] = dict(doc[name])
    for path, section in sections.items():
        for key in [k for k, v in section.items() if v is None]:
            if key in _LIST_FIELDS.get(path, ()) or (path, key) == ((), "env"):
                del section[key]
        for key in _TEXT_FIELDS.get(path, ()):
            if _is_number(section.get(key)):
                section[key] = _number_text(section[key])
        for key in _LIST_FIELDS.get(path, ()):
            value = section.get(key)
            if isinstance(value, str):
                section[key] = [value]
            elif key == "ports" and isinstance(value, list):
                section[key] = [str(v) if _is_number(v) else v for v in value]
    if isinstance(doc.get("env"), dict):
        doc["env"] = _prepare_env(doc["env"], source)
    return doc


def _number_text(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _prepare_env(env: dict[Any, Any], source: str) -> dict[str, Any]:
    prepared: dict[str, Any] = {}
    for key, value in env.items():
        if not isinstance(key, str):
            raise TaskError(f"{_shown(key)} is not a variable name", field="env", source=source)
        if _is_number(value):
            value = _number_text(value)
        elif not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, bool) else ""
            raise TaskError(
                f"expected a string, got {_shown(value)}{hint}", field=f"env.{key}", source=source
            )
        prepared[key] = value
    return prepared


def _translate(message: str, doc: Mapping[str, Any]) -> tuple[str | None, str]:
    """(field path, reason) from a ``msgspec.ValidationError`` message."""
    unknown = _UNKNOWN_RE.match(message)
    if unknown:
        name, at = unknown.groups()
        parent = (at or "").lstrip(".")
        field = f"{parent}.{name}" if parent else name
        return field, _unknown_reason(field, parent)
    expected = _EXPECTED_RE.match(message)
    if expected:
        want, _got, at = expected.groups()
        words = [_TYPE_WORDS.get(part, part) for part in want.split(" | ") if part != "null"]
        got = _shown(_lookup(doc, at or ""))
        return (at or "").lstrip(".") or None, f"expected {' or '.join(words)}, got {got}"
    field, _, reason = message.partition(" - at `$")
    return (reason.rstrip("`").lstrip(".") or None), field


def _unknown_reason(field: str, parent: str) -> str:
    if field in _HINTS:
        return f"unknown field: {_HINTS[field]}"
    name = field.rpartition(".")[2]
    if not parent:
        for section, fields in (
            ("resources", Resources.__struct_fields__),
            ("limits", Limits.__struct_fields__),
        ):
            if name in fields:
                return f"unknown field here: it belongs under {section}:"
    struct: Any = {"resources": Resources, "limits": Limits}.get(parent, TaskFile)
    known = list(struct.__struct_fields__)
    close = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return f"unknown field ({guess}known: {', '.join(known)})"


def _lookup(doc: Any, at: str) -> Any:
    value = doc
    for key, index in _STEP_RE.findall(at):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


# ---------------------------------------------------------------------------- resolving


def resolve(
    task: TaskFile | str | Path | None = None,
    *,
    base_dir: Path | None = None,
    source: str | None = None,
    **overrides: Any,
) -> JobSpec:
    """The job to run: ``task`` (a ``TaskFile``, a task file's path, or None) with the
    command line's ``overrides`` (None: not given) laid over it, everything checked.

    ``base_dir`` is where the file's ``workdir`` is relative to (its directory; the
    current one by default), ``source`` the file's name in errors (both taken from the
    path when ``task`` is one). Overrides are the keys of ``OPTION_NAMES``; ``env`` is
    merged over the file's, ``excludes`` added to them, ``filters`` added after them (a
    field filtered on the command line drops the file's filters on it), every other one
    replaces the file's value; ``spot=False`` means on-demand (the file's bids are
    dropped). ``TaskError`` names the field or option at fault.
    """
    from clore.jobs._resolve import Resolver

    unknown = sorted(set(overrides) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"resolve() got unknown overrides: {', '.join(unknown)}")
    if isinstance(task, str | Path):
        path = Path(task)
        source = source or str(path)
        base_dir = base_dir or path.parent
        task = load_task(path)
    given = {key: value for key, value in overrides.items() if value is not None}
    return Resolver(task or TaskFile(), base_dir, source, given).spec()
