"""``--sort price,-reliability``: stable multi-key sorting of servers, unknown values last.

Sort keys are the filter language's fields (``clore.market.filters.FIELDS``); a leading
``-`` sorts that key descending. Servers whose value is unknown go last whatever the
direction. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clore.market.filters import ALIASES, FIELDS, Field
from clore.market.pricing import PriceContext

if TYPE_CHECKING:
    from clore._wire import Server

__all__ = ["SortError", "SortKey", "parse_sort", "sort_servers"]


class SortError(ValueError):
    """A ``--sort`` key is not a known field; the message lists the fields."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"unknown sort key {key!r}. Known fields: {', '.join(FIELDS)}")


@dataclass(frozen=True)
class SortKey:
    """One key of ``--sort``: a field and a direction."""

    field: Field
    descending: bool = False

    def value(self, server: Server, ctx: PriceContext) -> Any:
        """The value this key sorts ``server`` by (None when unknown)."""
        value = self.field.getter(server, ctx)
        if self.field.kind in ("text", "choice") and value is not None:
            value = str(value).lower() or None
        if self.field.kind == "version" and value == ():
            return None
        return value


def parse_sort(spec: str) -> list[SortKey]:
    """Parse ``price,-reliability`` into keys; raises ``SortError`` for an unknown field."""
    keys: list[SortKey] = []
    for raw in spec.split(","):
        text = raw.strip()
        if not text:
            continue
        descending = text.startswith("-")
        name = text.lstrip("+-").strip().lower()
        name = ALIASES.get(name, name)
        found = FIELDS.get(name)
        if found is None:
            raise SortError(text)
        keys.append(SortKey(found, descending))
    if not keys:
        raise SortError(spec)
    return keys


def sort_servers(servers: Iterable[Server], keys: list[SortKey], ctx: PriceContext) -> list[Server]:
    """Servers sorted by ``keys`` (first key most significant); stable; unknown values last."""
    result = list(servers)
    # Sorting by the least significant key first and relying on stability gives a
    # multi-key sort where each key keeps its own direction.
    for key in reversed(keys):
        known = [(key.value(server, ctx), server) for server in result]
        present = [pair for pair in known if pair[0] is not None]
        missing = [server for value, server in known if value is None]
        present.sort(key=lambda pair: pair[0], reverse=key.descending)
        result = [server for _, server in present] + missing
    return result
