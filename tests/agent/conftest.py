"""Fixtures of the agent library's tests: an ``AgentContext`` on the in-process sandbox
(its clock shared, so quote lifetimes and rate-limit waits move sandbox time), a
recorder of every tool result (the secrets test greps them), and helpers to find a
server to rent."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clore import Clore, ManualClock
from clore.agent import AgentContext, AgentPolicy, ToolResult, call_tool
from clore.sandbox import Sandbox

MakeAgent = Callable[..., AgentContext]


@pytest.fixture(autouse=True)
def _no_agent_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CLORE_AGENT_*`` variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("CLORE_AGENT_") or name == "SSH_AUTH_SOCK":
            monkeypatch.delenv(name, raising=False)


class Recorder:
    """Calls tools and keeps every result (as the JSON and text a model would see)."""

    def __init__(self) -> None:
        self.results: list[ToolResult] = []

    def __call__(self, ctx: AgentContext, name: str, **arguments: Any) -> ToolResult:
        result = call_tool(ctx, name, arguments)
        json.dumps(result.data)  # every result is JSON-able
        assert isinstance(result.text, str) and result.text
        self.results.append(result)
        return result

    def everything(self) -> str:
        """Every result's text and data, as one string."""
        return "\n".join(r.text + "\n" + json.dumps(r.data) for r in self.results)


@pytest.fixture
def call() -> Recorder:
    return Recorder()


@pytest.fixture
def make_agent(sandbox: Sandbox, sandbox_clock: ManualClock) -> Iterator[MakeAgent]:
    """``make_agent(policy=None, **options)``: a context over a fresh demo-user client."""
    made: list[tuple[AgentContext, Clore]] = []

    def make(policy: AgentPolicy | None = None, **options: Any) -> AgentContext:
        client = sandbox.client()
        options.setdefault("clock", sandbox_clock.time)
        ctx = AgentContext(client, policy or AgentPolicy(), **options)
        made.append((ctx, client))
        return ctx

    yield make
    for ctx, client in made:
        ctx.close()
        client.close()


@pytest.fixture
def agent(make_agent: MakeAgent) -> AgentContext:
    """A context with the default policy (no caps, 4 h order maximum)."""
    return make_agent()


Cheapest = Callable[..., int]
QuoteAndRent = Callable[..., tuple[ToolResult, ToolResult]]


@pytest.fixture
def cheapest() -> Cheapest:
    """``cheapest(ctx, *filters, index=0)``: the id of the ``index``-th cheapest available
    server matching ``filters`` (through search_market)."""

    def find(ctx: AgentContext, *filters: str, index: int = 0) -> int:
        found = call_tool(ctx, "search_market", {"filters": list(filters), "limit": index + 1})
        assert not found.is_error, found.text
        return int(found.data["rows"][index][0])

    return find


@pytest.fixture
def quote_and_rent(call: Recorder) -> QuoteAndRent:
    """``quote_and_rent(ctx, **arguments)``: quote_rental, then rent_server with the same
    arguments and the token; both results."""

    def run(ctx: AgentContext, **arguments: Any) -> tuple[ToolResult, ToolResult]:
        quote = call(ctx, "quote_rental", **arguments)
        assert not quote.is_error, quote.text
        rented = call(ctx, "rent_server", **arguments, token=quote.data["token"])
        return quote, rented

    return run
