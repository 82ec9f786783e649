"""The agent server's library: tools over the SDK for an AI agent, under guards the
person sets and the agent cannot change (``clore mcp`` is its MCP face, ``clore.mcp``).

```python
from clore import Clore
from clore.agent import AgentContext, AgentPolicy, call_tool, tools

policy = AgentPolicy.load()                 # config_dir()/agent.toml + CLORE_AGENT_*
ctx = AgentContext(Clore(), policy)         # audit: data_dir()/agent/audit.jsonl
for spec in tools(policy):                  # read-only mode: no mutating tool at all
    print(spec.name, spec.input_schema)
result = call_tool(ctx, "search_market", {"filters": ["gpu=4090"], "limit": 5})
print(result.text)                          # result.data: the same, structured
```

Modules:

- ``spec``: ``ToolSpec`` (name, title, description, JSON schema, annotations,
  ``mutating``, handler), ``ToolResult``, ``ToolError``, ``schema_of``, ``typed``.
- ``policy``: ``AgentPolicy`` (the guards; the file and variables it reads).
- ``context``: ``AgentContext`` (client, policy, audit, quotes, ledger, ``confirm``; the
  threading model: blocking handlers for worker threads).
- ``quotes``: ``QuoteBook`` (tokens bound to the exact arguments and the price).
- ``arguments``: ``RentArgs`` (what a rental asks for) and ``normalized`` (what a quote
  binds).
- ``caps``: ``Cost`` (what an order may cost) and ``check_caps`` (the person's caps).
- ``renting``: ``assess`` and ``rent`` (for the rent tools and the job tools to come).
- ``ledger``: ``AgentLedger`` (the agent's orders, across runs) and ``Usage``.
- ``audit``: ``AuditLog`` (JSON Lines, 0600) and ``mask_arguments``.
- ``untrusted``: ``untrusted(text, source=)`` for what comes from a rented machine.
- ``tools``: the registry (``GROUPS``, ``tools``, ``call_tool``) and one module per group.

Importing this package imports neither ``mcp`` nor the SDK's HTTP stack.
"""

from __future__ import annotations

from clore.agent.audit import AuditLog, mask_arguments
from clore.agent.context import AgentContext, Confirm
from clore.agent.ledger import AgentLedger, Usage
from clore.agent.policy import ENV_PREFIX, POLICY_FILE, AgentPolicy, policy_path
from clore.agent.quotes import QuoteBook, QuoteRefused
from clore.agent.spec import ToolError, ToolResult, ToolSpec, schema_of
from clore.agent.tools import GROUPS, all_tools, call_tool, tools
from clore.agent.untrusted import untrusted

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "POLICY_FILE",
    "AgentContext",
    "AgentLedger",
    "AgentPolicy",
    "AuditLog",
    "Confirm",
    "QuoteBook",
    "QuoteRefused",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "all_tools",
    "call_tool",
    "mask_arguments",
    "policy_path",
    "schema_of",
    "tools",
    "untrusted",
]
