"""Shell completion that knows the data: filter words, GPU models, order ids, profiles,
currencies and the sandbox's faults, from what is on this machine (never a request).

click's machinery does the work (``_CLORE_COMPLETE=bash_source clore`` prints the script,
the script runs ``clore`` with ``_CLORE_COMPLETE=bash_complete``); ``install`` registers
this module's shell classes under click's names, so the scripts are click's own and only
the answers differ:

- **filter words** of every ``[FILTER]...`` argument (``market``, ``gpus``, ``watch``,
  ``market stats``/``history``; ``rent --cheapest``): field names with their operators
  (``gp`` -> ``gpu=``, ``gpus>=``, ...), from ``clore.market.FIELDS`` and ``ALIASES``;
  after ``gpu=`` the GPU models and after ``cc=`` the countries of the cached marketplace
  (``clore.market.cache``, read without a client: nothing cached, no models);
- **order ids** (``cancel``, ``order``, ``ssh``, ... any ``ORDER`` argument) from the last
  ``clore orders`` listing of the same API (``clore.rentals.recent``); ``cancel``, ``ssh``
  and the other commands that act on a running order offer only orders not ended;
- **profiles** (``--profile``, ``config use``/``remove``) from config.toml;
- **currencies** (``--currency``) and their short names;
- **sandbox faults** (``sandbox fault ENDPOINT FAULT``) with what each does.

Completion never prints a traceback nor sends a request: any failure is no candidates.

Bash splits a word at the characters of ``COMP_WORDBREAKS`` (``gpu=40`` arrives as
``gpu``, ``=``, ``40``) and inserts a candidate verbatim in place of the part after the
last of them. The bash class joins such pieces back into the word, and answers with the
part of each candidate that replaces what bash replaces, shell-escaped (``gpus\\>=``, so
that the ``>`` is not a redirection) unless the word is inside quotes. zsh and fish get
whole words and quote them themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    add_completion_class,
)

if TYPE_CHECKING:
    from clore import Order, Server
    from clore.cli._context import AppContext

__all__ = [
    "ACTIVE_ONLY",
    "SHELLS",
    "complete_currencies",
    "complete_endpoints",
    "complete_faults",
    "complete_filters",
    "complete_id",
    "complete_profiles",
    "endpoint_of",
    "install",
    "remember_orders",
    "script",
]

#: The shells ``clore completion`` writes a script for.
SHELLS: Final = ("bash", "zsh", "fish")
#: Commands whose ORDER is a running order: only orders not ended are offered.
ACTIVE_ONLY: Final = frozenset(
    {"cancel", "ssh", "open", "copy", "verify", "price", "keep", "access"}
)
#: The metavar of the filter-word arguments (market, gpus, watch, market stats/history).
FILTER_METAVAR: Final = "[FILTER]..."
#: The label ``--sandbox`` keys its cache and its recent orders with.
EMBEDDED: Final = "sandbox:embedded"

# Operators by kind of field: all of them once the name is typed, the usual ones before.
_NUMERIC: Final = ("=", "!=", ">", ">=", "<", "<=")
_OPERATORS: Final[dict[str, tuple[str, ...]]] = {
    "number": _NUMERIC,
    "price": _NUMERIC,
    "version": _NUMERIC,
    "duration": _NUMERIC,
    "text": ("=", "!=", "~", "!~"),
    "choice": ("=", "!="),
    "flag": ("", "=no"),
}
_USUAL: Final[dict[str, tuple[str, ...]]] = {
    "number": ("=", ">=", "<="),
    "price": ("<=", ">="),
    "version": (">=", "="),
    "duration": (">=", "<="),
    "text": ("=", "~"),
    "choice": ("=",),
    "flag": ("",),
}
_WORD: Final = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(<=|>=|!=|!~|==|=|~|<|>)(.*)$", re.S)
# The COMP_WORDBREAKS characters that occur inside clore's words (filters, NAME=VALUE,
# ORDER:path, --option=value); bash splits there.
_BREAKS: Final = frozenset("=<>:")
# What an unquoted bash word must escape to stay one literal word.
_SPECIAL: Final = frozenset(" \t\n'\"\\<>|&;()$`!*?[]{}")
# A candidate ending so is not a whole word yet: bash adds no space after it.
_GOES_ON: Final = ("=", "~", "<", ">", ",")


# ---- where the data lives --------------------------------------------------------------


def _root_params(ctx: click.Context) -> dict[str, Any]:
    return dict(ctx.find_root().params)


def endpoint_of(*, sandbox: bool, profile: str | None, base_url: str | None) -> str:
    """The API a command talks to, as recent orders are keyed: ``sandbox:embedded``, else
    the base URL it resolves to (``--base-url``, the environment, the profile)."""
    if sandbox:
        return EMBEDDED
    from clore.config import resolve

    return resolve(profile, base_url=base_url).base_url.rstrip("/")


def _endpoint(ctx: click.Context) -> str:
    params = _root_params(ctx)
    return endpoint_of(
        sandbox=bool(params.get("sandbox")),
        profile=params.get("profile"),
        base_url=params.get("base_url"),
    )


def remember_orders(app: AppContext, orders: Iterable[Order]) -> None:
    """Keep the ids ``clore orders`` listed, for ``cancel <TAB>``; never fails the listing
    (completion is a convenience)."""
    try:
        from clore.rentals.recent import remember

        endpoint = endpoint_of(
            sandbox=app.sandbox or app.sandbox_instance is not None,
            profile=app.profile,
            base_url=app.base_url,
        )
        remember(endpoint, orders)
    except Exception:  # a cache that cannot be written changes nothing
        return


class _NoNetwork(Exception):
    """Completion asked for a request: it makes none."""


class _Offline:
    """A ``clore.market.cache.MarketClient`` that sends nothing."""

    has_api_key = False

    def marketplace(self) -> list[Server]:
        raise _NoNetwork

    def spot_marketplace(self, server_id: int) -> Any:
        raise _NoNetwork


def _cached_servers(ctx: click.Context) -> list[Server]:
    """The cached marketplace of the API this command talks to (any age), else ``[]``."""
    from clore.market.cache import load

    params = _root_params(ctx)
    # ``clore market`` keys its cache by the label its AppContext had then: the embedded
    # sandbox, --base-url, or "default" before a client exists (else the client's URL).
    labels = [EMBEDDED] if params.get("sandbox") else [params.get("base_url") or "default"]
    with contextlib.suppress(Exception):  # an unreadable config: the first label only
        labels.append(_endpoint(ctx))
    for label in dict.fromkeys(labels):
        try:
            data = load(
                _Offline(),
                endpoint=label,
                now=float("inf"),  # any age: a listing a day old still names the models
                max_age=float("inf"),
                rates=False,
            )
        except _NoNetwork:
            continue
        if data.servers:
            return data.servers
    return []


# ---- filter words -----------------------------------------------------------------------


def _field_items(prefix: str) -> list[CompletionItem]:
    from clore.market import ALIASES, FIELDS

    typed = prefix.lower()
    items: list[CompletionItem] = []
    names = [(name, name) for name in FIELDS if name.startswith(typed)]
    if typed and not names:  # another spelling (country, vram) only when no field starts so
        names = [(alias, field) for alias, field in ALIASES.items()]
    for shown, name in names:
        if not shown.startswith(typed):
            continue
        field = FIELDS[name]
        exact = shown == typed
        operators = (_OPERATORS if exact else _USUAL)[field.kind]
        items += [CompletionItem(shown + op, help=field.help) for op in operators]
    return items


def _model_queries(servers: list[Server]) -> dict[str, str]:
    """Each GPU model on the market -> the shortest query that names exactly it (what
    ``gpu=`` matches: ``4090``, ``3060Ti``, ``A100-SXM4-80GB``, ``3060 Laptop``)."""
    from clore.market import canonical_model, matches_model
    from clore.market.models import FAMILY_WORDS

    models = sorted({canonical_model(s.gpu_model) for s in servers if s.gpu_model} - {""})

    def named(query: str) -> frozenset[str]:
        return frozenset(m for m in models if matches_model(query.lower(), m))

    queries: dict[str, str] = {}
    for model in models:
        words = model.split()
        while len(words) > 1 and words[0].lower() in FAMILY_WORDS:
            words.pop(0)
        short = " ".join(words)
        wanted = named(model)
        for query in (short.replace(" ", ""), short.replace(" ", "-"), short, model):
            if named(query) == wanted:
                queries[model] = query
                break
    return queries


def _value_items(ctx: click.Context, name: str, op: str, value: str) -> list[CompletionItem]:
    from clore.market import ALIASES, FIELDS

    field = FIELDS.get(ALIASES.get(name.lower(), name.lower()))
    if field is None:
        return []
    if field.kind == "flag":
        return [CompletionItem(f"{name}{op}{v}") for v in ("yes", "no") if v.startswith(value)]
    if not (field.model or field.kind == "choice"):
        return []
    # A list (gpu=4090,3090): the value after the last comma is the one being typed.
    head, _, typed = value.rpartition(",")
    head = head + "," if head or value.startswith(",") else ""
    servers = _cached_servers(ctx)
    start = f"{name}{op}{head}"
    lowered = typed.lower()
    if field.model:
        from clore.market.gpus import natural_key

        items = []
        queries = _model_queries(servers)
        for model, query in sorted(queries.items(), key=lambda pair: natural_key(pair[1])):
            for shown in (query, model):
                if shown.lower().startswith(lowered):
                    items.append(CompletionItem(start + shown, help=model))
                    break
        return items
    countries = sorted({(s.country or "").upper() for s in servers} - {""})
    return [CompletionItem(start + c) for c in countries if c.startswith(typed.upper())]


def complete_filters(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Candidates for one filter word: field names with operators, then values."""
    from clore.market import ALIASES, FIELDS

    if incomplete.startswith("-"):
        return []
    match = _WORD.match(incomplete)
    if match is None:
        name = incomplete.rstrip("!")
        if not re.fullmatch(r"[A-Za-z_0-9]*", name):
            return []
        items = _field_items(name)
    else:
        name, op, value = match.groups()
        items = _value_items(ctx, name, op, value)
        field = FIELDS.get(ALIASES.get(name.lower(), name.lower()))
        if not value and field is not None:  # "gpus>": the longer operators too
            longer = [o for o in _OPERATORS[field.kind] if o.startswith(op) and o != op]
            items += [CompletionItem(name + o, help=field.help) for o in longer]
    typed = incomplete.lower()
    kept = {
        i.value: i for i in items if i.value.lower().startswith(typed) and i.value != incomplete
    }
    return list(kept.values())


# ---- ids, profiles, currencies, faults ------------------------------------------------------


def complete_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Order ids from the last ``clore orders`` of this API, for an order argument."""
    if param.name not in ("order_id", "order_ids") or (incomplete and not incomplete.isdigit()):
        return []
    from clore.rentals.recent import recall

    running_only = (ctx.info_name or "") in ACTIVE_ONLY
    given = {str(v) for v in (ctx.params.get(param.name or "") or ()) if isinstance(v, int)}
    return [
        CompletionItem(str(order.id), help=order.describe())
        for order in recall(_endpoint(ctx))
        if str(order.id).startswith(incomplete)
        and not (running_only and order.ended)
        and str(order.id) not in given
    ]


def complete_profiles(incomplete: str) -> list[CompletionItem]:
    """The profiles of config.toml (the active one described so)."""
    from clore import config

    cfg = config.load()
    return [
        CompletionItem(name, help="active" if name == cfg.active else None)
        for name in sorted(cfg.profiles)
        if name.startswith(incomplete)
    ]


def complete_currencies(incomplete: str) -> list[CompletionItem]:
    """``btc``, ``clore``, ``usd`` and the API's names, each one ``parse_currency`` takes."""
    from clore.market import CURRENCY_LABELS, parse_currency

    names = [label.lower() for label in CURRENCY_LABELS.values()] + list(CURRENCY_LABELS)
    items = []
    for name in dict.fromkeys(names):
        try:
            key = parse_currency(name)
        except ValueError:
            continue
        if name.lower().startswith(incomplete.lower()):
            items.append(CompletionItem(name, help=key if key != name else None))
    return items


def complete_faults(incomplete: str) -> list[CompletionItem]:
    """The sandbox's faults, with what each does."""
    from clore.sandbox import FAULT_HELP, FAULTS

    return [CompletionItem(f, help=FAULT_HELP[f]) for f in FAULTS if f.startswith(incomplete)]


def complete_endpoints(incomplete: str) -> list[CompletionItem]:
    """The API endpoints a sandbox fault can target."""
    from clore.sandbox import ENDPOINTS

    return [CompletionItem(e) for e in ENDPOINTS if e.startswith(incomplete)]


# ---- the shells --------------------------------------------------------------------------


def _extra(
    ctx: click.Context, target: click.Command | click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Candidates for parameters defined in modules that give none of their own: filter
    words for ``[FILTER]...`` arguments, currencies for ``--currency``."""
    if isinstance(target, click.Argument) and target.metavar == FILTER_METAVAR:
        return complete_filters(ctx, incomplete)
    if isinstance(target, click.Option) and target.name == "currency":
        return complete_currencies(incomplete)
    return []


def _split(text: str) -> list[str]:
    try:
        from click.shell_completion import split_arg_string
    except ImportError:  # click 8.1
        from click.parser import split_arg_string  # type: ignore[attr-defined,no-redef,unused-ignore]
    return list(split_arg_string(text))


class _Safe(ShellComplete):
    """What the three shells share: the extra candidates, and no failure ever shown."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import _resolve_context, _resolve_incomplete

        ctx = _resolve_context(self.cli, self.ctx_args, self.prog_name, args)
        target, incomplete = _resolve_incomplete(ctx, args, incomplete)
        # market's FILTER completes its subcommands' names itself; the filters come after.
        return [*target.shell_complete(ctx, incomplete), *_extra(ctx, target, incomplete)]

    def complete(self) -> str:
        try:
            return super().complete()
        except Exception:  # a completion never shows a traceback
            return ""


_PLAIN_BRANCH: Final = """        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
"""
_NOSPACE_BRANCH: Final = """        elif [[ $type == 'nospace' ]]; then
            COMPREPLY+=($value)
            compopt -o nospace
"""


class _Bash(_Safe, BashComplete):
    """Bash, its word breaks undone (see the module docstring). Its script is click's with
    one more answer type, ``nospace`` (a candidate after which bash adds no space)."""

    source_template = BashComplete.source_template.replace(
        _PLAIN_BRANCH, _PLAIN_BRANCH + _NOSPACE_BRANCH
    )
    _kept: str = ""
    _quoted: bool = False
    _option: str = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        words = os.environ.get("COMP_WORDS", "")
        cword = int(os.environ.get("COMP_CWORD", "0"))
        if "\n" not in words:  # not click's script (COMP_WORDS joined by newlines)
            return super().get_completion_args()
        raw = words.split("\n")[: cword + 1]
        while len(raw) <= cword:
            raw.append("")
        groups: list[list[str]] = []
        for index, token in enumerate(raw):
            joins = token != "" and (_is_break(token) or _is_break(raw[index - 1]))
            if groups and index > 1 and joins:
                groups[-1].append(token)
            else:
                groups.append([token])
        current = groups[-1]
        last = current[-1]
        before = current[:-1] + ([last] if _is_break(last) else [])
        self._kept = _dequote("".join(before))
        self._quoted = last[:1] in ("'", '"')
        incomplete = _dequote("".join(current))
        if incomplete.startswith("-") and "=" in incomplete:
            self._option = incomplete.partition("=")[0] + "="
        args = [_dequote("".join(group)) for group in groups[1:-1]]
        return args, incomplete

    def complete(self) -> str:
        try:
            args, incomplete = self.get_completion_args()
            items = self.get_completions(args, incomplete)
            kept = self._kept
            if self._option and kept.startswith(self._option):
                kept = kept[len(self._option) :]  # an option's value: click gives values
            other = [self.format_completion(i) for i in items if i.type != "plain"]
            values = [str(i.value) for i in items if i.type == "plain"]
            texts = _bash_texts(values, kept, quoted=self._quoted)
            if _NOSPACE_BRANCH not in self.source_template:  # click changed its script
                texts = [("plain", text) for _, text in texts]
            # The script reads each line with `read` (no -r): backslashes are doubled.
            plain = [f"{kind},{text.replace(chr(92), chr(92) * 2)}" for kind, text in texts]
            return "\n".join(other + plain)
        except Exception:  # a completion never shows a traceback
            return ""


def _bash_texts(values: list[str], kept: str, *, quoted: bool) -> list[tuple[str, str]]:
    """(type, text) for bash of each candidate: the part after ``kept`` (what bash
    replaces), made one literal word, and ``nospace`` when the word goes on (an operator,
    a list's comma: no space after it).

    A whole word (nothing kept) holding a character the shell would take (``gpus>=``) is
    single-quoted, and then every candidate is, so that their common start (what bash
    inserts at once) is a quoted word too; after a kept part (``gpu=``) a space or other
    character is escaped with a backslash (``3060\\ Laptop``); inside quotes bash needs
    neither. Should the common start end inside an escape, that start is offered as well.
    """
    parts = [v[len(kept) :] for v in values if v.startswith(kept)]
    kinds = ["nospace" if v.endswith(_GOES_ON) else "plain" for v in parts]
    if quoted:
        texts = parts
    elif not kept and any(ch in _SPECIAL for v in parts for ch in v):
        texts = ["'" + v.replace("'", "'\\''") + "'" for v in parts]
    else:
        texts = [_escape(v, first=not kept) for v in parts]
    pairs = list(zip(kinds, texts, strict=True))
    common = _common_start(texts) if len(texts) > 1 else ""
    dangling = len(common) - len(common.rstrip("\\"))
    if dangling % 2 and common[:-1]:
        pairs.append(("nospace", common[:-1]))
    return pairs


def _common_start(texts: list[str]) -> str:
    """The longest start every text shares (what bash inserts at the first TAB)."""
    first, last = min(texts), max(texts)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _is_break(token: str) -> bool:
    return bool(token) and all(ch in _BREAKS for ch in token)


def _dequote(text: str) -> str:
    return "".join(_split(text)) if text else ""


def _escape(text: str, *, first: bool) -> str:
    out = []
    for index, ch in enumerate(text):
        special = ch in _SPECIAL or (first and index == 0 and ch in "~#")
        out.append("\\" + ch if special else ch)
    return "".join(out)


class _Zsh(_Safe, ZshComplete):
    """zsh: whole words (zsh quotes them)."""


class _Fish(_Safe, FishComplete):
    """fish: whole words (fish escapes them)."""


_CLASSES: Final[dict[str, type[ShellComplete]]] = {"bash": _Bash, "zsh": _Zsh, "fish": _Fish}


def install() -> None:
    """Register the shell classes under click's names (``bash``, ``zsh``, ``fish``)."""
    for name, cls in _CLASSES.items():
        add_completion_class(cls, name)


def script(shell: str, command: click.Command, prog_name: str = "clore") -> str:
    """The completion script of ``shell`` (what ``_CLORE_COMPLETE=<shell>_source`` prints)."""
    install()
    complete_var = f"_{prog_name.replace('-', '_').upper()}_COMPLETE"
    return _CLASSES[shell](command, {}, prog_name, complete_var).source()
