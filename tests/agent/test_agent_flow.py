"""The whole path an agent takes, on the sandbox and its real machines: search, quote,
rent (the order registered with its maximum time and its login), show, verify over SSH,
cancel (free inside 10 minutes), and a second cancel that says the order had ended;
orders the agent did not create are not cancelled unless the person allows it; the
maximum time is enforced by ``enforce_limits``; an order whose creation is uncertain
says so and is adopted once my_orders shows it."""

from __future__ import annotations

from typing import Any

import pytest

from clore import Clore, ManualClock
from clore.agent import AgentContext, AgentPolicy
from clore.rentals import RentalLogins
from clore.sandbox import Sandbox
from clore.workflows import registered_limits


@pytest.mark.slow
def test_search_quote_rent_verify_cancel(
    agent: AgentContext, sandbox: Sandbox, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """An honest machine verifies ok; cancelled inside the free window it costs no creation
    fee; a second cancel is a plain result; the order is the agent's throughout."""
    server_id = cheapest(agent, "gpu=4090", "gpus=1")
    args = {"server_id": server_id, "max_hours": 2}
    quote = call(agent, "quote_rental", **args)
    assert not quote.is_error, quote.text
    assert quote.data["cost"]["max_hours"] == 2
    rented = call(agent, "rent_server", **args, token=quote.data["token"])
    assert not rented.is_error, rented.text
    order_id = rented.data["order_id"]
    order = clore_client.get_order(order_id)
    assert server_id == order.si
    assert registered_limits()[order_id].max_time == 2 * 3600
    login = RentalLogins().get(order)
    assert login is not None and login.password
    clore_client.wait_for_order(order_id, timeout=120)
    shown = call(agent, "show_order", order_id=order_id)
    assert (
        shown.data["order"]["state"],
        shown.data["order"]["created_by_agent"],
    ) == ("running", True)
    listed = call(agent, "list_orders", only_agent=True)
    assert [order_id] == [row[0] for row in listed.data["rows"]]
    verified = call(agent, "verify_order", order_id=order_id, load=False)
    assert not verified.is_error, verified.text
    assert verified.data["passed"] and "fail" not in verified.data["failed"]
    assert "<untrusted-data" in verified.data["checks_untrusted"]
    cancelled = call(agent, "cancel_order", order_id=order_id)
    assert (cancelled.is_error, cancelled.data["cancelled"]) == (False, True)
    assert cancelled.data["creation_fee_waived"] is True
    again = call(agent, "cancel_order", order_id=order_id)
    assert (again.is_error, again.data["already_ended"]) == (False, True)
    assert "had already ended" in again.text
    assert clore_client.get_order(order_id).expired
    assert order_id not in registered_limits()


def test_an_order_the_agent_did_not_create_is_not_cancelled(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """cancel_foreign off: refused, the order runs on; on: cancelled."""
    agent = make_agent()
    server_id = cheapest(agent, "gpu=3090", "gpus=1")
    order = clore_client.create_order(server_id, "ubuntu:22.04", ssh_password="Pass1234")
    refused = call(agent, "cancel_order", order_id=order.id)
    assert refused.is_error and refused.data["refused"][0]["cap"] == "cancel_foreign"
    assert not clore_client.get_order(order.id).expired
    allowed = make_agent(AgentPolicy(cancel_foreign=True))
    done = call(allowed, "cancel_order", order_id=order.id)
    assert not done.is_error and done.data["created_by_agent"] is False
    assert clore_client.get_order(order.id).expired


def test_the_maximum_time_is_enforced(
    agent: AgentContext,
    sandbox: Sandbox,
    sandbox_clock: ManualClock,
    clore_client: Clore,
    call: Any,
    quote_and_rent: Any,
    cheapest: Any,
) -> None:
    """An order rented for at most 1 h is cancelled by enforce_limits one check before the
    hour, and then shows as budget_stopped."""
    _, rented = quote_and_rent(agent, server_id=cheapest(agent, "gpu=3090"), max_hours=1)
    order_id = rented.data["order_id"]
    assert [e for e in agent.enforce_limits(sandbox_clock) if e.kind == "guard_cancelled"] == []
    sandbox.advance(3600 - 30)
    events = agent.enforce_limits(sandbox_clock)
    assert [e.kind for e in events if e.kind == "guard_cancelled"] == ["guard_cancelled"]
    assert clore_client.get_order(order_id).expired
    assert call(agent, "show_order", order_id=order_id).data["order"]["state"] == "budget_stopped"


def test_an_uncertain_spot_bid_says_it_may_exist_and_is_adopted_later(
    agent: AgentContext, sandbox: Sandbox, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """create_order's answer is lost and the bid lands late: the result says the order may
    exist (the SDK never resends a bid), it counts as live, and once my_orders shows it the
    order is the agent's with its maximum time registered."""
    server_id = cheapest(agent, "gpu=3090", "spot")
    args = {"server_id": server_id, "order_type": "spot", "max_hours": 3}
    quote = call(agent, "quote_rental", **args)
    sandbox.inject_fault("create_order", "late_commit", seconds=30)
    result = call(agent, "rent_server", **args, token=quote.data["token"])
    assert result.is_error and result.data["may_exist"] is True
    assert "MAY EXIST" in result.text and "never sent twice" in result.text
    assert call(agent, "spend").data["live_orders"] == 1
    sandbox.advance(60)
    listed = call(agent, "list_orders", only_agent=True)
    (row,) = listed.data["rows"]
    order_id = row[0]
    assert server_id == row[1] and row[5] is True
    assert registered_limits()[order_id].max_time == 3 * 3600
    assert not call(agent, "cancel_order", order_id=order_id).is_error


def test_a_spot_bid_in_usd_per_hour_is_converted_and_placed(
    agent: AgentContext, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """A bid given as USD per hour becomes the per-day bid in the order's currency (rounded
    up to 8 decimals), quoted and then sent as the spot price."""
    server_id = cheapest(agent, "gpu=3090", "spot")
    minimum = next(s for s in clore_client.marketplace() if s.id == server_id).price_per_day(
        "bitcoin", spot=True
    )
    assert minimum is not None
    bid_usd_h = minimum * 68022.87 / 24 * 1.5
    args = {"server_id": server_id, "order_type": "spot", "bid": f"{bid_usd_h:.6f}usd/h"}
    quote = call(agent, "quote_rental", **args)
    assert not quote.is_error, quote.text
    assert quote.data["cost"]["usd_per_hour"] == pytest.approx(bid_usd_h, rel=1e-3)
    assert quote.data["spot"]["bid_runs_now"] is True
    rented = call(agent, "rent_server", **args, token=quote.data["token"])
    assert not rented.is_error, rented.text
    order = clore_client.get_order(rented.data["order_id"])
    wanted = float(f"{bid_usd_h:.6f}") * 24 / 68022.87
    assert order.spot and wanted <= float(order.price) <= wanted + 1e-8


def test_a_bid_under_the_spot_minimum_is_refused(
    agent: AgentContext, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """The quote says the bid is under the minimum; nothing is quoted."""
    server_id = cheapest(agent, "gpu=3090", "spot")
    result = call(
        agent, "quote_rental", server_id=server_id, order_type="spot", bid="0.00000001btc"
    )
    assert result.is_error and result.data["error"] == "bid_too_low"


def test_wallets_are_the_accounts_balances(
    agent: AgentContext, clore_client: Clore, call: Any
) -> None:
    """Each wallet's balance, and its USD value at the market's rate."""
    result = call(agent, "wallets")
    shown = {w["currency"]: w for w in result.data["wallets"]}
    for wallet in clore_client.wallets():
        label = {"bitcoin": "BTC", "CLORE-Blockchain": "CLORE", "USD-Blockchain": "USD"}[
            wallet.name
        ]
        assert shown[label]["balance"] == pytest.approx(float(wallet.balance or 0), rel=1e-6)
    assert shown["BTC"]["balance_usd"] == pytest.approx(
        shown["BTC"]["balance"] * 68022.87, rel=1e-3
    )
