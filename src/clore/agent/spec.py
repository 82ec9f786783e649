"""What a tool is (``ToolSpec``), what it returns (``ToolResult``) and how it refuses
(``ToolError``); its arguments as a msgspec Struct, which is also its JSON schema.

A tool's arguments are one ``msgspec.Struct`` (``forbid_unknown_fields``, optional
fields defaulting to ``UNSET`` so the schema has no nulls): ``schema_of`` turns it into
the tool's ``input_schema`` (an object schema with ``additionalProperties: false``, no
``$ref`` at the top), and ``typed`` wraps a handler taking the Struct into the
``(context, dict) -> ToolResult`` handler the registry holds, validating the dict first
(a bad argument is a ``ToolError`` naming the field, not an exception of the server).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from clore.agent.context import AgentContext

__all__ = [
    "Handler",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "schema_of",
    "typed",
]

Args = TypeVar("Args", bound=msgspec.Struct)
Handler = Callable[["AgentContext", dict[str, Any]], "ToolResult"]


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: ``data`` (JSON-able, structured), ``text`` (compact, for the
    model) and ``is_error`` (a refused guard, a bad argument, an API error)."""

    data: dict[str, Any]
    text: str
    is_error: bool = False


class ToolError(Exception):
    """A tool call that cannot be done: ``message`` says what the model can do about it,
    ``data`` holds the figures (``error`` names the kind: ``bad_arguments``,
    ``refused``, ``rate_limited``, ...)."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = {"error": data.pop("error", "failed"), **data}

    def result(self) -> ToolResult:
        """The ``is_error`` result this error stands for."""
        return ToolResult(
            data={**self.data, "message": self.message}, text=self.message, is_error=True
        )


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """One tool: its name, title, description (a paragraph for a model), JSON schema,
    the MCP annotations (true ones), whether it changes anything (``mutating``: not
    registered at all in read-only mode) and its handler."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = True
    mutating: bool
    handler: Handler
    #: The Struct the arguments are checked against (None: the handler checks them).
    arguments: type[msgspec.Struct] | None = field(default=None, repr=False)

    def annotations(self) -> dict[str, Any]:
        """The MCP tool annotations (``readOnlyHint``, ...) with the title."""
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


def schema_of(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of ``struct`` as an MCP ``inputSchema``: the object schema itself
    (nested definitions kept under ``$defs``), without a title."""
    schema: dict[str, Any] = msgspec.json.schema(struct)
    ref = schema.get("$ref", "")
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    name = ref.rsplit("/", 1)[-1]
    top = dict(defs.pop(name, schema))
    top.pop("title", None)
    if defs:
        top["$defs"] = defs
    top.setdefault("properties", {})
    top["additionalProperties"] = False
    return top


def parse_arguments(struct: type[Args], raw: Mapping[str, Any] | None) -> Args:
    """``raw`` checked and converted to ``struct``; ``ToolError`` naming the bad field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ToolError("arguments must be a JSON object", error="bad_arguments")
    try:
        return msgspec.convert(dict(raw), struct, strict=False)
    except msgspec.ValidationError as exc:
        raise ToolError(f"bad arguments: {exc}", error="bad_arguments") from None


def typed(struct: type[Args], fn: Callable[[AgentContext, Args], ToolResult]) -> Handler:
    """A registry handler: check the arguments against ``struct``, then call ``fn``."""

    def handler(ctx: AgentContext, raw: dict[str, Any]) -> ToolResult:
        return fn(ctx, parse_arguments(struct, raw))

    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = fn.__doc__
    return handler
