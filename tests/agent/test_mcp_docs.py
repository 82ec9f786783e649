"""docs/agent.md is tested: its tool table is the server's listing (names, the
read-only and destructive annotations, which tools read-only mode keeps), and the
client snippets it shows are valid JSON naming the command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from clore.agent import AgentContext, AgentPolicy
from clore.mcp import build_server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent.md"
_ROW = re.compile(r"^\| `([a-z_]+)` \| (yes|no) \| (yes|no) \| (yes|no) \| .+ \|$", re.M)


def _table() -> dict[str, tuple[bool, bool, bool]]:
    rows = _ROW.findall(DOCS.read_text(encoding="utf-8"))
    assert rows, "no tool table in docs/agent.md"
    return {name: (ro == "yes", de == "yes", kept == "yes") for name, ro, de, kept in rows}


async def _listing(ctx: AgentContext) -> dict[str, tuple[bool, bool]]:
    async with Client(build_server(ctx, enforce_every=None), mode="legacy") as client:
        tools = (await client.list_tools()).tools
    found = {}
    for tool in tools:
        assert tool.annotations is not None
        found[tool.name] = (
            bool(tool.annotations.read_only_hint),
            bool(tool.annotations.destructive_hint),
        )
    return found


async def test_the_tool_table_is_the_server_listing(make_agent: Any) -> None:
    """Same tools in the same order, the same annotations, and "In --read-only" is what
    a read-only server lists."""
    table = _table()
    listed = await _listing(make_agent())
    kept = await _listing(make_agent(AgentPolicy(read_only=True)))
    assert list(listed) == list(table)
    assert listed == {name: (ro, de) for name, (ro, de, _) in table.items()}
    assert set(kept) == {name for name, (_, _, k) in table.items() if k}


@pytest.mark.parametrize(
    "snippet", re.findall(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
)
def test_the_client_snippets_are_valid_json_starting_clore_mcp(snippet: str) -> None:
    """Each mcpServers entry runs `clore ... mcp`."""
    servers = json.loads(snippet)["mcpServers"]
    assert servers
    for entry in servers.values():
        assert entry["command"] == "clore" and "mcp" in entry["args"]
