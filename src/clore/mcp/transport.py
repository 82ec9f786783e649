"""Serving the MCP server: stdio (``serve_stdio``) or streamable HTTP on loopback only
(``serve_http``).

Over stdio, standard output is the protocol: the SDK moves file descriptor 1 aside while
it serves, so a stray print goes to standard error instead of corrupting a message. Over
HTTP, the tools spend the person's money and the server has no authentication of its
own, so it listens on a loopback address only (``check_loopback``; ``localhost``, any
127.0.0.0/8 address, ``::1``) and checks the ``Host`` and ``Origin`` headers of every
request against that address (the SDK's DNS-rebinding protection): a web page open in
the person's browser cannot call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import socket

    from mcp.server import Server

__all__ = [
    "DEFAULT_PORT",
    "MCP_PATH",
    "NotLoopbackError",
    "check_loopback",
    "serve_http",
    "serve_stdio",
]

DEFAULT_PORT: Final = 8766
MCP_PATH: Final = "/mcp"


class NotLoopbackError(ValueError):
    """``--host`` names an address other machines could reach."""


def check_loopback(host: str) -> str:
    """``host`` when it is a loopback address (or ``localhost``), else
    ``NotLoopbackError`` saying why."""
    import ipaddress

    name = host.strip()
    if name.lower() == "localhost":
        return "localhost"
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise NotLoopbackError(
            f"refusing to serve MCP on {host!r}: --http listens on a loopback address only "
            "(127.0.0.1, ::1, localhost), since its tools spend money and it has no login"
        )
    return str(address)


def serve_stdio(server: Server[Any]) -> None:
    """Serve over standard input and output until the client closes them."""
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def _bind(host: str, port: int) -> socket.socket:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def serve_http(
    server: Server[Any],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until interrupted; ``ready(url)``
    once the socket is bound (``port=0`` picks a free port: the URL names it).
    ``NotLoopbackError`` for a host other machines could reach; ``OSError`` when the
    address cannot be bound."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    address = check_loopback(host)
    bind_to = "127.0.0.1" if address == "localhost" else address
    sock = _bind(bind_to, port)
    try:
        bound = sock.getsockname()[1]
        shown = f"[{bind_to}]" if ":" in bind_to else bind_to
        names = sorted({shown, "127.0.0.1", "localhost", "[::1]"})
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{name}:{bound}" for name in names],
            allowed_origins=[f"http://{name}:{bound}" for name in names],
        )
        app = server.streamable_http_app(
            streamable_http_path=MCP_PATH, host=bind_to, transport_security=security
        )
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False)
        if ready is not None:
            ready(f"http://{shown}:{bound}{MCP_PATH}")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
