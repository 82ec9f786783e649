"""The person's confirmation before an order is created: accepted, it rents; declined,
nothing is rented and the token is void for good; a client that cannot ask (None) rents
on the quote alone. The question shows the server, the price and the caps."""

from __future__ import annotations

from typing import Any

from clore import Clore
from clore.agent import AgentPolicy

POLICY = AgentPolicy(max_spend_per_day_usd=40, max_live_orders=3)


def asking(answer: bool | None, asked: list[tuple[str, dict[str, Any]]]) -> Any:
    def confirm(message: str, details: dict[str, Any]) -> bool | None:
        asked.append((message, details))
        return answer

    return confirm


def test_accepted_rents_after_showing_server_price_and_caps(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """One question, naming the server, its price per hour and the caps; then the order."""
    asked: list[tuple[str, dict[str, Any]]] = []
    ctx = make_agent(POLICY, confirm=asking(True, asked))
    server_id = cheapest(ctx, "gpu=3090")
    quote = call(ctx, "quote_rental", server_id=server_id)
    rented = call(ctx, "rent_server", server_id=server_id, token=quote.data["token"])
    assert not rented.is_error, rented.text
    ((message, details),) = asked
    assert f"server {server_id}" in message and "BTC/h" in message
    assert "daily cap 40 USD" in message and "live orders 0 of 3" in message
    assert server_id == details["server"]["id"]
    assert details["caps"]["max_spend_per_day_usd"]["limit"] == 40
    assert [server_id] == [o.si for o in clore_client.my_orders()]


def test_declined_rents_nothing_and_burns_the_token(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """A decline is final for that token: presenting it again says it was declined."""
    asked: list[tuple[str, dict[str, Any]]] = []
    ctx = make_agent(POLICY, confirm=asking(False, asked))
    server_id = cheapest(ctx, "gpu=3090")
    quote = call(ctx, "quote_rental", server_id=server_id)
    declined = call(ctx, "rent_server", server_id=server_id, token=quote.data["token"])
    assert declined.is_error and declined.data["error"] == "declined"
    assert "do not retry" in declined.text
    again = call(ctx, "rent_server", server_id=server_id, token=quote.data["token"])
    assert again.data["reason"] == "declined"
    assert len(asked) == 1
    assert clore_client.my_orders() == []
    assert call(ctx, "spend").data["live_orders"] == 0


def test_a_client_that_cannot_ask_rents_on_the_quote(
    make_agent: Any, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """confirm answering None (no elicitation) is not a decline."""
    asked: list[tuple[str, dict[str, Any]]] = []
    ctx = make_agent(POLICY, confirm=asking(None, asked))
    server_id = cheapest(ctx, "gpu=3090")
    quote = call(ctx, "quote_rental", server_id=server_id)
    assert not call(ctx, "rent_server", server_id=server_id, token=quote.data["token"]).is_error
    assert len(asked) == 1 and len(clore_client.my_orders()) == 1


def test_a_refused_cap_is_not_asked(
    make_agent: Any, call: Any, cheapest: Any, quote_and_rent: Any
) -> None:
    """The person is asked only about a rental the caps allow."""
    asked: list[tuple[str, dict[str, Any]]] = []
    ctx = make_agent(AgentPolicy(max_live_orders=1), confirm=asking(True, asked))
    quote_and_rent(ctx, server_id=cheapest(ctx, "gpu=3090"))
    second = cheapest(ctx, "gpu=3090", index=1)
    assert call(ctx, "quote_rental", server_id=second).is_error
    assert len(asked) == 1
