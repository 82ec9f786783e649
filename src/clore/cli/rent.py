"""``clore rent ID`` and ``clore rent --cheapest FILTER...``: create an order, optionally wait.

``--cheapest`` ranks the matching servers with ``clore.rentals.choice.choose`` (available,
payable in ``--currency``, above the quality floors of ``--min-reliability``,
``--min-rating`` and ``--min-ratings`` unless ``--any-quality``, not on the bad-host list;
cheapest first, ties by reliability); ``_placing.place`` tries up to ``--tries`` of
them in turn (``clore.rentals.place``). ``--verify`` checks the machine once it is ready
and cancels it inside the free window when it is not what was listed; with
``--cheapest`` the next candidate is rented, up to ``--verify-tries`` orders
(``_verifying``, ``clore.rentals.place_verified``). ``--bid PRICE`` places a spot bid
(it implies ``--spot``); ``--lock-price`` is for on-demand orders only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clore.cli import _limits
from clore.cli._context import EXIT_NOT_FOUND, EXIT_USAGE, AppContext, CliError, pass_app
from clore.cli._currency import resolve_currency, with_currency
from clore.cli._format import gpu_text, price_text
from clore.cli._orderopts import OrderSpec, order_options
from clore.cli._output import json_option
from clore.cli._params import Integer, parse_id
from clore.cli._placing import Placement, lookup_server, parse_bid, place
from clore.cli._quality import floors_from, quality_options
from clore.market import PriceContext, label, server_price

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from clore.rentals import Candidate
    from clore.rentals.choice import Choice, Floors

__all__ = ["rent"]


def _cheapest(
    app: AppContext, words: tuple[str, ...], placement: Placement, spot: bool, floors: Floors
) -> list[Candidate]:
    from clore.cli._marketdata import load
    from clore.market import parse_filters
    from clore.rentals import Candidate
    from clore.rentals.choice import choose

    filters = parse_filters(words)
    data = load(app, refresh=True)  # the marketplace lists online servers only: fresh
    placement.rates = data.rates
    ctx = PriceContext(placement.currency, data.rates)
    choice = choose(data.servers, filters, ctx, spot=spot, floors=floors)
    if not choice.candidates:
        raise CliError(_nothing_left(choice, words, placement.currency, floors), EXIT_NOT_FOUND)
    best = choice.candidates[0]
    price = server_price(best, ctx, spot=spot)
    quality = f"{float(best.reliability) * 100:.0f}% reliable"
    if best.rating.cnt:
        quality += f", rated {float(best.rating.avg):.1f} by {best.rating.cnt}"
    app.out.info(
        f"cheapest of {len(choice.candidates)} matching: server {best.id} ({gpu_text(best)}, "
        f"{quality}) at {price_text(price, placement.currency)}"
    )
    left = choice.describe_left_out()
    if left:
        app.out.info(f"left out: {left} (floors: {floors.describe()}; --any-quality removes them)")
    return [Candidate(s.id, s) for s in choice.candidates]


def _nothing_left(choice: Choice, words: tuple[str, ...], currency: str, floors: Floors) -> str:
    """Why ``--cheapest`` found no candidate, and what would find one."""
    wanted = " ".join(words) or "(no filters)"
    message = f"no available server matches {wanted} and takes {label(currency)}"
    if choice.below_floors:
        message += (
            f"; {len(choice.below_floors)} more match below the quality floors "
            f"({floors.describe()}): lower --min-reliability or --min-rating, or --any-quality"
        )
    if choice.bad_hosts:
        message += f"; {len(choice.bad_hosts)} more are on the bad-host list (`clore hosts bad`)"
    if choice.not_payable:
        message += f"; {len(choice.not_payable)} more take other currencies (see --currency)"
    return message


def _complete_target(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """With --cheapest, the words are filters (``clore.cli._completion``)."""
    if not ctx.params.get("cheapest"):
        return []
    from clore.cli._completion import complete_filters

    return complete_filters(ctx, incomplete)


@click.command()
@click.argument(
    "target", nargs=-1, metavar="ID | --cheapest [FILTER]...", shell_complete=_complete_target
)
@click.option(
    "--cheapest", is_flag=True, help="Rent the cheapest available server matching FILTERs."
)
@click.option(
    "--tries",
    type=Integer(1, 10),
    default=3,
    show_default=True,
    help="With --cheapest: candidates to try when a server is taken meanwhile.",
)
@quality_options("With --cheapest")
@click.option(
    "--verify",
    "verify",
    is_flag=True,
    help="Once ready (implies --wait), check the machine over SSH against its listing; "
    "one that fails inside the free 10 minutes is cancelled at no creation fee and its "
    "host put on the bad-host list.",
)
@click.option(
    "--verify-tries",
    type=Integer(1, 10),
    default=3,
    show_default=True,
    help="With --cheapest --verify: orders to try when machines fail verification.",
)
@order_options
@click.option(
    "--spot", is_flag=True, help="Place a spot bid instead of an on-demand order (needs --bid)."
)
@click.option(
    "--bid", metavar="PRICE", help="Spot bid per day, implies --spot (0.0001btc, 0.00001btc/h)."
)
@_limits.guard_options
@with_currency
@json_option
@pass_app
def rent(
    app: AppContext,
    /,
    target: tuple[str, ...],
    cheapest: bool,
    tries: int,
    verify: bool,
    verify_tries: int,
    spot: bool,
    bid: str | None,
    currency: str,
    **options: Any,
) -> None:
    """Rent a server by ID, or the cheapest available one matching FILTERs.

    --cheapest chooses among servers that take --currency and pass the quality floors
    (--min-reliability, --min-rating with --min-ratings; --any-quality: none) and are not
    on the bad-host list, cheapest first, ties by reliability.

    \b
    Examples:
      clore rent 18811 --wait
      clore rent --cheapest gpu=4090 gpus=1 --ports 22:tcp,8888:http --wait --yes
      clore rent --cheapest gpu=4090 gpus=1 --verify --yes
      clore rent 18811 --bid 0.00004btc          # a spot bid (--bid implies --spot)
      clore rent 18811 --max-spend 0.0005btc --max-time 8h --guard
    """
    cur = resolve_currency(currency)
    floors = floors_from(options, applies=cheapest, what="--cheapest")
    _limits.check(options)
    spec = OrderSpec.from_params(options)
    spec.require_login()
    if verify:
        from clore.cli._verifying import rent_credentials

        rent_credentials(spec)  # exit 2 now, before anything is asked or sent
    spot = spot or bid is not None  # a bid is a spot order's price: --bid implies --spot
    if spot and bid is None:
        raise CliError("--spot needs --bid PRICE (the bid per day)", EXIT_USAGE)
    if spot and options["lock_price"]:
        raise CliError(
            "--lock-price applies to on-demand orders, not spot bids (--bid, --spot)", EXIT_USAGE
        )
    placement = Placement(
        currency=cur,
        spot_bid=parse_bid(bid, cur) if spot else None,
        lock_price=options["lock_price"],
        dry_run=options["dry_run"],
        yes=options["yes"],
        wait=options["wait"],
        timeout=options["timeout"],
        tries=tries if cheapest else 1,
        verify=verify,
        verify_tries=verify_tries if cheapest else 1,
    )
    if cheapest:
        candidates = _cheapest(app, target, placement, spot, floors)
    else:
        if len(target) != 1 or not target[0].strip().isdigit():
            raise CliError("give one server ID, or --cheapest with filters", EXIT_USAGE)
        server_id = parse_id(target[0], "ID")
        candidates = [lookup_server(app, server_id, placement)]
    placement.limits, placement.rates = _limits.read(app, options, cur, placement.rates)
    placement.guard = bool(options["run_guard"])
    place(app, candidates, spec, placement)
