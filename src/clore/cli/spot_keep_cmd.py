"""``clore spot keep ORDER --max-bid P``: keep a spot rental winning, cheaply, within a cap.

When outbid, the bid goes just above the winner (never above ``--max-bid``); when alone,
it walks down towards the server minimum within the API's step and 600 s rules. With
``--recover``, a lost order (or one the cap cannot keep) is replaced by a spot bid on the
next cheapest matching server, with the same image, ports and env.
"""

from __future__ import annotations

from pathlib import Path

import click

from clore.cli._context import AppContext, CliError, pass_app
from clore.cli._output import json_option
from clore.cli.monitor_cmd import (
    deadline,
    jsonl_option,
    limit_options,
    parse_limits,
    parse_money,
    run_events,
    until_options,
)

__all__ = ["keep"]


def _env(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for word in values:
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {word!r}")
        env[name.strip()] = value
    return env or None


@click.command()
@click.argument("order_id", type=int, metavar="ORDER")
@click.option(
    "--max-bid",
    required=True,
    metavar="PRICE",
    help="Never bid more than this per day (0.0003btc, 0.4usd/h with rates).",
)
@click.option(
    "--step",
    metavar="PRICE",
    help="Outbid the winner by this much (default 1% of the winning bid).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between checks.",
)
@click.option(
    "--recover",
    is_flag=True,
    help="Re-rent on the next cheapest matching server when the order is lost.",
)
@click.option(
    "--match",
    "match_words",
    multiple=True,
    metavar="FILTER",
    help="Filter for --recover candidates (default: same GPU model, >= GPU count).",
)
@click.option("--image", help="Image for --recover (default: the order's image).")
@click.option(
    "--ports",
    metavar="PORT:PROTO,...",
    help="Ports for --recover (default: the order's, when the API reports them).",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    callback=_env,
    metavar="NAME=VALUE",
    help="Environment for --recover (repeatable; my_orders does not return env).",
)
@click.option(
    "--ssh-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key for --recover (default ~/.ssh/id_ed25519.pub or id_rsa.pub).",
)
@click.option("--ssh-password", metavar="TEXT", help="SSH password for --recover.")
@click.option("--command", metavar="SCRIPT", help="Startup script for --recover.")
@click.option(
    "--currency",
    "-c",
    default=None,
    metavar="C",
    help="Currency of --max-bid/--step without suffix (default: the order's).",
)
@limit_options
@until_options
@jsonl_option
@json_option
@pass_app
def keep(
    app: AppContext,
    order_id: int,
    max_bid: str,
    step: str | None,
    interval: float,
    recover: bool,
    match_words: tuple[str, ...],
    image: str | None,
    ports: str | None,
    env: dict[str, str] | None,
    ssh_key: Path | None,
    ssh_password: str | None,
    command: str | None,
    currency: str | None,
    max_spend: str | None,
    max_time: str | None,
    until: str | None,
    for_: str | None,
    jsonl: bool,
) -> None:
    """Keep spot ORDER winning within --max-bid; lower the bid when nobody competes.

    \b
    Examples:
      clore spot keep 4711 --max-bid 0.0003btc
      clore spot keep 4711 --max-bid 0.0003btc --recover --env HF_TOKEN=... --max-spend 0.002
    """
    from clore import OrderNotFoundError
    from clore.cli._orderopts import OrderSpec
    from clore.cli.market import resolve_currency
    from clore.market import PriceContext, compile_filters, parse_filters
    from clore.workflows import RentSpec, SpotKeeper, StateFile, workflows_dir

    client = app.client()
    try:
        order = client.get_order(order_id)
    except OrderNotFoundError:
        raise CliError(f"order {order_id} is not among your orders", 4) from None
    if not order.spot:
        raise CliError(f"order {order_id} is on-demand; spot keep needs a spot order", 2)
    cur = resolve_currency(currency) if currency else order.currency
    cap = parse_money(max_bid, cur, "--max-bid")
    increment = parse_money(step, cur, "--step")
    limits = parse_limits(max_spend, max_time, cur)
    stop = deadline(app, until, for_)
    rent = None
    if recover:
        port_map = (
            _ports(ports) if ports else (order.ports if isinstance(order.ports, dict) else None)
        )
        spec = OrderSpec.from_options(
            image=image or order.image,
            ports=port_map,
            ssh_key=ssh_key,
            ssh_password=ssh_password,
            env=env,
            command=command,
            jupyter_token=None,
        )
        rent = RentSpec(
            image=spec.image,
            order_type="spot",
            currency=order.currency,
            ports=spec.ports,
            env=spec.env,
            ssh_password=spec.ssh_password,
            ssh_key=spec.ssh_key,
            jupyter_token=spec.jupyter_token,
            command=spec.command,
        )
    match = compile_filters(parse_filters(match_words), PriceContext(cur)) if match_words else None
    path = workflows_dir() / f"spot-{order_id}.json"
    app.out.info(f"keeping order {order_id} on server {order.si}; state: {path}")
    keeper = SpotKeeper(
        client,
        app.clock,
        order_id,
        max_bid=float(cap or 0),
        step=increment,
        interval=interval,
        recover=recover,
        rent=rent,
        match=match,
        limits=limits,
        until=stop,
        state=StateFile(path),
    )
    seen = run_events(app, keeper.run(), jsonl=jsonl, state_path=path)
    if app.out.json_mode and not jsonl:
        app.out.json({"order_id": keeper.state.order_id, "events": [e.to_json() for e in seen]})


def _ports(text: str) -> dict[str, str] | None:
    from clore import ParameterError
    from clore._validate import validate_ports

    words = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return validate_ports(words) if words else None
    except ParameterError as exc:
        raise CliError(f"--ports: {exc} (expected e.g. 22:tcp,8888:http)", 2) from None
