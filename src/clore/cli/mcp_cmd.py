"""``clore mcp``: serve the agent tools (``clore.agent``) to an AI agent over the Model
Context Protocol: stdio by default, streamable HTTP on loopback with ``--http``.

The guards come from the person's policy (``agent.toml`` in the config dir and
``CLORE_AGENT_*``; docs/agent.md), never from the agent; ``--read-only`` forces the
read-only mode on (no tool that rents or cancels is registered). ``clore --sandbox mcp``
serves against the embedded sandbox. The ``mcp`` SDK is an optional extra: without it
the command says how to get it and exits 2.

Start-up is the policy (a bad one fails at once, before the SDK loads), the SDK and the
listing; the SDK client (and httpx) is made by the first tool call
(``clore.mcp.LazyContext``), so an MCP client sees the tools sooner.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import click

from clore.cli._context import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    AppContext,
    CliError,
    pass_app,
)
from clore.cli._output import json_option
from clore.cli._params import Integer

if TYPE_CHECKING:
    from types import ModuleType

    from clore.agent import AgentContext, AgentPolicy
    from clore.mcp.server import LazyContext

__all__ = ["MISSING_EXTRA", "mcp"]

MISSING_EXTRA: Final = "clore mcp needs the mcp extra: pip install 'clore[mcp]'"


def _load_face() -> ModuleType:
    """``clore.mcp.server``; ``CliError`` (exit 2) naming the extra when the SDK is missing."""
    try:
        return importlib.import_module("clore.mcp.server")
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "clore":
            raise
        raise CliError(MISSING_EXTRA, EXIT_USAGE) from None


class _Scrub(logging.Filter):
    """One line per record, every secret the agent context knows replaced."""

    def __init__(self, ctx: LazyContext) -> None:
        super().__init__()
        self.ctx = ctx

    def filter(self, record: logging.LogRecord) -> bool:
        text = " ".join(record.getMessage().split())
        record.msg, record.args, record.exc_info, record.exc_text = (
            self.ctx.scrub_text(text),
            None,
            None,
            None,
        )
        return True


def _log_to_stderr(ctx: LazyContext, verbose: int) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("clore mcp: %(message)s"))
    handler.addFilter(_Scrub(ctx))
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    for name in ("clore.mcp", "clore.agent"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
    return handler


def _policy(app: AppContext, read_only: bool) -> AgentPolicy:
    """The person's guards, checked now: a bad policy is one line and exit 2."""
    from clore import ConfigError
    from clore.agent import AgentPolicy

    try:
        policy = AgentPolicy.load(profile=app.profile)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return replace(policy, read_only=True) if read_only else policy


def _context(face: ModuleType, app: AppContext, policy: AgentPolicy) -> LazyContext:
    """The agent context, made by the first tool call (the client and its HTTP stack are
    not needed to list the tools); the key's presence and the config file are checked now."""
    if not app.has_key():
        click.echo(
            "clore mcp: no API key configured: only the market tools will work "
            "(run `clore config set-key` or set CLORE_API_KEY)",
            err=True,
        )
    secrets: list[str] = []
    if app.sandbox or app.sandbox_instance is not None:
        secrets.append(app.embedded_sandbox().demo_key)
    else:
        from clore.config import resolve

        secrets.append(resolve(app.profile).api_key or "")

    def make(policy: AgentPolicy) -> AgentContext:
        from clore.agent import AgentContext

        return AgentContext(app.client(auth=False), policy, clock=app.clock.time)

    lazy: LazyContext = face.LazyContext(policy, make, secrets=secrets)
    return lazy


@click.command()
@click.option(
    "--http", "http", is_flag=True, help="Serve streamable HTTP (loopback only) instead of stdio."
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address for --http (127.0.0.1, ::1 or localhost; nothing else is accepted).",
)
@click.option(
    "--port",
    type=Integer(0, 65535),
    default=8766,
    show_default=True,
    help="Port for --http (0 picks a free one).",
)
@click.option(
    "--read-only",
    is_flag=True,
    help="Register no tool that rents, quotes or cancels, whatever the policy says.",
)
@json_option(
    help='With --http: print {"url": ...} on stdout once listening (stdio: stdout is the protocol).'
)
@pass_app
def mcp(app: AppContext, http: bool, host: str, port: int, read_only: bool) -> None:
    """Serve the agent tools over the Model Context Protocol (MCP) for an AI agent.

    Over stdio by default (what an MCP client such as Claude Desktop starts); with --http,
    streamable HTTP at http://HOST:PORT/mcp on a loopback address only. The tools search
    the market, quote, rent (with the quote's token), verify and cancel, under the guards
    of the person's policy (agent.toml in the config dir, CLORE_AGENT_* variables; see
    docs/agent.md), which no tool argument can change. Every mutating call is appended to
    the audit log (agent/audit.jsonl in the data dir). `clore --sandbox mcp` serves the
    embedded sandbox: fake money.
    """
    from clore.mcp.transport import NotLoopbackError, check_loopback

    if http:
        try:
            check_loopback(host)
        except NotLoopbackError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    policy = _policy(app, read_only)
    face = _load_face()
    ctx = _context(face, app, policy)
    handler = _log_to_stderr(ctx, app.verbose)
    server = face.build_server(ctx, clock=app.clock)
    try:
        if http:
            _serve_http(app, server, host, port)
        else:
            from clore.mcp.transport import serve_stdio

            serve_stdio(server)
    except KeyboardInterrupt:
        click.echo("clore mcp stopped (Ctrl-C)", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        ctx.close()
        for name in ("clore.mcp", "clore.agent"):
            logging.getLogger(name).removeHandler(handler)


def _serve_http(app: AppContext, server: Any, host: str, port: int) -> None:
    from clore.mcp.transport import serve_http

    def ready(url: str) -> None:
        if app.out.json_mode:
            sys.stdout.write(json.dumps({"url": url}) + "\n")
            sys.stdout.flush()
        else:
            click.echo(f"clore mcp: serving MCP at {url} (Ctrl-C stops)", err=True)

    try:
        serve_http(server, host, port, ready=ready)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = " (--port 0 picks a free port)" if port else ""
        raise CliError(f"cannot listen on {host}:{port}: {reason}{hint}", EXIT_API) from None
