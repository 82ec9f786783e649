"""``clore sandbox serve | reset | advance | fault``: the local, fake-money Clore API.

``serve`` runs the sandbox server. The control commands act on the embedded sandbox
(``clore --sandbox sandbox advance 3600``) or, with ``--base-url``, on a running sandbox
server through its ``/_sandbox/`` control plane. They refuse to talk to the real API.
"""

from __future__ import annotations

import re
from typing import Any, Final

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._format import duration, timestamp
from clore.cli._output import json_option

__all__ = ["sandbox"]

_UNITS: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


@click.group()
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
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option(
    "--db",
    metavar="PATH",
    help="SQLite file for the state (default: sandbox.db in the data dir; :memory: for none).",
)
@click.option(
    "--seed",
    default="snapshot",
    show_default=True,
    help="Initial market: snapshot (the 2024 capture), none, or a marketplace JSON file.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Sandbox seconds per real second (60: an hour passes in a minute).",
)
@click.option("--demo-key", metavar="KEY", help="API key of the funded demo user.")
@click.option("--no-rate-limit", is_flag=True, help="Accept requests as fast as they come.")
@click.option(
    "--market-activity",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Simulated market events (other renters, hosts) per second; 0: none.",
)
@click.option("--rng-seed", type=int, default=0, show_default=True, help="Market simulation seed.")
def serve(
    host: str,
    port: int,
    db: str | None,
    seed: str,
    time_scale: float,
    demo_key: str | None,
    no_rate_limit: bool,
    market_activity: float,
    rng_seed: int,
) -> None:
    """Run the sandbox API server until interrupted (Ctrl-C).

    It prints its base URL, the demo user's key (a sandbox key, worthless elsewhere) and
    its database path, then serves the API under /v1 and the control plane under /_sandbox.
    """
    from clore.sandbox import serve as run_server
    from clore.sandbox.backend.seed import require_source

    try:
        require_source(seed)
    except ValueError as exc:
        raise CliError(f"--seed: {exc}", 2) from None
    run_server(
        host=host,
        port=port,
        db=db,
        seed=None if seed == "none" else seed,
        time_scale=time_scale,
        demo_key=demo_key,
        rate_limit=not no_rate_limit,
        market_activity=market_activity,
        rng_seed=rng_seed,
    )


def parse_seconds(text: str) -> float:
    """``3600``, ``90s``, ``15m``, ``1h``, ``2d``, ``1w`` -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise click.BadParameter(f"expected a duration like 3600, 15m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


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
        from clore.sandbox import control_client

        with control_client(self.base_url) as remote:
            return getattr(remote, action)(**arguments)

    def now(self) -> float | None:
        return self.app.clock.time() if self.embedded else None


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
@click.argument("seconds", metavar="DURATION")
@json_option
@pass_app
def advance(app: AppContext, seconds: str) -> None:
    """Move the sandbox clock forward by DURATION (3600, 15m, 1h, 2d): billing runs."""
    amount = parse_seconds(seconds)
    control = _Control(app)
    control.call("advance", seconds=amount)
    now = control.now()
    shown = f"; sandbox time is now {timestamp(now)}" if now is not None else ""
    app.out.result(
        {"advanced": amount, "now": now},
        lambda: app.out.echo(f"advanced the sandbox clock by {duration(amount)}{shown}"),
    )


@sandbox.command()
@click.argument("endpoint")
@click.argument("fault")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many requests to ENDPOINT get the fault.",
)
@json_option
@pass_app
def fault(app: AppContext, endpoint: str, fault: str, count: int) -> None:
    """Make the next COUNT requests to ENDPOINT fail with FAULT.

    FAULT is one of db_error (code 1), rate_limit (HTTP 429), http_500, timeout,
    drop_after_commit (acts, then drops the answer); ENDPOINT is an API name such as
    create_order.
    """
    control = _Control(app)
    control.call("inject_fault", endpoint=endpoint, fault=fault, count=count)
    app.out.result(
        {"endpoint": endpoint, "fault": fault, "count": count},
        lambda: app.out.echo(f"the next {count} {endpoint} request(s) will get {fault}"),
    )
