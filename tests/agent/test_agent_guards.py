"""Every guard refuses, with the figures a model can act on, and nothing is rented: the
price per hour, the cost of one order (and the hours the cap allows), the daily total
(counting earlier runs' orders from the ledger), the live orders, the GPU model (exact,
as gpu=), the order's maximum time; and the quote token: missing, unknown, expired,
reused, arguments changed, price moved (the sandbox's host changes its price)."""

from __future__ import annotations

from typing import Any

import pytest

from clore import Clore, ManualClock
from clore.agent import AgentContext, AgentPolicy
from clore.sandbox import Sandbox

BTC_USD = 68022.87  # the sandbox's rate


def price_of(client: Clore, server_id: int, currency: str = "bitcoin") -> float:
    day = next(s for s in client.marketplace() if s.id == server_id).price_per_day(currency)
    assert day is not None
    return day


def refused_cap(result: Any) -> list[str]:
    assert result.is_error, result.text
    assert result.data["error"] == "refused", result.text
    return [r["cap"] for r in result.data["refused"]]


def test_over_the_price_per_hour(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """A cap under the server's USD price per hour refuses the quote, naming both."""
    probe = make_agent()
    server_id = cheapest(probe, "gpu=4090", "gpus=1")
    hourly_usd = price_of(clore_client, server_id) * BTC_USD / 24
    ctx = make_agent(AgentPolicy(max_price_per_hour_usd=round(hourly_usd * 0.9, 4)))
    result = call(ctx, "quote_rental", server_id=server_id)
    assert refused_cap(result) == ["max_price_per_hour_usd"]
    detail = result.data["refused"][0]
    assert detail["value"] == pytest.approx(hourly_usd, rel=1e-3)
    assert "token" not in result.data
    ok = make_agent(AgentPolicy(max_price_per_hour_usd=round(hourly_usd * 1.1, 4)))
    assert not call(ok, "quote_rental", server_id=server_id).is_error


def test_over_the_per_order_cap_says_how_many_hours_fit(
    make_agent: Any, call: Any, cheapest: Any
) -> None:
    """The 4 h default does not fit the cap; the refusal gives the hours that do, and a
    quote for those hours passes."""
    probe = make_agent()
    server_id = cheapest(probe, "gpu=4090", "gpus=1")
    full = call(probe, "quote_rental", server_id=server_id).data["cost"]["max_cost_usd"]
    ctx = make_agent(AgentPolicy(max_spend_per_order_usd=round(full / 2, 4)))
    result = call(ctx, "quote_rental", server_id=server_id)
    assert refused_cap(result) == ["max_spend_per_order_usd"]
    hours = result.data["refused"][0]["allows_hours"]
    assert 1.5 < hours < 2.0  # the creation fee takes a little of the half
    fits = call(ctx, "quote_rental", server_id=server_id, max_hours=round(hours * 0.99, 3))
    assert not fits.is_error, fits.text
    assert fits.data["cost"]["max_cost_usd"] <= full / 2


def test_over_the_daily_total_counts_an_earlier_runs_orders(
    make_agent: Any, call: Any, quote_and_rent: Any, cheapest: Any
) -> None:
    """One run rents; a new context (a restarted server, same data dir) counts that order's
    committed cost and refuses a second that would pass the daily cap; cancelling the
    first frees the cap down to what it cost."""
    first_run = make_agent()
    server_id = cheapest(first_run, "gpu=4090", "gpus=1")
    other_id = cheapest(first_run, "gpu=4090", "gpus=1", index=1)
    quote, rented = quote_and_rent(first_run, server_id=server_id)
    committed = quote.data["cost"]["max_cost_usd"]
    first_run.close()
    cap = round(committed * 1.5, 4)
    second_run = make_agent(AgentPolicy(max_spend_per_day_usd=cap))
    spent = call(second_run, "spend")
    assert spent.data["counted_usd"] == pytest.approx(committed, rel=1e-3)
    result = call(second_run, "quote_rental", server_id=other_id)
    assert refused_cap(result) == ["max_spend_per_day_usd"]
    detail = result.data["refused"][0]
    assert detail["used"] == pytest.approx(committed, rel=1e-3)
    assert detail["remaining"] == pytest.approx(cap - committed, rel=1e-3)
    assert not call(second_run, "cancel_order", order_id=rented.data["order_id"]).is_error
    assert call(second_run, "spend").data["counted_usd"] < committed / 10
    assert not call(second_run, "quote_rental", server_id=other_id).is_error


def test_too_many_live_orders(
    make_agent: Any, call: Any, quote_and_rent: Any, cheapest: Any
) -> None:
    """With one live order allowed, a second quote is refused until the first ends."""
    ctx = make_agent(AgentPolicy(max_live_orders=1))
    first = cheapest(ctx, "gpu=3090")
    second = cheapest(ctx, "gpu=3090", index=1)
    _, rented = quote_and_rent(ctx, server_id=first)
    result = call(ctx, "quote_rental", server_id=second)
    assert refused_cap(result) == ["max_live_orders"]
    assert (result.data["refused"][0]["live"], result.data["refused"][0]["limit"]) == (1, 1)
    call(ctx, "cancel_order", order_id=rented.data["order_id"])
    assert not call(ctx, "quote_rental", server_id=second).is_error


def test_a_gpu_model_not_allowed(make_agent: Any, call: Any, cheapest: Any) -> None:
    """allowed_gpus 4090 is the exact model: a 3090 and the 4090 Laptop are refused, a
    4090 is not."""
    ctx = make_agent(AgentPolicy(allowed_gpus=("4090",)))
    result = call(ctx, "quote_rental", server_id=cheapest(ctx, "gpu=3090"))
    assert refused_cap(result) == ["allowed_gpus"]
    assert "RTX 3090" in result.data["refused"][0]["gpu"]
    laptop = cheapest(ctx, "gpu~4090", "gpu~laptop")
    assert refused_cap(call(ctx, "quote_rental", server_id=laptop)) == ["allowed_gpus"]
    assert not call(ctx, "quote_rental", server_id=cheapest(ctx, "gpu=4090")).is_error


def test_max_hours_over_the_order_maximum(agent: AgentContext, call: Any, cheapest: Any) -> None:
    """The model cannot ask for more running time than the person's order_max_time."""
    result = call(agent, "quote_rental", server_id=cheapest(agent, "gpu=3090"), max_hours=5)
    assert refused_cap(result) == ["order_max_time"]


def test_nothing_was_rented_after_all_those_refusals(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """A refused rent_server (a cap lowered between quote and rent, as a restart with a new
    policy would) creates no order."""
    probe = make_agent()
    server_id = cheapest(probe, "gpu=3090")
    quote = call(probe, "quote_rental", server_id=server_id)
    strict = make_agent(AgentPolicy(max_price_per_hour_usd=0.0001))
    strict.quotes = probe.quotes  # the same token book, a stricter person
    result = call(strict, "rent_server", server_id=server_id, token=quote.data["token"])
    assert refused_cap(result) == ["max_price_per_hour_usd"]
    assert clore_client.my_orders() == []


# --------------------------------------------------------------------------- tokens


def test_token_missing_or_unknown(
    agent: AgentContext, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """rent_server without a token, or with one never issued, rents nothing."""
    server_id = cheapest(agent, "gpu=3090")
    missing = call(agent, "rent_server", server_id=server_id)
    unknown = call(agent, "rent_server", server_id=server_id, token="made-up")
    assert (missing.data["reason"], unknown.data["reason"]) == ("missing", "unknown")
    assert "quote_rental first" in missing.text
    assert clore_client.my_orders() == []


def test_token_expired(
    agent: AgentContext, sandbox_clock: ManualClock, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """Past its 120 s the token is refused."""
    server_id = cheapest(agent, "gpu=3090")
    quote = call(agent, "quote_rental", server_id=server_id)
    sandbox_clock.advance(121)
    result = call(agent, "rent_server", server_id=server_id, token=quote.data["token"])
    assert result.data["reason"] == "expired"
    assert clore_client.my_orders() == []


def test_token_reused(agent: AgentContext, clore_client: Clore, call: Any, cheapest: Any) -> None:
    """A token rents once; the second use is refused and no second order exists."""
    server_id = cheapest(agent, "gpu=3090")
    quote = call(agent, "quote_rental", server_id=server_id)
    first = call(agent, "rent_server", server_id=server_id, token=quote.data["token"])
    second = call(agent, "rent_server", server_id=server_id, token=quote.data["token"])
    assert not first.is_error
    assert second.data["reason"] == "used"
    assert len(clore_client.my_orders()) == 1


def test_token_with_changed_arguments(
    agent: AgentContext, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """Other arguments than quoted are refused, and the token is spent; spellings of the same
    arguments (btc for bitcoin, ports in another order) are the same arguments."""
    server_id = cheapest(agent, "gpu=3090")
    quote = call(agent, "quote_rental", server_id=server_id, max_hours=2)
    changed = call(
        agent, "rent_server", server_id=server_id, max_hours=3, token=quote.data["token"]
    )
    assert changed.data["reason"] == "arguments_changed"
    same = call(agent, "rent_server", server_id=server_id, max_hours=2, token=quote.data["token"])
    assert same.data["reason"] == "used"
    assert clore_client.my_orders() == []
    args = {"server_id": server_id, "currency": "bitcoin", "ports": ["22:tcp", "8888:http"]}
    quote = call(agent, "quote_rental", **args)
    spelled = {**args, "currency": "BTC", "ports": ["8888:http", "22:tcp"]}
    assert not call(agent, "rent_server", **spelled, token=quote.data["token"]).is_error


def test_price_moved(
    agent: AgentContext, sandbox: Sandbox, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """The host raises the price 10 % after the quote: refused (tolerance 2 %), with both
    prices; a 1 % move is within tolerance and rents at the new price."""
    server_id = cheapest(agent, "gpu=3090")
    day = price_of(clore_client, server_id)
    quote = call(agent, "quote_rental", server_id=server_id)
    sandbox.set_server(server_id, price={"on_demand": {"bitcoin": day * 1.10}})
    moved = call(agent, "rent_server", server_id=server_id, token=quote.data["token"])
    assert refused_cap(moved) == ["price_moved"]
    detail = moved.data["refused"][0]
    assert detail["current_per_hour"] == pytest.approx(day * 1.10 / 24, rel=1e-3)
    assert detail["quoted_per_hour"] == pytest.approx(day / 24, rel=1e-3)
    assert clore_client.my_orders() == []
    quote = call(agent, "quote_rental", server_id=server_id)
    sandbox.set_server(server_id, price={"on_demand": {"bitcoin": day * 1.10 * 1.01}})
    rented = call(agent, "rent_server", server_id=server_id, token=quote.data["token"])
    assert not rented.is_error, rented.text
    (order,) = clore_client.my_orders()
    assert float(order.price) == pytest.approx(day * 1.10 * 1.01, rel=1e-6)
