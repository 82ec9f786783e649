"""``clore sandbox serve | reset | advance | fault | server | logs | access``: the local,
fake-money Clore API.

``serve`` runs the sandbox server. The control commands act on the embedded sandbox
(``clore --sandbox sandbox advance 3600``) or, with ``--base-url``, on a running sandbox
server through its ``/_sandbox/`` control plane. They refuse to talk to the real API.
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
from clore.sandbox import FAULT_HELP, FAULTS

__all__ = ["sandbox"]


@click.group(cls=Group, lazy={"history": "clore.cli.history_cmd:generate"})
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


class _Control:
    """The control plane: the embedded Sandbox, or a sandbox server over HTTP."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.embedded = app.sandbox or app.sandbox_instance is not None
        self.base_url = ""
        if not self.embedded:
            from clore.config import DEFAULT_BASE_URL, resolve

            self.base_url = (app.base_url or resolve(app.profile).base_url).rstrip("/")
            if self.base_url == DEFAULT_BASE_URL.rstrip("/"):
                raise CliError(
                    "sandbox control needs --sandbox (embedded) or --base-url of a sandbox "
                    "server; refusing to send it to the real API",
                    2,
                )

    def call(self, action: str, **arguments: Any) -> Any:
        if self.embedded:
            from clore.sandbox import ApiError

            target = self.app.embedded_sandbox()
            try:
                return getattr(target, action)(**arguments)
            except ApiError as exc:  # the embedded sandbox refuses as its HTTP API would
                raise CliError(f"sandbox {action}: {exc}", 2 if exc.code == 2 else 1) from None
        import httpx

        from clore.sandbox import control_client

        try:
            with control_client(self.base_url) as remote:
                return getattr(remote, action)(**arguments)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the sandbox control plane at {self.base_url}: "
                f"{type(exc).__name__}: {exc} (is `clore sandbox serve` running?)",
                EXIT_API,
            ) from None


@sandbox.command()
@json_option
@pass_app
def reset(app: AppContext) -> None:
    """Forget every order and user change: back to the seeded market and funded demo user."""
    from clore.cli._marketdata import invalidate

    control = _Control(app)
    control.call("reset")
    invalidate(app)
    app.out.result({"reset": True}, lambda: app.out.echo("sandbox reset"))


@sandbox.command()
@click.argument("amount", type=ADVANCE, metavar="DURATION")
@json_option
@pass_app
def advance(app: AppContext, amount: float) -> None:
    """Move the sandbox clock forward by DURATION (3600, 15m, 1h, 2d, 1h30m): billing runs."""
    now = float(_Control(app).call("advance", seconds=amount))
    app.out.result(
        {"advanced": amount, "now": now},
        lambda: app.out.echo(
            f"advanced the sandbox clock by {duration(amount)}; "
            f"sandbox time is now {timestamp(now)}"
        ),
    )


_WIDTH: Final = max(len(name) for name in FAULTS) + 2
_FAULT_DOC = "\n".join(
    [
        "Make the next COUNT requests to ENDPOINT fail with FAULT.",
        "",
        "\b",
        "FAULT is one of",
        *(f"  {name:<{_WIDTH}} {FAULT_HELP[name]}" for name in FAULTS),
        "ENDPOINT is an API endpoint name such as create_order or my_orders.",
    ]
)


@sandbox.command(help=_FAULT_DOC, short_help="Make the next requests to ENDPOINT fail.")
@click.argument("endpoint")
@click.argument("fault", type=click.Choice(FAULTS), metavar="FAULT")
@click.option(
    "--count",
    type=Integer(1, 100000),
    default=1,
    show_default=True,
    help="How many requests to ENDPOINT get the fault.",
)
@json_option
@pass_app
def fault(app: AppContext, endpoint: str, fault: str, count: int) -> None:
    from clore.sandbox import ENDPOINTS

    name = endpoint.removeprefix("/v1/").removeprefix("/")
    if name not in ENDPOINTS:
        raise CliError(f"unknown endpoint {endpoint!r}; one of: {', '.join(ENDPOINTS)}", EXIT_USAGE)
    _Control(app).call("inject_fault", endpoint=name, fault=fault, count=count)
    app.out.result(
        {"endpoint": name, "fault": fault, "count": count},
        lambda: app.out.echo(f"the next {count} {name} request(s) will get {fault}"),
    )


def _delivers_options(command: Any) -> Any:
    options = [
        click.option("--delivers-gpu", metavar="MODEL", help="GPU model its machines report."),
        click.option(
            "--delivers-gpu-count", type=Integer(0, 64), metavar="N", help="GPUs they report."
        ),
        click.option(
            "--delivers-gpuram", type=Number(min=0.25, max=1024), metavar="GB", help="GB per GPU."
        ),
        click.option(
            "--delivers-power-limit",
            type=Number(min=0, max=3000),
            metavar="W",
            help="Power limit per GPU, watts.",
        ),
        click.option(
            "--delivers-pcie-width",
            type=click.Choice(["1", "2", "4", "8", "16", "32"]),
            metavar="N",
            help="PCIe lanes (1, 2, 4, 8, 16, 32).",
        ),
        click.option(
            "--delivers-pcie-gen", type=Integer(1, 6), metavar="N", help="PCIe generation."
        ),
        click.option(
            "--gpu-error/--no-gpu-error",
            default=None,
            help="A crashed GPU: nvidia-smi shows ERR! for the last one (and still exits 0).",
        ),
        click.option(
            "--slow",
            type=Number(min=1, max=1000),
            metavar="FACTOR",
            help="Benchmarks run FACTOR times slower (1: full speed).",
        ),
        click.option(
            "--honest", is_flag=True, help="Deliver the listing again (clears every --delivers)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@sandbox.command()
@click.argument("server_id", type=Id(), metavar="ID")
@_delivers_options
@json_option
@pass_app
def server(
    app: AppContext,
    server_id: int,
    delivers_gpu: str | None,
    delivers_gpu_count: int | None,
    delivers_gpuram: float | None,
    delivers_power_limit: float | None,
    delivers_pcie_width: str | None,
    delivers_pcie_gen: int | None,
    gpu_error: bool | None,
    slow: float | None,
    honest: bool,
) -> None:
    """Make server ID's machines deliver other hardware than it lists (a lying host).

    The listing stays as it is; what `nvidia-smi` and benchmarks report inside its
    orders' machines changes, for running orders at once and for new ones. Options not
    given keep what the host delivers now; --honest first returns to the listing.

    \b
    clore --sandbox sandbox server 25756 --delivers-gpu-count 1 --gpu-error
    clore --sandbox sandbox server 25756 --slow 3
    clore --sandbox sandbox server 25756 --honest
    """
    changes: dict[str, Any] = {
        "gpu": delivers_gpu,
        "gpu_count": delivers_gpu_count,
        "gpuram": delivers_gpuram,
        "power_limit": delivers_power_limit,
        "pcie_width": None if delivers_pcie_width is None else int(delivers_pcie_width),
        "pcie_gen": delivers_pcie_gen,
        "gpu_error": gpu_error,
        "slow": slow,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    if not given and not honest:
        raise CliError("nothing to change: give --delivers-... options, --gpu-error or --honest", 2)
    control = _Control(app)
    if honest:
        control.call("set_server", server_id=server_id, delivers=None)
    if given:
        control.call("set_server", server_id=server_id, delivers=given)
    shown = "its listing" if honest and not given else json.dumps(given, sort_keys=True)
    app.out.result(
        {"server_id": server_id, "honest": honest, "delivers": given},
        lambda: app.out.echo(f"server {server_id} now delivers {shown}"),
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
    text = str(_Control(app).call("order_logs", order_id=order_id, limit=limit))
    app.out.result(
        {"order_id": order_id, "log": text},
        lambda: click.echo(text, nl=False) if text else app.out.info("(no output)"),
    )


@sandbox.command()
@click.argument("order_id", type=Id(), metavar="ORDER_ID")
@click.option("--refuse", is_flag=True, help="Refuse SSH connections.")
@click.option(
    "--delay",
    type=Number(min=0, min_open=True, max=3600),
    metavar="SECONDS",
    help="Accept connections but send the SSH banner only after SECONDS (a slow boot).",
)
@click.option("--drop", is_flag=True, help="Cut the open SSH sessions once.")
@click.option("--clear", is_flag=True, help="Serve SSH normally again.")
@json_option
@pass_app
def access(
    app: AppContext, order_id: int, refuse: bool, delay: float | None, drop: bool, clear: bool
) -> None:
    """Make ORDER_ID's SSH refuse, delay or drop connections, to test waits and reconnects.

    \b
    clore --sandbox sandbox access 1234 --delay 20    # every new connection waits 20 s
    clore --sandbox sandbox access 1234 --clear
    """
    given = {"refuse": refuse, "delay": delay is not None, "drop": drop, "clear": clear}
    chosen = [name for name, on in given.items() if on]
    if len(chosen) != 1:
        raise CliError("give exactly one of --refuse, --delay SECONDS, --drop, --clear", 2)
    name = chosen[0]
    seconds = delay or 0.0
    sent = None if name == "clear" else name
    _Control(app).call("set_access_fault", order_id=order_id, fault=sent, seconds=seconds)
    said = {
        "refuse": "refuses SSH connections",
        "delay": f"sends its SSH banner {seconds:g} s after each connection",
        "drop": "dropped its open SSH sessions",
        "clear": "serves SSH normally",
    }[str(name)]
    app.out.result(
        {"order_id": order_id, "fault": sent, "seconds": seconds},
        lambda: app.out.echo(f"order {order_id} {said}"),
    )
