"""What the job's money needs, each read once and only when needed: the order currency,
USD rates (one ``spot_marketplace``, only when an amount names another currency), the
renter fee (before renting only for a ``max_spend``; otherwise while the job runs, off the
way to its result), ``max_spend`` and the spot bid in the order's currency, and what each
order cost the job (``account``: from the read that confirmed its cancel when there is
one, not from another)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from clore._errors import CloreError
from clore.jobs._run import Finish, Run, Stop

if TYPE_CHECKING:
    from clore._wire import Order, Server
    from clore.rentals import Candidate

__all__ = ["account", "bid_for", "ensure_fee", "needs_rates", "prepare_money"]


def _fail(message: str) -> Stop:
    return Stop(Finish("error", message))


def needs_rates(run: Run) -> bool:
    """True when an amount of the job names another currency than the order's (a
    ``max_spend``, a spot ``bid``, a price filter): only then are USD rates read."""
    from clore.market.filters import FilterError, parse_filters
    from clore.market.pricing import parse_amount
    from clore.workflows.plan import LimitError, Limits

    spec = run.spec
    named: list[str | None] = []
    with contextlib.suppress(LimitError):
        named.append(Limits.spend_currency(spec.max_spend))
    if spec.spot and spec.bid is not None:
        with contextlib.suppress(ValueError):
            named.append(parse_amount(spec.bid).currency)
    with contextlib.suppress(FilterError):
        for word in parse_filters(spec.filters):
            if word.field.kind == "price":
                named.append(word.values[0].currency)
    return any(name is not None and name != run.currency for name in named)


async def _rates(
    run: Run, servers: list[Server] | None, server_id: int | None
) -> dict[str, float] | None:
    """USD rates from one ``spot_marketplace`` (the API has no rates endpoint): of
    ``server_id``, else of the first free server of ``servers``."""
    if server_id is None and servers:
        server_id = next((s for s in servers if not s.rented), servers[0]).id
    if server_id is None:
        return None
    try:
        market = await run.api.spot_marketplace(server_id)
    except CloreError:
        return None
    rates = {k: float(v) for k, v in market.currency_rates_in_usd.items() if v}
    return rates or None


async def ensure_fee(run: Run) -> float:
    """The renter fee in percent (``renter_fees``, read once per job)."""
    if run.fee_percent is None:
        try:
            fees = await run.api.renter_fees()
            fee = fees.fee_percent("spot" if run.spec.spot else "on-demand", run.currency)
        except CloreError:
            fee = 10.0  # the API's on-demand figure: the higher one
        if run.fee_percent is None:
            run.fee_percent = fee
    return run.fee_percent


async def prepare_money(
    run: Run, servers: list[Server] | None = None, *, server_id: int | None = None
) -> None:
    """The order currency, and what the limits need before anything is rented: USD
    rates when an amount must be converted (``needs_rates``), the renter fee and
    ``max_spend`` in the currency when there is a ``max_spend`` (a limit that cannot be
    converted stops here). Without one the fee is read later, while the job runs."""
    from clore.market.pricing import parse_currency
    from clore.workflows.plan import LimitError, Limits

    spec = run.spec
    if run.order is None:  # an order's own currency is the job's (adopt, resume)
        try:
            run.currency = parse_currency(spec.currency) if spec.currency else run.currency
        except ValueError as exc:
            raise _fail(f"currency: {exc}") from None
    if run.rates is None and needs_rates(run):
        run.rates = await _rates(run, servers, server_id)
    if spec.max_spend is not None and run.max_spend is None:
        await ensure_fee(run)
        try:
            run.max_spend = Limits.parse(
                spec.max_spend, None, run.currency, rates=run.rates
            ).max_spend
        except LimitError as exc:
            raise _fail(f"max_spend: {exc.reason}") from None


def bid_for(run: Run, candidate: Candidate) -> float | None:
    """The spot bid per day for ``candidate``: the spec's (converted), else its minimum."""
    from clore.market.pricing import convert, parse_amount

    spec = run.spec
    if not spec.spot:
        return None
    if spec.bid is None:
        return candidate.listed_price(run.currency, spot=True)
    amount = parse_amount(spec.bid)
    source = amount.in_currency(run.currency)
    value = convert(amount.per_day, source, run.currency, run.rates)
    if value is None:
        raise _fail(f"bid: cannot convert {spec.bid} to {run.currency} without USD rates")
    return value


async def account(run: Run, order_id: int, known: Order | None = None) -> Order | None:
    """Add what the current order ``order_id`` cost to the job's past costs (once): from
    ``known`` when the caller has just read it (the read that confirmed a cancel, a look
    that found it ended), else from a ``my_orders`` read now. The order as counted, or
    None when it cannot be read."""
    found = known
    if found is None:
        try:
            found = await run.api.find_order(order_id)
        except CloreError:
            found = None
    if found is None or order_id in run.costed:
        return found
    await ensure_fee(run)
    cost = run.cost_of(found)
    run.costed.add(order_id)
    run.past_spend += cost.spend
    run.past_fees += cost.fees
    run.save(spent=run.past_spend, fees=run.past_fees, cost=run.past_spend + run.past_fees)
    return found
