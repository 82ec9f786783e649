"""The edges of the agent's money rules (found by mutation testing): what an order may
cost (``Cost``), the USD rate, and every cap of ``check_caps`` at its boundary, with the
figures each refusal names."""

from __future__ import annotations

import math
from typing import Any

import pytest

from clore import Server
from clore._wire import Specs
from clore.agent import AgentPolicy, ToolError, Usage
from clore.agent.caps import Cost, check_caps, gpu_allowed, refuse, usd_rate
from clore.market import USD

# Figures exact in binary floating point, so every boundary below is an exact one.
BTC = "bitcoin"
RTX4090 = Server(id=7, specs=Specs(gpu="2x NVIDIA GeForce RTX 4090"))
NO_USAGE = Usage(used_usd=0.0, live=0)


def cost(
    *,
    day: float = 48.0,
    rate: float | None = 0.5,
    fee: float = 25.0,
    creation: float = 0.5,
    hours: float = 4.0,
    currency: str = BTC,
) -> Cost:
    """48/day = 2/h; with the 25 % fee 2.5/h; 4 h: 10 + creation 0.5 = 10.5; USD x 0.5."""
    return Cost(
        currency=currency,
        spot=False,
        price_per_day=day,
        usd_rate=rate,
        fee_percent=fee,
        creation_fee=creation,
        seconds=hours * 3600.0,
    )


def caps_of(
    policy: AgentPolicy,
    order: Cost,
    usage: Usage = NO_USAGE,
    server: Server = RTX4090,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return check_caps(policy, server, order, usage)


def names(refusals: list[dict[str, Any]]) -> list[str]:
    return [r["cap"] for r in refusals]


# --------------------------------------------------------------------------- cost


def test_the_cost_of_an_order_is_price_times_time_plus_fee_plus_creation_fee() -> None:
    """Per hour, with the renter fee, over the maximum time, plus the creation fee."""
    order = cost()
    assert (order.price_per_hour, order.burn_per_hour, order.max_cost) == (2.0, 2.5, 10.5)
    assert (order.price_per_hour_usd, order.max_cost_usd) == (1.0, 5.25)


def test_usd_is_the_amount_times_the_rate_and_unknown_without_either() -> None:
    """An amount converts at the rate; no amount or no rate is no USD figure."""
    assert cost(rate=1.5).usd(2.0) == 3.0
    assert cost(rate=1.5).usd(None) is None
    assert cost(rate=None).usd(2.0) is None
    assert (cost(rate=None).price_per_hour_usd, cost(rate=None).max_cost_usd) == (None, None)


def test_hours_within_a_budget_leave_room_for_the_creation_fee() -> None:
    """(budget in USD / rate - creation fee) / burn per hour."""
    # 3 USD = 6 BTC; minus 0.5 creation fee = 5.5; at 2.5/h: 2.2 h.
    assert cost().hours_within(3.0) == pytest.approx(2.2, rel=1e-12)
    assert cost().hours_within(5.25) == 4.0


def test_a_budget_that_the_creation_fee_eats_allows_no_hours() -> None:
    """Nothing left after the creation fee (or a part of one) is 0 hours, not less."""
    assert cost(creation=1.0).hours_within(0.25) == 0.0  # 0.5 BTC left of 1.0: short
    assert cost(creation=1.0).hours_within(0.5) == 0.0  # exactly the creation fee


def test_a_budget_of_under_one_unit_after_the_fee_still_allows_hours() -> None:
    """0.5 BTC left at 2.5/h is 0.2 h (a small remainder is not rounded away)."""
    assert cost(creation=0.5).hours_within(0.5) == pytest.approx(0.2, rel=1e-12)


def test_a_free_order_fits_any_budget_for_ever() -> None:
    """Price 0 (only the creation fee): the budget allows unlimited hours."""
    assert cost(day=0.0).hours_within(1.0) == math.inf
    # A price so low its burn is under one unit per hour is not "free".
    assert cost(day=12.0).hours_within(3.0) == pytest.approx(5.5 / 0.625, rel=1e-12)


def test_hours_within_are_unknown_without_a_rate() -> None:
    """No USD rate: the hours a USD budget allows cannot be told."""
    assert cost(rate=None).hours_within(100.0) is None


def test_the_quote_shows_every_figure_of_the_cost() -> None:
    """The figures a person confirms: per hour and day, in USD, fees, hours, maximum."""
    assert cost().to_json() == {
        "currency": "BTC",
        "price_per_hour": 2.0,
        "price_per_day": 48.0,
        "usd_per_hour": 1.0,
        "usd_per_day": 24.0,
        "renter_fee_percent": 25.0,
        "creation_fee": 0.5,
        "creation_fee_usd": 0.25,
        "max_hours": 4.0,
        "max_cost": 10.5,
        "max_cost_usd": 5.25,
    }


def test_usd_rates_come_from_the_market_and_usd_is_one() -> None:
    """USD is 1; another currency its market rate; missing or 0 is no rate."""
    assert usd_rate(USD, None) == 1.0
    assert usd_rate(USD, {USD: 3.0}) == 1.0
    assert usd_rate(BTC, {BTC: 0.25, "CLORE-Blockchain": 2.0}) == 0.25
    assert usd_rate(BTC, {"CLORE-Blockchain": 2.0}) is None
    assert usd_rate(BTC, {BTC: 0.0}) is None
    assert usd_rate(BTC, None) is None


# --------------------------------------------------------------------------- gpus


def test_any_allowed_model_lets_the_gpu_through_and_others_do_not() -> None:
    """The exact models, as gpu= matches them: a 4090 passes a list naming it anywhere."""
    assert gpu_allowed(AgentPolicy(), RTX4090)
    assert gpu_allowed(AgentPolicy(allowed_gpus=("A100 80GB", "RTX 4090")), RTX4090)
    assert not gpu_allowed(AgentPolicy(allowed_gpus=("RTX 4090 D", "RTX 3090")), RTX4090)


def test_a_gpu_outside_the_allowed_models_is_refused_by_name() -> None:
    """The refusal names the server's GPU and the allowed models."""
    policy = AgentPolicy(allowed_gpus=("RTX 3090", "A100 80GB"))
    refusals, caps = caps_of(policy, cost())
    assert refusals == [
        {
            "cap": "allowed_gpus",
            "message": "GPU 2x RTX 4090 is not among the allowed models (RTX 3090, A100 80GB)",
            "gpu": "2x RTX 4090",
            "allowed": ["RTX 3090", "A100 80GB"],
        }
    ]
    assert caps == {"allowed_gpus": {"allowed": ["RTX 3090", "A100 80GB"], "ok": False}}
    refusals, caps = caps_of(AgentPolicy(allowed_gpus=("RTX 4090",)), cost())
    assert (refusals, caps) == ([], {"allowed_gpus": {"allowed": ["RTX 4090"], "ok": True}})


# --------------------------------------------------------------------------- caps


def test_no_caps_refuse_nothing_even_without_a_usd_rate() -> None:
    """Without a USD cap a missing rate does not matter."""
    assert caps_of(AgentPolicy(), cost(rate=None)) == ([], {})


@pytest.mark.parametrize(
    "policy",
    [
        AgentPolicy(max_price_per_hour_usd=10.0),
        AgentPolicy(max_spend_per_order_usd=10.0),
        AgentPolicy(max_spend_per_day_usd=10.0),
    ],
    ids=["per-hour", "per-order", "per-day"],
)
def test_a_usd_cap_without_a_usd_rate_refuses(policy: AgentPolicy) -> None:
    """A cap that cannot be checked refuses, once, saying why (and no other USD cap)."""
    refusals, caps = caps_of(policy, cost(rate=None))
    assert refusals == [
        {
            "cap": "usd_rate",
            "message": "the USD caps cannot be checked: no USD rate for this currency now; "
            "try again in a minute, or pay in usd",
        }
    ]
    assert [entry["ok"] for entry in caps.values()] == [False]


def test_a_usd_cap_with_a_rate_does_not_ask_for_one() -> None:
    """With a rate every USD cap is checked, none refuses for the rate."""
    policy = AgentPolicy(
        max_price_per_hour_usd=10.0, max_spend_per_order_usd=10.0, max_spend_per_day_usd=10.0
    )
    refusals, caps = caps_of(policy, cost())
    assert refusals == []
    assert [entry["ok"] for entry in caps.values()] == [True, True, True]


def test_the_hourly_price_cap_allows_exactly_the_cap() -> None:
    """1 USD/h against a 1 USD/h cap passes, with the figures shown."""
    refusals, caps = caps_of(AgentPolicy(max_price_per_hour_usd=1.0), cost())
    assert refusals == []
    assert caps == {"max_price_per_hour_usd": {"limit": 1.0, "value": 1.0, "ok": True}}


def test_the_hourly_price_cap_refuses_a_price_over_it() -> None:
    """Over the cap by a millionth is over; the refusal names both figures."""
    refusals, caps = caps_of(AgentPolicy(max_price_per_hour_usd=0.999999), cost())
    assert refusals == [
        {
            "cap": "max_price_per_hour_usd",
            "message": "1 USD/h is over the cap of 1 USD/h",
            "limit": 0.999999,
            "value": 1.0,
        }
    ]
    assert caps == {"max_price_per_hour_usd": {"limit": 0.999999, "value": 1.0, "ok": False}}
    assert names(caps_of(AgentPolicy(max_price_per_hour_usd=0.5), cost())[0]) == [
        "max_price_per_hour_usd"
    ]


NOISE = 1 + 1e-9  # the relative float noise a USD cap tolerates: a billionth


@pytest.mark.parametrize(
    ("policy", "order"),
    [
        # 2/h x 0.5 = 1 USD/h at a 1 USD/h cap, the rate a billionth higher.
        (AgentPolicy(max_price_per_hour_usd=1.0), cost(rate=0.5 * NOISE)),
        # 10.5 at 0.5 is 5.25 USD at a 5.25 USD cap, the rate a billionth higher.
        (AgentPolicy(max_spend_per_order_usd=5.25), cost(rate=0.5 * NOISE)),
    ],
    ids=["per-hour", "per-order"],
)
def test_a_figure_over_a_cap_by_float_noise_is_at_the_cap(policy: AgentPolicy, order: Cost) -> None:
    """A billionth over the cap passes (the noise of a conversion); two are over."""
    assert caps_of(policy, order)[0] == []
    twice = cost(rate=0.5 * (1 + 2e-9))
    assert len(caps_of(policy, twice)[0]) == 1


def test_a_spent_daily_cap_tolerates_only_float_noise() -> None:
    """Nothing left: an order of 1e-12 USD (float noise) passes, 2e-12 is refused."""
    usage = Usage(used_usd=10.0, live=0)
    policy = AgentPolicy(max_spend_per_day_usd=10.0)
    noise = cost(day=0.0, creation=1e-12, rate=1.0)
    assert caps_of(policy, noise, usage)[0] == []
    more = cost(day=0.0, creation=2e-12, rate=1.0)
    assert names(caps_of(policy, more, usage)[0]) == ["max_spend_per_day_usd"]


def test_the_per_order_cap_allows_exactly_the_cap() -> None:
    """5.25 USD at most against a 5.25 USD cap passes; it allows the 4 h."""
    refusals, caps = caps_of(AgentPolicy(max_spend_per_order_usd=5.25), cost())
    assert refusals == []
    assert caps == {
        "max_spend_per_order_usd": {"limit": 5.25, "value": 5.25, "allows_hours": 4.0, "ok": True}
    }


def test_the_per_order_cap_refuses_a_longer_order_and_says_how_long_fits() -> None:
    """Over the cap: the refusal says how many hours the cap allows at this price."""
    refusals, caps = caps_of(AgentPolicy(max_spend_per_order_usd=3.0), cost())
    assert refusals == [
        {
            "cap": "max_spend_per_order_usd",
            "message": "this order may cost 5.25 USD, over the per-order cap of 3 USD; at "
            "this price the cap allows 2.2 h (set max_hours to at most that)",
            "limit": 3.0,
            "value": 5.25,
            "allows_hours": 2.2,
        }
    ]
    assert caps == {
        "max_spend_per_order_usd": {"limit": 3.0, "value": 5.25, "allows_hours": 2.2, "ok": False}
    }
    assert names(caps_of(AgentPolicy(max_spend_per_order_usd=5.2499), cost())[0]) == [
        "max_spend_per_order_usd"
    ]


def test_the_daily_cap_allows_exactly_what_is_left() -> None:
    """10 USD cap, 4.75 used: 5.25 left, an order of at most 5.25 passes."""
    usage = Usage(used_usd=4.75, live=1)
    refusals, caps = caps_of(AgentPolicy(max_spend_per_day_usd=10.0), cost(), usage)
    assert refusals == []
    assert caps == {
        "max_spend_per_day_usd": {
            "limit": 10.0,
            "used": 4.75,
            "remaining": 5.25,
            "allows_hours": 4.0,
            "ok": True,
        }
    }


def test_the_daily_cap_refuses_more_than_what_is_left() -> None:
    """7 of 10 USD used: 3 left, not enough for 5.25; the refusal says what is left."""
    usage = Usage(used_usd=7.0, live=0)
    refusals, caps = caps_of(AgentPolicy(max_spend_per_day_usd=10.0), cost(), usage)
    assert refusals == [
        {
            "cap": "max_spend_per_day_usd",
            "message": "this order may cost 5.25 USD but only 3 USD of the 10 USD daily cap "
            "is left (7 USD committed in the last 24 h); that allows 2.2 h at this price",
            "limit": 10.0,
            "used": 7.0,
            "remaining": 3.0,
            "value": 5.25,
        }
    ]
    assert caps == {
        "max_spend_per_day_usd": {
            "limit": 10.0,
            "used": 7.0,
            "remaining": 3.0,
            "allows_hours": 2.2,
            "ok": False,
        }
    }
    usage = Usage(used_usd=4.7501, live=0)
    assert names(caps_of(AgentPolicy(max_spend_per_day_usd=10.0), cost(), usage)[0]) == [
        "max_spend_per_day_usd"
    ]


def test_a_daily_cap_spent_beyond_its_limit_leaves_nothing() -> None:
    """12 of 10 USD used: 0 left (not a negative amount, not one unit), a small order is
    refused."""
    usage = Usage(used_usd=12.0, live=0)
    small = cost(day=0.0, creation=1.0)  # 0.5 USD
    refusals, caps = caps_of(AgentPolicy(max_spend_per_day_usd=10.0), small, usage)
    assert names(refusals) == ["max_spend_per_day_usd"]
    assert (refusals[0]["remaining"], caps["max_spend_per_day_usd"]["remaining"]) == (0.0, 0.0)
    assert caps["max_spend_per_day_usd"]["allows_hours"] == 0.0


def test_a_free_order_passes_a_daily_cap_that_is_used_up() -> None:
    """Nothing left, an order that costs nothing: 0 <= 0 passes."""
    usage = Usage(used_usd=10.0, live=0)
    free = cost(day=0.0, creation=0.0)
    refusals, caps = caps_of(AgentPolicy(max_spend_per_day_usd=10.0), free, usage)
    assert refusals == []
    assert caps["max_spend_per_day_usd"]["ok"] is True


def test_the_live_orders_cap_refuses_at_the_cap_and_allows_under_it() -> None:
    """2 live against a cap of 2 is refused (the next would be the third); 1 passes."""
    policy = AgentPolicy(max_live_orders=2)
    refusals, caps = caps_of(policy, cost(), Usage(used_usd=0.0, live=2))
    assert refusals == [
        {
            "cap": "max_live_orders",
            "message": "the agent has 2 live order(s), the cap is 2: cancel one first "
            "(list_orders)",
            "limit": 2,
            "live": 2,
        }
    ]
    assert caps == {"max_live_orders": {"limit": 2, "live": 2, "ok": False}}
    refusals, caps = caps_of(policy, cost(), Usage(used_usd=0.0, live=1))
    assert (refusals, caps) == ([], {"max_live_orders": {"limit": 2, "live": 1, "ok": True}})


def test_every_cap_that_fails_is_named_in_order() -> None:
    """All refusals at once, in the documented order, with the USD figures unknown."""
    policy = AgentPolicy(
        max_price_per_hour_usd=0.5,
        max_spend_per_order_usd=1.0,
        max_spend_per_day_usd=1.0,
        max_live_orders=1,
        allowed_gpus=("RTX 3090",),
    )
    refusals, _ = caps_of(policy, cost(), Usage(used_usd=0.0, live=1))
    assert names(refusals) == [
        "allowed_gpus",
        "max_price_per_hour_usd",
        "max_spend_per_order_usd",
        "max_spend_per_day_usd",
        "max_live_orders",
    ]
    refusals, caps = caps_of(policy, cost(rate=None), Usage(used_usd=0.0, live=0))
    assert names(refusals) == ["usd_rate", "allowed_gpus"]
    assert caps == {
        "allowed_gpus": {"allowed": ["RTX 3090"], "ok": False},
        "max_price_per_hour_usd": {"limit": 0.5, "value": None, "ok": False},
        "max_spend_per_order_usd": {
            "limit": 1.0,
            "value": None,
            "allows_hours": None,
            "ok": False,
        },
        "max_spend_per_day_usd": {
            "limit": 1.0,
            "used": 0.0,
            "remaining": 1.0,
            "allows_hours": None,
            "ok": False,
        },
        "max_live_orders": {"limit": 1, "live": 0, "ok": True},
    }


def test_refuse_is_one_error_naming_every_refusal() -> None:
    """``refused: cap: message; cap: message`` with the refusals and caps as data."""
    refusals = [{"cap": "a", "message": "one"}, {"cap": "b", "message": "two"}]
    error = refuse(refusals, {"a": {"ok": False}})
    assert isinstance(error, ToolError)
    assert "refused: a: one; b: two" == error.message == str(error)
    assert {"error": "refused", "refused": refusals, "caps": {"a": {"ok": False}}} == error.data
