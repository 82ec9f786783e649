"""``clore sandbox fault | server | access``: make the sandbox fail on purpose, to test what
a client does then.

``fault`` queues API faults per endpoint (``--list`` shows the queue, ``--clear`` empties
it; ``--seconds`` for the two timed faults, ``rate_limit`` and ``late_commit``), ``server``
makes a server's machines deliver other hardware than listed (a lying host), ``access``
makes an order's SSH refuse, delay or drop connections. Each acts on the embedded sandbox
(``--sandbox``) or a sandbox server (``--base-url``) through ``_sandbox_control``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import click
from click.shell_completion import CompletionItem

from clore.cli._context import EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._output import json_option
from clore.cli._params import Id, Integer, Number
from clore.cli._sandbox_control import Control
from clore.sandbox import FAULT_HELP, FAULTS

__all__ = ["access", "fault", "server"]

#: The longest a timed fault may wait (ten years, as the sandbox allows).
MAX_FAULT_SECONDS: Final = 10 * 365 * 86400.0

_WIDTH: Final = max(len(name) for name in FAULTS) + 2
_FAULT_DOC = "\n".join(
    [
        "Make the next COUNT requests to ENDPOINT fail with FAULT; --list shows the faults",
        "queued, --clear drops them.",
        "",
        "\b",
        "FAULT is one of",
        *(f"  {name:<{_WIDTH}} {FAULT_HELP[name]}" for name in FAULTS),
        "ENDPOINT is an API endpoint name such as create_order or my_orders.",
        "",
        "\b",
        "clore --sandbox sandbox fault create_order late_commit --seconds 30",
        "clore --sandbox sandbox fault --list",
        "clore --sandbox sandbox fault --clear",
    ]
)


def _complete_endpoint(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from clore.cli._completion import complete_endpoints

    return complete_endpoints(incomplete)


def _complete_fault(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from clore.cli._completion import complete_faults

    return complete_faults(incomplete)


@click.command(help=_FAULT_DOC, short_help="Make the next requests to ENDPOINT fail.")
@click.argument("endpoint", required=False, shell_complete=_complete_endpoint)
@click.argument(
    "fault",
    type=click.Choice(FAULTS),
    metavar="FAULT",
    required=False,
    shell_complete=_complete_fault,
)
@click.option(
    "--count",
    type=Integer(1, 100000),
    default=1,
    show_default=True,
    help="How many requests to ENDPOINT get the fault.",
)
@click.option(
    "--seconds",
    type=Number(min=0, max=MAX_FAULT_SECONDS),
    metavar="SECONDS",
    help="For rate_limit: the Retry-After it sends; for late_commit: the sandbox seconds "
    "after which the held request takes effect.",
)
@click.option("--list", "list_", is_flag=True, help="Show the queued faults and what is left.")
@click.option("--clear", is_flag=True, help="Drop every queued fault.")
@json_option
@pass_app
def fault(
    app: AppContext,
    endpoint: str | None,
    fault: str | None,
    count: int,
    seconds: float | None,
    list_: bool,
    clear: bool,
) -> None:
    from clore.sandbox import ENDPOINTS

    if list_ or clear:
        if endpoint is not None or (list_ and clear):
            raise CliError("--list and --clear go alone (no ENDPOINT FAULT, not both)", EXIT_USAGE)
        (_show if list_ else _clear)(app)
        return
    if endpoint is None:
        raise CliError("give ENDPOINT and FAULT (or --list, or --clear)", EXIT_USAGE)
    if fault is None:  # as click says it of a required argument: the faults named
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if p.name == "fault")
        raise click.MissingParameter(ctx=ctx, param=param)
    name = endpoint.removeprefix("/v1/").removeprefix("/")
    if name not in ENDPOINTS:
        raise CliError(f"unknown endpoint {endpoint!r}; one of: {', '.join(ENDPOINTS)}", EXIT_USAGE)
    control = Control(app)
    extra: dict[str, Any] = {}
    if seconds is not None:
        if not control.takes("inject_fault", "seconds"):
            raise CliError(
                f"--seconds: the sandbox server at {control.base_url} takes no seconds over "
                "its control plane; use the embedded sandbox (--sandbox)",
                EXIT_USAGE,
            )
        extra["seconds"] = seconds
    control.call("inject_fault", endpoint=name, fault=fault, count=count, **extra)
    after = "" if seconds is None else f" ({seconds:g} s)"
    app.out.result(
        {"endpoint": name, "fault": fault, "count": count, "seconds": seconds},
        lambda: app.out.echo(f"the next {count} {name} request(s) will get {fault}{after}"),
    )


def _queued(app: AppContext) -> list[dict[str, Any]]:
    """The queued faults, each as ``{"endpoint", "fault", "remaining", "seconds"}``."""
    found = []
    for endpoint, spec, remaining in Control(app).call("faults"):
        # A timed fault is queued as "name@seconds".
        name, at, seconds = str(spec).partition("@")
        found.append(
            {
                "endpoint": endpoint,
                "fault": name,
                "remaining": int(remaining),
                "seconds": float(seconds) if at else None,
            }
        )
    return found


def _show(app: AppContext) -> None:
    queued = _queued(app)

    def human() -> None:
        if not queued:
            app.out.echo("No faults queued.")
            return
        width = max(len("endpoint"), *(len(f["endpoint"]) for f in queued))
        kind = max(len("fault"), *(len(f["fault"]) for f in queued))
        app.out.echo(f"{'endpoint':<{width}}  {'fault':<{kind}}  left  seconds")
        for f in queued:
            shown = "—" if f["seconds"] is None else f"{f['seconds']:g}"
            app.out.echo(
                f"{f['endpoint']:<{width}}  {f['fault']:<{kind}}  {f['remaining']:>4}  {shown}"
            )

    app.out.result({"faults": queued}, human)


def _clear(app: AppContext) -> None:
    control = Control(app)
    dropped = sum(int(remaining) for _, _, remaining in control.call("faults"))
    control.call("clear_faults")
    said = f"dropped {dropped} queued fault(s)" if dropped else "No faults queued."
    app.out.result({"cleared": dropped}, lambda: app.out.echo(said))


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


@click.command()
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
    control = Control(app)
    if honest:
        control.call("set_server", server_id=server_id, delivers=None)
    if given:
        control.call("set_server", server_id=server_id, delivers=given)
    shown = "its listing" if honest and not given else json.dumps(given, sort_keys=True)
    app.out.result(
        {"server_id": server_id, "honest": honest, "delivers": given},
        lambda: app.out.echo(f"server {server_id} now delivers {shown}"),
    )


@click.command()
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
    Control(app).call("set_access_fault", order_id=order_id, fault=sent, seconds=seconds)
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
