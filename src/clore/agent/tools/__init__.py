"""The tool registry: ``tools(policy)`` and ``call_tool(ctx, name, arguments)``.

Tools come in groups, one module each, listed in ``GROUPS`` (each module has ``TOOLS:
list[ToolSpec]``): ``market`` (search_market, list_gpus, show_server), ``renting``
(quote_rental, rent_server), ``orders`` (list_orders, show_order, verify_order,
cancel_order), ``account`` (wallets, spend) and ``jobs`` — the place where the job tools
(start, status, logs, stop over ``clore.jobs``) plug in: they go in that module's
``TOOLS`` and need nothing else here.

``call_tool`` never raises for what a model or the world can cause: bad arguments, a
refused guard, an API error (with the seconds to wait after a rate limit), an order that
may exist; each is a ``ToolResult`` with ``is_error``. A mutating tool is audited (a
``call`` line before, a ``result`` line after; no audit line, no call) and, in read-only
mode, does not exist. Every result is scrubbed of the secrets the context knows.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any, Final

from clore.agent.audit import fingerprint, mask_arguments
from clore.agent.ledger import LedgerError
from clore.agent.spec import ToolError, ToolResult, ToolSpec

if TYPE_CHECKING:
    from clore.agent.context import AgentContext
    from clore.agent.policy import AgentPolicy

__all__ = ["GROUPS", "all_tools", "call_tool", "error_result", "tools"]

#: The tool groups, in listing order (modules with ``TOOLS``).
GROUPS: Final = (
    "clore.agent.tools.market",
    "clore.agent.tools.renting",
    "clore.agent.tools.orders",
    "clore.agent.tools.account",
    "clore.agent.tools.jobs",
)

_log = logging.getLogger("clore.agent")


def all_tools() -> list[ToolSpec]:
    """Every tool of every group, read-only mode or not."""
    found: list[ToolSpec] = []
    for name in GROUPS:
        found.extend(importlib.import_module(name).TOOLS)
    return found


def tools(policy: AgentPolicy) -> list[ToolSpec]:
    """The tools this policy registers: in read-only mode, only those that change nothing."""
    listed = all_tools()
    return [t for t in listed if not t.mutating] if policy.read_only else listed


def error_result(exc: BaseException) -> ToolResult:
    """What an exception of the SDK (or anything else) tells the model."""
    import clore

    if isinstance(exc, ToolError):
        return exc.result()
    if isinstance(exc, clore.RateLimitError):
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        return ToolError(
            f"rate limited by Clore: wait {wait:g} s and call again",
            error="rate_limited",
            retry_after_seconds=wait,
        ).result()
    if isinstance(exc, clore.AuthenticationError):
        return ToolError(
            "the API key is missing or wrong: the person must configure it (clore config set)",
            error="authentication",
        ).result()
    if isinstance(exc, clore.NotEnoughBalanceError):
        return ToolError(
            "not enough balance in the wallet of this currency: pay in another or ask the "
            "person to top up (wallets shows the balances)",
            error="not_enough_balance",
        ).result()
    if isinstance(exc, clore.ServerAlreadyRentedError | clore.ServerOfflineError):
        return ToolError(
            f"the server was taken or went offline meanwhile ({exc.error}): nothing was rented; "
            "search again",
            error="unavailable",
        ).result()
    if isinstance(exc, clore.PriceChangedError):
        return ToolError(
            "the price changed as the order was sent: nothing was rented; quote again",
            error="price_changed",
        ).result()
    if isinstance(exc, clore.ParameterError):
        return ToolError(f"bad argument: {exc}", error="bad_arguments").result()
    if isinstance(exc, clore.TransportError | clore.UnexpectedResponseError | clore.DatabaseError):
        return ToolError(
            f"Clore did not answer properly ({exc}): try again in a few seconds",
            error="unavailable",
            retry_after_seconds=5.0,
        ).result()
    if isinstance(exc, clore.APIError):
        return ToolError(
            f"Clore refused: {exc}", error="api_error", code=exc.code, api_error=exc.error
        ).result()
    if isinstance(exc, clore.ConfigError):
        return ToolError(f"configuration problem: {exc}", error="config").result()
    if isinstance(exc, clore.CloreError):
        return ToolError(str(exc), error=type(exc).__name__).result()
    if isinstance(exc, LedgerError):
        return ToolError(
            f"the agent's record of its orders is unreadable ({exc}): the person must fix it",
            error="ledger",
        ).result()
    if isinstance(exc, OSError):
        return ToolError(f"a local file could not be used: {exc}", error="local_file").result()
    return ToolError(f"internal error ({type(exc).__name__}): {exc}", error="internal").result()


def _audit_cost(result: ToolResult) -> dict[str, Any] | None:
    cost = result.data.get("cost")
    return cost if isinstance(cost, dict) else None


def call_tool(ctx: AgentContext, name: str, arguments: dict[str, Any] | None) -> ToolResult:
    """Run tool ``name`` with ``arguments`` (see the module docstring)."""
    spec = next((t for t in tools(ctx.policy) if t.name == name), None)
    if spec is None:
        hidden = ctx.policy.read_only and any(t.name == name for t in all_tools())
        why = " (the server is in read-only mode)" if hidden else ""
        return ToolError(f"no tool named {name!r}{why}", error="unknown_tool").result()
    raw: dict[str, Any] = dict(arguments) if isinstance(arguments, dict) else {}
    call_id = ctx.audit.new_call_id()
    token = raw.get("token") if isinstance(raw.get("token"), str) else None
    if spec.mutating:
        try:
            ctx.audit.append(
                ctx.scrub(
                    {
                        "event": "call",
                        "call": call_id,
                        "at": ctx.clock(),
                        "tool": name,
                        "arguments": mask_arguments(raw),
                    }
                )
            )
        except OSError as exc:
            return ToolError(
                f"the audit log cannot be written ({exc.strerror or exc}): nothing was done",
                error="audit",
            ).result()
    if arguments is not None and not isinstance(arguments, dict):
        result = ToolError("arguments must be a JSON object", error="bad_arguments").result()
    else:
        try:
            result = spec.handler(ctx, raw)
        except Exception as exc:  # a tool call never crashes the server
            if not isinstance(exc, ToolError):
                _log.debug("tool %s failed", name, exc_info=True)
            result = error_result(exc)
    result = ctx.scrub(result)
    if spec.mutating:
        data = result.data
        quote = data.get("token") if name.startswith("quote") else token
        text = result.text[:2000]
        for held in (quote, token):
            if isinstance(held, str) and held:
                text = text.replace(held, fingerprint(held))
        try:
            ctx.audit.append(
                ctx.scrub(
                    {
                        "event": "result",
                        "call": call_id,
                        "at": ctx.clock(),
                        "tool": name,
                        "is_error": result.is_error,
                        "text": text,
                        "order_id": data.get("order_id"),
                        "quote": fingerprint(quote) if isinstance(quote, str) else None,
                        "cost": _audit_cost(result),
                        "outcome": data.get("error") or ("ok" if not result.is_error else "error"),
                    }
                )
            )
        except OSError as exc:
            note = f"\nwarning: the audit log could not be written ({exc.strerror or exc})"
            result = ToolResult(data=result.data, text=result.text + note, is_error=result.is_error)
    return result
