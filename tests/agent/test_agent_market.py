"""The market tools over the sandbox's copy of the real capture: search_market is
clore.market's query (same filters, sort, exact models, payable servers), paged with a
total; the 20 cheapest matches fit in under 2,000 tokens; list_gpus and show_server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clore import Clore
from clore.agent import AgentContext, AgentPolicy
from clore.market import PriceContext, parse_filters, parse_sort, select
from clore.market.cache import fetch_rates
from clore.market.models import canonical_model
from clore.rentals import payable
from clore.sandbox import Sandbox

CAPTURE = Path("/work/shared/data/marketplace-snapshot-2024.json")


def expected_ids(
    client: Clore, words: list[str], sort: str, currency: str = "bitcoin"
) -> list[int]:
    """What clore.market itself selects (as `clore market` does)."""
    servers = client.marketplace()
    rates, _ = fetch_rates(client, servers)
    chosen = select(
        servers, parse_filters(words), PriceContext(currency, rates), sort=parse_sort(sort)
    )
    return [s.id for s in chosen if payable(s, currency)]


@pytest.mark.parametrize(
    ("words", "sort"),
    [
        ([], "price"),
        (["gpu=4090", "gpus=1"], "price"),
        (["gpu=3090", "price<0.3usd/h", "cc=US,DE,PL"], "-reliability,price"),
        (["gpus>=4", "cuda>=12.2"], "gpu_price"),
    ],
)
def test_search_is_the_market_query_paged(
    agent: AgentContext, clore_client: Clore, call: Any, words: list[str], sort: str
) -> None:
    """Each page holds the next rows of clore.market's selection; the total is its length
    and next_offset is given until the last page."""
    ids = expected_ids(clore_client, words, sort)
    first = call(agent, "search_market", filters=words, sort=sort, limit=7)
    second = call(agent, "search_market", filters=words, sort=sort, limit=7, offset=7)
    assert len(ids) == first.data["total"] == second.data["total"]
    assert ids[:7] == [row[0] for row in first.data["rows"]]
    assert ids[7:14] == [row[0] for row in second.data["rows"]]
    assert (first.data.get("next_offset") == 7) == (len(ids) > 7)


def test_gpu_is_an_exact_model_and_a_substring_takes_tilde(agent: AgentContext, call: Any) -> None:
    """gpu=4090 lists no RTX 4090 Laptop; gpu~4090 does."""
    exact = call(agent, "search_market", filters=["gpu=4090"], limit=100, include_rented=True)
    loose = call(agent, "search_market", filters=["gpu~4090"], limit=100, include_rented=True)
    gpu = exact.data["columns"].index("gpu")
    assert {row[gpu] for row in exact.data["rows"]} <= {f"{n}x RTX 4090" for n in range(1, 9)}
    assert loose.data["total"] > exact.data["total"]
    laptops = ["gpu~laptop"]
    assert call(agent, "search_market", filters=["gpu=4090", *laptops]).data["total"] == 0
    assert call(agent, "search_market", filters=["gpu~4090", *laptops]).data["total"] >= 1


def test_the_20_cheapest_fit_in_2000_tokens_over_the_real_capture(
    agent: AgentContext, call: Any
) -> None:
    """The sandbox serves the capture byte for byte; the default search's 20 cheapest rows
    (text and data together) and the 20 cheapest single 4090s are under 2,000 tokens
    (characters / 4)."""
    from clore.sandbox import snapshot_bytes

    if CAPTURE.is_file():
        assert json.loads(CAPTURE.read_bytes()) == json.loads(snapshot_bytes())
    for words in ([], ["gpu=4090", "gpus=1"]):
        result = call(agent, "search_market", filters=words, limit=20)
        assert len(result.data["rows"]) == 20
        tokens = (len(result.text) + len(json.dumps(result.data))) / 4
        assert tokens < 2000, tokens


def test_search_rows_carry_the_prices_per_hour(
    agent: AgentContext, clore_client: Clore, call: Any
) -> None:
    """A row's prices are the server's per-day price / 24, in the currency and in USD."""
    result = call(agent, "search_market", filters=["gpu=3090"], limit=1, currency="clore")
    columns = result.data["columns"]
    row = dict(zip(columns, result.data["rows"][0], strict=True))
    server = next(s for s in clore_client.marketplace() if s.id == row["id"])
    day = server.price_per_day("CLORE-Blockchain")
    assert day is not None and row["clore_h"] == pytest.approx(day / 24, rel=1e-3)
    assert row["usd_h"] == pytest.approx(day * 0.002705 / 24, rel=2e-3)
    assert result.data["currency"] == "CLORE"


def test_search_says_which_gpu_models_may_be_rented(make_agent: Any, call: Any) -> None:
    """With allowed_gpus, the result names the models renting is limited to."""
    ctx = make_agent(AgentPolicy(allowed_gpus=("RTX 4090",)))
    result = call(ctx, "search_market", limit=1)
    assert result.data["rentable_gpus"] == ["RTX 4090"]
    assert "rentable GPU models: RTX 4090" in result.text


def test_list_gpus_counts_the_models_of_the_market(
    agent: AgentContext, clore_client: Clore, call: Any
) -> None:
    """The models and their available servers are the capture's, by exact model."""
    result = call(agent, "list_gpus", sort="available", limit=200)
    rows = {row[0]: row for row in result.data["rows"]}
    available = [s for s in clore_client.marketplace() if not s.rented]
    count_4090 = sum(1 for s in available if canonical_model(s.specs.gpu) == "RTX 4090")
    assert count_4090 == rows["RTX 4090"][1]
    assert result.data["rows"][0][1] == max(row[1] for row in result.data["rows"])
    page = call(agent, "list_gpus", sort="available", limit=5, offset=5)
    assert [r[0] for r in result.data["rows"][5:10]] == [r[0] for r in page.data["rows"]]


def test_show_server_has_details_and_spot_offers(
    agent: AgentContext, sandbox: Sandbox, clore_client: Clore, call: Any, cheapest: Any
) -> None:
    """A server with a spot bid on it shows the offer, marked mine and active."""
    server_id = cheapest(agent, "gpu=4090", "gpus=1", "spot")
    minimum = next(s for s in clore_client.marketplace() if s.id == server_id).price_per_day(
        "bitcoin", spot=True
    )
    assert minimum is not None
    clore_client.create_order(server_id, "ubuntu:22.04", order_type="spot", spotprice=minimum * 2)
    result = call(agent, "show_server", server_id=server_id)
    assert server_id == result.data["server"]["id"]
    (offer,) = result.data["spot_offers"]
    assert (offer["mine"], offer["active"]) == (True, True)
    assert offer["bid_per_hour"] == pytest.approx(minimum * 2 / 24, rel=1e-3)
    assert "RTX 4090" in result.text and "active mine" in result.text


def test_an_unknown_server_is_a_not_found_result(agent: AgentContext, call: Any) -> None:
    """show_server of an id the market does not list says so."""
    result = call(agent, "show_server", server_id=999999999)
    assert result.is_error and result.data["error"] == "not_found"


def test_a_rate_limit_says_how_long_to_wait(
    agent: AgentContext, sandbox: Sandbox, call: Any
) -> None:
    """When Clore keeps answering 429 with Retry-After, the result gives those seconds."""
    sandbox.inject_fault("marketplace", "rate_limit", count=10, seconds=7)
    result = call(agent, "search_market")
    assert result.is_error and result.data["error"] == "rate_limited"
    assert result.data["retry_after_seconds"] == 7
    assert "wait 7 s" in result.text
