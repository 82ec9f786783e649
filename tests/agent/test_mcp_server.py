"""The MCP server over the agent tools, in process with the SDK's own client (legacy:
the initialize handshake over memory streams; auto: the 2026 per-request era): the tool
listing true to the library's specs, the read-only mode, a search -> quote -> rent ->
cancel flow, the person asked before a rent (accept, decline) in both eras, errors that
are results, never a crash of the server, and a ``LazyContext`` made by the first call,
not by the listing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from clore import Clore, ConfigError
from clore.agent import AgentContext, AgentPolicy, all_tools, tools
from clore.mcp import LazyContext, build_server
from clore.sandbox import Sandbox

MODES = ["legacy", "auto"]
Elicit = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult]]


def _client(ctx: AgentContext | LazyContext, mode: str, elicit: Elicit | None = None) -> Client:
    return Client(build_server(ctx, enforce_every=None), mode=mode, elicitation_callback=elicit)


def _everything(results: list[types.CallToolResult]) -> str:
    return "\n".join(r.model_dump_json() for r in results)


def _data(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _cheapest(client: Client, *filters: str) -> int:
    found = await client.call_tool("search_market", {"filters": list(filters), "limit": 1})
    assert not found.is_error, _text(found)
    return int(_data(found)["rows"][0][0])


@pytest.mark.parametrize("mode", MODES)
async def test_the_listing_is_the_library_tools_with_their_schemas_and_annotations(
    agent: AgentContext, mode: str
) -> None:
    """Every tool of clore.agent, in order, with its exact schema, description, title and
    true annotations."""
    specs = tools(agent.policy)
    async with _client(agent, mode) as client:
        listed = (await client.list_tools()).tools
    assert [s.name for s in specs] == [t.name for t in listed]
    for spec, tool in zip(specs, listed, strict=True):
        assert spec.input_schema == tool.input_schema, spec.name
        assert (spec.title, spec.description) == (tool.title, tool.description)
        assert tool.annotations is not None
        hints = (
            tool.annotations.read_only_hint,
            tool.annotations.destructive_hint,
            tool.annotations.idempotent_hint,
            tool.annotations.open_world_hint,
        )
        assert (spec.read_only, spec.destructive, spec.idempotent, spec.open_world) == hints
    by_name = {t.name: t for t in listed}
    assert by_name["search_market"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert by_name["cancel_order"].annotations.destructive_hint is True  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_read_only_mode_registers_no_mutating_tool(make_agent: Any, mode: str) -> None:
    """--read-only: only the tools that change nothing are listed; calling rent_server
    anyway is a result saying the server is read-only."""
    ctx = make_agent(AgentPolicy(read_only=True))
    async with _client(ctx, mode) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("rent_server", {"server_id": 1, "token": "x"})
    assert {s.name for s in all_tools() if not s.mutating} == listed
    assert {"quote_rental", "rent_server", "cancel_order"} & listed == set()
    assert refused.is_error and "read-only" in _text(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_search_quote_rent_cancel_through_mcp(
    agent: AgentContext, sandbox: Sandbox, clore_client: Clore, mode: str
) -> None:
    """The whole path over MCP: the order exists after rent_server and has ended after
    cancel_order; text and structured content tell the same; the API key is in no result."""
    results: list[types.CallToolResult] = []
    async with _client(agent, mode) as client:
        server_id = await _cheapest(client, "gpu=4090", "gpus=1")
        args = {"server_id": server_id, "max_hours": 1}
        quote = await client.call_tool("quote_rental", args)
        results.append(quote)
        assert not quote.is_error, _text(quote)
        assert _data(quote)["token"] in _text(quote)
        rented = await client.call_tool("rent_server", {**args, "token": _data(quote)["token"]})
        results.append(rented)
        assert not rented.is_error, _text(rented)
        order_id = _data(rented)["order_id"]
        assert server_id == clore_client.get_order(order_id).si
        shown = await client.call_tool("show_order", {"order_id": order_id})
        cancelled = await client.call_tool("cancel_order", {"order_id": order_id})
        results += [shown, cancelled]
    assert (cancelled.is_error, _data(cancelled)["cancelled"]) == (False, True)
    assert clore_client.get_order(order_id).expired
    assert sandbox.demo_key not in _everything(results)


def _answering(action: str, asked: list[str], confirm: bool = True) -> Elicit:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": confirm})
        return types.ElicitResult(action=action)  # type: ignore[arg-type]

    return elicit


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_elicits_is_asked_and_an_accept_rents(
    agent: AgentContext, clore_client: Clore, mode: str
) -> None:
    """The person sees the server and the price before the order exists; yes rents."""
    asked: list[str] = []
    async with _client(agent, mode, _answering("accept", asked)) as client:
        server_id = await _cheapest(client, "gpu=3090", "gpus=1")
        args = {"server_id": server_id, "max_hours": 1}
        quote = await client.call_tool("quote_rental", args)
        assert asked == []
        rented = await client.call_tool("rent_server", {**args, "token": _data(quote)["token"]})
        assert not rented.is_error, _text(rented)
        order_id = _data(rented)["order_id"]
        await client.call_tool("cancel_order", {"order_id": order_id})
    assert len(asked) == 1
    assert f"Rent server {server_id}" in asked[0] and "BTC/h" in asked[0]
    assert server_id == clore_client.get_order(order_id).si


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)]
)
async def test_a_decline_rents_nothing_and_voids_the_quote(
    agent: AgentContext, clore_client: Clore, mode: str, action: str, confirm: bool
) -> None:
    """Decline, dismissal or an unticked box: no order, and the same token is refused
    afterwards even when the person would now say yes."""
    asked: list[str] = []
    async with _client(agent, mode, _answering(action, asked, confirm)) as client:
        server_id = await _cheapest(client, "gpu=3090", "gpus=1")
        args = {"server_id": server_id, "max_hours": 1}
        quote = await client.call_tool("quote_rental", args)
        declined = await client.call_tool("rent_server", {**args, "token": _data(quote)["token"]})
    assert (declined.is_error, _data(declined)["error"]) == (True, "declined")
    assert clore_client.my_orders() == []
    again_asked: list[str] = []
    async with _client(agent, mode, _answering("accept", again_asked)) as client:
        again = await client.call_tool("rent_server", {**args, "token": _data(quote)["token"]})
    assert again.is_error and again_asked == []
    assert clore_client.my_orders() == []


async def test_a_forged_request_state_is_a_result_not_a_rental(
    agent: AgentContext, clore_client: Clore
) -> None:
    """Per-request era: resuming a confirmation that is not pending is refused."""
    yes = types.ElicitResult(action="accept", content={"confirm": True})
    async with _client(agent, "auto", _answering("accept", [])) as client:
        result = await client.session.call_tool(
            "rent_server",
            {"server_id": 1, "token": "t"},
            input_responses={"confirm": yes},
            request_state="made-up",
        )
    assert (result.is_error, _data(result)["error"]) == (True, "not_pending")
    assert clore_client.my_orders() == []


@pytest.mark.parametrize("mode", MODES)
async def test_bad_calls_are_results_the_model_sees(agent: AgentContext, mode: str) -> None:
    """An unknown tool, a wrong argument type, an unknown argument, a guard refusal (no
    token): each an isError result with its reason, and the server answers on."""
    async with _client(agent, mode) as client:
        unknown = await client.call_tool("format_disk", {})
        wrong = await client.call_tool("show_server", {"server_id": "seven"})
        extra = await client.call_tool("search_market", {"filters": [], "colour": "red"})
        tokenless = await client.call_tool("rent_server", {"server_id": 1})
        still = await client.call_tool("search_market", {"limit": 1})
    assert _data(unknown)["error"] == "unknown_tool" and unknown.is_error
    assert _data(wrong)["error"] == "bad_arguments" and "server_id" in _text(wrong)
    assert _data(extra)["error"] == "bad_arguments" and "colour" in _text(extra)
    assert tokenless.is_error and "quote_rental" in _text(tokenless)
    assert not still.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_an_unexpected_exception_is_a_one_line_tool_error(
    agent: AgentContext,
    sandbox: Sandbox,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever breaks inside a call (here: the library itself, its message holding the
    API key) is an isError result of one line, logged without the key; the server lives."""
    import clore.mcp.server as face

    def broken(ctx: AgentContext, name: str, arguments: Any) -> Any:
        raise RuntimeError(f"boom\nwith the key {sandbox.demo_key} inside")

    monkeypatch.setattr(face, "call_tool", broken)
    caplog.set_level(logging.ERROR, logger="clore.mcp")
    async with _client(agent, mode) as client:
        failed = await client.call_tool("search_market", {})
        monkeypatch.undo()
        after = await client.call_tool("search_market", {"limit": 1})
    assert failed.is_error and "\n" not in _text(failed)
    assert _data(failed)["error"] == "internal"
    assert not after.is_error
    assert caplog.records and "RuntimeError" in caplog.text
    assert sandbox.demo_key not in caplog.text + _everything([failed])


async def test_the_running_server_holds_the_maximum_time_of_its_orders(
    agent: AgentContext, sandbox: Sandbox, sandbox_clock: Any, clore_client: Clore
) -> None:
    """While the server runs it enforces the maximum times: an order rented for at most
    1 h through it is cancelled when its hour is (almost) up, no tool call needed."""
    import anyio

    server = build_server(agent, clock=sandbox_clock, enforce_every=0.05)
    async with Client(server, mode="legacy") as client:
        server_id = await _cheapest(client, "gpu=3090", "gpus=1")
        args = {"server_id": server_id, "max_hours": 1}
        quote = await client.call_tool("quote_rental", args)
        rented = await client.call_tool("rent_server", {**args, "token": _data(quote)["token"]})
        order_id = _data(rented)["order_id"]
        await anyio.sleep(0.3)
        assert not clore_client.get_order(order_id).expired
        sandbox.advance(3600 - 1)
        with anyio.fail_after(20):
            while not clore_client.get_order(order_id).expired:
                await anyio.sleep(0.05)


@pytest.mark.parametrize("mode", MODES)
async def test_a_lazy_context_is_made_by_the_first_call_not_by_the_listing(
    make_agent: Any, mode: str
) -> None:
    """The listing needs only the policy; concurrent first calls make the context once,
    with that policy, and answer from it."""
    import anyio

    policy = AgentPolicy(read_only=True)
    made: list[AgentPolicy] = []

    def make(given: AgentPolicy) -> AgentContext:
        made.append(given)
        ctx: AgentContext = make_agent(given)
        return ctx

    lazy = LazyContext(policy, make)
    found: list[types.CallToolResult] = []
    async with _client(lazy, mode) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
        assert (made, lazy.made) == ([], None)

        async def search() -> None:
            found.append(await client.call_tool("search_market", {"limit": 2}))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(search)
    assert listed == [s.name for s in tools(policy)]
    assert made == [policy] and lazy.made is not None
    assert [r.is_error for r in found] == [False] * 3
    assert all(len(_data(r)["rows"]) == 2 for r in found)


@pytest.mark.parametrize("mode", MODES)
async def test_a_context_that_cannot_be_made_is_a_tool_error_tried_again(
    make_agent: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that cannot be made (a bad base URL) is a one-line config error for the
    call, logged, with the known secrets masked; the next call makes it."""
    secret = "k3y-that-must-not-show"
    attempts: list[int] = []

    def make(policy: AgentPolicy) -> AgentContext:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConfigError(f"invalid base_url 'ftp://{secret}@x': expected an http:// URL")
        ctx: AgentContext = make_agent(policy)
        return ctx

    lazy = LazyContext(AgentPolicy(), make, secrets=[secret])
    caplog.set_level(logging.ERROR, logger="clore.mcp")
    async with _client(lazy, mode) as client:
        failed = await client.call_tool("rent_server", {"server_id": 1, "token": "x"})
        after = await client.call_tool("search_market", {"limit": 1})
    assert failed.is_error and _data(failed)["error"] == "config"
    assert "invalid base_url" in _text(failed) and "nothing was done" in _text(failed)
    assert "\n" not in _text(failed)
    assert not after.is_error and len(attempts) == 2
    assert "invalid base_url" in caplog.text
    assert secret not in caplog.text + _everything([failed])
