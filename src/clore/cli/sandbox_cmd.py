"""``clore sandbox serve | reset | advance | logs``: the local, fake-money Clore API.

``serve`` runs the sandbox server. The control commands act on the embedded sandbox
(``clore --sandbox sandbox advance 3600``) or, with ``--base-url``, on a running sandbox
server through its ``/_sandbox/`` control plane (``_sandbox_control``); they refuse to
talk to the real API. The commands that make it fail on purpose (``fault``, ``server``,
``access``) are ``sandbox_faults_cmd``'s, ``history`` is ``history_cmd``'s.
"""

from __future__ import annotations

import errno
import io
import json
import socket
import sys
from typing import Any, Final

import click

from clore.cli._context import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    AppContext,
    CliError,
    pass_app,
)
from clore.cli._format import duration, timestamp
from clore.cli._group import Group
from clore.cli._output import json_option
from clore.cli._params import Duration, Id, Integer, Number
from clore.cli._sandbox_control import Control

__all__ = ["sandbox"]


@click.group(
    cls=Group,
    lazy={
        "history": "clore.cli.history_cmd:generate",
        "fault": "clore.cli.sandbox_faults_cmd:fault",
        "server": "clore.cli.sandbox_faults_cmd:server",
        "access": "clore.cli.sandbox_faults_cmd:access",
    },
)
def sandbox() -> None:
    """The sandbox: the Clore API implemented locally with fake money.

    \b
    clore sandbox serve                      # a server on http://127.0.0.1:8765/v1
    clore --sandbox market                   # or no server at all: the embedded sandbox
    clore --sandbox sandbox advance 1h       # move its clock (billing, provisioning)
    """


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=Integer(0, 65535),
    default=8765,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option(
    "--db",
    metavar="PATH",
    help="SQLite file (default: sandbox.db in the data dir, the --sandbox state; "
    ":memory: keeps nothing).",
)
@click.option(
    "--seed",
    default="snapshot",
    show_default=True,
    metavar="snapshot|PATH",
    help="Market of a new database: the bundled 2024 capture, 'none', or a marketplace "
    "JSON(.gz) file.",
)
@click.option(
    "--time-scale",
    type=Number(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="N",
    help="Sandbox seconds per real second (60: an hour passes in a minute).",
)
@click.option("--demo-key", metavar="KEY", help="API key of the funded demo user.")
@click.option("--no-rate-limit", is_flag=True, help="Accept requests as fast as they come.")
@click.option(
    "--market-activity",
    type=Number(min=0),
    default=0.0,
    show_default=True,
    metavar="RATE",
    help="Simulated market events (other renters, hosts) per sandbox second; 0: none.",
)
@click.option(
    "--rng-seed", type=Integer(), default=0, show_default=True, help="Market simulation seed."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
    default="warning",
    show_default=True,
    help="uvicorn's log level.",
)
@click.option(
    "--control-token",
    metavar="TOKEN",
    envvar="CLORE_SANDBOX_TOKEN",
    show_envvar=True,
    help="Require this token (16-256 visible ASCII characters) in the x-sandbox-token "
    "header of every /_sandbox control request; needed to listen off loopback. Never printed.",
)
@click.option(
    "--keep-machines",
    is_flag=True,
    help="Keep each ended order's machine directory (for debugging).",
)
@click.option(
    "--no-machines",
    is_flag=True,
    help="Run no machines: orders get loopback ports where nothing listens (load tests).",
)
@click.option(
    "--expose-machines-publicly",
    is_flag=True,
    help="Let the orders' SSH and forwarded ports listen on --host too (default: loopback "
    "only): anyone who can connect may try to log in, and runs commands as you.",
)
@json_option
@pass_app
def serve(
    app: AppContext,
    host: str,
    port: int,
    db: str | None,
    seed: str,
    time_scale: float,
    demo_key: str | None,
    no_rate_limit: bool,
    market_activity: float,
    rng_seed: int,
    log_level: str,
    control_token: str | None,
    keep_machines: bool,
    no_machines: bool,
    expose_machines_publicly: bool,
) -> None:
    """Run the sandbox API server until interrupted (Ctrl-C).

    It prints its base URL, the demo user's key (a sandbox key, worthless elsewhere) and
    its database path, then serves the API under /v1 and the control plane under /_sandbox.
    The default database is the one `clore --sandbox` uses, so both see the same state.
    A fourth line names the isolation the orders' machines run under. With --json the
    four are one JSON document on stdout: {"base_url", "demo_key", "database",
    "machines"}. The control plane answers loopback peers only, unless --control-token
    is given: then every control request needs it, and --host may be off loopback. The
    orders' SSH and forwarded ports listen on loopback only, unless
    --expose-machines-publicly.
    """
    import sqlite3

    from clore.sandbox import (
        SNAPSHOT,
        ControlAccessError,
        load_records,
        require_source,
    )
    from clore.sandbox import serve as run_server

    try:
        source = require_source(seed)
        if source not in (None, SNAPSHOT):
            # Read (and cache) a seed file now: a bad one is a usage error, not a traceback.
            load_records(source)
    except (ValueError, OSError) as exc:
        raise CliError(f"--seed: {exc}", EXIT_USAGE) from None
    extra: dict[str, Any] = {"out": _JsonBanner()} if app.out.json_mode else {}
    if control_token:
        extra["control_token"] = control_token
    if keep_machines:
        extra["keep_machines"] = True
    if expose_machines_publicly:
        extra["expose_machines"] = True
    if no_machines:
        extra["machines"] = False
    try:
        run_server(
            host=host,
            port=port,
            db=db,
            seed=source,
            time_scale=time_scale,
            demo_key=demo_key,
            rate_limit=not no_rate_limit,
            market_activity=market_activity,
            rng_seed=rng_seed,
            log_level=log_level,
            **extra,
        )
    except ControlAccessError as exc:  # an address off loopback without a token, a weak token
        raise CliError(str(exc), EXIT_USAGE) from None
    except KeyboardInterrupt:
        shown = db or str(default_db_path())
        kept = "" if shown == ":memory:" else f"; state kept in {shown}"
        click.echo(f"sandbox stopped (Ctrl-C){kept}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except sqlite3.Error as exc:
        raise CliError(f"--db: cannot use {db or default_db_path()}: {exc}", EXIT_USAGE) from None
    except OSError as exc:
        if exc.filename is not None:  # creating the database's directory failed
            raise CliError(f"--db: {exc.strerror or exc}: {exc.filename}", EXIT_USAGE) from None
        raise CliError(_listen_error(host, port, exc), _listen_exit(exc)) from None


class _JsonBanner(io.StringIO):
    """Takes the server's banner (``clore sandbox: URL``, ``demo key: K``, ``database: P``)
    and prints it as one JSON document on stdout when the server flushes it."""

    def flush(self) -> None:
        lines = dict(line.split(": ", 1) for line in self.getvalue().splitlines() if ": " in line)
        if not lines:
            return
        document = {
            "base_url": lines.get("clore sandbox"),
            "demo_key": lines.get("demo key"),
            "database": lines.get("database"),
            "machines": lines.get("machines"),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stdout.flush()
        self.seek(0)
        self.truncate()


def default_db_path() -> str:
    """Where ``serve`` keeps its state without ``--db``."""
    from clore.sandbox import default_db_path as path

    return str(path())


def _listen_error(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    hint = " (--port 0 picks a free port)" if exc.errno == errno.EADDRINUSE else ""
    return f"cannot listen on {host}:{port}: {reason}{hint}"


def _listen_exit(exc: OSError) -> int:
    # An unknown host name or an address this machine does not have is a bad --host.
    bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
    return EXIT_USAGE if bad_host else EXIT_API


def parse_seconds(text: str) -> float:
    """``3600``, ``90s``, ``15m``, ``1h``, ``2d``, ``1w``, ``1h30m`` -> seconds (0 too);
    ``click.BadParameter`` when malformed, not finite or over 100 years."""
    try:
        return ADVANCE.convert(text, None, None)
    except click.BadParameter as exc:
        exc.param_hint = "'DURATION'"
        raise


#: How far ``advance`` may move the clock: a DURATION, zero included.
ADVANCE: Final = Duration(zero=True)


@sandbox.command()
@json_option
@pass_app
def reset(app: AppContext) -> None:
    """Forget every order and user change: back to the seeded market and funded demo user."""
    from clore.cli._marketdata import invalidate

    control = Control(app)
    control.call("reset")
    invalidate(app)
    app.out.result({"reset": True}, lambda: app.out.echo("sandbox reset"))


@sandbox.command()
@click.argument("amount", type=ADVANCE, metavar="DURATION")
@json_option
@pass_app
def advance(app: AppContext, amount: float) -> None:
    """Move the sandbox clock forward by DURATION (3600, 15m, 1h, 2d, 1h30m): billing runs."""
    now = float(Control(app).call("advance", seconds=amount))
    app.out.result(
        {"advanced": amount, "now": now},
        lambda: app.out.echo(
            f"advanced the sandbox clock by {duration(amount)}; "
            f"sandbox time is now {timestamp(now)}"
        ),
    )


@sandbox.command()
@click.argument("order_id", type=Id(), metavar="ORDER_ID")
@click.option(
    "--limit",
    type=Integer(1, 1 << 20),
    default=64 * 1024,
    show_default=True,
    help="Show at most the last LIMIT bytes.",
)
@json_option
@pass_app
def logs(app: AppContext, order_id: int, limit: int) -> None:
    """Print the output of ORDER_ID's command (create_order's `command`) so far."""
    text = str(Control(app).call("order_logs", order_id=order_id, limit=limit))
    app.out.result(
        {"order_id": order_id, "log": text},
        lambda: click.echo(text, nl=False) if text else app.out.info("(no output)"),
    )
