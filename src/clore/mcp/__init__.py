"""``clore mcp``'s face: the agent tools of ``clore.agent`` served over the Model Context
Protocol with the official ``mcp`` SDK (the optional extra: ``pip install 'clore[mcp]'``).

```python
from clore import Clore
from clore.agent import AgentContext, AgentPolicy
from clore.mcp import LazyContext, build_server, serve_stdio

ctx = AgentContext(Clore(), AgentPolicy.load())
serve_stdio(build_server(ctx))        # or serve_http(server, "127.0.0.1", 8766)

# or: the policy now, the context (the client) at the first tool call
lazy = LazyContext(AgentPolicy.load(), lambda policy: AgentContext(Clore(), policy))
serve_stdio(build_server(lazy))
```

Modules: ``server`` (``build_server``: the tools, results, the never-crash rule;
``LazyContext``: a context made when first needed),
``transport`` (stdio, streamable HTTP on loopback only), ``_confirm`` (asking the person
before a rent: MCP elicitation in either protocol era). ``clore.mcp.server`` imports the
``mcp`` SDK (this package's names load on first use); ``clore.agent`` works without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clore.mcp.server import (
        INSTRUCTIONS,
        SERVER_NAME,
        LazyContext,
        build_server,
        result_of,
        tool_of,
    )
    from clore.mcp.transport import (
        DEFAULT_PORT,
        MCP_PATH,
        NotLoopbackError,
        check_loopback,
        serve_http,
        serve_stdio,
    )

__all__ = [
    "DEFAULT_PORT",
    "INSTRUCTIONS",
    "MCP_PATH",
    "SERVER_NAME",
    "LazyContext",
    "NotLoopbackError",
    "build_server",
    "check_loopback",
    "result_of",
    "serve_http",
    "serve_stdio",
    "tool_of",
]

_TRANSPORT = frozenset(
    {"DEFAULT_PORT", "MCP_PATH", "NotLoopbackError", "check_loopback", "serve_http", "serve_stdio"}
)


def __getattr__(name: str) -> Any:
    # Lazily: ``clore.mcp.transport`` (the loopback rule) loads without the SDK, so a bad
    # --host is refused at once; ``server`` imports the SDK.
    if name in __all__:
        module = "clore.mcp.transport" if name in _TRANSPORT else "clore.mcp.server"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'clore.mcp' has no attribute {name!r}")
